"""Losses: values and gradients against PyTorch and finite differences, numerical stability, label checks."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from convnetpy import ShapeError
from convnetpy.losses import (
    HEAD_LOSSES,
    log_softmax,
    mean_squared_error,
    multiclass_hinge,
    softmax,
    softmax_cross_entropy,
)
from helpers import assert_close, numerical_gradient, rel_error, torch_tensor


def _random_problem(rng: np.random.Generator, scale: float = 3.0):
    N, K = int(rng.integers(1, 17)), int(rng.integers(2, 12))
    scores = (rng.standard_normal((N, K)) * scale).astype(np.float32)
    labels = rng.integers(0, K, size=N)
    return scores, labels


def _torch_loss_and_grad(fn, scores: np.ndarray, *args):
    ts = torch_tensor(scores, grad=True)
    loss = fn(ts, *args)
    loss.backward()
    return loss.item(), ts.grad


# -- softmax cross-entropy ----------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(20))
def test_softmax_cross_entropy_matches_torch(seed):
    rng = np.random.default_rng(seed)
    logits, labels = _random_problem(rng)
    loss, dlogits = softmax_cross_entropy(logits, labels)
    tloss, tgrad = _torch_loss_and_grad(F.cross_entropy, logits, torch.from_numpy(labels))
    assert isinstance(loss, float)
    np.testing.assert_allclose(loss, tloss, rtol=1e-5, atol=1e-6)
    assert_close(dlogits, tgrad, what="dlogits")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_cross_entropy_is_stable_for_huge_logits(dtype):
    logits = np.array([[1e4, 0.0, -1e4], [1e4, 1e4 - 2, -3.0], [-1e4, -1e4, -1e4 + 1]], dtype=dtype)
    labels = np.array([1, 0, 2])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        loss, dlogits = softmax_cross_entropy(logits, labels)
    tloss, tgrad = _torch_loss_and_grad(F.cross_entropy, logits, torch.from_numpy(labels))
    assert np.isfinite(loss) and np.isfinite(dlogits).all()
    np.testing.assert_allclose(loss, tloss, rtol=1e-5)
    assert_close(dlogits, tgrad, what="dlogits")
    assert dlogits.dtype == dtype


@pytest.mark.parametrize("seed", range(5))
def test_softmax_cross_entropy_finite_differences(seed):
    rng = np.random.default_rng(10 + seed)
    logits, labels = _random_problem(rng)
    logits = logits.astype(np.float64)
    _, dlogits = softmax_cross_entropy(logits, labels)
    numeric = numerical_gradient(lambda: softmax_cross_entropy(logits, labels)[0], logits)
    assert rel_error(dlogits, numeric) < 1e-6


def test_softmax_helpers():
    rng = np.random.default_rng(3)
    scores = rng.standard_normal((4, 6)) * 100
    p = softmax(scores)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(log_softmax(scores), torch.log_softmax(torch.from_numpy(scores), 1).numpy(),
                               rtol=1e-12, atol=1e-12)


# -- multiclass hinge ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(20))
def test_multiclass_hinge_is_torch_multimargin_times_classes(seed):
    """Ours sums over the classes (ConvNetJS, CS231n); MultiMarginLoss divides that sum by the class count."""
    rng = np.random.default_rng(seed)
    scores, labels = _random_problem(rng, scale=1.0)  # small scores: a mix of active and inactive margins
    K = scores.shape[1]
    loss, dscores = multiclass_hinge(scores, labels)
    tloss, tgrad = _torch_loss_and_grad(torch.nn.MultiMarginLoss(margin=1.0), scores, torch.from_numpy(labels))
    np.testing.assert_allclose(loss, tloss * K, rtol=1e-5, atol=1e-6)
    assert_close(dscores, tgrad * K, what="dscores")


@pytest.mark.parametrize("seed", range(5))
def test_multiclass_hinge_finite_differences(seed):
    rng = np.random.default_rng(20 + seed)
    scores, labels = _random_problem(rng, scale=1.0)
    scores = scores.astype(np.float64)
    rows = np.arange(len(labels))
    margins = scores - scores[rows, labels][:, None] + 1.0
    margins[rows, labels] = 1.0  # not a kink
    scores += np.where(np.abs(margins) < 1e-3, 1e-2, 0)  # keep every margin away from the kink at 0
    margins = scores - scores[rows, labels][:, None] + 1.0
    margins[rows, labels] = 1.0
    assert np.abs(margins).min() > 1e-4
    loss, dscores = multiclass_hinge(scores, labels)
    assert loss > 0
    numeric = numerical_gradient(lambda: multiclass_hinge(scores, labels)[0], scores)
    assert rel_error(dscores, numeric) < 1e-6


def test_multiclass_hinge_known_value():
    # CS231n's example: scores (3.2, 5.1, -1.7), true class 0: max(0, 5.1-3.2+1) + max(0, -1.7-3.2+1) = 2.9
    loss, dscores = multiclass_hinge(np.array([[3.2, 5.1, -1.7]]), np.array([0]))
    assert loss == pytest.approx(2.9)
    np.testing.assert_array_equal(dscores, [[-1.0, 1.0, 0.0]])


# -- mean squared error -------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(20))
def test_mean_squared_error_matches_torch(seed):
    rng = np.random.default_rng(seed)
    shape = (int(rng.integers(1, 17)), int(rng.integers(1, 9)))
    pred = rng.standard_normal(shape).astype(np.float32)
    target = rng.standard_normal(shape).astype(np.float32)
    loss, dpred = mean_squared_error(pred, target)
    tloss, tgrad = _torch_loss_and_grad(torch.nn.MSELoss(), pred, torch_tensor(target))
    np.testing.assert_allclose(loss, tloss, rtol=1e-5, atol=1e-7)
    assert_close(dpred, tgrad, what="dpred")


def test_mean_squared_error_finite_differences_and_dtype():
    rng = np.random.default_rng(30)
    pred, target = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    _, dpred = mean_squared_error(pred, target)
    assert rel_error(dpred, numerical_gradient(lambda: mean_squared_error(pred, target)[0], pred)) < 1e-6
    _, d32 = mean_squared_error(pred.astype(np.float32), target)  # a float64 target must not upcast
    assert d32.dtype == np.float32


@pytest.mark.parametrize("fn", [softmax_cross_entropy, multiclass_hinge])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_classification_losses_keep_dtype(fn, dtype):
    scores = np.random.default_rng(4).standard_normal((5, 3)).astype(dtype)
    _, d = fn(scores, np.array([0, 1, 2, 1, 0], dtype=np.int32))
    assert d.dtype == dtype and d.shape == scores.shape


def test_head_losses_registry():
    assert HEAD_LOSSES == {"softmax": softmax_cross_entropy, "svm": multiclass_hinge,
                           "regression": mean_squared_error}


# -- label validation ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("fn", [softmax_cross_entropy, multiclass_hinge])
@pytest.mark.parametrize(("labels", "error", "msg"), [
    (np.array([0, 3, 1]), ValueError, "{name}: labels must lie in [0, 2], got values from 0 to 3"),
    (np.array([0, -1, 1]), ValueError, "{name}: labels must lie in [0, 2], got values from -1 to 1"),
    (np.array([0, 1]), ShapeError,
     "{name}: labels must be 3 integers (one per row of scores), got shape (2,) of int64"),
    (np.array([[0], [1], [2]]), ShapeError,
     "{name}: labels must be 3 integers (one per row of scores), got shape (3, 1) of int64"),
    (np.array([0.0, 1.0, 2.0]), ShapeError,
     "{name}: labels must be 3 integers (one per row of scores), got shape (3,) of float64"),
    (np.array([True, False, True]), ShapeError,
     "{name}: labels must be 3 integers (one per row of scores), got shape (3,) of bool"),
])
def test_labels_are_validated(fn, labels, error, msg):
    scores = np.zeros((3, 3), np.float32)
    with pytest.raises(error, match=re.escape(msg.format(name=fn.__name__))):
        fn(scores, labels)


@pytest.mark.parametrize("fn", [softmax_cross_entropy, multiclass_hinge])
def test_scores_must_be_two_dimensional(fn):
    with pytest.raises(ShapeError, match=re.escape(f"{fn.__name__}: scores must have shape (N, classes), got (3,)")):
        fn(np.zeros(3, np.float32), np.array([0, 1, 2]))


def test_labels_as_list_are_accepted():
    loss, _ = softmax_cross_entropy(np.zeros((2, 4), np.float32), [1, 3])
    assert loss == pytest.approx(np.log(4))


def test_mean_squared_error_rejects_mismatched_target():
    with pytest.raises(ShapeError, match=re.escape(
            "mean_squared_error: target shape (4, 2) does not match predictions (4, 3)")):
        mean_squared_error(np.zeros((4, 3), np.float32), np.zeros((4, 2)))
