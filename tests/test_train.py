"""Trainer: exact resume, Ctrl-C, divergence, time limits, schedules, validation split, events, evaluation, top-k."""

from __future__ import annotations

import math
import os
import re
import signal
import warnings

import numpy as np
import pytest

from convnetpy import Net
from convnetpy.callbacks import CheckpointWriter
from convnetpy.checkpoint import load_checkpoint
from convnetpy.losses import log_softmax
from convnetpy.optim import SGD, Adam
from convnetpy.preprocess import Preprocessor
from convnetpy.train import (
    FitConfig,
    Trainer,
    TrainerState,
    TrainingDiverged,
    evaluate,
    make_optimizer,
    predict_log_proba,
    scheduled_lr,
    split_validation,
    top_k,
)
from helpers import assert_same_evaluation
from train_helpers import CLASSES, SPECS, assert_same_weights, fresh, resumed, synthetic

# 200 images, 10% held out -> 180 training images in batches of 16: 12 steps per epoch, the last of 4 images.
STEPS_PER_EPOCH = 12


def base_config(**changes) -> FitConfig:
    return FitConfig(**{"epochs": 3, "batch_size": 16, "lr": 0.05, "augment": True, "seed": 3, **changes})


@pytest.fixture(scope="module")
def data():
    return synthetic(200, seed=0)


class Recorder:
    """A callback keeping every event (a copy) in order."""

    def __init__(self):
        self.events: list[dict] = []

    def __call__(self, event, trainer):
        self.events.append(dict(event))

    def of(self, kind: str) -> list[dict]:
        return [e for e in self.events if e["event"] == kind]


class Interrupt:
    """A callback that ends the run after global step ``at``: by a stop request or by Ctrl-C (KeyboardInterrupt)."""

    def __init__(self, at: int, how: str):
        self.at, self.how = at, how

    def __call__(self, event, trainer):
        if event["event"] == "step" and event["step"] == self.at:
            if self.how == "stop":
                trainer.stop_requested = True
            elif self.how == "sigint":  # a real Ctrl-C: the trainer holds it until the step is complete
                os.kill(os.getpid(), signal.SIGINT)
            else:
                raise KeyboardInterrupt


def run_interrupted(config, data, path, at: int, how: str) -> Trainer:
    trainer = fresh(config, data[0], callbacks=[Interrupt(at, how), CheckpointWriter(path)])
    if how in ("ctrl-c", "sigint"):
        with pytest.raises(KeyboardInterrupt):
            trainer.fit(*data)
    else:
        trainer.fit(*data)
    return trainer


def comparable(history: dict) -> dict:
    """History without wall-clock quantities (throughput, seconds)."""
    return {"steps": [{k: v for k, v in r.items() if k != "images_per_second"} for r in history["steps"]],
            "epochs": [{k: v for k, v in r.items() if k != "seconds"} for r in history["epochs"]]}


def assert_same_run(a: Trainer, b: Trainer) -> None:
    assert_same_weights(a.net, b.net)
    sa, sb = a.optimizer.state_dict(), b.optimizer.state_dict()
    assert sa["steps"] == sb["steps"]
    for key in sa["arrays"]:
        assert np.array_equal(sa["arrays"][key], sb["arrays"][key]), f"optimizer state {key} differs"
    assert (a.state.epoch, a.state.step, a.state.global_step, a.state.examples_seen) == \
           (b.state.epoch, b.state.step, b.state.global_step, b.state.examples_seen)
    assert comparable(a.state.history) == comparable(b.state.history)


# -- exact resume ------------------------------------------------------------------------------------------------
RESUME_CASES = {
    # name: (config changes, how the first part ends, at global step)
    "sgd-momentum-stop-mid-epoch": ({"optimizer": "sgd", "momentum": 0.9}, "stop", 7),
    "sgd-nesterov-ctrl-c-mid-epoch": ({"optimizer": "sgd", "nesterov": True}, "ctrl-c", 17),
    "sgd-ctrl-c-on-last-step-of-epoch": ({"optimizer": "sgd"}, "ctrl-c", STEPS_PER_EPOCH),
    "sgd-cosine-stop-mid-epoch": ({"optimizer": "sgd", "schedule": "cosine"}, "stop", 20),
    "adam-ctrl-c-mid-epoch": ({"optimizer": "adam", "lr": 0.01}, "ctrl-c", 5),
    "adam-onecycle-stop-at-epoch-end": ({"optimizer": "adam", "lr": 0.01, "schedule": "onecycle"}, "stop",
                                        2 * STEPS_PER_EPOCH),
    "adagrad-no-augment-ctrl-c": ({"optimizer": "adagrad", "augment": False}, "ctrl-c", 14),
    "sgd-momentum-real-sigint-mid-epoch": ({"optimizer": "sgd", "momentum": 0.9}, "sigint", 9),
}


