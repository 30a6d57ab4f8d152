"""CIFAR-10: the binary version (``cifar-10-binary.tar.gz``) and the python version (``cifar-10-python.tar.gz``).

Binary batch: records of 3073 bytes back to back, no header: 1 label byte (0..9), then the 1024 red, 1024 green and
1024 blue bytes of the 32x32 image, each channel row-major (Krizhevsky's CIFAR page). Python batch: a pickled dict
``{"data": (N, 3072) uint8 array in the same channel order, "labels": list of N ints, ...}``, unpickled here with
an Unpickler that only knows NumPy's array reconstruction functions, so a tampered file cannot run code.

Either version is read from its archive (only the members a split needs, in one pass, nothing written to disk)
or from the extracted folder.
"""

from __future__ import annotations

import codecs
import io
import pickle
import posixpath
import tarfile
import zlib
from pathlib import Path

import numpy as np

from .dataset import Dataset
from .errors import DataFormatError, DatasetNotFoundError

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
RECORD_BYTES = 1 + 3 * 32 * 32  # 3073
BIN_FOLDER, BIN_ARCHIVE, BIN_META = "cifar-10-batches-bin", "cifar-10-binary.tar.gz", "batches.meta.txt"
PY_FOLDER, PY_ARCHIVE, PY_META = "cifar-10-batches-py", "cifar-10-python.tar.gz", "batches.meta"
PICKLE_PROTO = 0x80  # first byte of a pickle of protocol >= 2; a binary batch starts with a label byte 0..9


def batch_names(split: str, binary: bool = True) -> list[str]:
    """File names of a split: ``data_batch_1.bin`` .. ``data_batch_5.bin`` or ``test_batch.bin`` (no .bin: python)."""
    names = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}.get(split)
    if names is None:
        raise ValueError(f"CIFAR-10 split must be 'train' or 'test', got {split!r}")
    return [n + ".bin" for n in names] if binary else names


def locate_cifar10(folder, split: str) -> Path | None:
    """Where in ``folder`` the ``split`` can be read from, or None: an extracted folder (the faster) or an archive.

    Looks for ``cifar-10-batches-bin/``, the batches directly in ``folder``, ``cifar-10-binary.tar.gz``, then the
    same three for the python version.
    """
    folder = Path(folder)
    for binary, sub, archive in ((True, BIN_FOLDER, BIN_ARCHIVE), (False, PY_FOLDER, PY_ARCHIVE)):
        names = batch_names(split, binary)
        for d in (folder / sub, folder):
            if all((d / n).is_file() for n in names):
                return d
        if (folder / archive).is_file():
            return folder / archive
    return None


def read_cifar10(path, split: str = "train") -> Dataset:
    """Read one split of CIFAR-10 from a folder (extracted or holding the archive) or from an archive file.

    Returns a Dataset with images (N, 3, 32, 32) uint8 RGB, labels (N,) int64 and the 10 class names; the train
    split is data_batch_1..5 in order. Raises DatasetNotFoundError when the split's files are not there,
    DataFormatError (naming the file) when one is truncated, corrupt or foreign.
    """
    path = Path(path)
    batch_names(split)  # validates split
    if path.is_dir():
        source = locate_cifar10(path, split)
        if source is None:
            raise DatasetNotFoundError(
                f"no CIFAR-10 {split} split in {path}: looked for {BIN_FOLDER}/ with {', '.join(batch_names(split))}, "
                f"those files in {path} itself, {BIN_ARCHIVE}, and the same for the python version ({PY_FOLDER}/, "
                f"{PY_ARCHIVE})")
    elif path.is_file():
        source = path
    else:
        raise DatasetNotFoundError(f"no CIFAR-10 folder or archive at {path}")
    members, meta, binary = _read_folder(source, split) if source.is_dir() else _read_archive(source, split)
    parts = [read_cifar10_bytes(data, where, binary) for where, data in members]
    images = np.concatenate([x for x, _ in parts])  # (N, 3, 32, 32), a fresh writable copy
    labels = np.concatenate([y for _, y in parts])  # (N,)
    classes = list(CLASSES) if meta is None else _parse_meta(*meta, binary=binary)
    return Dataset("cifar10", split, images, labels, classes, str(source))


