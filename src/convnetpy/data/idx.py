"""IDX files (MNIST, Fashion-MNIST): read and write, gzip-compressed or not.

Layout (LeCun's MNIST page): 2 zero bytes, a type byte (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
0x0D float32, 0x0E float64), the number of dimensions, then one big-endian uint32 per dimension, then the data,
big-endian, row-major. MNIST images are ``0x00000803`` (N, 28, 28), labels ``0x00000801`` (N,).
"""

from __future__ import annotations

import gzip
import io
import math
import struct
import zlib
from pathlib import Path

import numpy as np

from ..serialization import atomic_write
from .errors import DataFormatError, DatasetNotFoundError

IDX_TYPES = {0x08: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
             0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 22


def read_idx(path) -> np.ndarray:
    """The array stored in an IDX file; gzip is recognised by its magic bytes, not by the file name.

    Returns an array of the file's shape, e.g. (N, 28, 28) uint8 images or (N,) uint8 labels, in native byte
    order. Raises DataFormatError (naming the file) for a wrong magic number, a wrong size or a bad gzip stream,
    DatasetNotFoundError when there is no file.
    """
    path = Path(path)
    try:
        raw = open(path, "rb")  # closed by the with below
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise DatasetNotFoundError(f"no IDX file at {path}") from None
    with raw:
        compressed = raw.read(2) == GZIP_MAGIC
        raw.seek(0)
        f = gzip.GzipFile(fileobj=raw, mode="rb") if compressed else raw
        try:
            return _parse(f, path, None if compressed else path.stat().st_size)
        except (OSError, EOFError, zlib.error) as e:
            what = "a readable gzip file (truncated or corrupt)" if compressed else "readable"
            raise DataFormatError(f"{path}: not {what}: {e}") from None


def _parse(f, path: Path, file_size: int | None) -> np.ndarray:
    magic = f.read(4)
    if len(magic) < 4:
        raise DataFormatError(f"{path}: too short for an IDX file ({len(magic)} bytes; the header alone is 4+)")
    if magic[:2] != b"\0\0" or magic[2] not in IDX_TYPES or magic[3] == 0:
        raise DataFormatError(f"{path}: wrong magic number 0x{magic.hex()}: not an IDX file (an IDX file starts "
                              f"with 0x0000, a type code 08/09/0B/0C/0D/0E and its number of dimensions)")
    ndim = magic[3]
    raw_dims = f.read(4 * ndim)
    if len(raw_dims) < 4 * ndim:
        raise DataFormatError(f"{path}: truncated header: magic 0x{magic.hex()} announces {ndim} dimensions "
                              f"({4 * ndim} bytes) but the file ends after {len(raw_dims)}")
    dims = struct.unpack(f">{ndim}I", raw_dims)
    dtype = IDX_TYPES[magic[2]]
    nbytes = math.prod(dims) * dtype.itemsize  # Python ints: no overflow
    header = 4 + 4 * ndim
    if file_size is not None and file_size != header + nbytes:
        raise DataFormatError(f"{path}: wrong size: header says shape {dims} of {dtype.name}, that is "
                              f"{header + nbytes} bytes, but the file has {file_size}")
    data = bytearray()
    while len(data) < nbytes:  # in chunks, so a corrupt header announcing terabytes allocates nothing
        chunk = f.read(min(nbytes - len(data), _CHUNK))
        if not chunk:
            raise DataFormatError(f"{path}: truncated: header says shape {dims} of {dtype.name} ({nbytes} data "
                                  f"bytes) but only {len(data)} follow")
        data += chunk
    if f.read(1):
        raise DataFormatError(f"{path}: wrong size: more data than the {nbytes} bytes the header's shape {dims} "
                              f"announces")
    array = np.frombuffer(data, dtype).reshape(dims)  # writable: it views the bytearray
    return array if dtype.isnative or dtype.itemsize == 1 else array.astype(dtype.newbyteorder("="))


def write_idx(path, array: np.ndarray, compress: bool | None = None) -> None:
    """Write ``array`` (any shape, dtype uint8/int8/int16/int32/float32/float64) as an IDX file, atomically.

    ``compress`` defaults to ``path`` ending in ``.gz``. The gzip header stores no name and mtime 0, so the same
    array always gives the same bytes.
    """
    path = Path(path)
    array = np.asarray(array)
    codes = {dt.newbyteorder("=").str: code for code, dt in IDX_TYPES.items()}
    code = codes.get(array.dtype.newbyteorder("=").str)
    if code is None or array.ndim == 0 or array.ndim > 255:
        raise ValueError(f"write_idx: cannot store a {array.ndim}-D {array.dtype} array in IDX "
                         f"(types: uint8, int8, int16, int32, float32, float64; 1 to 255 dimensions)")
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + np.ascontiguousarray(array, IDX_TYPES[code]).tobytes()
    if path.name.endswith(".gz") if compress is None else compress:
        buf = io.BytesIO()
        with gzip.GzipFile(filename="", fileobj=buf, mode="wb", compresslevel=9, mtime=0) as gz:
            gz.write(payload)
        payload = buf.getvalue()
    atomic_write(path, lambda f: f.write(payload))
