"""Data-parallel training over MPI: K ranks equal one process, resume across rank counts, failures end the job.

The first tests run in this process, with a ``FakeWorld`` standing in for MPI (sharding, gradient buckets, the
Dropout and BatchNorm twins, launcher detection). The rest launch real ``mpiexec -n 2`` and ``-n 3`` jobs on this
machine (two cores: oversubscribed): ``mpi_worker.py`` does many runs per launch and writes what every rank ends
with; the tests compare that with one process doing the same. Every launch has a timeout, so a hang fails a test.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import mpi_worker as worker
from convnetpy import Net, cli, shards
from convnetpy.callbacks import CheckpointWriter
from convnetpy.checkpoint import load_checkpoint
from convnetpy.data import load_dataset
from convnetpy.distributed import (
    DataParallel,
    GradientBuckets,
    MPIError,
    ShardedDropout,
    SyncBatchNorm1D,
    SyncBatchNorm2D,
    World,
    connect,
    evaluate,
    launcher_size,
)
from convnetpy.distributed import layers as twins
from convnetpy.distributed.world import share_cores
from convnetpy.functional.parallel import available_cpus, get_num_threads, set_num_threads
from convnetpy.layers import BatchNorm1D, BatchNorm2D, Dropout
from convnetpy.preprocess import Preprocessor
from convnetpy.train import evaluate as evaluate_here
from train_helpers import CLASSES, SPECS, fashion_data_dir, synthetic

WORKER = Path(worker.__file__)
LAUNCH_TIMEOUT = 240  # seconds: a launch that takes longer is taken for a hang


# -- in this process: a stand-in for MPI -------------------------------------------------------------------------------
class FakeWorld(World):
    """``size`` ranks seen from ``rank``, without MPI: every other rank is taken to hold what this one holds, so a
    sum is ``size`` times this rank's buffer and a max is the buffer. ``root`` replaces what rank 0 broadcasts."""

    def __init__(self, rank: int = 0, size: int = 1, root: dict | None = None) -> None:
        self.rank, self.size, self.root, self.comm_seconds = rank, size, root or {}, 0.0
        self.calls: list[tuple[str, int]] = []

    def allreduce(self, buf, op="sum"):
        self.calls.append((op, buf.size))
        if op == "sum":
            buf *= self.size
        return buf

    def broadcast(self, buf):
        return buf

    def broadcast_object(self, obj):
        return {**obj, **self.root} if isinstance(obj, dict) else obj


@pytest.mark.parametrize("n", [0, 1, 2, 5, 16, 17])
@pytest.mark.parametrize("size", [1, 2, 3, 4])
def test_shards_cover_the_batch_in_order_with_sizes_one_apart(n, size):
    shards = [FakeWorld(r, size).shard(n) for r in range(size)]
    assert [i for s in shards for i in range(n)[s]] == list(range(n))
    sizes = [s.stop - s.start for s in shards]
    assert max(sizes) - min(sizes) <= 1


def test_an_empty_shard_runs_one_stand_in_row_that_does_not_count():
    idx = np.array([40, 70])
    parts = []
    for rank in range(3):  # 2 rows over 3 ranks: rank 0 gets none
        dp = DataParallel(FakeWorld(rank, 3))
        mine, rng = dp.shard(idx, None)
        parts.append((dp.current.real, mine.tolist(), rng))
    assert parts == [(0, [40], None), (1, [40], None), (1, [70], None)]
    dscores = np.ones((1, 3), np.float32)
    dp = DataParallel(FakeWorld(0, 3))
    dp.shard(idx, None)
    assert dp.combine_loss(2.5, dscores, 1) == (0.0, 0)  # neither its loss nor its hits count
    assert not dscores.any() and dscores.dtype == np.float32