@pytest.mark.parametrize("changes, how, at", RESUME_CASES.values(), ids=RESUME_CASES.keys())
def test_resume_after_interruption_equals_uninterrupted_run(tmp_path, data, changes, how, at):
    config = base_config(**changes)
    straight = fresh(config, data[0])
    straight.fit(*data)

    path = tmp_path / "checkpoint.npz"
    first = run_interrupted(base_config(**changes), data, path, at, how)
    assert first.state.global_step == at
    assert not first.state.finished
    second = resumed(path)
    assert second.state.global_step == at
    second.fit(*data)
    assert second.state.finished
    assert_same_run(straight, second)


def test_resume_with_more_epochs_equals_uninterrupted_run(tmp_path, data):
    """The CLI's ``--epochs 1`` then ``--resume --epochs 3`` (constant learning rate, so the schedule agrees)."""
    straight = fresh(base_config(), data[0])
    straight.fit(*data)

    path = tmp_path / "checkpoint.npz"
    first = fresh(base_config(epochs=1), data[0], callbacks=[CheckpointWriter(path)])
    first.fit(*data)
    assert (first.state.epoch, first.state.step, first.state.finished) == (1, 0, True)
    second = resumed(path, epochs=3)
    second.fit(*data)
    assert_same_run(straight, second)


def test_resume_twice_equals_uninterrupted_run(tmp_path, data):
    config = base_config(optimizer="adam", lr=0.01)
    straight = fresh(config, data[0])
    straight.fit(*data)

    path = tmp_path / "checkpoint.npz"
    run_interrupted(config, data, path, 5, "stop")
    middle = resumed(path, callbacks=[Interrupt(19, "ctrl-c"), CheckpointWriter(path)])
    with pytest.raises(KeyboardInterrupt):
        middle.fit(*data)
    last = resumed(path)
    last.fit(*data)
    assert_same_run(straight, last)


@pytest.mark.parametrize("spoil", ["dropout rng", "optimizer state"])
def test_resume_depends_on_what_the_checkpoint_restores(tmp_path, data, spoil):
    """Control for the tests above: without the saved dropout generator or optimizer state the runs do differ."""
    config = base_config()
    straight = fresh(config, data[0])
    straight.fit(*data)
    path = tmp_path / "checkpoint.npz"
    run_interrupted(config, data, path, 7, "stop")
    second = resumed(path)
    if spoil == "dropout rng":
        dropout = next(layer for layer in second.net.layers if type(layer).__name__ == "Dropout")
        dropout.rng = np.random.default_rng(12345)
    else:
        second.optimizer = make_optimizer(second.net, second.config)
    second.fit(*data)
    assert not np.array_equal(straight.net.layers[0].params["weight"], second.net.layers[0].params["weight"])


# -- Ctrl-C, stop requests ------------------------------------------------------------------------------------------
def test_ctrl_c_emits_fit_end_interrupted_and_writes_a_loadable_checkpoint(tmp_path, data):
    recorder = Recorder()
    path = tmp_path / "checkpoint.npz"
    trainer = fresh(base_config(), data[0], callbacks=[recorder, Interrupt(3, "ctrl-c"), CheckpointWriter(path)])
    with pytest.raises(KeyboardInterrupt):
        trainer.fit(*data)
    assert recorder.events[-1] == {"event": "fit_end", "reason": "interrupted", "epoch": 0, "step": 3}
    assert len(recorder.of("step")) == 3
    net, opt_state, saved = load_checkpoint(path)
    assert (saved["state"]["epoch"], saved["state"]["step"], saved["state"]["global_step"]) == (0, 3, 3)
    assert saved["state"]["finished"] is False
    assert opt_state["steps"] == 3
    assert_same_weights(net, trainer.net)


