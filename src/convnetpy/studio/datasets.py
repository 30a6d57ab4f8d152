"""The datasets the page offers: the named ones, and image folders inside the data directory (never outside it).

An image folder is chosen on the page as ``folder:<path relative to the data directory>``; the path is resolved
(symbolic links and ``..`` included) and refused unless it lies inside the data directory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..data import Dataset, load_dataset, load_image_folder
from ..data.image_folder import IMAGE_EXTENSIONS
from .config import SetupError

NAMED = ("fashion-mnist-sample", "mnist", "fashion-mnist", "cifar10", "mnist1d", "mnist1d-shuffled")
FOLDER = "folder:"
DIGITS = [str(d) for d in range(10)]


def _looks_like_image_folder(path: Path) -> bool:
    """A folder with class subfolders holding images (or with train/ holding such): checked cheaply."""
    root = path / "train" if (path / "train").is_dir() else path
    try:
        for sub in sorted(root.iterdir())[:20]:
            if sub.is_dir() and not sub.name.startswith("."):
                return any(f.suffix.lower() in IMAGE_EXTENSIONS for f in list(sub.iterdir())[:50])
    except OSError:
        return False
    return False


def image_folders(data_dir: Path | None, limit: int = 50) -> list[str]:
    """Image folders up to two levels inside ``data_dir``, as paths relative to it (sorted, at most ``limit``)."""
    if data_dir is None or not data_dir.is_dir():
        return []
    found, candidates = [], [p for p in sorted(data_dir.iterdir()) if p.is_dir() and not p.name.startswith(".")]
    for path in candidates:
        if _looks_like_image_folder(path):
            found.append(path.relative_to(data_dir).as_posix())
        elif path.name not in NAMED:
            found += [p.relative_to(data_dir).as_posix() for p in sorted(path.iterdir())[:50]
                      if p.is_dir() and not p.name.startswith(".") and _looks_like_image_folder(p)]
        if len(found) >= limit:
            break
    return found[:limit]


def resolve_folder(data_dir: Path | None, relative: str) -> Path:
    """``data_dir / relative``, resolved; SetupError unless it is a folder inside ``data_dir``."""
    if data_dir is None:
        raise SetupError("image folders need the server started with --data-dir", "dataset")
    base = data_dir.resolve()
    if not relative or Path(relative).is_absolute() or "\\" in relative:
        raise SetupError(f"{relative!r} is not a path relative to the data directory", "dataset")
    path = (base / relative).resolve()
    if not path.is_relative_to(base):
        raise SetupError(f"{relative!r} is outside the data directory", "dataset")
    if not path.is_dir():
        raise SetupError(f"no folder {relative!r} in the data directory", "dataset")
    return path


@dataclass
class RunData:
    """A dataset ready for a run: the training split, the test split (None when it has none), and the name
    saved in checkpoints (a named dataset, or an image folder's resolved path, as ``convnetpy train`` takes)."""

    train: Dataset
    test: Dataset | None
    source: str


def load_run_data(dataset: str, data_dir: Path | None, input_shape: tuple[int, ...], download: bool) -> RunData:
    """Load the dataset the page chose; SetupError(field="dataset") with the reader's message when it fails."""
    from ..data import DatasetNotFoundError
    from ..errors import ConvnetpyError

    try:
        if dataset.startswith(FOLDER):
            root = resolve_folder(data_dir, dataset[len(FOLDER):])
            if len(input_shape) != 3:
                raise SetupError(f"an image folder needs a net taking images [C, H, W]; this one takes "
                                 f"{list(input_shape)}", "spec")
            c, h, w = input_shape
            train_root = root / "train" if (root / "train").is_dir() else root
            train = load_image_folder(train_root, (h, w), grey=c == 1)
            test = load_image_folder(root / "test", (h, w), grey=c == 1) if (root / "test").is_dir() else None
            return RunData(train, test, str(root))
        if dataset not in NAMED:
            raise SetupError(f"unknown dataset {dataset!r}; choose one of {', '.join(NAMED)} or an image folder",
                             "dataset")
        train = load_dataset(dataset, "train", data_dir=data_dir, download=download, progress=False)
        try:
            test = load_dataset(dataset, "test", data_dir=data_dir, download=download, progress=False)
        except DatasetNotFoundError:
            test = None
        return RunData(train, test, dataset)
    except SetupError:
        raise
    except (ConvnetpyError, OSError, ValueError) as e:
        raise SetupError(str(e).strip(), "dataset") from None


def is_digits(classes: list[str], input_shape: tuple[int, ...]) -> bool:
    """A digit dataset (classes "0".."9", grey images): the page offers a canvas to draw on."""
    return list(classes) == DIGITS and len(input_shape) == 3 and input_shape[0] == 1
