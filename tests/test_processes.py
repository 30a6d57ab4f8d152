"""Helper processes run shards of a training step (convnetpy.processes): bitwise the numbers of the threads,
errors raised in the caller, and a stopped helper never loses a step."""

import os
import signal

import numpy as np
import pytest

import convnetpy
from convnetpy import processes, shards
from convnetpy.functional import parallel
from convnetpy.layers import ReLU
from convnetpy.models import cifar10net, lenet5
from convnetpy.optim import SGD

pytestmark = pytest.mark.skipif(os.name != "posix", reason="helper processes need POSIX")


@pytest.fixture
def two_threads():
    threads, count, enabled = parallel.get_num_threads(), shards.SHARDS, processes.processes_enabled()
    parallel.set_num_threads(2)
    shards.SHARDS = 2
    processes.use_processes(True)
    yield
    parallel.set_num_threads(threads)
    shards.SHARDS = count
    processes.use_processes(enabled)


def _batch(net, n, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, *net.input_shape)).astype(net.dtype)
    if net.head == "regression":
        return x, rng.standard_normal((n, *net.output_shape)).astype(net.dtype)
    return x, rng.integers(0, net.output_shape[0], n)


def _steps(specs, use_helpers: bool, batches, dtype=np.float32):
    """Loss, scores and parameters after each of a few SGD steps, with or without helper processes."""
    processes.use_processes(use_helpers)
    net = convnetpy.Net(specs, seed=0, dtype=dtype)
    opt = SGD(net.params(), lr=0.01, momentum=0.9)
    out = []
    for n in batches:
        x, y = _batch(net, n, seed=n)
        loss, scores = net.train_step(x, y)
        opt.step()
        out.append((loss, scores, [p.value.copy() for p in net.params()], [p.grad.copy() for p in net.params()]))
    return out


def _assert_same(a, b):
    for (loss_a, scores_a, values_a, grads_a), (loss_b, scores_b, values_b, grads_b) in zip(a, b, strict=True):
        assert loss_a == loss_b
        assert np.array_equal(scores_a, scores_b)
        assert all(np.array_equal(u, v) for u, v in zip(values_a, values_b, strict=True))
        assert all(np.array_equal(u, v) for u, v in zip(grads_a, grads_b, strict=True))


def _helper_steps() -> int:
    return sum(helper.steps for helper in processes._helpers)


@pytest.mark.parametrize("model", [cifar10net, lenet5])
@pytest.mark.parametrize("head", [None, {"type": "svm", "classes": 10}, {"type": "regression", "outputs": 10}])
def test_helpers_compute_bitwise_what_threads_compute(two_threads, model, head):
    """Steps of several batch sizes (the shared memory is laid out again for each), softmax, svm and
    regression heads: the same losses, scores, gradients and updated weights as on threads."""
    specs = model() if head is None else model()[:-1] + [head]
    batches = [64, 40, 64]
    before = _helper_steps()
    with_helpers = _steps(specs, True, batches)
    assert _helper_steps() == before + len(batches)  # the helper ran a shard of every step
    _assert_same(with_helpers, _steps(specs, False, batches))


@pytest.mark.parametrize("model", [cifar10net, lenet5])
def test_inference_on_helpers_is_bitwise_what_threads_compute(two_threads, model):
    net = convnetpy.Net(model(), seed=0)
    batches = [_batch(net, n, seed=n)[0] for n in (64, 40, 500)]
    before = _helper_steps()
    with_helpers = [net.forward(x) for x in batches]
    probabilities = net.predict_proba(batches[2], batch_size=100)
    assert _helper_steps() == before + len(batches) + 5
    processes.use_processes(False)
    for x, scores in zip(batches, with_helpers):
        assert np.array_equal(scores, net.forward(x))
    assert np.array_equal(probabilities, net.predict_proba(batches[2], batch_size=100))


def test_helpers_compute_float64_and_follow_the_kernel_settings(two_threads, kernels):
    specs = lenet5()
    _assert_same(_steps(specs, True, [48], np.float64), _steps(specs, False, [48], np.float64))
    _assert_same(_steps(specs, True, [48]), _steps(specs, False, [48]))


def test_three_shards_on_three_threads_use_two_helpers(two_threads):
    shards.SHARDS = 3
    parallel.set_num_threads(3)
    with_helpers = _steps(lenet5(), True, [70, 70])
    assert len([h for h in processes._helpers if h.alive()]) >= 2
    parallel.set_num_threads(1)
    _assert_same(with_helpers, _steps(lenet5(), True, [70, 70]))  # one thread, no helpers


def test_a_helper_follows_changes_of_net(two_threads):
    """Two nets take turns on one helper, and a net cast to float64 is sent again."""
    processes.use_processes(True)
    nets = [convnetpy.Net(lenet5(), seed=s) for s in (0, 1)]
    x, y = _batch(nets[0], 64)
    first = [net.train_step(x, y)[0] for net in nets]
    second = [net.train_step(x, y)[0] for net in nets]
    assert first == second and first[0] != first[1]
    nets[0].astype(np.float64)
    loss64, _ = nets[0].train_step(x.astype(np.float64), y)
    processes.use_processes(False)
    assert loss64 == nets[0].train_step(x.astype(np.float64), y)[0]


def test_an_error_in_a_helper_is_raised_in_the_caller(two_threads):
    net = convnetpy.Net(lenet5(), seed=0)
    x, y = _batch(net, 64)
    bad = y.copy()
    bad[-1] = 10  # in the helper's shard only
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 9\]"):
        net.train_step(x, bad)
    before = _helper_steps()
    loss, _ = net.train_step(x, y)  # the helper goes on
    assert _helper_steps() == before + 1
    processes.use_processes(False)
    assert loss == net.train_step(x, y)[0]


