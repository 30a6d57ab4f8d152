"""Files the page sends: an image (or, for a 1D net, a signal) to classify, and checkpoints to load.

Bodies are read in chunks and refused past a size limit before they are all in memory. Images are checked by
Pillow to be one of a few formats and at most ``MAX_PIXELS`` before being decoded, so a decompression bomb or
a file that is not an image gets a message (``UploadError``), not a crash.
"""

from __future__ import annotations

import io

import numpy as np

from ..errors import ConvnetpyError

MAX_IMAGE_BYTES = 5 * 2**20
MAX_CHECKPOINT_BYTES = 200 * 2**20
MAX_PIXELS = 4096 * 4096
FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP", "PPM", "TIFF")


class UploadError(ConvnetpyError):
    """An upload that is too large, empty, or not what it claims to be; ``status`` is the HTTP status to answer."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


async def read_body(request, limit: int) -> bytes:
    """The request's body, or UploadError 413 as soon as it passes ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise UploadError(f"the file is {int(declared):,} bytes; at most {limit:,} are accepted", 413)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise UploadError(f"the file is larger than {limit:,} bytes, the most accepted", 413)
        chunks.append(chunk)
    if not size:
        raise UploadError("the upload is empty")
    return b"".join(chunks)


def decode_image(body: bytes, shape: tuple[int, int, int]) -> np.ndarray:
    """An image file's bytes -> uint8 (C, H, W) of ``shape`` (grey when C == 1), as the dataset's images."""
    from PIL import Image, UnidentifiedImageError

    from ..data.image_folder import decode_image as decode

    c, h, w = shape
    try:
        with Image.open(io.BytesIO(body)) as im:
            kind, (width, height) = im.format, im.size
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise UploadError(f"not an image this studio reads ({', '.join(FORMATS)})") from None
    if kind not in FORMATS:
        raise UploadError(f"a {kind} image; the studio reads {', '.join(FORMATS)}")
    if width * height > MAX_PIXELS:
        raise UploadError(f"the image is {width}x{height} pixels; at most {MAX_PIXELS:,} pixels are accepted")
    try:
        return decode(io.BytesIO(body), (h, w), grey=c == 1)
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError, SyntaxError) as e:
        raise UploadError(f"the image could not be decoded: {e}") from None


def decode_signal(body: bytes, shape: tuple[int, int]) -> np.ndarray:
    """A 1D net's input: a ``.npy`` array or text of numbers (spaces, commas, lines) -> float32 (C, L)."""
    c, length = shape
    try:
        if body[:6] == b"\x93NUMPY":
            a = np.load(io.BytesIO(body), allow_pickle=False)
        else:
            a = np.array(body.decode("utf-8").replace(",", " ").split(), dtype=np.float64)
    except (ValueError, UnicodeDecodeError, OSError) as e:
        raise UploadError(f"not a signal (a .npy array or a text file of numbers): {e}") from None
    if a.size != c * length or not np.issubdtype(a.dtype, np.number) or not np.isfinite(a).all():
        raise UploadError(f"the file holds {a.size} {a.dtype} values; the net takes {c}-channel signals of length "
                          f"{length} ({c * length} finite numbers)")
    return a.astype(np.float32).reshape(c, length)
