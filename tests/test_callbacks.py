"""Trainer callbacks: the checkpoint writer, the history writer and the progress bar."""

from __future__ import annotations

import io
import json
import math

import pytest

from convnetpy import callbacks
from convnetpy.callbacks import CheckpointWriter, HistoryWriter, ProgressBar
from convnetpy.checkpoint import load_checkpoint
from convnetpy.train import FitConfig, TrainingDiverged
from train_helpers import fresh, resumed, synthetic

# 100 images, 10 held out: 90 in batches of 16, 6 steps per epoch.
STEPS_PER_EPOCH = 6


@pytest.fixture(scope="module")
def data():
    return synthetic(100, seed=0)


def config(**changes) -> FitConfig:
    return FitConfig(**{"epochs": 2, "batch_size": 16, "lr": 0.05, "augment": True, **changes})


def test_checkpoint_writer_saves_at_epoch_ends_and_at_the_end(monkeypatch, data):
    saved = []
    monkeypatch.setattr(callbacks, "save_checkpoint",
                        lambda path, net, optimizer, state: saved.append((path.name, state["state"]["epoch"])))
    trainer = fresh(config(), data[0], callbacks=[CheckpointWriter("run/checkpoint.npz")])
    trainer.fit(*data)
    assert saved == [("checkpoint.npz", 1), ("checkpoint.npz", 2), ("checkpoint.npz", 2)]
    writer = trainer.callbacks[0]
    for event in ({"event": "fit_start"}, {"event": "step"}, {"event": "fit_end", "reason": "diverged"}):
        writer(event, trainer)
    assert len(saved) == 3  # nothing saved on these
    for reason in ("epochs", "time_limit", "stopped", "interrupted"):
        writer({"event": "fit_end", "reason": reason}, trainer)
    assert len(saved) == 7


def test_checkpoint_writer_file_resumes_the_run(tmp_path, data):
    path = tmp_path / "checkpoint.npz"
    trainer = fresh(config(), data[0], callbacks=[CheckpointWriter(path)])
    trainer.fit(*data)
    _, _, saved = load_checkpoint(path)
    assert saved["state"]["epoch"] == 2 and saved["state"]["finished"] is True
    assert len(saved["state"]["history"]["epochs"]) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.npz"]


def test_checkpoint_writer_keeps_the_last_good_checkpoint_when_the_run_diverges(tmp_path, data):
    path = tmp_path / "checkpoint.npz"
    trainer = fresh(config(epochs=20, schedule="step", step_epochs=1, step_gamma=1e12), data[0],
                    callbacks=[CheckpointWriter(path)])
    with pytest.raises(TrainingDiverged):
        trainer.fit(*data)
    net, _, saved = load_checkpoint(path)
    assert saved["state"]["step"] == 0 and saved["state"]["epoch"] == trainer.state.epoch
    assert all(math.isfinite(r["loss"]) for r in saved["state"]["history"]["steps"])


def test_history_writer_writes_valid_json_after_every_epoch(tmp_path, data):
    path = tmp_path / "history.json"
    written = []

    def check(event, trainer):  # runs after the writer
        if event["event"] == "epoch_end":
            written.append(json.loads(path.read_text()))

    trainer = fresh(config(), data[0], callbacks=[HistoryWriter(path), check])
    history = trainer.fit(*data)
    assert [len(h["epochs"]) for h in written] == [1, 2]
    assert [len(h["steps"]) for h in written] == [STEPS_PER_EPOCH, 2 * STEPS_PER_EPOCH]
    final = json.loads(path.read_text())
    assert final == json.loads(json.dumps(history))
    assert final["epochs"][1].keys() >= {"epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy"}
    assert final["steps"][0].keys() >= {"epoch", "step", "loss", "accuracy", "lr", "images_per_second"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["history.json"]


def test_progress_bar_writes_loss_accuracy_and_speed_to_its_file(data):
    out = io.StringIO()
    fresh(config(), data[0], callbacks=[ProgressBar(file=out)]).fit(*data)
    text = out.getvalue()
    for piece in ("loss=", "acc=", "img/s=", "epoch=2", f"{2 * STEPS_PER_EPOCH}/{2 * STEPS_PER_EPOCH}",
                  "epoch 1: train loss", "epoch 2: train loss", "validation loss"):
        assert piece in text, piece


def test_progress_bar_with_a_time_limit_and_no_epoch_count(data):
    out = io.StringIO()
    bar = ProgressBar(file=out)
    fresh(config(epochs=None, time_limit=0.03), data[0], callbacks=[bar]).fit(*data)
    assert "left=" in out.getvalue() and "loss=" in out.getvalue()
    assert bar.bar is None  # closed at fit_end


def test_progress_bar_of_a_resumed_run_starts_where_it_stopped(tmp_path, data):
    path = tmp_path / "checkpoint.npz"

    def stop(event, trainer):
        if event["event"] == "step" and event["step"] == 4:
            trainer.stop_requested = True

    fresh(config(), data[0], callbacks=[stop, CheckpointWriter(path)]).fit(*data)
    out = io.StringIO()
    resumed(path, callbacks=[ProgressBar(file=out)]).fit(*data)
    text = out.getvalue()
    assert f"4/{2 * STEPS_PER_EPOCH}" in text and f"{2 * STEPS_PER_EPOCH}/{2 * STEPS_PER_EPOCH}" in text


def test_progress_bar_closes_when_the_run_diverges(data):
    out = io.StringIO()
    bar = ProgressBar(file=out)
    trainer = fresh(config(epochs=20, lr=1e9), data[0], callbacks=[bar])
    with pytest.raises(TrainingDiverged):
        trainer.fit(*data)
    assert bar.bar is None
    assert out.getvalue().endswith("\n")  # an error printed next starts on its own line


def test_progress_bar_defaults_to_stderr(capsys, data):
    fresh(config(epochs=1), data[0], callbacks=[ProgressBar()]).fit(*data)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "epoch 1: train loss" in captured.err and "img/s=" in captured.err
