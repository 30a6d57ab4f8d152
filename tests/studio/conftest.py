"""Fixtures for the studio tests: synthetic image folders in a data directory, and started TestClients."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from studio_helpers import write_folder
from train_helpers import synthetic

NO_STUDIO = "the studio extra is not installed: pip install -e '.[studio]'"


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    """A data directory holding ``bars/`` (train/ 120 and test/ 30 images of 3 classes: horizontal, vertical and
    diagonal bars, 14x14) and ``digits/`` (10 classes "0".."9", 4 images each, 28x28)."""
    root = tmp_path_factory.mktemp("studio-data")
    classes = ["horizontal", "vertical", "diagonal"]
    images, labels = synthetic(150, seed=1)
    write_folder(root / "bars" / "train", images[:120], labels[:120], classes)
    write_folder(root / "bars" / "test", images[120:], labels[120:], classes)
    rng = np.random.default_rng(2)
    digits = rng.integers(0, 255, (40, 1, 28, 28)).astype(np.uint8)
    write_folder(root / "digits", digits, np.arange(40) % 10, [str(d) for d in range(10)])
    return root


@pytest.fixture
def make_client(data_dir, tmp_path):
    """``make_client(**create_app options)`` -> a started TestClient on http://127.0.0.1 (closed afterwards)."""
    TestClient = pytest.importorskip("starlette.testclient", reason=NO_STUDIO).TestClient

    from convnetpy.studio import create_app

    clients = []

    def make(**options):
        options = {"data_dir": data_dir, "out_dir": tmp_path / "runs", "download": False, "stats_interval": 0.05,
                   "viz_interval": 0.05, "viz_budget": 0.5, **options}
        client = TestClient(create_app(**options), base_url="http://127.0.0.1")
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client):
    return make_client()


@pytest.fixture(autouse=True)
def no_user_data(monkeypatch, tmp_path_factory):
    """Keep every test away from the user's cache and $CONVNETPY_DATA (and from downloads: clients pass
    download=False)."""
    monkeypatch.delenv("CONVNETPY_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
