"""Net.save / convnetpy.load: exact round trips, atomic writes, clear errors for missing or foreign files."""

from __future__ import annotations

import os
import re
import stat
import zipfile

import numpy as np
import pytest

import convnetpy
from convnetpy import Net, NetFileError, models
from convnetpy.layers import BatchNorm1D, Conv1D, Dense, Dropout, Flatten, MaxPool1D, Tanh

BN_NET = [
    {"type": "input", "shape": [3, 8, 8]},
    {"type": "conv", "filters": 4, "size": 3, "pad": 1, "bias": False},
    {"type": "batchnorm", "momentum": 0.3},
    {"type": "relu"},
    {"type": "pool", "size": 2, "mode": "avg"},
    {"type": "fc", "neurons": 6, "activation": "leaky_relu", "dropout": 0.2},
    {"type": "batchnorm"},
    {"type": "svm", "classes": 3},
]


def layer_net(dtype=np.float64) -> Net:
    rng = np.random.default_rng(3)
    layers = [Conv1D(2, 3, 3, padding="same", rng=rng, dtype=dtype), BatchNorm1D(3, dtype=dtype), Tanh(),
              MaxPool1D(2), Flatten(), Dense(15, 4, rng=rng, dtype=dtype), Dropout(0.1, rng=rng),
              Dense(4, 2, rng=rng, dtype=dtype)]
    return Net(layers, input_shape=(2, 10), head="regression", dtype=dtype)


def trained(net: Net, rng: np.random.Generator) -> Net:
    """Run a few training forward passes so BatchNorm running statistics move away from 0 and 1, and randomise
    every parameter (biases and BatchNorm affine params start as constants)."""
    for p in net.params():
        p.value[...] = rng.standard_normal(p.value.shape)
    for _ in range(3):
        net.forward((rng.standard_normal((5, *net.input_shape)) * 2 + 1).astype(net.dtype), training=True)
    return net


def assert_same_net(a: Net, b: Net) -> None:
    assert b.specs() == Net(a.specs(), dtype=a.dtype).specs()  # a net of layer objects loads as validated specs
    assert (b.input_shape, b.output_shape, b.head, b.dtype) == (a.input_shape, a.output_shape, a.head, a.dtype)
    assert [type(layer) for layer in b.layers] == [type(layer) for layer in a.layers]
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sb) == list(sa)
    for name in sa:
        assert sb[name].dtype == sa[name].dtype, name
        assert sb[name].shape == sa[name].shape, name
        assert sb[name].tobytes() == sa[name].tobytes(), name  # bitwise


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ["bn_net", "lenet5", "layers"])
def test_round_trip_is_exact(tmp_path, name, dtype):
    rng = np.random.default_rng(0)
    if name == "layers":
        net = layer_net(dtype)
    else:
        net = Net(BN_NET if name == "bn_net" else models.lenet5(), rng=rng, dtype=dtype)
    trained(net, rng)
    if name != "lenet5":
        bn = next(layer for layer in net.layers if "running_mean" in layer.buffers)
        assert not np.allclose(bn.buffers["running_mean"], 0)
        assert not np.allclose(bn.buffers["running_var"], 1)
    path = tmp_path / "net.npz"
    net.save(path)
    loaded = convnetpy.load(path)
    assert_same_net(net, loaded)
    x = rng.standard_normal((4, *net.input_shape)).astype(dtype)
    np.testing.assert_array_equal(loaded.forward(x), net.forward(x))
    assert loaded.forward(x).dtype == dtype
    # Saving the loaded net again writes the same arrays.
    loaded.save(tmp_path / "again.npz")
    assert_same_net(net, convnetpy.load(str(tmp_path / "again.npz")))


def test_save_writes_exactly_the_given_path(tmp_path):
    net = Net(models.mnistnet(), seed=0)
    path = tmp_path / "sub" / "dir" / "model.weights"  # no .npz suffix added, folders created
    net.save(str(path))
    assert os.listdir(path.parent) == ["model.weights"]
    assert_same_net(net, convnetpy.load(path))


def test_save_overwrites_atomically_and_leaves_no_temporary_files(tmp_path):
    path = tmp_path / "net.npz"
    a, b = Net(models.mnistnet(), seed=1), Net(models.mnistnet(), seed=2)
    a.save(path)
    b.save(path)
    assert os.listdir(tmp_path) == ["net.npz"]
    assert_same_net(b, convnetpy.load(path))


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_saved_file_has_the_mode_of_an_ordinary_file(tmp_path):
    ordinary = tmp_path / "ordinary"
    ordinary.write_bytes(b"")
    Net(models.mnistnet(), seed=0).save(tmp_path / "net.npz")
    assert stat.S_IMODE((tmp_path / "net.npz").stat().st_mode) == stat.S_IMODE(ordinary.stat().st_mode)