@pytest.mark.parametrize("shape, flip, max_shift", [
    ((1, 14, 14), True, 2),  # random 12x12 crops of padded 14x14 images, and flips
    ((1, 12, 12), False, 1),  # shifts
    ((3, 9), False, 3),  # shifts of 1D signals
])
def test_each_rank_augments_its_rows_as_one_process_would(shape, flip, max_shift):
    """Random crops, shifts and flips (or shifts of 1D signals) of rows [lo, hi) of the batch."""
    rng = np.random.default_rng(6)
    images = rng.integers(0, 256, (10, *shape)).astype(np.uint8 if len(shape) == 3 else np.float32)
    pre = Preprocessor.fit(images, (1, 12, 12) if len(shape) == 3 else shape, flip=flip, max_shift=max_shift)
    one_process = np.random.default_rng([3, 1, 4])
    whole = pre(images, rng=one_process)
    for rank in range(3):
        dp = DataParallel(FakeWorld(rank, 3))
        mine, step_rng = dp.shard(np.arange(10), np.random.default_rng([3, 1, 4]))
        assert np.array_equal(pre(images[mine], rng=step_rng), whole[mine])
        assert step_rng.rng.bit_generator.state == one_process.bit_generator.state  # advanced alike
    with pytest.raises(AttributeError, match=r"draws with integers\(\) and random\(\) only; normal\(\)"):
        step_rng.normal(size=3)


def test_combine_loss_weighs_a_shard_by_its_share_of_the_batch():
    dp = DataParallel(FakeWorld(1, 2))  # rows [2, 5) of 5, and (fake) a rank 0 like it
    dp.shard(np.arange(5), None)
    dscores = np.full((3, 2), 0.5, np.float32)
    loss, hits = dp.combine_loss(1.25, dscores, 2)
    np.testing.assert_allclose(dscores, 0.5 * 3 / 5)
    assert (loss, hits) == (pytest.approx(2 * 1.25 * 3 / 5), 4)


def test_gradient_buckets_hold_whole_gradients_in_order_and_sum_them_in_place():
    net = Net(SPECS, seed=0)
    rng = np.random.default_rng(1)
    for p in net.params():
        p.grad[...] = rng.standard_normal(p.grad.shape)
    before = {p.name: (p.grad, p.grad.copy()) for p in net.params()}
    buckets = GradientBuckets(net.params(), bucket_bytes=600)
    assert [p.name for b in buckets.buckets for p in b] == [p.name for p in net.params()]
    assert buckets.numel == net.num_params()
    assert all(len(b) == 1 or sum(p.value.nbytes for p in b) <= 600 for b in buckets.buckets)
    assert 1 < len(buckets.buckets) < len(net.params())  # a few messages: fewer than tensors
    world = FakeWorld(size=3)
    buckets.allreduce(world)
    assert world.calls == [("sum", b.size) for b in buckets.buffers]
    for p in net.params():
        array, old = before[p.name]
        assert p.grad is array  # in place: the optimizer holds these arrays
        np.testing.assert_allclose(p.grad, 3 * old, rtol=1e-6)
    assert len(GradientBuckets(net.params()).buckets) == 1  # 2 KiB of gradients: one message


def _shard(world, batch, lo, hi):
    return SimpleNamespace(world=world, batch=batch, lo=lo, hi=hi, real=hi - lo)


@pytest.mark.parametrize("cls, twin, shape", [
    (BatchNorm2D, SyncBatchNorm2D, (6, 3, 4, 5)),
    (BatchNorm1D, SyncBatchNorm1D, (6, 3)),
    (BatchNorm1D, SyncBatchNorm1D, (6, 3, 7)),
])
def test_sync_batchnorm_on_one_rank_is_batchnorm(cls, twin, shape):
    rng = np.random.default_rng(2)
    x, dy = rng.standard_normal(shape) * 3 + 1, rng.standard_normal(shape)
    plain, synced = cls(3, dtype=np.float64), cls(3, dtype=np.float64)
    for layer in (plain, synced):
        layer.params["weight"][...] = [0.5, 1.5, -1.0]
    swapped = twins.install(SimpleNamespace(layers=[synced]), _shard(FakeWorld(), shape[0], 0, shape[0]))
    assert type(synced) is twin
    np.testing.assert_allclose(synced.forward(x, training=True), plain.forward(x, training=True), atol=1e-12)
    np.testing.assert_allclose(synced.backward(dy), plain.backward(dy), atol=1e-12)
    for key in ("weight", "bias"):
        np.testing.assert_allclose(synced.grads[key], plain.grads[key], atol=1e-12)
    for key in ("running_mean", "running_var"):
        np.testing.assert_allclose(synced.buffers[key], plain.buffers[key], atol=1e-12)
    np.testing.assert_allclose(synced.forward(x), plain.forward(x), atol=1e-12)  # evaluation: running statistics
    twins.uninstall(swapped)
    assert type(synced) is cls and not hasattr(synced, "_shard")