def test_stop_request_ends_the_run_after_the_current_step(data):
    recorder = Recorder()
    trainer = fresh(base_config(), data[0], callbacks=[recorder, Interrupt(5, "stop")])
    history = trainer.fit(*data)
    assert recorder.events[-1] == {"event": "fit_end", "reason": "stopped", "epoch": 0, "step": 5}
    assert not recorder.of("epoch_end")
    assert len(history["steps"]) == 5 and not history["epochs"]
    assert trainer.state.finished is False


# -- divergence ---------------------------------------------------------------------------------------------------
DIVERGED = re.compile(r"at epoch (\d+), step (\d+) \(lr ([^)]+)\).*lower the learning rate")


class Snapshots:
    """A callback keeping a copy of the weights at every epoch end."""

    def __init__(self):
        self.weights: dict[int, dict] = {}

    def __call__(self, event, trainer):
        if event["event"] == "epoch_end":
            self.weights[event["epoch"]] = trainer.net.state_dict()


def assert_checkpoint_is(path, epoch: int, weights: dict) -> None:
    net, _, saved = load_checkpoint(path)
    assert (saved["state"]["epoch"], saved["state"]["step"]) == (epoch, 0)
    state = net.state_dict()
    for key, value in weights.items():
        assert np.all(np.isfinite(state[key])), key
        assert np.array_equal(state[key], value), key


def test_huge_learning_rate_raises_diverged_and_keeps_the_last_good_checkpoint(tmp_path, data):
    # A sane first epoch, then the "step" schedule multiplies the learning rate by 1e12.
    config = base_config(epochs=8, schedule="step", step_epochs=1, step_gamma=1e12)
    path = tmp_path / "checkpoint.npz"
    snapshots, recorder = Snapshots(), Recorder()
    trainer = fresh(config, data[0], callbacks=[snapshots, recorder, CheckpointWriter(path)])
    with warnings.catch_warnings(), pytest.raises(TrainingDiverged) as info:
        warnings.simplefilter("error")  # one clear error: no NumPy overflow warnings on the way
        trainer.fit(*data)
    match = DIVERGED.search(str(info.value))
    assert match, str(info.value)
    epoch, step, lr = int(match[1]), int(match[2]), float(match[3])
    assert epoch >= 2 and 1 <= step <= STEPS_PER_EPOCH
    assert lr == pytest.approx(0.05 * 1e12 ** (epoch - 1), rel=1e-5)
    assert "\n" not in str(info.value)
    assert_checkpoint_is(path, epoch - 1, snapshots.weights[epoch - 1])
    assert recorder.events[-1]["event"] == "fit_end" and recorder.events[-1]["reason"] == "diverged"


def test_nan_loss_message_names_epoch_step_and_lr(tmp_path, data):
    path = tmp_path / "checkpoint.npz"
    snapshots = Snapshots()
    trainer = fresh(base_config(), data[0], callbacks=[snapshots, CheckpointWriter(path)])
    real_loss, calls = trainer.net.loss, []

    def loss(scores, labels):
        calls.append(1)
        value, dscores = real_loss(scores, labels)
        return (math.nan if len(calls) == STEPS_PER_EPOCH + 3 else value), dscores

    trainer.net.loss = loss
    with pytest.raises(TrainingDiverged) as info:
        trainer.fit(*data)
    assert str(info.value) == ("the loss became nan at epoch 2, step 3 (lr 0.05): training stopped; lower the "
                               "learning rate. The last good checkpoint is kept.")
    assert_checkpoint_is(path, 1, snapshots.weights[1])


def test_non_finite_weights_after_an_epochs_last_step_are_never_checkpointed(tmp_path, data):
    """An update can overflow the weights on an epoch's last step; that epoch's checkpoint must not hold them."""
    path = tmp_path / "checkpoint.npz"
    snapshots = Snapshots()
    trainer = fresh(base_config(), data[0], callbacks=[snapshots, CheckpointWriter(path)])
    real_step = trainer.optimizer.step

    def step():
        real_step()
        if trainer.optimizer.steps == 2 * STEPS_PER_EPOCH:
            trainer.net.layers[0].params["weight"][0, 0, 0, 0] = np.inf

    trainer.optimizer.step = step
    with pytest.raises(TrainingDiverged) as info:
        trainer.fit(*data)
    assert str(info.value) == ("parameter 0.weight became NaN or infinite at epoch 2, step 12 (lr 0.05): training "
                               "stopped; lower the learning rate. The last good checkpoint is kept.")
    assert_checkpoint_is(path, 1, snapshots.weights[1])


