"""The one training session of a studio server: a trainer thread that owns the net, and the controls the page uses.

Every use of the net happens in one thread, the trainer thread: training, and between two steps whatever the
page asks for (test cards, an uploaded image's top-3, the formula of a clicked unit, a checkpoint to download).
An inference pass clears the caches a training step's backward pass needs, so the two must never interleave;
``Session.call`` queues a function for that thread and waits for its result. While the run is paused, the
trainer thread keeps serving the queue from inside the step callback.

Training runs through the same ``Trainer`` and ``CheckpointWriter`` as ``convnetpy train``; the studio is one
more callback (``_callback``). Pause blocks in it; stop sets ``trainer.stop_requested``; learning rate,
momentum and weight decay are set on the config and optimizer between steps (the Trainer reads ``config.lr``
every step). A new batch size cannot change inside ``fit`` (its steps per epoch are fixed there): the studio
stops the fit after the current step and continues it with the new size, at the same place in the epoch
(the step index is converted, so up to batch size - 1 examples of that epoch may be seen twice).
"""

from __future__ import annotations

import contextlib
import queue
import sys
import threading
import time
import traceback
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from ..callbacks import CheckpointWriter
from ..checkpoint import load_checkpoint, save_checkpoint
from ..data import Dataset
from ..errors import ConvnetpyError
from ..preprocess import Preprocessor
from ..train import FitConfig, Trainer, TrainerState, TrainingDiverged, make_optimizer, split_validation
from . import config as setup_mod
from .datasets import FOLDER, NAMED, RunData, is_digits, load_run_data
from .monitor import Monitor
from .timing import PassTimer
from .views import layer_rows

IDLE = ("idle", "loaded", "finished", "stopped", "failed")  # states in which a new run may start
CALL_TIMEOUT = 120.0  # seconds a page request waits for the trainer thread (a validation pass may be running)


class StudioError(ConvnetpyError):
    """A control that does not fit the session's state (start while training, continue with nothing to continue)."""


@dataclass
class Run:
    """What a session trains or inspects: the net, its preprocessing and data, and the Trainer."""

    trainer: Trainer
    data: RunData
    dataset: str  # the page's id: a name or "folder:<relative path>"
    run_dir: Path
    test_images: np.ndarray  # (N, C, H, W) uint8 or (N, C, L): test split, else the validation hold-out
    test_labels: np.ndarray  # (N,)
    test_name: str  # "test", "validation" or "training"
    example: int = 0  # the test example the network view shows

    @property
    def net(self):
        return self.trainer.net

    @property
    def pre(self) -> Preprocessor:
        return self.trainer.pre

    @property
    def classes(self) -> list[str]:
        return self.trainer.pre.classes

    @property
    def image_shape(self) -> tuple[int, ...]:
        """One dataset example's shape (uploads are resized to it, then cropped like the data)."""
        return tuple(self.data.train.images.shape[1:])