def test_sharded_dropout_keeps_its_rows_of_the_whole_batch_mask():
    x = np.random.default_rng(3).standard_normal((8, 5)).astype(np.float32)
    whole = Dropout(0.3, rng=np.random.default_rng(5))
    y = whole.forward(x, training=True)
    dx = whole.backward(np.ones_like(x))
    part = Dropout(0.3, rng=np.random.default_rng(5))
    twins.install(SimpleNamespace(layers=[part]), _shard(FakeWorld(1, 3), 8, 2, 5))
    assert type(part) is ShardedDropout
    assert np.array_equal(part.forward(x[2:5], training=True), y[2:5])
    assert np.array_equal(part.backward(np.ones((3, 5), np.float32)), dx[2:5])
    assert part.rng.bit_generator.state == whole.rng.bit_generator.state  # advanced as for the whole batch
    assert np.array_equal(part.forward(x[2:5]), x[2:5])


def test_sharded_evaluation_on_one_rank_is_evaluation():
    net = Net(SPECS, seed=1)
    images, labels = synthetic(23, seed=4)
    pre = Preprocessor.fit(images, net.input_shape, CLASSES)
    ours = evaluate(FakeWorld(), net, pre, images, labels, batch_size=5)
    theirs = evaluate_here(net, pre, images, labels)
    assert (ours["accuracy"], ours["n"], ours["confusion"]) == (theirs["accuracy"], theirs["n"], theirs["confusion"])
    assert ours["loss"] == pytest.approx(theirs["loss"], rel=1e-6)


def test_ranks_with_other_data_or_settings_are_refused():
    trainer = worker.build("sgd-float64")
    images, labels = worker.data("sgd-float64")
    dp = DataParallel(FakeWorld(1, 2, root={"examples": 200}))
    message = ("^rank 1 of 2 has 161 training examples where rank 0 has 200: every rank must run the same command on "
               "the same data$")
    with pytest.raises(ValueError, match=message), dp.attach(trainer, labels[:161]):
        pass
    dp = DataParallel(FakeWorld(1, 2, root={"config": {}}))
    with pytest.raises(ValueError, match="has another config than rank 0"), dp.attach(trainer, labels):
        pass


# -- finding the launcher ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("environ, size", [
    ({}, None),
    ({"PMI_SIZE": "3", "PMI_RANK": "0"}, 3),
    ({"OMPI_COMM_WORLD_SIZE": "4"}, 4),
    ({"MV2_COMM_WORLD_SIZE": "2"}, 2),
    ({"PMIX_RANK": "1"}, 0),
    ({"SLURM_NTASKS": "8"}, None),  # inside a Slurm allocation, not started by srun's MPI
])
def test_launcher_size_reads_what_the_launchers_set(environ, size):
    assert launcher_size(environ) == size


def test_each_rank_takes_its_share_of_the_cores(monkeypatch):
    cores = available_cpus()
    monkeypatch.setattr(shards, "SHARDS", shards.SHARDS)  # restored afterwards
    with one_thread():  # restores the thread count afterwards
        user_set_blas = {"OMP_NUM_THREADS": "1"}  # BLAS is left alone
        assert share_cores(2, user_set_blas) == get_num_threads() == shards.SHARDS == max(1, cores // 2)
        assert share_cores(1000, user_set_blas) == get_num_threads() == shards.SHARDS == 1


def test_one_process_needs_no_mpi(monkeypatch):
    monkeypatch.setitem(sys.modules, "mpi4py", None)  # importing it would fail
    assert connect({}) is None
    assert connect({"PMI_SIZE": "1"}) is None


def test_a_launcher_without_mpi4py_is_one_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "mpi4py", None)
    with pytest.raises(MPIError, match=r"^started by an MPI launcher \(PMI_SIZE=2\), but mpi4py is not installed: "
                                       r"pip install 'convnetpy\[mpi\]'$"):
        connect({"PMI_SIZE": "2"})


