"""IDX reader and writer: round trips, every header type, and clear errors for broken files (fuzzed too)."""

import gzip

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from convnetpy.data import DataFormatError, DatasetNotFoundError, read_idx, read_idx_pair, write_idx


@pytest.mark.parametrize("compress", [True, False])
def test_reads_hand_written_file(tmp_path, synth, compress):
    images, _ = synth.mnist_like(3)
    data = synth.idx_bytes(images)
    path = tmp_path / "x"
    path.write_bytes(synth.gz(data) if compress else data)
    out = read_idx(path)
    assert out.dtype == np.uint8 and out.shape == (3, 4, 4)
    np.testing.assert_array_equal(out, images)
    out[0, 0, 0] = 1  # writable, not a view of read-only bytes


@pytest.mark.parametrize("dtype", ["u1", "i1", "i2", "i4", "f4", "f8"])
@pytest.mark.parametrize("name", ["a.idx", "a.idx.gz"])
def test_write_read_round_trip(tmp_path, dtype, name):
    x = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype)
    write_idx(tmp_path / name, x)
    assert (tmp_path / name).read_bytes()[:2] == (b"\x1f\x8b" if name.endswith(".gz") else b"\0\0")
    y = read_idx(tmp_path / name)
    assert y.dtype == np.dtype(dtype) and y.dtype.isnative
    np.testing.assert_array_equal(y, x)


def test_write_is_reproducible(tmp_path):
    x = np.arange(100, dtype=np.uint8).reshape(4, 25)
    write_idx(tmp_path / "a.gz", x)
    write_idx(tmp_path / "b.gz", x)
    assert (tmp_path / "a.gz").read_bytes() == (tmp_path / "b.gz").read_bytes()


def test_write_refuses_unsupported_dtype(tmp_path):
    with pytest.raises(ValueError, match="cannot store"):
        write_idx(tmp_path / "a", np.zeros(3, np.uint16))


@pytest.mark.parametrize("data, message", [
    (b"\x00\x00\x08", "too short"),
    (b"\x89PNG\r\n\x1a\n" + bytes(20), "wrong magic number 0x89504e47"),
    (b"\x00\x00\x08\x03\x00\x00\x00\x02", "truncated header"),
    (b"\x00\x00\x08\x01\x00\x00\x00\x05abc", "wrong size"),
    (b"\x00\x00\x08\x01\x00\x00\x00\x02abc", "wrong size"),
])
def test_broken_files_name_the_problem(tmp_path, data, message):
    path = tmp_path / "broken-idx3-ubyte"
    path.write_bytes(data)
    with pytest.raises(DataFormatError, match=message) as e:
        read_idx(path)
    assert str(path) in str(e.value)


@pytest.mark.parametrize("data, message", [
    (b"\x00\x00\x08\x01\x00\x00\x00\x05abc", "truncated: header says shape"),
    (b"\x00\x00\x08\x01\x00\x00\x00\x02abc", "more data than"),
])
def test_broken_gzipped_files_name_the_problem(tmp_path, synth, data, message):
    path = tmp_path / "x.gz"
    path.write_bytes(synth.gz(data))
    with pytest.raises(DataFormatError, match=message):
        read_idx(path)


def test_bad_gzip_stream(tmp_path, synth):
    good = synth.gz(synth.idx_bytes(np.zeros((10, 8, 8), np.uint8)))
    path = tmp_path / "x.gz"
    path.write_bytes(good[: len(good) // 2])
    with pytest.raises(DataFormatError, match="not a readable gzip file"):
        read_idx(path)
    path.write_bytes(good[:10] + bytes(b ^ 0xFF for b in good[10:]))
    with pytest.raises(DataFormatError, match="not a readable gzip file"):
        read_idx(path)


def test_missing_file(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="no IDX file"):
        read_idx(tmp_path / "nope")


def test_pair_checks(tmp_path, synth):
    images, labels = synth.mnist_like(4)
    (tmp_path / "i").write_bytes(synth.idx_bytes(images))
    (tmp_path / "l").write_bytes(synth.idx_bytes(labels))
    x, y = read_idx_pair(tmp_path / "i", tmp_path / "l")
    assert x.shape == (4, 1, 4, 4) and y.dtype == np.int64
    with pytest.raises(DataFormatError, match="expected uint8 images of shape"):
        read_idx_pair(tmp_path / "l", tmp_path / "l")  # a labels file where the images belong
    with pytest.raises(DataFormatError, match="expected uint8 labels"):
        read_idx_pair(tmp_path / "i", tmp_path / "i")
    (tmp_path / "l3").write_bytes(synth.idx_bytes(labels[:3]))
    with pytest.raises(DataFormatError, match="holds 4 images but .* holds 3 labels"):
        read_idx_pair(tmp_path / "i", tmp_path / "l3")
    (tmp_path / "bad").write_bytes(synth.idx_bytes(np.array([1, 2, 10, 3], np.uint8)))
    with pytest.raises(DataFormatError, match="label out of range: label 2 is 10"):
        read_idx_pair(tmp_path / "i", tmp_path / "bad")


# -- fuzz: truncations and byte flips of small valid files -----------------------------------------------------

def _damage(data: bytes, cut: int, flips: list[tuple[int, int]]) -> bytes:
    out = bytearray(data[: cut % (len(data) + 1)])
    for pos, xor in flips:
        if out:
            out[pos % len(out)] ^= xor
    return bytes(out)


damage = st.tuples(st.integers(0, 10_000), st.lists(st.tuples(st.integers(0, 10_000), st.integers(1, 255)),
                                                     max_size=4))


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz-idx")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(damage=damage, compress=st.booleans(), which=st.sampled_from(["images", "labels"]))
def test_fuzzed_idx_fails_cleanly(fuzz_dir, synth, damage, compress, which):
    images, labels = synth.mnist_like(3)
    files = {"images": synth.idx_bytes(images), "labels": synth.idx_bytes(labels)}
    if compress:
        files = {k: synth.gz(v) for k, v in files.items()}
    files[which] = _damage(files[which], *damage)
    for k, v in files.items():
        (fuzz_dir / k).write_bytes(v)
    try:
        x, y = read_idx_pair(fuzz_dir / "images", fuzz_dir / "labels")
    except DataFormatError as e:
        assert str(fuzz_dir) in str(e)
    else:
        assert x.dtype == np.uint8 and x.ndim == 4 and x.shape[1] == 1 and y.shape == (len(x),)
        assert y.dtype == np.int64 and y.min(initial=0) >= 0 and y.max(initial=0) <= 9


def test_real_gzip_module_errors_are_covered(tmp_path):
    """A gzip stream with a bad CRC (the last check gzip makes) is a DataFormatError too."""
    data = bytearray(gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x01\x07", mtime=0))
    data[-8] ^= 0xFF  # CRC32 of the trailer
    (tmp_path / "x.gz").write_bytes(bytes(data))
    with pytest.raises(DataFormatError, match="gzip"):
        read_idx(tmp_path / "x.gz")
