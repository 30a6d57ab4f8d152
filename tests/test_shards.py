"""Large batches run as shards on net replicas (convnetpy.shards): the same numbers as the whole batch, on any
number of threads."""

import numpy as np
import pytest

import convnetpy
from convnetpy import shards
from convnetpy.functional import parallel
from convnetpy.layers import Layer
from convnetpy.models import cifar10net, lenet5
from convnetpy.optim import SGD


@pytest.fixture
def restore():
    threads, count = parallel.get_num_threads(), shards.SHARDS
    yield
    parallel.set_num_threads(threads)
    shards.SHARDS = count


def _pass(model, n_shards: int, n_threads: int, batch: int = 70, dtype=np.float32):
    """Loss, input gradient, parameter gradients and inference scores of one training pass."""
    shards.SHARDS = n_shards
    parallel.set_num_threads(n_threads)
    net = convnetpy.Net(model(), seed=0, dtype=dtype)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((batch, *net.input_shape)).astype(dtype)
    y = rng.integers(0, 10, batch)
    loss, dscores = net.loss(net.forward(x, training=True), y)
    dx = net.backward(dscores, input_grad=True)
    return loss, dx, [p.grad.copy() for p in net.params()], net.forward(x)


@pytest.mark.parametrize("model", [cifar10net, lenet5])
@pytest.mark.parametrize("n_shards", [2, 3])
def test_threads_do_not_change_sharded_results(restore, model, n_shards):
    loss1, dx1, grads1, scores1 = _pass(model, n_shards, 1)
    for n_threads in (2, 3):  # as many threads as shards, fewer, and more
        loss, dx, grads, scores = _pass(model, n_shards, n_threads)
        assert loss == loss1
        assert np.array_equal(dx, dx1)
        assert np.array_equal(scores, scores1)
        for g, g1 in zip(grads, grads1):
            assert np.array_equal(g, g1)