# -- real MPI jobs -----------------------------------------------------------------------------------------------------
@functools.cache
def mpiexec() -> list[str] | None:
    """The mpiexec of the MPI beside this Python (the mpich wheel's), else the one on PATH; Open MPI's needs flags to
    run more ranks than cores, and as root."""
    beside = Path(sys.executable).with_name("mpiexec")
    exe = str(beside) if beside.exists() else shutil.which("mpiexec")
    if exe is None or importlib.util.find_spec("mpi4py") is None:
        return None
    version = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=30).stdout
    if "Open MPI" in version or "OpenRTE" in version:
        return [exe, "--oversubscribe", *(["--allow-run-as-root"] if os.geteuid() == 0 else [])]
    return [exe]


needs_mpi = pytest.mark.skipif(mpiexec() is None, reason="needs mpi4py and mpiexec: pip install 'convnetpy[mpi]'")


def mpi_env(folder: Path) -> dict:
    """One BLAS thread per rank (they share two cores); no user data, no cache."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PMI_", "OMPI_", "PMIX_", "MV2_"))}
    return {**env, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
            "CONVNETPY_DATA": str(folder / "env-data"), "XDG_CACHE_HOME": str(folder / "xdg-cache")}


def launch(n: int, argv: list, env: dict, timeout: float = LAUNCH_TIMEOUT) -> subprocess.CompletedProcess:
    """``mpiexec -n N ARGV``; a launch still running after ``timeout`` seconds is killed (all its processes) and
    fails the test."""
    cmd = [*mpiexec(), "-n", str(n), *map(str, argv)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"{' '.join(cmd)} still ran after {timeout} s (a hang):\n{err[-3000:]}")
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


@contextlib.contextmanager
def one_thread():
    """The single-process references run like one rank: with one thread of our own."""
    before = get_num_threads()
    set_num_threads(1)
    try:
        yield
    finally:
        set_num_threads(before)


def saved_run(path) -> tuple[dict, dict]:
    """(arrays, history) of a run written by ``mpi_worker.save_run``."""
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files if k != "history"}
        return arrays, json.loads(str(f["history"]))


def reference(case: str, tmp: Path) -> tuple[dict, dict]:
    with one_thread():
        trainer = worker.build(case)
        trainer.fit(*worker.data(case))
    worker.save_run(tmp / f"{case}-reference.npz", trainer)
    return saved_run(tmp / f"{case}-reference.npz")


def tolerance(dtype) -> float:
    """float64: the issue's 1e-10; float32: round-off (a few dozen ulps at the weights' scale after 22 steps)."""
    return 1e-10 if dtype == np.float64 else 2e-5


def assert_same_run(ours: tuple[dict, dict], theirs: tuple[dict, dict], dtype) -> None:
    (a, history_a), (b, history_b) = ours, theirs
    assert a.keys() == b.keys()
    for key in a:
        scale = max(1.0, float(np.abs(b[key]).max())) if dtype == np.float32 else 1.0
        np.testing.assert_allclose(a[key], b[key], rtol=0, atol=tolerance(dtype) * scale, err_msg=key)
    rel = 1e-12 if dtype == np.float64 else 1e-5
    for ra, rb in zip(history_a["steps"], history_b["steps"], strict=True):
        same = ("step", "epoch", "accuracy", "lr")
        assert [ra[k] for k in same] == [rb[k] for k in same]
        assert ra["loss"] == pytest.approx(rb["loss"], rel=rel)
    for ra, rb in zip(history_a["epochs"], history_b["epochs"], strict=True):
        assert ra["val_accuracy"] == rb["val_accuracy"] and ra["train_accuracy"] == pytest.approx(rb["train_accuracy"])
        assert ra["val_loss"] == pytest.approx(rb["val_loss"], rel=rel)


@pytest.fixture(scope="module")
def references(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("references")
    return {case: reference(case, tmp) for case in worker.CASES}


@pytest.fixture(scope="module", params=[2, 3], ids=["2-ranks", "3-ranks"])
def launched(request, tmp_path_factory):
    """One ``mpiexec -n K python mpi_worker.py OUT`` (with ``stopped-1.npz``, a one-process checkpoint, to resume)."""
    if mpiexec() is None:
        pytest.skip("needs mpi4py and mpiexec: pip install 'convnetpy[mpi]'")
    k, out = request.param, tmp_path_factory.mktemp(f"mpi{request.param}")
    with one_thread():
        stop = [worker.StopAt(worker.STOP_AT), CheckpointWriter(out / "stopped-1.npz")]
        worker.build(worker.RESUME_CASE, callbacks=stop).fit(*worker.data())
    result = launch(k, [sys.executable, WORKER, out], mpi_env(out))
    assert result.returncode == 0, result.stderr[-5000:]
    return SimpleNamespace(k=k, out=out)


@needs_mpi
@pytest.mark.parametrize("case", list(worker.CASES))
def test_k_ranks_end_with_the_weights_of_one_process(launched, references, case):
    """Same data order, global batch 16 (shards of 5-6 rows; the last batch of 1 or 2 leaves some ranks empty)."""
    runs = [saved_run(launched.out / f"{case}-rank{r}.npz") for r in range(launched.k)]
    for arrays, history in runs[1:]:  # every rank holds exactly rank 0's weights and history
        assert history == runs[0][1]
        for key, value in arrays.items():
            assert np.array_equal(value, runs[0][0][key]), key
    assert_same_run(runs[0], references[case], worker.CASES[case][1])


@needs_mpi
def test_a_k_rank_checkpoint_resumes_on_one_process(launched, references, tmp_path):
    """The stop was requested by a callback on rank 0 alone: every rank stopped after the same step."""
    path = launched.out / f"stopped-{launched.k}.npz"
    _, opt, saved = load_checkpoint(path)
    assert (saved["state"]["global_step"], opt["steps"], saved["state"]["finished"]) == (worker.STOP_AT,) * 2 + (False,)
    with one_thread():
        trainer = worker.resume(path)
        trainer.fit(*worker.data())
    worker.save_run(tmp_path / "resumed.npz", trainer)
    assert_same_run(saved_run(tmp_path / "resumed.npz"), references[worker.RESUME_CASE], np.float64)


@needs_mpi
def test_a_one_process_checkpoint_resumes_on_k_ranks(launched, references):
    for r in range(launched.k):
        assert_same_run(saved_run(launched.out / f"resumed-rank{r}.npz"), references[worker.RESUME_CASE], np.float64)


@needs_mpi
def test_ctrl_c_on_one_rank_stops_every_rank_after_the_same_step(launched):
    for r in range(launched.k):
        assert json.loads((launched.out / f"interrupted-rank{r}.json").read_text()) == \
               {"interrupted": True, "global_step": worker.SIGINT_AT}
    _, opt, saved = load_checkpoint(launched.out / "interrupted.npz")
    assert (saved["state"]["step"], opt["steps"]) == (worker.SIGINT_AT, worker.SIGINT_AT)


@needs_mpi
def test_sharded_evaluation_sums_the_counts_of_every_rank(launched):
    results = [json.loads((launched.out / f"evaluation-rank{r}.json").read_text()) for r in range(launched.k)]
    assert all(result == results[0] for result in results)
    net = Net(SPECS, seed=1)
    pre = Preprocessor.fit(worker.data()[0], net.input_shape, CLASSES)
    expected = evaluate_here(net, pre, *synthetic(61, seed=4))
    assert (results[0]["accuracy"], results[0]["n"], results[0]["confusion"]) == \
           (expected["accuracy"], expected["n"], expected["confusion"])
    assert results[0]["loss"] == pytest.approx(expected["loss"], rel=1e-6)


# -- the command line under mpiexec ------------------------------------------------------------------------------------
N_TRAIN, N_TEST, BATCH = 256, 64, 32  # 230 training images (10% held out): 8 steps per epoch
CLI_SPECS = [
    {"type": "input", "shape": [1, 24, 24]},
    {"type": "conv", "filters": 4, "size": 3, "pad": 1, "activation": "relu"},
    {"type": "pool", "size": 4},
    {"type": "fc", "neurons": 12, "activation": "relu", "dropout": 0.25},
    {"type": "softmax", "classes": 10},
]
FIGURES = ("curves.png", "filters.png", "feature_maps.png", "predictions.png", "confusion.png")


@pytest.fixture(scope="module")
def cli_env(tmp_path_factory):
    """A --data-dir with 256 + 64 images of the bundled Fashion-MNIST sample, the tiny net's spec file, and the
    reference: ``convnetpy train`` for one and for two epochs in one process."""
    if mpiexec() is None:
        pytest.skip("needs mpi4py and mpiexec: pip install 'convnetpy[mpi]'")
    root = tmp_path_factory.mktemp("mpi-cli")
    spec = root / "tiny.json"
    spec.write_text(json.dumps(CLI_SPECS))
    env = SimpleNamespace(root=root, data=fashion_data_dir(root, N_TRAIN, N_TEST), spec=spec, environ=mpi_env(root))
    with one_thread():
        for epochs in (1, 2):
            assert in_process(env, root / f"one-{epochs}", "--epochs", epochs) == 0
    return env


def train_argv(env, out, *extra) -> list:
    return ["train", env.spec, "--dataset", "fashion-mnist", "--data-dir", env.data, "--batch-size", BATCH,
            "--out", out, *extra]


def in_process(env, out, *extra) -> int:
    """``convnetpy train`` in this process, quietly."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return cli.main([str(a) for a in train_argv(env, out, *extra)])