class Session:
    """One training session; any number of tabs watch it through ``hub``.

    States: "idle" (nothing yet), "loaded" (a checkpoint, or a finished setup, ready to inspect or continue),
    "preparing" (loading data for a run), "running", "paused", "stopping", "finished" (epochs done), "stopped",
    "failed" (message in ``message``).
    """

    def __init__(self, hub, data_dir: Path | None = None, out_dir: Path = Path("runs/studio"), *,
                 download: bool = True, stats_interval: float = 0.5, viz_interval: float = 1.0,
                 viz_budget: float = 0.05) -> None:
        self.hub = hub
        self.data_dir = Path(data_dir).expanduser() if data_dir is not None else None
        self.out_dir = Path(out_dir)
        self.download = download
        self.monitor = Monitor(hub, stats_interval, viz_interval, viz_budget)
        self.run: Run | None = None
        self._seq = 0
        self.state, self.message = "idle", ""
        self.started_at: float | None = None
        self.ended_at: float | None = None
        self._lock = threading.Lock()
        self._tasks: queue.Queue = queue.Queue()
        self._wake = threading.Event()
        self._paused = False
        self._pending: dict = {}
        self._refit_batch: int | None = None
        self._data_cache: tuple | None = None
        self._thread = threading.Thread(target=self._serve, name="convnetpy-studio-trainer", daemon=True)
        self._thread.start()

    @property
    def state(self) -> str:
        return self._state

    @state.setter
    def state(self, value: str) -> None:
        """Every change is numbered, so the page can tell an older status (an HTTP answer that arrives late)
        from a newer one (published by the trainer thread)."""
        self._state = value
        self._seq += 1

    # -- the trainer thread --------------------------------------------------------------------------
    def _serve(self) -> None:
        while True:
            item = self._tasks.get()
            if item is None:
                return
            self._run_task(item)

    def _run_task(self, item) -> None:
        fn, future = item
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(fn())
        except BaseException as e:  # handed to the caller, who reports it
            future.set_exception(e)

    def _drain(self) -> None:
        """Run the queued page requests (in the trainer thread, between steps)."""
        while True:
            try:
                item = self._tasks.get_nowait()
            except queue.Empty:
                return
            if item is None:  # close() was called: put it back for _serve
                self._tasks.put(None)
                return
            self._run_task(item)

    def call(self, fn, timeout: float = CALL_TIMEOUT):
        """Run ``fn()`` in the trainer thread (between two steps while training) and return its result."""
        if threading.current_thread() is self._thread:
            return fn()
        future: Future = Future()
        self._tasks.put((fn, future))
        self._wake.set()
        return future.result(timeout)

    def submit(self, fn) -> Future:
        """Queue ``fn()`` for the trainer thread without waiting."""
        future: Future = Future()
        self._tasks.put((fn, future))
        self._wake.set()
        return future

    # -- setting up ----------------------------------------------------------------------------------
    def _load_data(self, dataset: str, input_shape: tuple[int, ...]) -> RunData:
        key = (dataset, input_shape if dataset.startswith(FOLDER) else None)
        if self._data_cache is not None and self._data_cache[0] == key:
            return self._data_cache[1]
        data = load_run_data(dataset, self.data_dir, input_shape, self.download)
        self._data_cache = (key, data)
        return data

    def _new_run_dir(self) -> Path:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        path, n = self.out_dir / f"run-{stamp}", 1
        while path.exists():
            n += 1
            path = self.out_dir / f"run-{stamp}-{n}"
        return path

    def _make_run(self, trainer: Trainer, data: RunData, dataset: str, run_dir: Path) -> Run:
        """Wire the trainer to the studio and choose the images the test cards show."""
        trainer.callbacks = [CheckpointWriter(run_dir / "checkpoint.npz"), self._callback]
        trainer.extra = {"dataset": data.source, "image_shape": list(data.train.images.shape[1:]),
                         "studio_dataset": dataset}
        if data.test is not None and len(data.test):
            images, labels, name = data.test.images, data.test.labels, "test"
        elif trainer.config.val_fraction > 0:
            _, val = split_validation(len(data.train), trainer.config.val_fraction, trainer.config.seed)
            images, labels, name = data.train.images[val], data.train.labels[val], "validation"
        else:
            images, labels, name = data.train.images, data.train.labels, "training"
        return Run(trainer, data, dataset, run_dir, images, labels, name)

    def _check_fit(self, net, data: RunData, config: FitConfig) -> Preprocessor:
        train: Dataset = data.train
        classes = len(train.classes)
        if net.head != "softmax":
            raise setup_mod.SetupError("the studio trains classifiers: end the specs with "
                                       "{\"type\": \"softmax\", \"classes\": ...}", "spec")
        if net.output_shape[0] != classes:
            raise setup_mod.SetupError(f"layer {len(net.specs()) - 1} (softmax): the net has "
                                       f"{net.output_shape[0]} classes, the dataset {classes}; set \"classes\": "
                                       f"{classes}", "spec")
        try:
            return Preprocessor.fit(train.images, net.input_shape, train.classes, flip=config.flip,
                                    max_shift=config.max_shift)
        except ValueError as e:  # ShapeError: the net's input does not take these images
            raise setup_mod.SetupError(f"layer 0 (input): {e}", "spec") from None

    def validate(self, specs_text) -> dict:
        """The spec editor's check: the layer table, or SetupError(field="spec")."""
        net = setup_mod.build_net(specs_text)
        return {"layers": layer_rows(net), "params": net.num_params(), "input_shape": list(net.input_shape)}

    def start(self, payload: dict, flip_default: dict[str, bool]) -> dict:
        """Start a new run from the page's setup; SetupError names the field that is wrong."""
        setup = setup_mod.parse_setup(payload, flip_default)

        def prepare() -> Run:
            net = setup_mod.build_net(setup.specs, seed=setup.config.seed)
            data = self._load_data(setup.dataset, net.input_shape)
            pre = self._check_fit(net, data, setup.config)
            return self._make_run(Trainer(net, setup.config, pre), data, setup.dataset, self._new_run_dir())

        with self._claim(IDLE, "start a new run"):
            run = self.call(prepare)
            self.monitor.reset()
        self._launch(run, fresh=True)
        return self.status()

    def resume_run(self, epochs: int | None = None) -> dict:
        """Continue the current run (stopped, finished or loaded from a checkpoint), optionally to more epochs."""
        with self._claim(("loaded", "finished", "stopped"), "continue"):
            run = self.run
            s, c = run.trainer.state, run.trainer.config
            if epochs is not None:
                c.epochs = epochs
            if c.epochs is not None and s.epoch >= c.epochs:
                raise setup_mod.SetupError(f"the run has done {s.epoch} epochs: set epochs above {s.epoch} to "
                                           "continue", "settings")
            run.trainer.stop_requested = False
        self._launch(run, fresh=False)
        return self.status()

    def load(self, path: Path) -> dict:
        """Load a checkpoint to inspect it or continue it; its dataset must be available here."""
        def prepare() -> Run:
            try:
                net, opt_state, saved = load_checkpoint(path)
                config = FitConfig(**saved["config"])
                state = TrainerState(**saved["state"])
                pre = Preprocessor.from_dict(saved["preprocess"])
                optimizer = make_optimizer(net, config)
                optimizer.load_state_dict(opt_state)
            except (ConvnetpyError, KeyError, TypeError, ValueError) as e:
                raise setup_mod.SetupError(f"not a checkpoint the studio can load: {e}", "checkpoint") from None
            dataset = self._dataset_id(saved)
            data = self._load_data(dataset, net.input_shape)
            trainer = Trainer(net, config, pre, optimizer=optimizer, state=state)
            return self._make_run(trainer, data, dataset, self._new_run_dir())

        with self._claim(IDLE, "load a checkpoint"):
            run = self.call(prepare)
        with self._lock:
            self.run, self.state, self.message = run, "loaded", ""
        self.monitor.reset(run.trainer.state.history, run.trainer.config.batch_size)
        self.hub.forget("network", "tests")
        self._publish_status()
        self._publish_setup(fresh=True)
        if self.hub.watching:
            self.submit(lambda: self.monitor.publish_views(run))
        return self.status()

    def _dataset_id(self, saved: dict) -> str:
        """The page's id for a checkpoint's dataset: a name, or an image folder inside the data directory."""
        if saved.get("studio_dataset"):
            return saved["studio_dataset"]
        name = str(saved.get("dataset", ""))
        if name in NAMED:
            return name
        if self.data_dir is not None and Path(name).is_absolute():
            try:
                return FOLDER + Path(name).resolve().relative_to(self.data_dir.resolve()).as_posix()
            except ValueError:
                pass
        raise setup_mod.SetupError(f"the checkpoint was trained on {name!r}, which is not a dataset the studio can "
                                   "reach (a named dataset or an image folder inside the data directory)", "dataset")

    @contextlib.contextmanager
    def _claim(self, states: tuple[str, ...], what: str):
        """Enter state "preparing" if the session is in one of ``states``; on an error, go back."""
        with self._lock:
            if self.state not in states:
                raise StudioError(f"cannot {what} while the session is {self.state}")
            previous, self.state = self.state, "preparing"
        self._publish_status()  # the page says so while the data loads
        try:
            yield
        except BaseException:
            with self._lock:
                self.state = previous
            self._publish_status()
            raise

    def _launch(self, run: Run, fresh: bool) -> None:
        """Train ``run`` in the trainer thread; ``fresh``: a new run (the page clears its charts)."""
        with self._lock:
            self.run, self.state, self.message = run, "running", ""
            self._paused, self._pending, self._refit_batch = False, {}, None
            self.started_at, self.ended_at = time.monotonic(), None
        self.hub.forget("network", "tests")
        self._publish_status()
        self._publish_setup(fresh=fresh)
        self.submit(lambda: self._train(run))

    # -- training (trainer thread) --------------------------------------------------------------------
    def _train(self, run: Run) -> None:
        trainer, timer = run.trainer, PassTimer(run.trainer.net)
        self.monitor.timer = timer
        images, labels = run.data.train.images, run.data.train.labels
        val = (None, None)
        if run.data.test is not None and trainer.config.val_fraction == 0:
            val = (run.data.test.images, run.data.test.labels)
        final, message = "stopped", ""
        try:
            while True:
                trainer.fit(images, labels, *val)
                if self._refit_batch is None or self.state == "stopping":
                    break
                self._apply_batch_size(trainer, len(images))
            final = "finished" if trainer.state.finished else "stopped"
        except TrainingDiverged as e:
            final, message = "failed", str(e)
        except Exception as e:  # a bug or a resource problem: the page shows it, the server keeps serving
            traceback.print_exc(file=sys.stderr)
            final, message = "failed", f"{type(e).__name__}: {e}"
        finally:
            timer.remove()
            self.monitor.timer = None
        with self._lock:
            self.state, self.message, self.ended_at = final, message, time.monotonic()
            self._paused = False
        self.monitor.publish_stats(trainer, final)
        if self.hub.watching:
            self.monitor.publish_views(run)
        self._publish_status()

    def _apply_batch_size(self, trainer: Trainer, n_train: int) -> None:
        """Continue the interrupted epoch at the same place with the new batch size."""
        c, s = trainer.config, trainer.state
        n = n_train - int(round(n_train * c.val_fraction)) if c.val_fraction > 0 else n_train
        done = min(s.step * c.batch_size, n)  # examples of this epoch already seen
        c.batch_size, self._refit_batch = self._refit_batch, None
        s.step = done // c.batch_size
        trainer.stop_requested = False

    def _callback(self, event: dict, trainer: Trainer) -> None:
        """The studio as a Trainer callback: statistics, pictures, then page requests, settings and pause."""
        run = self.run
        self.monitor.on_event(event, trainer, run, self.state)
        if event["event"] not in ("step", "epoch_end"):
            return
        self._apply_pending(trainer)
        self._drain()
        if self._paused and not trainer.stop_requested:
            t0 = time.monotonic()
            self.monitor.publish_stats(trainer, "paused")
            if self.hub.watching:
                self.monitor.publish_views(run)
            while self._paused and not trainer.stop_requested:
                self._wake.wait(0.1)
                self._wake.clear()
                self._drain()
                self._apply_pending(trainer)
            self.monitor.paused_for(time.monotonic() - t0)

    def _apply_pending(self, trainer: Trainer) -> None:
        with self._lock:
            changes, self._pending = self._pending, {}
        for key, value in changes.items():
            self._set(trainer, key, value)

    def _set(self, trainer: Trainer, key: str, value) -> None:
        """One live setting, applied between steps; marked on the loss chart."""
        c, opt = trainer.config, trainer.optimizer
        old = getattr(c, key)
        if value == old:
            return
        if key == "batch_size":
            if self.state in ("running", "paused"):
                self._refit_batch = value
                trainer.stop_requested = True  # fit ends after this step; _train continues with the new size
            else:
                c.batch_size = value
        else:
            setattr(c, key, value)
            if hasattr(opt, key):
                setattr(opt, key, value)
        label = {"lr": "learning rate", "batch_size": "batch size", "weight_decay": "weight decay"}.get(key, key)
        self.monitor.mark(trainer.state.examples_seen, f"{label} {old:g} \u2192 {value:g}")
        self.monitor.last_stats[key] = value

    # -- controls (request threads) -----------------------------------------------------------------
    def change(self, payload: dict) -> dict:
        """Change learning rate, momentum, batch size or weight decay; applied between steps."""
        settings = setup_mod.live_settings(payload)
        if self.run is None:
            raise StudioError("no run to change: start one first")
        c = self.run.trainer.config
        if "momentum" in settings and c.optimizer != "sgd":
            raise setup_mod.SetupError(f"momentum applies to sgd; this run uses {c.optimizer}", "settings")
        if c.nesterov and settings.get("momentum", 1.0) <= 0:
            raise setup_mod.SetupError("Nesterov momentum needs momentum > 0", "settings")
        with self._lock:
            training = self.state in ("running", "paused")
            if training:
                self._pending.update(settings)
        if training:
            self._wake.set()
        else:
            self.call(lambda: [self._set(self.run.trainer, k, v) for k, v in settings.items()])
        return {"applied": settings, "when": "next step" if training else "now"}

    def pause(self) -> dict:
        with self._lock:
            if self.state != "running":
                raise StudioError(f"cannot pause while the session is {self.state}")
            self._paused, self.state = True, "paused"
        self._publish_status()
        return self.status()

    def resume(self) -> dict:
        with self._lock:
            if self.state != "paused":
                raise StudioError(f"cannot resume while the session is {self.state}")
            self._paused, self.state = False, "running"
        self._wake.set()
        self._publish_status()
        return self.status()

    def stop(self, wait: float | None = None) -> dict:
        """Stop after the current step (the checkpoint writer saves); ``wait`` seconds for it to end."""
        with self._lock:
            if self.state not in ("running", "paused"):
                raise StudioError(f"cannot stop while the session is {self.state}")
            self.state, self._paused = "stopping", False
            self.run.trainer.stop_requested = True
        self._wake.set()
        self._publish_status()
        if wait:
            self.wait(wait)
        return self.status()

    def wait(self, timeout: float) -> bool:
        """Wait until no run is training; True if none is."""
        busy = ("preparing", "running", "paused", "stopping")
        end = time.monotonic() + timeout
        while self.state in busy and time.monotonic() < end:
            time.sleep(0.02)
        return self.state not in busy

    def close(self, timeout: float = 60.0) -> Path | None:
        """Server shutdown: stop training cleanly and end the trainer thread; returns the checkpoint kept."""
        end = time.monotonic() + timeout
        while self.state == "preparing" and time.monotonic() < end:  # a run being set up: let it start, then stop it
            time.sleep(0.02)
        if self.state in ("running", "paused"):
            self.stop()
        self.wait(timeout)
        self._tasks.put(None)
        self._thread.join(timeout)
        ckpt = self.run.run_dir / "checkpoint.npz" if self.run is not None else None
        return ckpt if ckpt is not None and ckpt.is_file() else None

    def checkpoint(self) -> Path:
        """Write the current checkpoint (in the trainer thread, between steps) and return its path."""
        if self.run is None:
            raise StudioError("no run yet: nothing to save")
        run = self.run

        def save() -> Path:
            path = run.run_dir / "checkpoint.npz"
            save_checkpoint(path, run.trainer.net, run.trainer.optimizer, run.trainer.state_dict())
            return path

        return self.call(save)

    # -- reporting ------------------------------------------------------------------------------------
    def status(self) -> dict:
        with self._lock:
            run, state, message, seq = self.run, self.state, self.message, self._seq
        out = {"state": state, "message": message, "seq": seq, "watching": self.hub.watching}
        if run is not None:
            s = run.trainer.state
            out.update(dataset=run.dataset, run_dir=str(run.run_dir), epoch=s.epoch,
                       epochs=run.trainer.config.epochs, examples_seen=s.examples_seen)
        return out

    def _publish_status(self) -> None:
        self.hub.publish({"type": "status", **self.status()})

    def _publish_setup(self, fresh: bool) -> None:
        """The run's facts; a fresh run's also carry its curves so far (a loaded checkpoint's history)."""
        message = {"type": "setup", "fresh": fresh, **self.describe()}
        if fresh:
            message.update(series=list(self.monitor.points), marks=list(self.monitor.marks))
        self.hub.publish(message)

    def describe(self) -> dict:
        """The run's fixed facts for the page: layers, classes, settings, data kind."""
        run = self.run
        if run is None:
            return {}
        net, c = run.net, run.trainer.config
        return {"dataset": run.dataset, "specs": net.specs(), "layers": layer_rows(net), "params": net.num_params(),
                "classes": run.classes, "input_shape": list(net.input_shape), "image_shape": list(run.image_shape),
                "signals": len(net.input_shape) == 2, "digits": is_digits(run.classes, net.input_shape),
                "test_source": run.test_name, "test_count": len(run.test_labels),
                "config": {k: getattr(c, k) for k in ("optimizer", "lr", "momentum", "nesterov", "batch_size",
                                                      "weight_decay", "epochs", "augment", "seed")}}

    def hello(self) -> list[str]:
        """Messages that bring a newly opened tab up to date (JSON texts)."""
        import json

        from .hub import _jsonable

        m = self.monitor
        # Copies: the trainer thread appends to these (copying a list or dict is atomic under the GIL).
        first = {"type": "hello", "status": self.status(), "setup": self.describe(), "stats": dict(m.last_stats),
                 "series": list(m.points), "marks": list(m.marks)}
        texts = [json.dumps(_jsonable(first), separators=(",", ":"))]
        texts += [self.hub.latest[k] for k in ("network", "tests") if k in self.hub.latest]
        return texts
