"""The session: one trainer thread owning the net, the same Trainer and checkpoints as ``convnetpy train``."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from convnetpy import cli
from convnetpy.checkpoint import load_checkpoint
from convnetpy.studio.hub import Hub
from convnetpy.studio.session import Session, StudioError
from convnetpy.train import FitConfig, TrainerState
from studio_helpers import BAR_SPECS, setup_payload, wait_until


@pytest.fixture
def session(data_dir, tmp_path):
    s = Session(Hub(), data_dir, tmp_path / "runs", download=False, stats_interval=0.05)
    yield s
    s.close()


@pytest.mark.parametrize("old, new, step, expected", [(8, 16, 5, 2), (16, 8, 3, 6), (10, 4, 10, 25), (8, 100, 5, 0)])
def test_a_new_batch_size_continues_the_epoch_at_the_same_example(session, old, new, step, expected):
    trainer = SimpleNamespace(config=FitConfig(batch_size=old, val_fraction=0.0), state=TrainerState(step=step),
                              stop_requested=True)
    session._refit_batch = new
    session._apply_batch_size(trainer, n_train=100)
    assert (trainer.config.batch_size, trainer.state.step, trainer.stop_requested) == (new, expected, False)
    assert trainer.state.step * new <= min(step * old, 100)  # nothing of the epoch is skipped


def test_calls_run_in_the_trainer_thread(session):
    import threading

    assert session.call(lambda: threading.current_thread().name) == "convnetpy-studio-trainer"
    with pytest.raises(ZeroDivisionError):
        session.call(lambda: 1 / 0)  # the caller gets the error; the thread goes on
    assert session.call(lambda: 2) == 2


def test_stop_and_pause_need_a_run(session):
    for control in (session.pause, session.resume, session.stop):
        with pytest.raises(StudioError, match="while the session is idle"):
            control()


def test_a_studio_checkpoint_resumes_with_convnetpy_train(session, tmp_path, capsys):
    session.start(setup_payload(epochs=2), cli.FLIP_DEFAULT)
    wait_until(lambda: session.state == "finished", what="two epochs")
    run_dir = session.run.run_dir
    argv = ["train", "ignored", "--dataset", "ignored", "--out", str(run_dir), "--resume", "--epochs", "3"]
    assert cli.main(argv) == 0, capsys.readouterr().err
    _, _, saved = load_checkpoint(run_dir / "checkpoint.npz")
    assert saved["state"]["epoch"] == 3 and saved["dataset"] == str(session.data_dir.resolve() / "bars")


def test_a_convnetpy_train_checkpoint_loads_in_the_studio(session, data_dir, tmp_path):
    spec_file = tmp_path / "net.json"
    spec_file.write_text(json.dumps(BAR_SPECS))
    out = tmp_path / "cli-run"
    assert cli.main(["train", str(spec_file), "--dataset", str(data_dir / "bars"), "--epochs", "1", "--batch-size",
                     "16", "--out", str(out)]) == 0
    status = session.load(out / "checkpoint.npz")
    assert status["state"] == "loaded" and status["dataset"] == "folder:bars" and status["epoch"] == 1
    assert [p for p in session.monitor.points if "val_acc" in p]  # the curves come back from the history
    session.resume_run(epochs=2)
    wait_until(lambda: session.state == "finished", what="the second epoch")
    assert session.run.trainer.state.epoch == 2


def test_a_checkpoint_of_a_folder_outside_the_data_dir_is_refused(tmp_path, data_dir):
    spec_file = tmp_path / "net.json"
    spec_file.write_text(json.dumps(BAR_SPECS))
    out = tmp_path / "cli-run"
    assert cli.main(["train", str(spec_file), "--dataset", str(data_dir / "bars"), "--epochs", "1", "--out",
                     str(out)]) == 0
    elsewhere = Session(Hub(), tmp_path / "empty", tmp_path / "runs", download=False)
    try:
        with pytest.raises(Exception, match="not a dataset the studio can reach"):
            elsewhere.load(out / "checkpoint.npz")
        assert elsewhere.state == "idle"
    finally:
        elsewhere.close()