# -- time limit -----------------------------------------------------------------------------------------------------
def test_time_limit_stops_with_reason_time_limit(data):
    recorder = Recorder()
    limit = 0.05
    trainer = fresh(base_config(epochs=None, time_limit=limit), data[0], callbacks=[recorder])
    trainer.fit(*data)
    end = recorder.events[-1]
    assert end["event"] == "fit_end" and end["reason"] == "time_limit"
    assert trainer.state.finished
    steps = recorder.of("step")
    # It stops after the step that crosses the limit: every earlier step ended before it.
    assert steps[-1]["elapsed"] >= limit
    assert all(s["elapsed"] < limit for s in steps[:-1])
    assert trainer.state.elapsed == steps[-1]["elapsed"]


def test_epochs_end_a_run_before_its_time_limit(data):
    recorder = Recorder()
    trainer = fresh(base_config(epochs=1, time_limit=3600), data[0], callbacks=[recorder])
    trainer.fit(*data)
    assert recorder.events[-1]["reason"] == "epochs"
    assert len(recorder.of("step")) == STEPS_PER_EPOCH


def test_time_based_schedule_decreases_the_learning_rate(data):
    trainer = fresh(base_config(epochs=None, time_limit=0.05, schedule="cosine"), data[0])
    lrs = [r["lr"] for r in trainer.fit(*data)["steps"]]
    assert len(lrs) > 2
    assert lrs[0] == pytest.approx(0.05, rel=0.05)
    assert all(a > b for a, b in zip(lrs, lrs[1:]))


# -- schedules ------------------------------------------------------------------------------------------------------
def test_constant_schedule():
    c = FitConfig(lr=0.1)
    assert [scheduled_lr(c, e, t) for e, t in ((0, 0.0), (5, 0.5), (9, 1.0))] == [0.1, 0.1, 0.1]


def test_step_schedule():
    c = FitConfig(lr=0.1, schedule="step", step_epochs=10, step_gamma=0.5)
    assert scheduled_lr(c, 0, 0.0) == 0.1
    assert scheduled_lr(c, 9, 0.9) == 0.1
    assert scheduled_lr(c, 10, 0.3) == pytest.approx(0.05)
    assert scheduled_lr(c, 25, 0.3) == pytest.approx(0.025)


def test_cosine_schedule():
    c = FitConfig(lr=0.1, schedule="cosine")
    assert scheduled_lr(c, 0, 0.0) == pytest.approx(0.1)
    assert scheduled_lr(c, 0, 0.5) == pytest.approx(0.05)
    assert scheduled_lr(c, 0, 0.25) == pytest.approx(0.05 * (1 + math.cos(math.pi / 4)))
    assert scheduled_lr(c, 0, 1.0) == pytest.approx(0.0, abs=1e-12)
    assert scheduled_lr(c, 0, 1.5) == scheduled_lr(c, 0, 1.0)  # progress is clipped to [0, 1]


def test_onecycle_schedule_known_points():
    c = FitConfig(lr=0.1, schedule="onecycle")
    assert scheduled_lr(c, 0, 0.0) == pytest.approx(0.1 / 25)
    assert scheduled_lr(c, 0, 0.15) == pytest.approx((0.1 / 25 + 0.1) / 2)  # half way up the cosine
    assert scheduled_lr(c, 0, 0.3) == pytest.approx(0.1)
    assert scheduled_lr(c, 0, 0.65) == pytest.approx((0.1 + 0.1 / 25e4) / 2)  # half way down
    assert scheduled_lr(c, 0, 1.0) == pytest.approx(0.1 / 25e4)
    values = [scheduled_lr(c, 0, t) for t in np.linspace(0, 1, 101)]
    assert max(values) == pytest.approx(0.1) and int(np.argmax(values)) == 30


