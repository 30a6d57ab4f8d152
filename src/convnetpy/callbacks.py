"""Trainer callbacks: the terminal progress bar, the checkpoint writer and the history writer.

Each is a callable ``(event: dict, trainer) -> None``; events are ``fit_start``, ``step``, ``epoch_end`` and
``fit_end`` (see ``convnetpy.train``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .checkpoint import save_checkpoint
from .serialization import atomic_write


class CheckpointWriter:
    """Writes ``path`` atomically after every epoch, when the run ends, and on Ctrl-C.

    A run that diverges (NaN loss or weights) ends with reason ``diverged``, which is not saved, so the last
    good checkpoint stays on disk.
    """

    def __init__(self, path) -> None:
        self.path = Path(path)

    def __call__(self, event: dict, trainer) -> None:
        if event["event"] == "epoch_end" or (event["event"] == "fit_end" and event["reason"] != "diverged"):
            save_checkpoint(self.path, trainer.net, trainer.optimizer, trainer.state_dict())


class HistoryWriter:
    """Writes the run's history (per epoch and per step) as JSON after every epoch and at the end."""

    def __init__(self, path) -> None:
        self.path = Path(path)

    def __call__(self, event: dict, trainer) -> None:
        if event["event"] in ("epoch_end", "fit_end"):
            text = json.dumps(trainer.state.history, indent=1).encode()
            atomic_write(self.path, lambda f: f.write(text))


class ProgressBar:
    """A tqdm bar over the run's steps: epoch, loss, accuracy, images/s and the time left."""

    def __init__(self, file=None, smoothing: int = 50) -> None:
        self.file = file if file is not None else sys.stderr
        self.smoothing = smoothing
        self.bar = None
        self.recent: list[tuple[float, float]] = []

    def __call__(self, event: dict, trainer) -> None:
        from tqdm.auto import tqdm

        kind = event["event"]
        c = trainer.config
        if kind == "fit_start":
            total = c.epochs * event["steps_per_epoch"] if c.epochs else None
            self.bar = tqdm(total=total, initial=trainer.state.global_step, file=self.file, unit="step",
                            dynamic_ncols=True, leave=True)
        elif kind == "step" and self.bar is not None:
            self.recent = (self.recent + [(event["loss"], event["accuracy"])])[-self.smoothing:]
            loss = sum(r[0] for r in self.recent) / len(self.recent)
            accuracy = sum(r[1] for r in self.recent) / len(self.recent)
            post = {"epoch": event["epoch"] + 1, "loss": f"{loss:.3f}", "acc": f"{accuracy:.1%}",
                    "img/s": f"{event['images_per_second']:,.0f}"}
            if c.time_limit:
                post["left"] = f"{max(c.time_limit - event['elapsed'], 0):.0f}s"
            self.bar.set_postfix(post, refresh=False)
            self.bar.update(1)
        elif kind == "epoch_end" and self.bar is not None:
            val = (f", validation loss {event['val_loss']:.4f} accuracy {event['val_accuracy']:.2%}"
                   if "val_accuracy" in event else "")
            self.bar.write(f"epoch {event['epoch']}: train loss {event['train_loss']:.4f} accuracy "
                           f"{event['train_accuracy']:.2%}{val} ({event['seconds']:.0f} s)", file=self.file)
        elif kind == "fit_end" and self.bar is not None:
            self.bar.close()
            self.bar = None