def convnetpy(*argv) -> list:
    """The command line run by every rank (the console script's code, with this Python)."""
    return [sys.executable, "-c", "from convnetpy.cli import entry_point; entry_point()", *argv]


def assert_same_checkpoint(a, b) -> None:
    """Two float32 runs agree to round-off: weights, optimizer state, position, and the loss of every step."""
    net_a, opt_a, saved_a = load_checkpoint(a)
    net_b, opt_b, saved_b = load_checkpoint(b)
    sa, sb = net_a.state_dict(), net_b.state_dict()
    for key in sb:
        np.testing.assert_allclose(sa[key], sb[key], rtol=0, atol=2e-5 * max(1.0, np.abs(sb[key]).max()), err_msg=key)
    for key in opt_b["arrays"]:
        np.testing.assert_allclose(opt_a["arrays"][key], opt_b["arrays"][key], rtol=0, atol=2e-5, err_msg=key)
    assert opt_a["steps"] == opt_b["steps"]
    state_a, state_b = saved_a["state"], saved_b["state"]
    assert (state_a["epoch"], state_a["step"], state_a["global_step"]) == \
           (state_b["epoch"], state_b["step"], state_b["global_step"])
    losses = [r["loss"] for r in state_b["history"]["steps"]]
    assert [r["loss"] for r in state_a["history"]["steps"]] == pytest.approx(losses, rel=1e-5)
    assert [layer.rng.bit_generator.state for layer in net_a.layers if hasattr(layer, "rng")] == \
           [layer.rng.bit_generator.state for layer in net_b.layers if hasattr(layer, "rng")]