def test_onecycle_matches_torch_one_cycle_lr():
    """Same endpoints and cosine phases as torch's OneCycleLR (pct_start 0.3, div_factor 25, final_div_factor 1e4).

    The one difference is how steps map to the curve: torch reaches max_lr at step 0.3 T - 1 and the final lr at
    the last step, T - 1; ours runs on progress = step / T, reaching lr at progress 0.3 and lr / 25e4 at 1.
    So torch's step i of phase 1 is our progress 0.3 i / (0.3 T - 1), and of phase 2 0.3 + 0.7 (i - p) / (T - 1 - p).
    """
    torch = pytest.importorskip("torch")
    total, lr = 40, 0.1
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=total)
    expected = []
    for _ in range(total):
        expected.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
        if len(expected) == total - 1:
            expected.append(opt.param_groups[0]["lr"])
            break
    peak = 0.3 * total - 1
    ours = [scheduled_lr(FitConfig(lr=lr, schedule="onecycle"), 0,
                         0.3 * i / peak if i <= peak else 0.3 + 0.7 * (i - peak) / (total - 1 - peak))
            for i in range(total)]
    np.testing.assert_allclose(ours, expected, rtol=1e-9, atol=1e-12)


def test_trainer_uses_the_schedule_by_steps(data):
    config = base_config(schedule="onecycle", augment=False)
    trainer = fresh(config, data[0])
    steps = trainer.fit(*data)["steps"]
    total = config.epochs * STEPS_PER_EPOCH
    assert len(steps) == total
    assert [r["lr"] for r in steps] == [scheduled_lr(config, r["epoch"], i / total) for i, r in enumerate(steps)]


