"""Fixtures for the data tests: the shared real datasets, synthetic files in the official formats, a local server."""

from __future__ import annotations

import gzip
import io
import os
import pickle
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

# The real datasets live in shared/data beside the repository (see its README); CONVNETPY_TEST_DATA overrides.
SHARED_DATA = Path(os.environ.get("CONVNETPY_TEST_DATA") or Path(__file__).resolve().parents[3] / "shared" / "data")


def shared_path(sub: str) -> Path:
    """``shared/data/<sub>``, or skip the test with the reason."""
    path = SHARED_DATA / sub
    if not path.exists():
        pytest.skip(f"real data not available: {path} is absent (set CONVNETPY_TEST_DATA to the shared data folder)")
    return path


@pytest.fixture(scope="session")
def shared():
    """``shared("mnist")``: the real dataset's folder, or skip the test saying which folder is missing."""
    return shared_path


@pytest.fixture(autouse=True)
def no_user_data(monkeypatch, tmp_path_factory):
    """Keep every test away from the user's cache and $CONVNETPY_DATA."""
    monkeypatch.delenv("CONVNETPY_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))


# -- synthetic files in the official formats ------------------------------------------------------------------

def idx_bytes(array: np.ndarray) -> bytes:
    """An IDX file's bytes for a uint8 array (written by hand here, independently of convnetpy.data.write_idx)."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + np.ascontiguousarray(array, np.uint8).tobytes()


def gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def mnist_like(n: int = 5, seed: int = 0, size: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """images (n, size, size) uint8, labels (n,) uint8 in 0..9."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, size, size), dtype=np.uint8), rng.integers(0, 10, n, dtype=np.uint8)


def write_mnist_like(folder: Path, split: str = "train", n: int = 5, seed: int = 0, compress: bool = True):
    prefix = "train" if split == "train" else "t10k"
    images, labels = mnist_like(n, seed)
    folder.mkdir(parents=True, exist_ok=True)
    ext = ".gz" if compress else ""
    for name, array in ((f"{prefix}-images-idx3-ubyte", images), (f"{prefix}-labels-idx1-ubyte", labels)):
        data = idx_bytes(array)
        (folder / (name + ext)).write_bytes(gz(data) if compress else data)
    return images, labels


def cifar_like(n: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """images (n, 3, 32, 32) uint8, labels (n,) int64 in 0..9."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8), rng.integers(0, 10, n).astype(np.int64)


def cifar_bin(images: np.ndarray, labels: np.ndarray) -> bytes:
    """Binary-version batch: per record 1 label byte then 3072 pixel bytes (R, G, B planes)."""
    records = np.concatenate([labels.astype(np.uint8)[:, None], images.reshape(len(images), -1)], axis=1)
    return records.tobytes()


def cifar_pickle(images: np.ndarray, labels: np.ndarray, protocol: int = 2, name: str = "test_batch") -> bytes:
    """Python-version batch, keyed like the official files (bytes keys, as Python 2's str)."""
    batch = {b"batch_label": name.encode(), b"labels": [int(v) for v in labels],
             b"data": images.reshape(len(images), -1),
             b"filenames": [f"img_{i}.png".encode() for i in range(len(labels))]}
    return pickle.dumps(batch, protocol=protocol)


def cifar_meta_pickle(protocol: int = 2) -> bytes:
    names = [n.encode() for n in ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                                   "truck")]
    return pickle.dumps({b"label_names": names, b"num_cases_per_batch": 10000, b"num_vis": 3072}, protocol=protocol)


def tar_gz(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture(scope="session")
def synth():
    """The synthetic-file helpers above, for tests (hypothesis tests included) to share."""
    return SimpleNamespace(idx_bytes=idx_bytes, gz=gz, mnist_like=mnist_like, write_mnist_like=write_mnist_like,
                           cifar_like=cifar_like, cifar_bin=cifar_bin, cifar_pickle=cifar_pickle,
                           cifar_meta_pickle=cifar_meta_pickle, tar_gz=tar_gz)


# -- a local HTTP server --------------------------------------------------------------------------------------

@pytest.fixture
def http_server():
    """Serves ``files`` (URL path -> bytes, or (bytes, announced Content-Length)) on 127.0.0.1; 404 otherwise."""
    files: dict[str, bytes | tuple[bytes, int]] = {}
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            entry = files.get(self.path)
            if entry is None:
                self.send_error(404)
                return
            body, length = entry if isinstance(entry, tuple) else (entry, len(entry))
            self.send_response(200)
            self.send_header("Content-Length", str(length))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.timeout = 5
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield SimpleNamespace(url=f"http://127.0.0.1:{server.server_port}/", files=files, hits=hits)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