@needs_mpi
def test_train_and_evaluate_under_mpiexec_print_and_write_once(cli_env, tmp_path):
    out = tmp_path / "run"
    result = launch(2, convnetpy(*train_argv(cli_env, out, "--epochs", 1)), cli_env.environ)
    assert result.returncode == 0, result.stderr[-5000:]
    assert result.stderr.count(f"({N_TRAIN} images) -> {out} on 2 MPI processes") == 1
    assert result.stderr.count("epoch 1: train loss") == 1  # one progress bar
    assert result.stdout.count("test accuracy") == 1 and f"({N_TEST} images)" in result.stdout
    assert sorted(p.name for p in out.iterdir()) == sorted(["checkpoint.npz", "history.json", *FIGURES])
    assert_same_checkpoint(out / "checkpoint.npz", cli_env.root / "one-1" / "checkpoint.npz")

    argv = ["evaluate", out / "checkpoint.npz", "--dataset", "fashion-mnist", "--data-dir", cli_env.data, "--json"]
    result = launch(3, convnetpy(*argv), cli_env.environ)
    assert result.returncode == 0, result.stderr[-5000:]
    assert result.stdout.count("\n") == 1  # rank 0 alone prints
    ours = json.loads(result.stdout)
    net, _, saved = load_checkpoint(out / "checkpoint.npz")
    test = load_dataset("fashion-mnist", "test", data_dir=cli_env.data)
    theirs = evaluate_here(net, Preprocessor.from_dict(saved["preprocess"]), test.images, test.labels)
    assert (ours["accuracy"], ours["n"], ours["confusion"]) == (theirs["accuracy"], N_TEST, theirs["confusion"])
    assert ours["loss"] == pytest.approx(theirs["loss"], rel=1e-5)