def read_cifar10_batch(path) -> tuple[np.ndarray, np.ndarray]:
    """One batch file, binary (``test_batch.bin``) or pickled (``test_batch``).

    Returns images (N, 3, 32, 32) uint8 and labels (N,) int64.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetNotFoundError(f"no CIFAR-10 batch file at {path}")
    return read_cifar10_bytes(path.read_bytes(), str(path), True if path.suffix == ".bin" else None)


def read_cifar10_bytes(data: bytes, where: str = "<bytes>", binary: bool | None = None):
    """Parse one batch's bytes: images (N, 3, 32, 32) uint8 (a view of ``data``), labels (N,) int64.

    ``binary`` None tells the version by the first byte; ``where`` names the batch in errors.
    """
    if binary is None:
        binary = data[:1] != bytes([PICKLE_PROTO])
    return _parse_binary(data, where) if binary else _parse_pickled(data, where)


def _read_folder(folder: Path, split: str):
    binary = all((folder / n).is_file() for n in batch_names(split, True))
    members = []
    for name in batch_names(split, binary):
        if not (folder / name).is_file():
            raise DatasetNotFoundError(f"no {name} in {folder} (the CIFAR-10 {split} split needs "
                                       f"{', '.join(batch_names(split, binary))})")
        members.append((str(folder / name), (folder / name).read_bytes()))
    meta_path = folder / (BIN_META if binary else PY_META)
    meta = (str(meta_path), meta_path.read_bytes()) if meta_path.is_file() else None
    return members, meta, binary


def _read_archive(archive: Path, split: str):
    """The split's members, read in one sequential pass over the (compressed) tar; stops once all are read."""
    wanted = {True: batch_names(split, True), False: batch_names(split, False)}
    metas = {BIN_META: True, PY_META: False}
    found: dict[str, tuple[str, bytes]] = {}
    try:
        with tarfile.open(archive, "r|*") as tar:
            for member in tar:
                base = posixpath.basename(member.name)
                if member.isfile() and base not in found and (base in metas or base in wanted[True] + wanted[False]):
                    found[base] = (f"{archive}:{member.name}", tar.extractfile(member).read())
                    if any(all(n in found for n in names) for names in wanted.values()):
                        break
    # tarfile's streaming gzip reader raises TypeError on some truncated headers (CPython's tarfile.py).
    except (tarfile.TarError, OSError, EOFError, zlib.error, TypeError) as e:
        raise DataFormatError(f"{archive}: not a readable tar archive (truncated or corrupt): {e}") from None
    for binary, names in wanted.items():
        if all(n in found for n in names):
            meta = found.get(BIN_META if binary else PY_META)
            return [found[n] for n in names], meta, binary
    raise DataFormatError(f"{archive}: not a CIFAR-10 archive holding the {split} split: it has no member named "
                          f"{', '.join(n for n in wanted[True] if n not in found)} (binary version) nor "
                          f"{', '.join(n for n in wanted[False] if n not in found)} (python version)")


def _check_labels(labels: np.ndarray, where: str) -> None:
    bad = np.flatnonzero((labels < 0) | (labels >= len(CLASSES)))
    if bad.size:
        raise DataFormatError(f"{where}: label out of range: record {bad[0]} has label {labels[bad[0]]} "
                              f"(CIFAR-10 labels are 0..9)")


def _parse_binary(data: bytes, where: str) -> tuple[np.ndarray, np.ndarray]:
    if len(data) == 0 or len(data) % RECORD_BYTES:
        raise DataFormatError(f"{where}: wrong size: {len(data)} bytes is not a whole number of {RECORD_BYTES}-byte "
                              f"records (1 label byte + 3x32x32 pixels): truncated, or not a CIFAR-10 binary batch")
    records = np.frombuffer(data, np.uint8).reshape(-1, RECORD_BYTES)  # (N, 3073)
    labels = records[:, 0].astype(np.int64)
    _check_labels(labels, where)
    return records[:, 1:].reshape(-1, 3, 32, 32), labels


def _parse_pickled(data: bytes, where: str) -> tuple[np.ndarray, np.ndarray]:
    batch = _unpickle(data, where)
    if not isinstance(batch, dict):
        raise DataFormatError(f"{where}: not a CIFAR-10 python batch: it holds a {type(batch).__name__}, "
                              f"not a dict with 'data' and 'labels'")
    batch = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in batch.items()}
    x = batch.get("data")
    if not isinstance(x, np.ndarray) or x.dtype != np.uint8 or x.ndim != 2 or x.shape[1] != 3 * 32 * 32:
        found = f"{x.dtype} array of shape {x.shape}" if isinstance(x, np.ndarray) else type(x).__name__
        raise DataFormatError(f"{where}: not a CIFAR-10 python batch: 'data' must be a (N, 3072) uint8 array, "
                              f"found {found}")
    try:
        labels = np.asarray(batch.get("labels"), dtype=np.int64)
    except (TypeError, ValueError, OverflowError):
        labels = None
    if labels is None or labels.shape != (len(x),):
        raise DataFormatError(f"{where}: not a CIFAR-10 python batch: 'labels' must be a list of {len(x)} ints")
    _check_labels(labels, where)
    return x.reshape(-1, 3, 32, 32), labels