@pytest.mark.parametrize("model", [cifar10net, lenet5])
def test_shards_compute_what_the_whole_batch_computes(restore, model):
    whole = _pass(model, 1, 2, dtype=np.float64)
    sharded = _pass(model, 3, 2, dtype=np.float64)
    assert sharded[0] == pytest.approx(whole[0], rel=1e-12)
    np.testing.assert_allclose(sharded[1], whole[1], rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(sharded[3], whole[3], rtol=1e-10, atol=1e-12)
    for g, g1 in zip(sharded[2], whole[2]):
        np.testing.assert_allclose(g, g1, rtol=1e-10, atol=1e-14)


def test_optimizer_updates_reach_every_shard(restore):
    """Replicas share the parameters: training sharded follows training whole, step after step."""
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((64, 3, 32, 32)), rng.integers(0, 10, 64)
    losses = {}
    for n_shards in (1, 2):
        shards.SHARDS = n_shards
        net = convnetpy.Net(cifar10net(), seed=0, dtype=np.float64)
        opt = SGD(net.params(), lr=0.01, momentum=0.9)
        losses[n_shards] = []
        for _ in range(3):
            losses[n_shards].append(net.backprop(x, y))
            opt.step()
    assert losses[1][2] < losses[1][0]  # it learns
    np.testing.assert_allclose(losses[2], losses[1], rtol=1e-10)


def test_shards_cover_the_batch_in_order(restore):
    shards.SHARDS = 3
    layers = convnetpy.Net(cifar10net(), seed=0).layers
    cut = shards.shard_slices(100, layers)
    assert [(s.start, s.stop) for s in cut] == [(0, 33), (33, 66), (66, 100)]
    assert shards.shard_slices(2 * shards.MIN_SHARD_IMAGES - 1, layers) is None  # too small to cut
    assert len(shards.shard_slices(2 * shards.MIN_SHARD_IMAGES, layers)) == 2
    shards.SHARDS = 1
    assert shards.shard_slices(1000, layers) is None


def test_dropout_batchnorm_and_unknown_layers_keep_the_batch_whole(restore):
    shards.SHARDS = 2
    base = [{"type": "input", "shape": [1, 8, 8]}, {"type": "conv", "filters": 2, "size": 3}]
    head = [{"type": "fc", "neurons": 4}, {"type": "softmax", "classes": 3}]
    for extra in ({"type": "dropout", "p": 0.5}, {"type": "batchnorm"}):
        net = convnetpy.Net(base + [extra] + head, seed=0)
        assert shards.shard_slices(64, net.layers) is None, extra

    class Custom(Layer):  # a user's layer may keep any state: not shardable unless it says so
        def forward(self, x, training=False):
            return x

    assert not Custom.shardable
    assert shards.shard_slices(64, [Custom()]) is None


def test_a_failing_shard_raises_in_the_caller(restore):
    parallel.set_num_threads(2)

    def fail():
        raise RuntimeError("shard failed")

    with pytest.raises(RuntimeError, match="shard failed"):
        parallel.run_tasks([lambda: None, fail])


def test_grads_are_written_not_accumulated(restore):
    """Two backward passes after one sharded forward give the same gradients (layers overwrite grads)."""
    shards.SHARDS = 2
    net = convnetpy.Net(lenet5(), seed=0)
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((40, *net.input_shape), dtype=np.float32), rng.integers(0, 10, 40)
    dscores = net.loss(net.forward(x, training=True), y)[1]
    net.backward(dscores)
    first = [p.grad.copy() for p in net.params()]
    net.backward(dscores)
    for g, g1 in zip(net.params(), first):
        assert np.array_equal(g.grad, g1)


def _train_step(model, n_shards: int, n_threads: int, head_specs=None, batch: int = 70, dtype=np.float32):
    """Loss, scores and parameter gradients of Net.train_step, the trainer's fused step."""
    shards.SHARDS = n_shards
    parallel.set_num_threads(n_threads)
    specs = model() if head_specs is None else model()[:-1] + head_specs
    net = convnetpy.Net(specs, seed=0, dtype=dtype)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((batch, *net.input_shape)).astype(dtype)
    y = rng.standard_normal((batch, 10)).astype(dtype) if net.head == "regression" else rng.integers(0, 10, batch)
    loss, scores = net.train_step(x, y)
    return loss, scores, [p.grad.copy() for p in net.params()], (net, x, y)


@pytest.mark.parametrize("model", [cifar10net, lenet5])
@pytest.mark.parametrize("head", [None, [{"type": "svm", "classes": 10}], [{"type": "regression", "outputs": 10}]])
def test_fused_train_step_computes_the_separate_passes(restore, model, head):
    """Each shard's forward, loss and backward in one task: the same loss, scores and gradients as forward,
    loss and backward over the whole batch, and bitwise the same on any number of threads."""
    loss, scores, grads, (net, x, y) = _train_step(model, 3, 2, head, dtype=np.float64)
    shards.SHARDS = 1
    expected_scores = net.forward(x, training=True)
    expected_loss, dscores = net.loss(expected_scores, y)
    net.backward(dscores)
    assert loss == pytest.approx(expected_loss, rel=1e-12)
    np.testing.assert_allclose(scores, expected_scores, rtol=1e-10, atol=1e-12)
    for g, p in zip(grads, net.params()):
        np.testing.assert_allclose(g, p.grad, rtol=1e-10, atol=1e-14)
    for n_threads in (1, 3):
        other = _train_step(model, 3, n_threads, head)
        first = _train_step(model, 3, 2, head)
        assert other[0] == first[0] and np.array_equal(other[1], first[1])
        assert all(np.array_equal(a, b) for a, b in zip(other[2], first[2]))


def test_fused_train_step_reports_bad_targets_for_the_whole_batch(restore):
    shards.SHARDS = 2
    net = convnetpy.Net(lenet5(), seed=0)
    x = np.zeros((64, *net.input_shape), np.float32)
    with pytest.raises(convnetpy.ShapeError, match="labels must be 64 integers"):
        net.train_step(x, np.zeros(63, np.int64))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 9\]"):
        net.train_step(x, np.full(64, 10))
