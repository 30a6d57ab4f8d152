"""CIFAR-10 readers on synthetic files: binary and python versions, archives and folders, hostile pickles, fuzz."""

import os
import pickle
import struct
import tarfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from convnetpy.data import (
    DataFormatError,
    DatasetNotFoundError,
    locate_cifar10,
    read_cifar10,
    read_cifar10_batch,
)
from convnetpy.data.cifar import CLASSES, read_cifar10_bytes

META_TXT = "\n".join(CLASSES).encode() + b"\n"


def binary_files(synth, n=3):
    """{name: bytes} of a tiny binary-version dataset, and the train/test arrays."""
    files, arrays = {"batches.meta.txt": META_TXT}, {}
    for i, name in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        x, y = synth.cifar_like(n, seed=i)
        files[name + ".bin"] = synth.cifar_bin(x, y)
        arrays[name] = (x, y)
    return files, arrays


def expected(arrays, split):
    names = [f"data_batch_{k}" for k in range(1, 6)] if split == "train" else ["test_batch"]
    return np.concatenate([arrays[n][0] for n in names]), np.concatenate([arrays[n][1] for n in names])


@pytest.mark.parametrize("layout", ["archive", "folder", "folder-itself", "archive-path"])
@pytest.mark.parametrize("split", ["train", "test"])
def test_binary_version_layouts(tmp_path, synth, layout, split):
    files, arrays = binary_files(synth)
    if layout.startswith("archive"):
        (tmp_path / "cifar-10-binary.tar.gz").write_bytes(
            synth.tar_gz({f"cifar-10-batches-bin/{k}": v for k, v in files.items()}))
    else:
        folder = tmp_path / "cifar-10-batches-bin"
        folder.mkdir()
        for k, v in files.items():
            (folder / k).write_bytes(v)
    path = {"archive-path": tmp_path / "cifar-10-binary.tar.gz", "folder-itself": tmp_path / "cifar-10-batches-bin"
            }.get(layout, tmp_path)
    data = read_cifar10(path, split)
    x, y = expected(arrays, split)
    assert data.images.shape == (len(x), 3, 32, 32) and data.images.dtype == np.uint8
    assert data.labels.dtype == np.int64 and data.classes == list(CLASSES)
    np.testing.assert_array_equal(data.images, x)
    np.testing.assert_array_equal(data.labels, y)


def test_test_split_needs_only_test_batch(tmp_path, synth):
    x, y = synth.cifar_like(2)
    (tmp_path / "test_batch.bin").write_bytes(synth.cifar_bin(x, y))
    data = read_cifar10(tmp_path, "test")
    np.testing.assert_array_equal(data.images, x)
    assert data.classes == list(CLASSES)  # no meta file: the official names
    with pytest.raises(DatasetNotFoundError, match="no CIFAR-10 train split in"):
        read_cifar10(tmp_path, "train")


def test_archive_read_in_one_pass_without_extracting(tmp_path, synth):
    files, arrays = binary_files(synth)
    archive = tmp_path / "a" / "cifar-10-binary.tar.gz"
    archive.parent.mkdir()
    archive.write_bytes(synth.tar_gz({f"cifar-10-batches-bin/{k}": v for k, v in files.items()}))
    read_cifar10(archive.parent, "test")
    assert sorted(os.listdir(archive.parent)) == ["cifar-10-binary.tar.gz"]


def test_extracted_folder_preferred_over_archive(tmp_path, synth):
    files, _ = binary_files(synth)
    (tmp_path / "cifar-10-binary.tar.gz").write_bytes(b"not read")
    (tmp_path / "cifar-10-batches-bin").mkdir()
    (tmp_path / "cifar-10-batches-bin" / "test_batch.bin").write_bytes(files["test_batch.bin"])
    assert locate_cifar10(tmp_path, "test") == tmp_path / "cifar-10-batches-bin"
    assert locate_cifar10(tmp_path, "train") == tmp_path / "cifar-10-binary.tar.gz"


def py2_pickle(images: np.ndarray, labels: np.ndarray) -> bytes:
    """A batch pickled the way the official files are: Python 2 cPickle, protocol 2, py2 str keys and raw data."""
    def s(b):  # a Python 2 str
        return b"U" + bytes([len(b)]) + b if len(b) < 256 else b"T" + struct.pack("<i", len(b)) + b

    def i(v):
        return b"K" + bytes([v]) if v < 256 else b"M" + struct.pack("<H", v)

    raw = images.reshape(len(images), -1).tobytes()
    out = b"\x80\x02}(" + s(b"data")
    out += b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n" + i(0) + b"\x85" + s(b"b") + b"\x87R"
    out += b"(" + i(1) + i(len(images)) + i(3072) + b"\x86" + b"cnumpy\ndtype\n" + s(b"u1") + i(0) + i(1) + b"\x87R"
    out += b"(" + i(3) + s(b"|") + b"NNN" + b"J\xff\xff\xff\xffJ\xff\xff\xff\xff" + i(0) + b"tb"  # dtype state
    out += b"\x89" + s(raw) + b"tb"  # array state: (1, shape, dtype, False, raw)
    out += s(b"labels") + b"](" + b"".join(i(int(v)) for v in labels) + b"e"
    out += s(b"batch_label") + s(b"testing batch 1 of 1") + b"u."
    return out


