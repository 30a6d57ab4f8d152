"""Datasets for convnetpy: official-format readers, image folders, downloads, augmentation and batching.

Readers import NumPy and the standard library only; Pillow (image folders), tqdm (download progress) and the
mnist1d package (which generates MNIST-1D) are imported inside the functions that use them.

    from convnetpy.data import load_dataset, batches, random_flip, random_shift, Normalizer
    train = load_dataset("cifar10", "train", data_dir="data")   # images (N, 3, 32, 32) uint8, labels (N,) int64
    norm = Normalizer.fit(train.images)
    rng = np.random.default_rng(0)
    for idx in batches(len(train), 64, rng):
        x = norm(random_shift(random_flip(train.images[idx], rng), 2, rng))   # float32 (64, 3, 32, 32)
"""

from .augment import Normalizer, random_crop, random_flip, random_shift
from .batching import batches
from .cifar import locate_cifar10, read_cifar10, read_cifar10_batch
from .dataset import Dataset
from .datasets import DATASETS, DatasetInfo, download_dir, load_dataset, read_idx_pair, search_dirs
from .download import cache_dir, download_file, md5sum
from .errors import ChecksumError, DataFormatError, DatasetNotFoundError, DownloadError, MissingDependencyError
from .idx import read_idx, write_idx
from .image_folder import load_image_folder

__all__ = [
    "DATASETS", "ChecksumError", "DataFormatError", "Dataset", "DatasetInfo", "DatasetNotFoundError",
    "DownloadError", "MissingDependencyError", "Normalizer", "batches", "cache_dir", "download_dir", "download_file",
    "load_dataset", "load_image_folder", "locate_cifar10", "md5sum", "random_crop", "random_flip", "random_shift",
    "read_cifar10", "read_cifar10_batch", "read_idx", "read_idx_pair", "search_dirs", "write_idx",
]