def test_an_interrupted_step_leaves_no_reply_behind(two_threads, monkeypatch):
    """The caller's own shard fails after the helper started: the next step reads its own reply, not that one."""
    net = convnetpy.Net(lenet5(), seed=0)
    x, y = _batch(net, 64)
    calls = {"n": 0}
    original = shards.train_shard

    def fail_once(*args):
        calls["n"] += 1
        if calls["n"] == 1:
            raise KeyboardInterrupt
        return original(*args)

    monkeypatch.setattr(shards, "train_shard", fail_once)
    with pytest.raises(KeyboardInterrupt):
        net.train_step(x, y)
    x2, y2 = _batch(net, 64, seed=5)
    loss, scores = net.train_step(x2, y2)
    grads = [p.grad.copy() for p in net.params()]
    processes.use_processes(False)
    expected_loss, expected_scores = net.train_step(x2, y2)
    assert loss == expected_loss and np.array_equal(scores, expected_scores)
    assert all(np.array_equal(g, p.grad) for g, p in zip(grads, net.params()))


def test_a_dead_helper_is_replaced(two_threads):
    net = convnetpy.Net(lenet5(), seed=0)
    x, y = _batch(net, 64)
    loss = net.train_step(x, y)[0]
    helper = processes._helpers[0]
    os.kill(helper.process.pid, signal.SIGKILL)
    helper.process.wait()
    assert net.train_step(x, y)[0] == loss
    assert processes._helpers[0] is not helper and processes._helpers[0].steps == 1


@pytest.mark.skipif(not os.path.exists("/proc/self/maps"), reason="reads /proc/PID/maps")
def test_a_helper_does_without_scipy(two_threads):
    """Numba loads SciPy's BLAS where SciPy is installed; a helper's kernels never call it (16 MB saved).
    ``compiled._import_numba`` keeps it out."""
    pytest.importorskip("scipy")
    net = convnetpy.Net(lenet5(), seed=0)
    net.train_step(*_batch(net, 64))
    helper = processes._helpers[0]
    assert helper.steps >= 1
    with open(f"/proc/{helper.process.pid}/maps") as maps:
        libraries = maps.read()
    assert "numba" in libraries  # the kernels are compiled code
    assert f"{os.sep}scipy{os.sep}" not in libraries


def test_a_helper_that_stops_during_a_step_loses_nothing(two_threads, monkeypatch):
    net = convnetpy.Net(lenet5(), seed=0)
    x, y = _batch(net, 64)
    net.train_step(x, y)
    helper = processes._helpers[0]
    os.kill(helper.process.pid, signal.SIGKILL)
    helper.process.wait()
    monkeypatch.setattr(processes.Helper, "alive", lambda self: True)  # as if it died after the step began
    with pytest.warns(RuntimeWarning, match="helper process stopped"):
        loss, scores = net.train_step(x, y)  # this thread ran the helper's shard
    grads = [p.grad.copy() for p in net.params()]
    monkeypatch.undo()
    processes.use_processes(True)
    assert net.train_step(x, y)[0] == loss  # on a new helper
    assert processes._helpers[0] is not helper and processes._helpers[0].steps == 1
    processes.use_processes(False)
    threads_loss, threads_scores = net.train_step(x, y)
    assert threads_loss == loss and np.array_equal(threads_scores, scores)
    assert all(np.array_equal(g, p.grad) for g, p in zip(grads, net.params()))


def test_a_helper_that_cannot_start_switches_helpers_off(two_threads, monkeypatch):
    processes.close_helpers()
    monkeypatch.setattr(processes.sys, "executable", "/bin/false")  # exits at once
    net = convnetpy.Net(lenet5(), seed=0)
    x, y = _batch(net, 64)
    with pytest.warns(RuntimeWarning, match="could not start.*threads only"):
        loss, _ = net.train_step(x, y)
    assert not processes.processes_enabled()
    assert net.train_step(x, y)[0] == loss


def test_no_process_to_be_had_switches_helpers_off(two_threads, monkeypatch):
    processes.close_helpers()

    def no_process(*args, **kwargs):
        raise OSError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(processes.subprocess, "Popen", no_process)
    net = convnetpy.Net(lenet5(), seed=0)
    x, y = _batch(net, 64)
    with pytest.warns(RuntimeWarning, match="cannot start a helper process.*Resource temporarily"):
        loss, _ = net.train_step(x, y)
    assert not processes.processes_enabled()
    processes.use_processes(False)
    assert net.train_step(x, y)[0] == loss


def test_nets_helpers_cannot_rebuild_run_on_threads(two_threads):
    class MyReLU(ReLU):  # defined here: a helper could not import it
        pass

    specs_net = convnetpy.Net(lenet5(), seed=0)
    layers = [MyReLU() if isinstance(layer, ReLU) else layer for layer in specs_net.layers]
    net = convnetpy.Net(layers, input_shape=specs_net.input_shape, head="softmax")
    assert not processes.usable(net.layers)
    assert processes.usable(specs_net.layers)
    before = _helper_steps()
    x, y = _batch(net, 64)
    net.train_step(x, y)
    assert _helper_steps() == before


def test_one_thread_starts_no_helper(two_threads):
    processes.close_helpers()
    parallel.set_num_threads(1)
    net = convnetpy.Net(lenet5(), seed=0)
    net.train_step(*_batch(net, 64))
    assert processes._helpers == []


def test_switching_helpers_off_stops_them(two_threads):
    net = convnetpy.Net(lenet5(), seed=0)
    net.train_step(*_batch(net, 64))
    running = list(processes._helpers)
    assert running
    processes.use_processes(False)
    assert processes._helpers == []
    assert all(helper.process.poll() is not None for helper in running)
