"""Shared by the studio tests: small nets, what the page sends, synthetic image folders, waiting for a state."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from train_helpers import SPECS

# A small net for the bundled Fashion-MNIST sample: 28x28 grey -> conv 4x5x5 stride 2 -> pool -> 10 classes.
FASHION_SPECS = [
    {"type": "input", "shape": [1, 28, 28]},
    {"type": "conv", "filters": 4, "size": 5, "stride": 2, "pad": "same", "activation": "relu"},
    {"type": "pool", "size": 2},
    {"type": "softmax", "classes": 10},
]
BAR_SPECS = SPECS  # 12x12 grey, conv 4x3x3 + relu + pool + fc 16 + dropout + softmax over 3 bar classes


def write_folder(root: Path, images: np.ndarray, labels: np.ndarray, classes: list[str]) -> Path:
    """Images (N, 1, H, W) uint8 as PNGs in ``root/<class>/<i>.png``."""
    from PIL import Image

    for i, (image, label) in enumerate(zip(images, labels)):
        folder = root / classes[label]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image[0]).save(folder / f"{i}.png")
    return root


def setup_payload(dataset: str = "folder:bars", specs=BAR_SPECS, **settings) -> dict:
    """What the page's Start button sends."""
    return {"dataset": dataset, "specs": json.dumps(specs), "epochs": 1000, "batch_size": 16, "lr": 0.01,
            **settings}


def wait_until(condition, timeout: float = 60.0, what: str = "the condition"):
    """Poll ``condition()`` until it is truthy; return its value or fail naming ``what``."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def session_of(client):
    return client.app.state.session