@pytest.mark.parametrize("partial", [False, True])
def test_failing_write_keeps_the_previous_file(tmp_path, monkeypatch, partial):
    path = tmp_path / "net.npz"
    old = Net(models.mnistnet(), seed=1)
    old.save(path)
    before = path.read_bytes()

    def failing_savez(file, *args, **kwargs):
        if partial:
            file.write(b"PK\x03\x04 half an archive")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", failing_savez)
    with pytest.raises(OSError, match="disk full"):
        Net(models.mnistnet(), seed=2).save(path)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["net.npz"]
    assert path.read_bytes() == before
    assert_same_net(old, convnetpy.load(path))


def test_failing_first_write_leaves_nothing(tmp_path, monkeypatch):
    def failing_savez(file, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", failing_savez)
    with pytest.raises(KeyboardInterrupt):
        Net(models.mnistnet(), seed=2).save(tmp_path / "net.npz")
    assert os.listdir(tmp_path) == []


# -- errors ----------------------------------------------------------------------------------------------------
def test_load_missing_file(tmp_path):
    path = tmp_path / "nope.npz"
    with pytest.raises(FileNotFoundError, match=re.escape(f"no convnetpy net file at {path}")):
        convnetpy.load(path)
    with pytest.raises(FileNotFoundError, match=re.escape(f"no convnetpy net file at {tmp_path}")):
        convnetpy.load(tmp_path)  # a folder is not a file


def test_load_truncated_file(tmp_path):
    path = tmp_path / "net.npz"
    Net(models.mnistnet(), seed=0).save(path)
    data = path.read_bytes()
    for cut in (len(data) // 2, len(data) - 10, 3):
        path.write_bytes(data[:cut])
        with pytest.raises(NetFileError, match=re.escape(f"{path} is not a readable convnetpy net file "
                                                         "(truncated or not an .npz archive)")):
            convnetpy.load(path)


@pytest.mark.parametrize("content", ["random", "empty", "text", "npy"])
def test_load_foreign_file(tmp_path, content):
    path = tmp_path / "foreign.npz"
    if content == "random":
        path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    elif content == "empty":
        path.write_bytes(b"")
    elif content == "text":
        path.write_text('{"type": "input", "shape": [3, 32, 32]}\n')
    else:
        with open(path, "wb") as f:
            np.save(f, np.arange(5.0))
    with pytest.raises(NetFileError, match="^" + re.escape(str(path)) + " is (not a readable convnetpy net file "
                                           r"\(truncated or not an \.npz archive\)|a single \.npy array)"):
        convnetpy.load(path)


def test_load_npz_without_the_marker(tmp_path):
    path = tmp_path / "weights.npz"
    np.savez(path, weight=np.ones((3, 3)), specs=np.array("[]"))
    message = f"{path} is an .npz archive but not a convnetpy net file (no 'convnetpy-net' marker)"
    with pytest.raises(NetFileError, match="^" + re.escape(message) + "$"):
        convnetpy.load(path)


def rewrite(path, change) -> None:
    """Rewrite the .npz at ``path`` with ``change(arrays)`` applied (to simulate damaged files)."""
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    change(arrays)
    with open(path, "wb") as f:
        np.savez(f, **arrays)


@pytest.mark.parametrize("damage, detail", [
    (lambda a: a.pop("state/0.weight"), "missing ['0.weight']"),
    (lambda a: a.update({"state/0.bias": np.zeros(3, np.float32)}), "state '0.bias' has shape (3,)"),
    (lambda a: a.update({"specs": np.array("[{not json")}), "Expecting property name"),
    (lambda a: a.pop("specs"), "'specs'"),
    (lambda a: a.update({"specs": np.array('[{"type": "input", "shape": [1, 24, 24]}, {"type": "fc"}]')}),
     "layer 1 (fc): missing key 'neurons'"),
])
def test_load_damaged_net_file(tmp_path, damage, detail):
    path = tmp_path / "net.npz"
    Net(models.mnistnet(), seed=0).save(path)
    rewrite(path, damage)
    with pytest.raises(NetFileError, match=re.escape(f"{path}: the saved net is damaged or does not match its specs: ")
                       + ".*" + re.escape(detail)):
        convnetpy.load(path)


def test_saved_file_is_a_plain_npz_without_pickles(tmp_path):
    path = tmp_path / "net.npz"
    Net(BN_NET, seed=0).save(path)
    assert zipfile.is_zipfile(path)
    with np.load(path, allow_pickle=False) as data:
        assert str(data["format"]) == "convnetpy-net"
        assert int(data["version"]) == 1
        assert str(data["dtype"]) == "float32"
        assert "state/1.running_var" in data.files