@pytest.mark.parametrize("kind", ["py2", "protocol2", "protocol5"])
def test_python_version(tmp_path, synth, kind):
    x, y = synth.cifar_like(3)
    batch = py2_pickle(x, y) if kind == "py2" else synth.cifar_pickle(x, y, protocol=int(kind[-1]))
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    (folder / "test_batch").write_bytes(batch)
    (folder / "batches.meta").write_bytes(synth.cifar_meta_pickle())
    data = read_cifar10(tmp_path, "test")
    np.testing.assert_array_equal(data.images, x)
    np.testing.assert_array_equal(data.labels, y)
    assert data.classes == list(CLASSES)
    images, labels = read_cifar10_batch(folder / "test_batch")
    np.testing.assert_array_equal(images, x)


def test_python_version_archive(tmp_path, synth):
    members, arrays = {"cifar-10-batches-py/batches.meta": synth.cifar_meta_pickle()}, []
    for i, name in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        x, y = synth.cifar_like(2, seed=i)
        members[f"cifar-10-batches-py/{name}"] = synth.cifar_pickle(x, y)
        arrays.append((x, y))
    (tmp_path / "cifar-10-python.tar.gz").write_bytes(synth.tar_gz(members))
    data = read_cifar10(tmp_path, "train")
    np.testing.assert_array_equal(data.images, np.concatenate([x for x, _ in arrays[:5]]))
    np.testing.assert_array_equal(data.labels, np.concatenate([y for _, y in arrays[:5]]))