def _parse_meta(where: str, data: bytes, binary: bool) -> list[str]:
    if binary:
        try:
            names = [line.strip() for line in data.decode("utf-8").splitlines() if line.strip()]
        except UnicodeDecodeError as e:
            raise DataFormatError(f"{where}: class names are not UTF-8 text: {e}") from None
    else:
        meta = _unpickle(data, where)
        raw = meta.get("label_names", meta.get(b"label_names")) if isinstance(meta, dict) else None
        names = [n.decode("latin1") if isinstance(n, bytes) else n for n in raw] if isinstance(raw, list) else []
    if len(names) != len(CLASSES) or not all(isinstance(n, str) for n in names):
        raise DataFormatError(f"{where}: expected the {len(CLASSES)} CIFAR-10 class names, found {names!r:.200}")
    return names


# What a pickled NumPy array needs, taken from NumPy itself so both the numpy.core (NumPy 1) and numpy._core
# (NumPy 2) spellings map to the same function; builtins only harmless constructors.
_RECONSTRUCT = np.empty(0).__reduce_ex__(2)[0]  # numpy.core.multiarray._reconstruct
_FROMBUFFER = np.empty(0).__reduce_ex__(5)[0]  # numpy.core.numeric._frombuffer (pickle protocol 5)
_SCALAR = np.float64(0).__reduce__()[0]  # numpy.core.multiarray.scalar
_SAFE_GLOBALS = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype,
                 ("_codecs", "encode"): codecs.encode}  # protocol 2 from Python 3 pickles bytes this way
for _core in ("numpy.core", "numpy._core"):
    _SAFE_GLOBALS.update({(f"{_core}.multiarray", "_reconstruct"): _RECONSTRUCT,
                          (f"{_core}.multiarray", "scalar"): _SCALAR, (f"{_core}.numeric", "_frombuffer"): _FROMBUFFER})
for _builtins in ("builtins", "__builtin__"):
    _SAFE_GLOBALS.update({(_builtins, t.__name__): t for t in (set, frozenset, bytearray, complex, slice)})


class _Refused(pickle.UnpicklingError):
    pass


class _RestrictedUnpickler(pickle._Unpickler):
    """Only ``_SAFE_GLOBALS``, and a dtype's state only as NumPy writes it for a plain dtype.

    NumPy's ``dtype.__setstate__`` trusts its argument: a corrupt state (one damaged byte can turn
    ``(3, '|', None, None, None, -1, -1, 0)`` into ``(3, '|', (None, None), -1, -1, 0)``) crashes the process
    with a segmentation fault. The C unpickler calls it unchecked, so this is the Python one, whose BUILD step
    can be checked first; a batch is a handful of opcodes around one large bytes object, as fast either way.
    """

    dispatch = dict(pickle._Unpickler.dispatch)

    def find_class(self, module: str, name: str):
        try:
            return _SAFE_GLOBALS[(module, name)]
        except KeyError:
            raise _Refused(f"{module}.{name}") from None

    def load_build(self):
        obj, state = self.stack[-2], self.stack[-1]
        if isinstance(obj, np.dtype):
            plain = obj.__reduce__()[2]  # what NumPy writes for this dtype: only the byte order may differ
            if not (isinstance(state, tuple) and len(state) == len(plain) and state[1] in ("<", ">", "|", "=")
                    and state[:1] + state[2:] == plain[:1] + plain[2:]):
                raise pickle.UnpicklingError(f"a dtype state NumPy would not write: {state!r:.100}")
        super().load_build()

    dispatch[pickle.BUILD[0]] = load_build


def _unpickle(data: bytes, where: str):
    try:
        return _RestrictedUnpickler(io.BytesIO(data), encoding="latin1").load()
    except _Refused as e:
        raise DataFormatError(f"{where}: refused to unpickle the global {e}: a CIFAR-10 batch needs only NumPy "
                              f"arrays, lists and strings, so this file is not one (or was tampered with)") from None
    except Exception as e:  # a corrupt pickle can fail in many ways inside pickle or NumPy: all mean a bad file
        raise DataFormatError(f"{where}: not a readable pickle (truncated or corrupt): "
                              f"{type(e).__name__}: {e}") from None
