"""What the studio costs: images/second of the same run with ``convnetpy train``'s Trainer and in the studio.

    python benchmarks/studio.py                                   # lenet5 on the Fashion-MNIST sample, 2 epochs
    python benchmarks/studio.py --model cifar10net --dataset cifar10 --data-dir ../shared/data --epochs 1

Rounds alternate, so both see the same machine load (a first warm-up round is not counted):

- ``train``: the Trainer in this thread with the command line's callbacks (progress bar to nowhere, checkpoint
  and history writers), as ``convnetpy train`` runs it;
- ``studio``: a real studio server (uvicorn, in a thread) with a real browser-like client on its WebSocket
  reading every message, the run started through ``api/start``: the trainer thread, statistics every 0.5 s,
  pictures (one example's activations and filters, 100 test predictions, cards, confusion matrix) as often as
  their 5% budget allows;
- ``unwatched`` (optional): the studio with nobody connected (statistics only).

Throughput is examples seen / wall-clock seconds of the fit (validation passes included, data loading not), so
time spent in callbacks counts. Same net, data, seed and settings (the page's defaults, which are the command
line's). Prints medians, the ratio studio / train (the issue asks for >= 0.90), what the client received, and
the CPU load: on a shared machine, read the ratio rather than the absolute numbers.
"""

from __future__ import annotations

import argparse
import io
import json
import socket
import statistics
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from convnetpy import cli, models
from convnetpy.callbacks import CheckpointWriter, HistoryWriter, ProgressBar
from convnetpy.studio.config import parse_setup
from load import LoadMeter


def payload(args) -> dict:
    return {"dataset": args.dataset, "specs": json.dumps(models.MODELS[args.model]()), "epochs": args.epochs,
            "batch_size": args.batch_size, "seed": 0}


def run_train(args, out: Path) -> float:
    """The plain Trainer, as ``convnetpy train`` wires it; returns images/second."""
    from convnetpy.net import Net
    from convnetpy.preprocess import Preprocessor
    from convnetpy.studio.datasets import load_run_data
    from convnetpy.train import Trainer

    setup = parse_setup(payload(args), cli.FLIP_DEFAULT)
    net = Net(setup.specs, seed=setup.config.seed)
    data = load_run_data(args.dataset, args.data_dir, net.input_shape, download=False)
    pre = Preprocessor.fit(data.train.images, net.input_shape, data.train.classes, flip=setup.config.flip,
                           max_shift=setup.config.max_shift)
    trainer = Trainer(net, setup.config, pre, callbacks=[ProgressBar(file=io.StringIO()),
                                                         CheckpointWriter(out / "checkpoint.npz"),
                                                         HistoryWriter(out / "history.json")])
    t0 = time.perf_counter()
    trainer.fit(data.train.images, data.train.labels)
    return trainer.state.examples_seen / (time.perf_counter() - t0)


class Studio:
    """A studio server on a free port in a thread (started once, reused by every round)."""

    def __init__(self, data_dir, out: Path) -> None:
        import uvicorn

        from convnetpy.studio import create_app

        self.app = create_app(data_dir, out, download=False)
        self.session = self.app.state.session
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.url = f"127.0.0.1:{sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(self.app, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True)
        self.thread.start()
        while not self.server.started:
            time.sleep(0.05)

    def run(self, args, watch: bool) -> tuple[float, dict]:
        """One run through the page's API; returns images/second and what the client received."""
        from websockets.sync.client import connect

        received = {"messages": 0, "bytes": 0}
        done = threading.Event()

        def client():
            with connect(f"ws://{self.url}/ws", max_size=None) as ws:
                while not done.is_set():
                    try:
                        text = ws.recv(timeout=0.5)
                    except TimeoutError:
                        continue
                    received["messages"] += 1
                    received["bytes"] += len(text)

        reader = threading.Thread(target=client, daemon=True) if watch else None
        if reader:
            reader.start()
            while self.session.hub.watching == 0:
                time.sleep(0.01)
        request = urllib.request.Request(f"http://{self.url}/api/start", json.dumps(payload(args)).encode(),
                                         {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=120):  # an error status raises
            pass
        while self.session.state in ("preparing", "running"):
            time.sleep(0.01)
        if self.session.state != "finished":
            raise RuntimeError(f"the studio run ended {self.session.state}: {self.session.message}")
        s = self.session
        ips = s.run.trainer.state.examples_seen / (s.ended_at - s.started_at)
        done.set()
        if reader:
            reader.join(10)
        received["seconds"] = s.ended_at - s.started_at
        return ips, received

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="lenet5", choices=sorted(models.MODELS))
    parser.add_argument("--dataset", default="fashion-mnist-sample")
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--modes", nargs="+", default=["train", "studio"], choices=["train", "studio", "unwatched"])
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        studio = Studio(args.data_dir, Path(tmp) / "studio")
        results = {mode: [] for mode in args.modes}
        traffic = []
        meter = LoadMeter().start()
        try:
            for r in range(-1, args.rounds):  # round 0 warms up (JIT-compiled kernels, caches) and is not counted
                for mode in args.modes:
                    if mode == "train":
                        ips = run_train(args, Path(tmp) / f"train-{r}")
                    else:
                        ips, received = studio.run(args, watch=mode == "studio")
                        if mode == "studio" and r >= 0:
                            traffic.append(received)
                    if r >= 0:
                        results[mode].append(ips)
                    print(f"round {r + 1} {mode:9s} {ips:8,.0f} images/s" + (" (warm-up)" if r < 0 else ""),
                          flush=True)
        finally:
            studio.close()
        load = meter.busy()

    print(f"\n{args.model} on {args.dataset}, {args.epochs} epoch(s), batch {args.batch_size}, "
          f"{args.rounds} round(s); cpu load {load:.2f} CPUs")
    medians = {mode: statistics.median(v) for mode, v in results.items()}
    for mode, value in medians.items():
        ratio = f"  ({value / medians['train']:.3f} of train)" if "train" in medians and mode != "train" else ""
        print(f"{mode:9s} {value:8,.0f} images/s (median){ratio}")
    if traffic:
        seconds = sum(t["seconds"] for t in traffic)
        print(f"the watching client received {sum(t['messages'] for t in traffic) / seconds:.1f} messages/s, "
              f"{sum(t['bytes'] for t in traffic) / seconds / 1024:.1f} KiB/s")


if __name__ == "__main__":
    main()