class _Evil:
    """Unpickling this runs a shell command (it touches the file named ``marker``)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("where", ["data", "extra key"])
def test_malicious_pickle_is_refused(tmp_path, where):
    marker = tmp_path / "pwned"
    payload = {b"data": _Evil(marker), b"labels": []} if where == "data" else \
        {b"data": np.zeros((1, 3072), np.uint8), b"labels": [0], b"x": _Evil(marker)}
    path = tmp_path / "test_batch"
    path.write_bytes(pickle.dumps(payload, protocol=2))
    with pytest.raises(DataFormatError, match=r"refused to unpickle the global (posix|nt)\.system") as e:
        read_cifar10_batch(path)
    assert str(path) in str(e.value)
    assert not marker.exists()


@pytest.mark.parametrize("global_", [b"cbuiltins\neval\n", b"c__builtin__\ngetattr\n", b"cnumpy\nload\n",
                                     b"cnumpy.testing\nrun\n"])
def test_other_globals_are_refused(tmp_path, global_):
    path = tmp_path / "test_batch"
    path.write_bytes(b"\x80\x02" + global_ + b".")
    with pytest.raises(DataFormatError, match="refused to unpickle"):
        read_cifar10_batch(path)


@pytest.mark.parametrize("payload, message", [
    ([1, 2, 3], "holds a list, not a dict"),
    ({b"data": np.zeros((2, 3072), np.float32), b"labels": [0, 1]}, "'data' must be a \\(N, 3072\\) uint8 array"),
    ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}, "'labels' must be a list of 2 ints"),
    ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 12]}, "label out of range: record 1 has label 12"),
])
def test_foreign_pickles(tmp_path, payload, message):
    path = tmp_path / "test_batch"
    path.write_bytes(pickle.dumps(payload, protocol=2))
    with pytest.raises(DataFormatError, match=message):
        read_cifar10_batch(path)


def test_binary_errors(tmp_path, synth):
    x, y = synth.cifar_like(2)
    good = synth.cifar_bin(x, y)
    path = tmp_path / "test_batch.bin"
    path.write_bytes(good[:-1])
    with pytest.raises(DataFormatError, match="wrong size: 6145 bytes is not a whole number of 3073-byte records"):
        read_cifar10_batch(path)
    path.write_bytes(good[:3073] + bytes([10]) + good[3074:])
    with pytest.raises(DataFormatError, match="label out of range: record 1 has label 10"):
        read_cifar10_batch(path)
    path.write_bytes(b"")
    with pytest.raises(DataFormatError, match="wrong size: 0 bytes"):
        read_cifar10_batch(path)


def test_archive_errors(tmp_path, synth):
    archive = tmp_path / "cifar-10-binary.tar.gz"
    archive.write_bytes(b"\x1f\x8b" + bytes(100))
    with pytest.raises(DataFormatError, match="not a readable tar archive"):
        read_cifar10(archive, "test")
    archive.write_bytes(synth.tar_gz({"cifar-10-batches-bin/readme.html": b"hi"}))
    with pytest.raises(DataFormatError, match="has no member named test_batch.bin"):
        read_cifar10(archive, "test")
    archive.write_bytes(synth.tar_gz({"cifar-10-batches-bin/batches.meta.txt": b"cat\ndog\n",
                                      "cifar-10-batches-bin/test_batch.bin": bytes(3073)}))
    with pytest.raises(DataFormatError, match="expected the 10 CIFAR-10 class names"):
        read_cifar10(archive, "test")
    with pytest.raises(DatasetNotFoundError, match="no CIFAR-10 folder or archive"):
        read_cifar10(tmp_path / "nope", "test")
    with pytest.raises(ValueError, match="split must be 'train' or 'test'"):
        read_cifar10(archive, "validation")


def test_archive_members_are_not_extracted_by_path(tmp_path, synth):
    """Members are matched by base name and read into memory: a '../' name writes nothing anywhere."""
    x, y = synth.cifar_like(1)
    archive = tmp_path / "in" / "cifar-10-binary.tar.gz"
    archive.parent.mkdir()
    archive.write_bytes(synth.tar_gz({"../../test_batch.bin": synth.cifar_bin(x, y)}))
    np.testing.assert_array_equal(read_cifar10(archive, "test").images, x)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["cifar-10-binary.tar.gz", "in"]


# -- fuzz ------------------------------------------------------------------------------------------------------

def _damage(data: bytes, cut: int, flips) -> bytes:
    out = bytearray(data[: cut % (len(data) + 1)])
    for pos, xor in flips:
        if out:
            out[pos % len(out)] ^= xor
    return bytes(out)


cuts = st.integers(0, 1 << 20)
flips = st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(1, 255)), max_size=4)
fuzz_settings = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _check(images, labels):
    assert images.dtype == np.uint8 and images.shape[1:] == (3, 32, 32) and labels.shape == (len(images),)
    assert labels.dtype == np.int64 and labels.min() >= 0 and labels.max() <= 9


@pytest.mark.parametrize("kind", ["py2", "protocol2", "protocol5"])
def test_a_corrupt_dtype_state_is_refused_not_a_crash(synth, kind):
    """One damaged byte turned a dtype's state (3, '|', None, None, None, -1, -1, 0) into
    (3, '|', (None, None), -1, -1, 0): NumPy's dtype.__setstate__ crashed the process on it (found by the fuzz
    test below)."""
    x, y = synth.cifar_like(2)
    data = py2_pickle(x, y) if kind == "py2" else synth.cifar_pickle(x, y, protocol=int(kind[-1]))
    state = b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xff"  # subarray, names, fields; elsize, alignment
    assert data.count(state) == 1
    with pytest.raises(DataFormatError, match="fuzzed: not a readable pickle.*dtype state NumPy would not write"):
        read_cifar10_bytes(data.replace(state, b"NN\x86" + state[3:]), "fuzzed", binary=False)
    images, labels = read_cifar10_bytes(data, "fine", binary=False)  # the state NumPy writes still reads
    assert np.array_equal(images, x) and np.array_equal(labels, y)


@fuzz_settings
@given(cut=cuts, flips=flips, kind=st.sampled_from(["binary", "py2", "protocol2", "protocol5"]))
def test_fuzzed_batches_fail_cleanly(synth, cut, flips, kind):
    x, y = synth.cifar_like(2)
    data = synth.cifar_bin(x, y) if kind == "binary" else py2_pickle(x, y) if kind == "py2" else \
        synth.cifar_pickle(x, y, protocol=int(kind[-1]))
    try:
        images, labels = read_cifar10_bytes(_damage(data, cut, flips), "fuzzed", binary=kind == "binary")
    except DataFormatError as e:
        assert str(e).startswith("fuzzed")
    else:
        _check(images, labels)


@pytest.fixture(scope="module")
def archive_bytes(synth):
    x, y = synth.cifar_like(2)
    return synth.tar_gz({"cifar-10-batches-bin/batches.meta.txt": META_TXT,
                         "cifar-10-batches-bin/test_batch.bin": synth.cifar_bin(x, y)})


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz-cifar")


@fuzz_settings
@given(cut=cuts, flips=flips)
def test_fuzzed_archives_fail_cleanly(fuzz_dir, archive_bytes, cut, flips):
    path = fuzz_dir / "cifar-10-binary.tar.gz"
    path.write_bytes(_damage(archive_bytes, cut, flips))
    try:
        data = read_cifar10(path, "test")
    except DataFormatError as e:
        assert str(path) in str(e)
    else:
        _check(data.images, data.labels)


def test_tarfile_is_the_standard_one():
    assert tarfile.open  # the reader relies on the standard library only
