"""An image folder ``root/<class name>/**/<image>``, read like torchvision's ImageFolder (Pillow imported lazily)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .dataset import Dataset
from .errors import DataFormatError, DatasetNotFoundError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".ppm", ".pgm", ".tif", ".tiff", ".webp")


def load_image_folder(root, size: int | tuple[int, int], grey: bool = False) -> Dataset:
    """Read every image under ``root/<class>/`` (sub-folders included), resized to ``size``.

    Classes are the sub-folder names sorted, so label ``k`` is ``classes[k]``; images of a class are in sorted
    path order. ``size`` is H = W or (H, W); images are resized with bilinear filtering (antialiased when
    shrinking). ``grey`` converts to 1 channel (Pillow's "L"), else 3 (RGB; alpha dropped, palettes expanded).
    Returns a Dataset named after ``root`` with images (N, C, H, W) uint8 and labels (N,) int64.
    """
    from PIL import Image, UnidentifiedImageError

    root = Path(root)
    h, w = (size, size) if isinstance(size, int) else tuple(size)
    if h < 1 or w < 1:
        raise ValueError(f"load_image_folder: size must be positive, got {size!r}")
    if not root.is_dir():
        raise DatasetNotFoundError(f"no image folder at {root}")
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not classes:
        raise DataFormatError(f"{root} has no class folders (expected {root}/<class name>/<images>)")
    files: list[tuple[Path, int]] = []
    empty = []
    for label, name in enumerate(classes):
        found = sorted(p for p in (root / name).rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
        files += [(p, label) for p in found]
        if not found:
            empty.append(name)
    if empty:
        raise DataFormatError(f"{root}: class folder(s) {', '.join(empty)} hold no images "
                              f"({', '.join(IMAGE_EXTENSIONS)})")
    channels = 1 if grey else 3
    images = np.empty((len(files), channels, h, w), np.uint8)  # (N, C, H, W)
    for i, (path, _) in enumerate(files):  # decoding is per file; everything after is batched
        try:
            images[i] = decode_image(path, (h, w), grey)
        except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError, SyntaxError) as e:
            raise DataFormatError(f"{path}: not a readable image: {e}") from None
    labels = np.array([label for _, label in files], np.int64)
    return Dataset(root.name, "", images, labels, classes, str(root))


def decode_image(path, size: tuple[int, int], grey: bool) -> np.ndarray:
    """One image file -> uint8 (C, H, W) of ``size`` (H, W), grey (C = 1) or RGB (C = 3).

    Pillow's errors propagate: each caller words its own message (a dataset file, a file to predict).
    """
    from PIL import Image

    h, w = size
    with Image.open(path) as im:
        im = im.convert("L" if grey else "RGB")
        if im.size != (w, h):
            im = im.resize((w, h), Image.Resampling.BILINEAR)
        pixels = np.asarray(im, dtype=np.uint8)  # (H, W) or (H, W, 3)
    return pixels[None] if grey else pixels.transpose(2, 0, 1)
