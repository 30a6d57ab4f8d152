"""The real datasets in shared/data: counts, label histograms and first labels as its README gives them."""

import gzip
import shutil
import tarfile

import numpy as np
import pytest

from convnetpy.data import Normalizer, load_dataset, read_cifar10, read_cifar10_batch

MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [175, 234, 219, 207, 217, 179, 178, 205, 192, 194]
CIFAR_BATCH_COUNTS = [
    [981, 1008, 996, 996, 1021, 977, 1012, 984, 972, 1053],
    [1016, 978, 1004, 1023, 977, 1034, 1012, 1014, 1007, 935],
    [994, 1045, 971, 987, 1007, 988, 967, 1000, 1023, 1018],
    [1003, 976, 999, 989, 1014, 1005, 1021, 1009, 994, 990],
    [1006, 993, 1030, 1005, 981, 996, 988, 993, 1004, 1004],
]


def test_mnist_train_from_parent_folder(shared):
    data = load_dataset("mnist", "train", data_dir=shared("mnist").parent, download=False)
    assert data.images.shape == (60000, 1, 28, 28) and data.images.dtype == np.uint8
    assert np.bincount(data.labels).tolist() == MNIST_TRAIN_COUNTS
    assert data.labels[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert data.images[:, :, 0, 0].max() == 0 and data.images.max() == 255  # black background, white digits


def test_mnist_test_from_own_folder(shared):
    data = load_dataset("mnist", "test", data_dir=shared("mnist"), download=False)
    assert len(data) == 2000 and np.bincount(data.labels).tolist() == MNIST_TEST_COUNTS
    assert data.labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]


def test_uncompressed_idx(shared, tmp_path):
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        with gzip.open(shared("mnist") / f"{name}.gz") as src, open(tmp_path / name, "wb") as dst:
            shutil.copyfileobj(src, dst)
    plain = load_dataset("mnist", "test", data_dir=tmp_path, download=False)
    zipped = load_dataset("mnist", "test", data_dir=shared("mnist"), download=False)
    assert np.array_equal(plain.images, zipped.images) and np.array_equal(plain.labels, zipped.labels)


@pytest.mark.parametrize("split, n", [("train", 6000), ("test", 1000)])
def test_fashion_mnist(shared, split, n):
    data = load_dataset("fashion-mnist", split, data_dir=shared("fashion-mnist").parent, download=False)
    assert data.images.shape == (10 * n, 1, 28, 28)
    assert np.bincount(data.labels).tolist() == [n] * 10
    assert data.classes[9] == "Ankle boot"


@pytest.fixture(scope="module")
def cifar_archive_train(shared):
    return load_dataset("cifar10", "train", data_dir=shared("cifar10").parent, download=False)


def test_cifar_archive_train(cifar_archive_train):
    data = cifar_archive_train
    assert data.images.shape == (50000, 3, 32, 32) and data.images.dtype == np.uint8
    assert data.classes == ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    for b, counts in enumerate(CIFAR_BATCH_COUNTS):
        assert np.bincount(data.labels[b * 10000:(b + 1) * 10000]).tolist() == counts, f"data_batch_{b + 1}"
    norm = Normalizer.fit(data.images)
    np.testing.assert_allclose(norm.mean, [125.27, 122.93, 113.86], atol=0.01)  # R, G, B as the README gives
    np.testing.assert_allclose(norm.std, [62.5, 61.9, 66.5], atol=0.1)


def test_cifar_archive_test(shared):
    data = load_dataset("cifar10", "test", data_dir=shared("cifar10"), download=False)
    assert data.images.shape == (5000, 3, 32, 32)
    assert np.bincount(data.labels).tolist() == [500] * 10


@pytest.fixture(scope="module")
def cifar_extracted(shared, tmp_path_factory):
    root = tmp_path_factory.mktemp("cifar-extracted")
    with tarfile.open(shared("cifar10") / "cifar-10-binary.tar.gz") as tar:
        tar.extractall(root, filter="data")
    return root


def test_cifar_extracted_folder(cifar_extracted, cifar_archive_train):
    data = load_dataset("cifar10", "train", data_dir=cifar_extracted, download=False)
    assert data.source == str(cifar_extracted / "cifar-10-batches-bin")
    # np.array_equal, not np.testing's: 150 MB compare in 0.1 s rather than 4 s
    assert np.array_equal(data.images, cifar_archive_train.images)
    assert np.array_equal(data.labels, cifar_archive_train.labels)
    images, labels = read_cifar10_batch(cifar_extracted / "cifar-10-batches-bin" / "data_batch_2.bin")
    assert np.array_equal(images, cifar_archive_train.images[10000:20000])


def test_cifar_test_split_needs_only_test_batch(cifar_extracted, tmp_path):
    shutil.copy(cifar_extracted / "cifar-10-batches-bin" / "test_batch.bin", tmp_path)
    data = read_cifar10(tmp_path, "test")
    assert len(data) == 5000 and np.bincount(data.labels).tolist() == [500] * 10
