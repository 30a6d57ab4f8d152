"""Threaded kernels give bitwise the same results as single-threaded ones."""

import numpy as np
import pytest

import convnetpy
from convnetpy.functional import parallel
from convnetpy.models import cifar10net


@pytest.fixture
def threads():
    before = parallel.get_num_threads()
    yield parallel.set_num_threads
    parallel.set_num_threads(before)


def _train_step(n_threads: int):
    parallel.set_num_threads(n_threads)
    net = convnetpy.Net(cifar10net(), seed=0)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((16, 3, 32, 32), dtype=np.float32)
    y = rng.integers(0, 10, 16)
    loss = net.backprop(x, y)
    dx = net.backward(net.loss(net.forward(x, training=True), y)[1], input_grad=True)
    return loss, dx, [p.grad.copy() for p in net.params()]


def test_threads_do_not_change_results(threads):
    loss1, dx1, grads1 = _train_step(1)
    loss3, dx3, grads3 = _train_step(3)
    assert loss1 == loss3
    assert np.array_equal(dx1, dx3)
    for g1, g3 in zip(grads1, grads3):
        assert np.array_equal(g1, g3)


def test_over_batch_covers_every_example_once(threads):
    threads(4)
    seen = np.zeros(1000, dtype=int)

    def mark(b):
        seen[b] += 1

    parallel.over_batch(mark, 1000, work=10**7)
    assert (seen == 1).all()


def test_worker_errors_are_raised(threads):
    threads(2)

    def fail(b):
        raise RuntimeError(f"failed on {b}")

    with pytest.raises(RuntimeError, match="failed on"):
        parallel.over_batch(fail, 100, work=10**7)


def test_bad_thread_count():
    with pytest.raises(ValueError, match="must be >= 1"):
        parallel.set_num_threads(0)