@pytest.mark.parametrize("changes, message", [
    ({"optimizer": "rmsprop"}, "optimizer must be one of"),
    ({"schedule": "linear"}, "schedule must be constant, step, cosine or onecycle"),
    ({"epochs": None, "time_limit": None}, "give epochs, time_limit or both"),
    ({"batch_size": 0}, "batch_size must be >= 1"),
    ({"val_fraction": 1.0}, "val_fraction in"),
])
def test_fit_config_rejects_bad_values(changes, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        FitConfig(**changes)


def test_make_optimizer_follows_the_config():
    net = Net(SPECS, seed=0)
    sgd = make_optimizer(net, FitConfig(lr=0.2, momentum=0.5, nesterov=True, weight_decay=1e-3))
    assert isinstance(sgd, SGD) and (sgd.lr, sgd.momentum, sgd.nesterov, sgd.weight_decay) == (0.2, 0.5, True, 1e-3)
    adam = make_optimizer(net, FitConfig(optimizer="adam", lr=0.003, weight_decay=0.0))
    assert isinstance(adam, Adam) and (adam.lr, adam.weight_decay) == (0.003, 0.0)
    assert len(adam.params) == len(net.params())


# -- validation split, history, events ---------------------------------------------------------------------------------
def test_split_validation_is_a_seeded_disjoint_hold_out():
    train, val = split_validation(200, 0.1, seed=5)
    assert len(val) == 20 and len(train) == 180
    assert not set(train) & set(val)
    assert sorted([*train, *val]) == list(range(200))
    again = split_validation(200, 0.1, seed=5)
    assert np.array_equal(again[0], train) and np.array_equal(again[1], val)
    assert not np.array_equal(split_validation(200, 0.1, seed=6)[1], val)
    assert len(split_validation(200, 0.0, seed=5)[1]) == 0


class IdPreprocessor(Preprocessor):
    """Records which example ids (stored in the first two pixels) each call preprocesses."""

    def __call__(self, images, rng=None):
        ids = images[:, 0, 0, 0].astype(int) + 256 * images[:, 0, 0, 1].astype(int)
        self.pending.extend(ids.tolist())
        return super().__call__(images, rng)


def test_fit_trains_on_the_split_and_validates_on_the_hold_out():
    images, labels = synthetic(200, seed=1, size=12)
    n = len(images)
    images[:, 0, 0, 0], images[:, 0, 0, 1] = np.arange(n) % 256, np.arange(n) // 256
    config = base_config(epochs=2, augment=False, seed=11)
    net = Net(SPECS, seed=0)
    pre = IdPreprocessor.from_dict(Preprocessor.fit(images, net.input_shape).to_dict())
    pre.pending = []
    seen = {"train": [], "val": []}

    def sort(event, trainer):
        if event["event"] in ("step", "epoch_end"):
            seen["train" if event["event"] == "step" else "val"].append(list(pre.pending))
            pre.pending.clear()

    Trainer(net, config, pre, callbacks=[sort]).fit(images, labels)
    train_idx, val_idx = split_validation(n, config.val_fraction, config.seed)
    for epoch in range(2):
        batches = seen["train"][epoch * STEPS_PER_EPOCH:(epoch + 1) * STEPS_PER_EPOCH]
        epoch_ids = [i for batch in batches for i in batch]
        assert sorted(epoch_ids) == train_idx.tolist()  # each training example once per epoch
        assert sorted(seen["val"][epoch]) == val_idx.tolist()
    assert [i for b in seen["train"][:STEPS_PER_EPOCH] for i in b] != \
           [i for b in seen["train"][STEPS_PER_EPOCH:] for i in b]  # reshuffled every epoch


def test_events_come_in_order_with_their_keys(data):
    recorder = Recorder()
    config = base_config(epochs=2)
    fresh(config, data[0], callbacks=[recorder]).fit(*data)
    kinds = [e["event"] for e in recorder.events]
    assert kinds == ["fit_start"] + (["step"] * STEPS_PER_EPOCH + ["epoch_end"]) * 2 + ["fit_end"]
    start, step, epoch_end, end = (recorder.of(k)[0] for k in ("fit_start", "step", "epoch_end", "fit_end"))
    assert start.keys() == {"event", "n_train", "n_val", "steps_per_epoch", "epoch", "config"}
    assert (start["n_train"], start["n_val"], start["steps_per_epoch"], start["epoch"]) == (180, 20, 12, 0)
    assert start["config"]["lr"] == 0.05
    assert step.keys() == {"event", "epoch", "step", "loss", "accuracy", "lr", "images_per_second", "epoch_step",
                           "steps_per_epoch", "examples_seen", "elapsed", "batch_size"}
    assert epoch_end.keys() == {"event", "epoch", "seconds", "train_loss", "train_accuracy", "val_loss",
                                "val_accuracy"}
    assert end == {"event": "fit_end", "reason": "epochs", "epoch": 2, "step": 0}
    steps = recorder.of("step")
    assert [s["step"] for s in steps] == list(range(1, 25))
    assert [s["epoch_step"] for s in steps] == list(range(1, 13)) * 2
    assert [s["batch_size"] for s in steps[:12]] == [16] * 11 + [4]
    assert steps[-1]["examples_seen"] == 360
    assert [e["epoch"] for e in recorder.of("epoch_end")] == [1, 2]


def test_history_records_every_step_and_epoch(data):
    history = fresh(base_config(epochs=2), data[0]).fit(*data)
    assert len(history["steps"]) == 2 * STEPS_PER_EPOCH
    assert [r["step"] for r in history["steps"]] == list(range(1, 25))
    assert [r["epoch"] for r in history["steps"]] == [0] * 12 + [1] * 12
    assert [r["epoch"] for r in history["epochs"]] == [1, 2]
    for record, epoch in zip(history["epochs"], (0, 1)):
        losses = [r["loss"] for r in history["steps"] if r["epoch"] == epoch]
        assert record["train_loss"] == pytest.approx(np.mean(losses))
        assert 0 <= record["val_accuracy"] <= 1 and math.isfinite(record["val_loss"])


def test_training_learns_the_synthetic_classes(data):
    test_images, test_labels = synthetic(150, seed=1)
    trainer = fresh(base_config(epochs=4), data[0])
    before = trainer.evaluate(test_images, test_labels)
    history = trainer.fit(*data)
    after = trainer.evaluate(test_images, test_labels)
    assert after["accuracy"] > 0.95
    assert after["accuracy"] - before["accuracy"] > 0.3
    assert after["loss"] < before["loss"]
    assert history["epochs"][-1]["train_loss"] < history["epochs"][0]["train_loss"]


def test_fit_with_explicit_validation_set_trains_on_everything(data):
    recorder = Recorder()
    val = synthetic(30, seed=2)
    fresh(base_config(epochs=1), data[0], callbacks=[recorder]).fit(*data, *val)
    start = recorder.of("fit_start")[0]
    assert (start["n_train"], start["n_val"], start["steps_per_epoch"]) == (200, 30, 13)


def test_no_validation_when_val_fraction_is_zero(data):
    recorder = Recorder()
    fresh(base_config(epochs=1, val_fraction=0.0), data[0], callbacks=[recorder]).fit(*data)
    assert recorder.of("fit_start")[0]["n_val"] == 0
    assert "val_accuracy" not in recorder.of("epoch_end")[0]


def test_trainer_state_round_trips_through_its_dict(data):
    trainer = fresh(base_config(epochs=1), data[0])
    trainer.fit(*data)
    trainer.extra = {"dataset": "synthetic"}
    d = trainer.state_dict()
    assert d["dataset"] == "synthetic"
    assert TrainerState(**d["state"]) == trainer.state
    assert FitConfig(**d["config"]) == trainer.config
    assert d["preprocess"]["classes"] == CLASSES


# -- evaluation, top-k ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained(data):
    trainer = fresh(base_config(epochs=1), data[0])
    trainer.fit(*data)
    return trainer


def test_evaluate_reports_accuracy_loss_n_and_confusion(trained):
    images, labels = synthetic(60, seed=4)
    result = evaluate(trained.net, trained.pre, images, labels, batch_size=7)
    assert result.keys() == {"accuracy", "loss", "n", "confusion"}
    logp = log_softmax(trained.net.forward(trained.pre(images)))
    pred = logp.argmax(axis=1)
    assert result["n"] == 60
    assert result["accuracy"] == pytest.approx(np.mean(pred == labels))
    assert result["loss"] == pytest.approx(-logp[np.arange(60), labels].mean(), rel=1e-5)
    confusion = np.array(result["confusion"])
    expected = np.zeros((3, 3), int)
    for t, p in zip(labels, pred):
        expected[t, p] += 1  # rows: true class, columns: predicted
    assert np.array_equal(confusion, expected)
    assert confusion.sum() == 60 and np.trace(confusion) == int((pred == labels).sum())
    assert_same_evaluation(trained.evaluate(images, labels), result)


def test_evaluate_confusion_orientation_is_rows_true_columns_predicted():
    net = Net(SPECS, seed=0)
    pre = Preprocessor.fit(synthetic(10)[0], net.input_shape)
    images = synthetic(5, seed=7)[0]
    predicted = int(log_softmax(net.forward(pre(images))).argmax(axis=1)[0])
    true = (predicted + 1) % 3
    confusion = np.array(evaluate(net, pre, images[:1], np.array([true]))["confusion"])
    assert confusion[true, predicted] == 1 and confusion.sum() == 1


def test_evaluate_rejects_labels_the_net_cannot_predict(trained):
    images = synthetic(4, seed=5)[0]
    with pytest.raises(ValueError, match=re.escape("labels go from 0 to 9, but the net has 3 classes (0 to 2)")):
        evaluate(trained.net, trained.pre, images, np.array([0, 1, 2, 9]))


def test_evaluate_with_tta(trained):
    images, labels = synthetic(40, seed=5)
    plain = evaluate(trained.net, trained.pre, images, labels)
    tta = evaluate(trained.net, trained.pre, images, labels, tta=True)
    assert tta["n"] == 40 and 0 <= tta["accuracy"] <= 1 and math.isfinite(tta["loss"])
    assert np.array(tta["confusion"]).sum() == 40
    logp = predict_log_proba(trained.net, trained.pre, images, tta=True)
    assert logp.shape == (40, 3)
    np.testing.assert_allclose(np.exp(logp).sum(axis=1), 1, rtol=1e-5)
    assert tta["loss"] != plain["loss"]  # the averaged views do change the probabilities


def test_predict_log_proba_does_not_depend_on_batch_size(trained):
    images = synthetic(23, seed=6)[0]
    a = predict_log_proba(trained.net, trained.pre, images, batch_size=5)
    b = trained.predict_log_proba(images, batch_size=500)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert predict_log_proba(trained.net, trained.pre, images[:0]).shape == (0, 3)


@pytest.mark.parametrize("k", [1, 2, 3])
def test_top_k_gives_k_classes_sorted_by_probability(trained, k):
    images = synthetic(12, seed=8)[0]
    result = top_k(trained.net, trained.pre, images, k)
    probs = np.exp(predict_log_proba(trained.net, trained.pre, images))
    assert len(result) == 12
    for row, p in zip(result, probs):
        assert len(row) == k
        classes, values = [c for c, _ in row], [v for _, v in row]
        assert all(isinstance(c, int) and 0 <= c < 3 for c in classes) and len(set(classes)) == k
        assert values == sorted(values, reverse=True)
        assert sum(values) <= 1 + 1e-6
        assert classes[0] == int(p.argmax())
        assert values == pytest.approx([p[c] for c in classes])
    if k == 3:
        assert all(sum(v for _, v in row) == pytest.approx(1, rel=1e-5) for row in result)
