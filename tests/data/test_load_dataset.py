"""load_dataset: where it looks, what it downloads, what it says when it finds nothing; the packaged sample."""

import dataclasses
import hashlib

import numpy as np
import pytest

import convnetpy.data.datasets as datasets_mod
from convnetpy.data import (
    DATASETS,
    ChecksumError,
    DatasetNotFoundError,
    cache_dir,
    download_dir,
    load_dataset,
    search_dirs,
)
from convnetpy.data.make_sample import make_sample


def test_search_order(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVNETPY_DATA", str(tmp_path / "env"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert search_dirs("mnist", tmp_path / "d") == [
        tmp_path / "d" / "mnist", tmp_path / "d", tmp_path / "env" / "mnist", tmp_path / "xdg" / "convnetpy" / "mnist"]
    # a folder named for another dataset is not taken for this one (both hold train-images-idx3-ubyte.gz)
    assert tmp_path / "mnist" not in search_dirs("fashion-mnist", tmp_path / "mnist")
    assert download_dir("mnist", tmp_path / "d") == tmp_path / "d" / "mnist"
    assert download_dir("mnist", tmp_path / "mnist") == tmp_path / "mnist"
    assert download_dir("mnist") == tmp_path / "env" / "mnist"
    monkeypatch.delenv("CONVNETPY_DATA")
    assert download_dir("mnist") == cache_dir() / "mnist" == tmp_path / "xdg" / "convnetpy" / "mnist"


def test_default_cache_dir(monkeypatch, tmp_path):
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert cache_dir() == tmp_path / ".cache" / "convnetpy"


@pytest.mark.parametrize("where", ["own", "parent", "env", "cache"])
def test_finds_files(tmp_path, synth, monkeypatch, where):
    folder = {"own": tmp_path / "here", "parent": tmp_path / "p" / "mnist", "env": tmp_path / "env" / "mnist",
              "cache": cache_dir() / "mnist"}[where]
    images, labels = synth.write_mnist_like(folder, "test", compress=where != "env")
    monkeypatch.setenv("CONVNETPY_DATA", str(tmp_path / "env"))
    data_dir = {"own": tmp_path / "here", "parent": tmp_path / "p"}.get(where)
    data = load_dataset("mnist", "test", data_dir=data_dir, download=False)
    assert data.images.shape == (5, 1, 4, 4) and data.source == str(folder)
    np.testing.assert_array_equal(data.images[:, 0], images)
    np.testing.assert_array_equal(data.labels, labels)
    assert data.classes == [str(d) for d in range(10)] and data.name == "mnist" and data.split == "test"


def test_one_split_is_enough(tmp_path, synth):
    synth.write_mnist_like(tmp_path, "test")
    assert len(load_dataset("fashion-mnist", "test", data_dir=tmp_path, download=False)) == 5
    with pytest.raises(DatasetNotFoundError):
        load_dataset("fashion-mnist", "train", data_dir=tmp_path, download=False)


def test_not_found_without_download_names_every_path(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVNETPY_DATA", str(tmp_path / "env"))
    with pytest.raises(DatasetNotFoundError) as e:
        load_dataset("cifar10", "test", data_dir=tmp_path / "d", download=False)
    message = str(e.value)
    for path in search_dirs("cifar10", tmp_path / "d"):
        assert str(path) in message
    assert "download=False" in message and "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz" in message
    assert isinstance(e.value, FileNotFoundError)


def test_offline_names_every_path_and_url(tmp_path, closed_port_url, http_server):
    mirrors = [closed_port_url, http_server.url]
    with pytest.raises(DatasetNotFoundError) as e:
        load_dataset("mnist", "train", data_dir=tmp_path, mirrors=mirrors)
    message = str(e.value)
    for path in search_dirs("mnist", tmp_path):
        assert str(path) in message
    for mirror in mirrors:
        assert mirror + "train-images-idx3-ubyte.gz" in message
    assert "Connection refused" in message and "404" in message
    assert not (tmp_path / "mnist").exists()


@pytest.fixture
def served_mnist(http_server, synth, monkeypatch):
    """Tiny MNIST-format files on the local server, with their md5 sums put in the registry for the test."""
    md5 = {}
    for prefix, seed in (("train", 0), ("t10k", 1)):
        images, labels = synth.mnist_like(6, seed)
        for name, array in ((f"{prefix}-images-idx3-ubyte.gz", images), (f"{prefix}-labels-idx1-ubyte.gz", labels)):
            body = synth.gz(synth.idx_bytes(array))
            http_server.files["/mnist/" + name] = body
            md5[name] = hashlib.md5(body).hexdigest()
    monkeypatch.setitem(datasets_mod.DATASETS, "mnist", dataclasses.replace(DATASETS["mnist"], md5=md5))
    return http_server


def test_downloads_verifies_and_caches(tmp_path, served_mnist):
    mirrors = [served_mnist.url + "mnist/"]
    data = load_dataset("mnist", "test", mirrors=mirrors)
    assert len(data) == 6 and data.source == str(cache_dir() / "mnist")
    assert sorted(p.name for p in (cache_dir() / "mnist").iterdir()) == ["t10k-images-idx3-ubyte.gz",
                                                                        "t10k-labels-idx1-ubyte.gz"]
    hits = len(served_mnist.hits)
    again = load_dataset("mnist", "test", mirrors=mirrors)  # from the cache: no request
    assert len(served_mnist.hits) == hits
    np.testing.assert_array_equal(again.images, data.images)
    load_dataset("mnist", "train", data_dir=tmp_path / "mine", mirrors=mirrors)
    assert len(list((tmp_path / "mine" / "mnist").iterdir())) == 2


def test_corrupted_download_raises_checksum_error(tmp_path, served_mnist):
    served_mnist.files["/mnist/t10k-labels-idx1-ubyte.gz"] = b"corrupted"
    with pytest.raises(ChecksumError, match="t10k-labels-idx1-ubyte.gz"):
        load_dataset("mnist", "test", data_dir=tmp_path, mirrors=[served_mnist.url + "mnist/"])
    assert sorted(p.name for p in (tmp_path / "mnist").iterdir()) == ["t10k-images-idx3-ubyte.gz"]


def test_packaged_sample():
    train, test = load_dataset("fashion-mnist-sample", "train"), load_dataset("fashion-mnist-sample", "test")
    assert train.images.shape == (3000, 1, 28, 28) and test.images.shape == (1000, 1, 28, 28)
    assert np.bincount(train.labels).tolist() == [300] * 10 and np.bincount(test.labels).tolist() == [100] * 10
    assert train.classes[0] == "T-shirt/top" and train.classes[9] == "Ankle boot"
    assert train.images.dtype == np.uint8 and train.images.max() == 255


def test_sample_is_first_per_class_of_official(tmp_path, shared):
    make_sample(shared("fashion-mnist"), tmp_path)
    packaged = datasets_mod.SAMPLE_DIR
    for f in packaged.glob("*.gz"):
        assert (tmp_path / f.name).read_bytes() == f.read_bytes(), f"{f.name} differs from a fresh make_sample"


def test_unknown_name_and_split():
    with pytest.raises(ValueError, match="unknown dataset 'imagenet'; known: mnist, fashion-mnist, cifar10"):
        load_dataset("imagenet")
    with pytest.raises(ValueError, match="split must be one of train, test"):
        load_dataset("mnist", "val")
