"""Named datasets: where their files are looked for, where they are downloaded from, and how they are read.

Search order for ``load_dataset(name, ...)``: ``data_dir/<name>/`` then ``data_dir/`` (so both the parent folder
and the dataset's own folder work), ``$CONVNETPY_DATA/<name>/``, then ``cache_dir()/<name>/``. Local files are read
as they are (their checksums are not checked: re-compressed or partial copies are fine); downloads are checked.
MNIST-1D is not downloaded but generated, and cached in ``cache_dir()/mnist1d/`` (see ``mnist1d.py``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import cifar, mnist1d
from .dataset import Dataset
from .download import cache_dir, download_file
from .errors import DataFormatError, DatasetNotFoundError, DownloadError
from .idx import read_idx

SPLITS = ("train", "test")
SAMPLE_DIR = Path(__file__).resolve().parent / "fashion-mnist-sample"
_IDX_FILES = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
              "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot")


@dataclass(frozen=True)
class DatasetInfo:
    """What convnetpy knows of a named dataset.

    files: per split, the file names to download (and to look for; an IDX ``.gz`` may also be there unzipped).
    mirrors: base URLs that a file name is appended to, tried in order. md5: published checksum per file.
    """

    name: str
    format: str  # "idx", "cifar10" or "mnist1d" (generated, not downloaded)
    classes: tuple[str, ...]
    files: dict[str, tuple[str, ...]]
    mirrors: tuple[str, ...] = ()
    md5: dict[str, str] = field(default_factory=dict)
    packaged: bool = False  # shipped inside convnetpy (SAMPLE_DIR): never searched for nor downloaded


# md5 sums: torchvision's torchvision/datasets/mnist.py (MNIST, Fashion-MNIST; the same values the dataset pages
# publish) and the CIFAR-10 page https://www.cs.toronto.edu/~kriz/cifar.html (binary version).
DATASETS: dict[str, DatasetInfo] = {
    "mnist": DatasetInfo(
        "mnist", "idx", tuple(str(d) for d in range(10)), _IDX_FILES,
        ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"),
        {"train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
         "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
         "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
         "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c"}),
    "fashion-mnist": DatasetInfo(
        "fashion-mnist", "idx", FASHION_CLASSES, _IDX_FILES,
        ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        {"train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
         "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
         "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
         "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310"}),
    "cifar10": DatasetInfo(
        "cifar10", "cifar10", cifar.CLASSES, {s: (cifar.BIN_ARCHIVE,) for s in SPLITS},
        ("https://www.cs.toronto.edu/~kriz/",), {cifar.BIN_ARCHIVE: "c32a1d4ab5d03f1284b67883e8d87530"}),
    "fashion-mnist-sample": DatasetInfo("fashion-mnist-sample", "idx", FASHION_CLASSES, _IDX_FILES, packaged=True),
    **{name: DatasetInfo(name, "mnist1d", mnist1d.CLASSES, {s: (mnist1d.file_name(name),) for s in SPLITS})
       for name in mnist1d.VARIANTS},
}


def load_dataset(name: str, split: str = "train", data_dir=None, download: bool = True, *,
                 mirrors: Sequence[str] | None = None, progress: bool | None = None) -> Dataset:
    """Read one split of a named dataset, downloading it first if it is nowhere to be found.

    name: "mnist", "fashion-mnist", "cifar10" or "fashion-mnist-sample" (3,000 train + 1,000 test Fashion-MNIST
    images shipped with convnetpy; data_dir and download do not apply to it), "mnist1d" or "mnist1d-shuffled"
    (generated offline by the mnist1d package and cached in ``cache_dir()/mnist1d/``, see
    ``convnetpy.data.mnist1d``; data_dir, download and mirrors do not apply to them). split: "train" or "test".
    data_dir: a folder holding the dataset's files or a parent holding ``<name>/``; a download goes to
    ``data_dir/<name>/`` (or ``data_dir`` itself when it is named ``<name>``), else to ``$CONVNETPY_DATA/<name>/``,
    else to ``cache_dir()/<name>/``. download: False never goes to the network. mirrors: base URLs replacing
    the official ones (a file name is appended to each). progress: a download bar on stderr (None: if a terminal).

    Returns a Dataset: images (N, C, H, W) uint8 (MNIST-1D: signals (N, 1, 40) float32), labels (N,) int64,
    class names. Raises DatasetNotFoundError naming every folder looked at and every URL tried, ChecksumError
    for a corrupted download, DataFormatError for a truncated, corrupt or foreign file, MissingDependencyError
    when MNIST-1D must be generated and the mnist1d package is not installed.
    """
    info = DATASETS.get(name)
    if info is None:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    if info.packaged:
        return _read(info, split, SAMPLE_DIR)
    if info.format == "mnist1d":
        return mnist1d.load_mnist1d(name, split, progress)
    folders = search_dirs(name, data_dir)
    for folder in folders:
        if _has_split(info, split, folder):
            return _read(info, split, folder)
    looked = "\n".join(f"  {f}" for f in folders)
    wanted = _describe_files(info, split)
    base_urls = info.mirrors if mirrors is None else tuple(mirrors)
    urls = [m + f for f in info.files[split] for m in base_urls]
    if not download:
        raise DatasetNotFoundError(
            f"dataset {name!r} ({split} split) not found, and download=False: looked for {wanted} in\n{looked}\n"
            f"Get the files from {', '.join(urls)} and put them in one of these folders (or pass data_dir / "
            f"--data-dir, or set $CONVNETPY_DATA).")
    target = download_dir(name, data_dir)
    created = not target.exists()
    try:
        for file in info.files[split]:
            if not _present(target, file):
                download_file([m + file for m in base_urls], target / file, info.md5.get(file), progress=progress)
    except DownloadError as e:
        if created and target.is_dir() and not any(target.iterdir()):
            target.rmdir()  # leave no empty folder behind a failed download
        tried = "\n".join(f"  {url}: {reason}" for url, reason in e.failures)
        raise DatasetNotFoundError(
            f"dataset {name!r} ({split} split) not found: looked for {wanted} in\n{looked}\n"
            f"and could not download it into {target}; URLs tried:\n{tried}\n"
            f"Offline? Put the files in one of these folders (or pass data_dir / --data-dir, or set "
            f"$CONVNETPY_DATA).") from None
    return _read(info, split, target)


def search_dirs(name: str, data_dir=None) -> list[Path]:
    """The folders ``load_dataset(name, data_dir=data_dir)`` looks in, in order (duplicates removed)."""
    folders = []
    if data_dir is not None:
        d = Path(data_dir).expanduser()
        folders.append(d / name)
        if d.name == name or d.name not in DATASETS:  # data_dir=".../mnist" must not pass for fashion-mnist
            folders.append(d)
    if os.environ.get("CONVNETPY_DATA"):
        folders.append(Path(os.environ["CONVNETPY_DATA"]).expanduser() / name)
    folders.append(cache_dir() / name)
    return list(dict.fromkeys(folders))


def download_dir(name: str, data_dir=None) -> Path:
    """Where ``load_dataset`` downloads ``name`` to (see its docstring)."""
    if data_dir is not None:
        d = Path(data_dir).expanduser()
        return d if d.name == name else d / name
    if os.environ.get("CONVNETPY_DATA"):
        return Path(os.environ["CONVNETPY_DATA"]).expanduser() / name
    return cache_dir() / name


def _present(folder: Path, file: str) -> Path | None:
    """``folder/file``, or for an IDX ``.gz`` the unzipped file, whichever exists."""
    for candidate in (folder / file, folder / file.removesuffix(".gz")):
        if candidate.is_file():
            return candidate
    return None


def _has_split(info: DatasetInfo, split: str, folder: Path) -> bool:
    if info.format == "cifar10":
        return cifar.locate_cifar10(folder, split) is not None
    return all(_present(folder, f) for f in info.files[split])


def _describe_files(info: DatasetInfo, split: str) -> str:
    if info.format == "cifar10":
        return (f"{cifar.BIN_ARCHIVE} or {cifar.BIN_FOLDER}/ with {', '.join(cifar.batch_names(split))} "
                f"(or the python version, {cifar.PY_ARCHIVE} or {cifar.PY_FOLDER}/)")
    return " and ".join(f"{f.removesuffix('.gz')}[.gz]" for f in info.files[split])


def _read(info: DatasetInfo, split: str, folder: Path) -> Dataset:
    if info.format == "cifar10":
        data = cifar.read_cifar10(folder, split)
        data.name = info.name
        return data
    images_path, labels_path = (_present(folder, f) for f in info.files[split])
    if images_path is None or labels_path is None:
        raise DatasetNotFoundError(f"no {_describe_files(info, split)} in {folder}")
    images, labels = read_idx_pair(images_path, labels_path, len(info.classes))
    return Dataset(info.name, split, images, labels, list(info.classes), str(folder))


def read_idx_pair(images_path, labels_path, num_classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """MNIST-style images and labels files -> images (N, 1, H, W) uint8, labels (N,) int64, checked together."""
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.dtype != np.uint8 or images.ndim != 3:
        raise DataFormatError(f"{images_path}: expected uint8 images of shape (N, H, W) (IDX magic 0x00000803), "
                              f"found {images.dtype} of shape {images.shape}")
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise DataFormatError(f"{labels_path}: expected uint8 labels of shape (N,) (IDX magic 0x00000801), "
                              f"found {labels.dtype} of shape {labels.shape}")
    if len(images) != len(labels):
        raise DataFormatError(f"{images_path} holds {len(images)} images but {labels_path} holds {len(labels)} "
                              f"labels")
    bad = np.flatnonzero(labels >= num_classes)
    if bad.size:
        raise DataFormatError(f"{labels_path}: label out of range: label {bad[0]} is {labels[bad[0]]}, "
                              f"expected 0..{num_classes - 1}")
    return images.reshape(len(images), 1, *images.shape[1:]), labels.astype(np.int64)
