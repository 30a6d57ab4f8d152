"""Training checkpoints: what they hold, loading them back, clear errors, atomic writes."""

from __future__ import annotations

import json

import numpy as np
import pytest

import convnetpy
from convnetpy import Net, NetFileError
from convnetpy.checkpoint import is_checkpoint, load_checkpoint, save_checkpoint
from convnetpy.train import FitConfig, make_optimizer
from train_helpers import SPECS, assert_same_weights, fresh, synthetic


@pytest.fixture
def trained():
    """A Trainer after 5 steps of Adam (so the optimizer has state), with its dataset facts."""
    images, labels = synthetic(100, seed=0)
    trainer = fresh(FitConfig(epochs=1, batch_size=16, optimizer="adam", lr=0.01), images)

    def stop(event, t):
        if event["event"] == "step" and event["step"] == 5:
            t.stop_requested = True

    trainer.callbacks.append(stop)
    trainer.fit(images, labels)
    trainer.extra = {"dataset": "synthetic", "image_shape": [1, 14, 14]}
    return trainer


def save(trainer, path):
    save_checkpoint(path, trainer.net, trainer.optimizer, trainer.state_dict())


def test_checkpoint_holds_net_optimizer_and_trainer_state(tmp_path, trained):
    path = tmp_path / "run.npz"
    save(trained, path)
    net, opt_state, saved = load_checkpoint(path)

    assert net.specs() == trained.net.specs()
    assert_same_weights(net, trained.net)
    x = trained.pre(synthetic(8, seed=1)[0])
    assert np.array_equal(net.forward(x), trained.net.forward(x))

    expected = trained.optimizer.state_dict()
    assert opt_state["type"] == "Adam" and opt_state["steps"] == 5
    assert opt_state["hyperparams"] == expected["hyperparams"]
    assert opt_state["arrays"].keys() == expected["arrays"].keys()
    for key, value in expected["arrays"].items():
        assert np.array_equal(opt_state["arrays"][key], value), key
    optimizer = make_optimizer(net, FitConfig(**saved["config"]))
    optimizer.load_state_dict(opt_state)  # fits the returned net's params

    assert saved == json.loads(json.dumps(trained.state_dict()))
    assert saved["state"]["global_step"] == 5 and saved["state"]["step"] == 5
    assert saved["dataset"] == "synthetic" and saved["image_shape"] == [1, 14, 14]
    assert saved["preprocess"]["input_shape"] == [1, 12, 12]


def test_checkpoint_restores_the_dropout_generator(tmp_path, trained):
    path = tmp_path / "run.npz"
    save(trained, path)
    dropout = next(layer for layer in trained.net.layers if type(layer).__name__ == "Dropout")
    expected = dropout.rng.random(5)  # the draws the run would make next
    net, _, _ = load_checkpoint(path)
    restored = next(layer for layer in net.layers if type(layer).__name__ == "Dropout")
    assert np.array_equal(restored.rng.random(5), expected)


def test_convnetpy_load_reads_the_net_from_a_checkpoint(tmp_path, trained):
    path = tmp_path / "run.npz"
    save(trained, path)
    net = convnetpy.load(path)
    assert isinstance(net, Net)
    assert_same_weights(net, trained.net)
    assert is_checkpoint(path)


def test_load_checkpoint_of_a_plain_net_says_so(tmp_path):
    path = tmp_path / "net.npz"
    Net(SPECS, seed=0).save(path)
    with pytest.raises(NetFileError, match="holds a saved net, not a training checkpoint"):
        load_checkpoint(path)
    assert not is_checkpoint(path)


def test_load_checkpoint_errors_name_the_problem(tmp_path, trained):
    with pytest.raises(FileNotFoundError, match="no convnetpy checkpoint file at"):
        load_checkpoint(tmp_path / "missing.npz")

    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip file at all")
    with pytest.raises(NetFileError, match="is not a readable convnetpy checkpoint file"):
        load_checkpoint(garbage)
    assert not is_checkpoint(garbage)

    path = tmp_path / "run.npz"
    save(trained, path)
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(NetFileError, match="truncated"):
        load_checkpoint(truncated)

    arrays = dict(np.load(path))
    meta = json.loads(str(arrays["checkpoint"]))
    del meta["trainer"]
    arrays["checkpoint"] = np.array(json.dumps(meta))
    damaged = tmp_path / "damaged.npz"
    np.savez(damaged, **arrays)
    with pytest.raises(NetFileError, match="the checkpoint is damaged"):
        load_checkpoint(damaged)


def test_save_is_atomic_and_leaves_no_temporary_files(tmp_path, trained, monkeypatch):
    path = tmp_path / "run.npz"
    save(trained, path)
    save(trained, path)  # overwrite
    assert [p.name for p in tmp_path.iterdir()] == ["run.npz"]
    before = path.read_bytes()

    def broken_savez(f, **arrays):
        f.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        save(trained, path)
    assert [p.name for p in tmp_path.iterdir()] == ["run.npz"]
    assert path.read_bytes() == before  # the old checkpoint survives a failed write


def test_save_creates_missing_folders(tmp_path, trained):
    path = tmp_path / "runs" / "a" / "checkpoint.npz"
    save(trained, path)
    assert load_checkpoint(path)[2]["state"]["global_step"] == 5


def test_sgd_checkpoint_round_trip(tmp_path):
    net = Net(SPECS, seed=1)
    optimizer = make_optimizer(net, FitConfig(momentum=0.9, nesterov=True, weight_decay=0.0))
    for p in optimizer.params:
        p.layer.grads[p.key] = np.ones_like(p.value)
    optimizer.step()
    path = tmp_path / "sgd.npz"
    save_checkpoint(path, net, optimizer, {"note": "hand-made"})
    loaded, opt_state, trainer_state = load_checkpoint(path)
    assert trainer_state == {"note": "hand-made"}
    assert opt_state["type"] == "SGD" and opt_state["hyperparams"]["nesterov"] is True
    assert all(np.array_equal(v, np.ones_like(v)) for v in opt_state["arrays"].values())  # velocity = first grad
    assert_same_weights(loaded, net)