@needs_mpi
def test_resume_a_one_process_run_on_two_ranks(cli_env, tmp_path):
    """Rank 0 alone reads the checkpoint and sends it to the others."""
    out = tmp_path / "run"
    shutil.copytree(cli_env.root / "one-1", out)
    result = launch(2, convnetpy(*train_argv(cli_env, out, "--epochs", 2, "--resume")), cli_env.environ)
    assert result.returncode == 0, result.stderr[-5000:]
    assert result.stderr.count("at epoch 2, step 0") == 1
    assert_same_checkpoint(out / "checkpoint.npz", cli_env.root / "one-2" / "checkpoint.npz")


@needs_mpi
def test_an_error_rank_0_finds_alone_ends_every_rank_together_with_one_message(cli_env, tmp_path):
    """Only rank 0 looks for the checkpoint to resume; the others get its error and all exit 2 at once."""
    started = time.monotonic()
    result = launch(2, convnetpy(*train_argv(cli_env, tmp_path / "none", "--resume")), cli_env.environ, timeout=120)
    assert result.returncode == 2
    assert time.monotonic() - started < 30  # no waiting for a rank that failed alone
    assert result.stderr == f"convnetpy: error: rank 0 of 2: --resume: no checkpoint at {tmp_path / 'none'}" \
                            f"/checkpoint.npz\n"


@needs_mpi
@pytest.mark.parametrize("fault, message", [
    ("raise", "convnetpy: error: rank 1 of 2 failed: RuntimeError: injected failure after step 11"),
    ("oserror", "convnetpy: error: rank 1 of 2: injected disk failure after step 11"),
    ("kill", None),
])
def test_a_failing_rank_ends_the_job_and_the_checkpoint_resumes(cli_env, tmp_path, fault, message):
    """Rank 1 fails in the second epoch (step 11 of 16); rank 0 waits for it inside a collective. The job must end
    promptly, non-zero, naming the rank; epoch 1's checkpoint must load, and resume (on one process) to the end."""
    out = tmp_path / "run"
    started = time.monotonic()
    result = launch(2, [sys.executable, WORKER, "cli", fault, 1, 11, *train_argv(cli_env, out, "--epochs", 2)],
                    cli_env.environ, timeout=120)
    seconds = time.monotonic() - started
    assert result.returncode != 0
    assert seconds < 60, f"the job took {seconds:.0f} s to end"
    if message is not None:
        assert message in result.stderr, result.stderr[-3000:]
    _, _, saved = load_checkpoint(out / "checkpoint.npz")
    assert (saved["state"]["epoch"], saved["state"]["step"]) == (1, 0)
    assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp")]
    with one_thread():
        assert in_process(cli_env, out, "--epochs", 2, "--resume") == 0
    assert_same_checkpoint(out / "checkpoint.npz", cli_env.root / "one-2" / "checkpoint.npz")


@needs_mpi
def test_mpiexec_from_another_mpi_is_one_clear_error(tmp_path):
    """A launcher that says 2 processes while mpi4py's MPI sees 1 (the symptom of mismatched MPIs)."""
    env = {**mpi_env(tmp_path), "PMI_SIZE": "2"}
    result = subprocess.run(convnetpy("summary", "mnistnet"), capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("convnetpy: error: the MPI launcher started 2 "
                                                                       "processes, but mpi4py's MPI")
    assert "sees 1: mpiexec comes from another MPI implementation" in result.stderr
