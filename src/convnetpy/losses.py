"""Loss functions, each returning ``(loss, dscores)``: the mean loss over the batch and its gradient."""

from __future__ import annotations

import numpy as np

from .errors import ShapeError


def _check_labels(scores: np.ndarray, labels: np.ndarray, name: str) -> np.ndarray:
    if scores.ndim != 2:
        raise ShapeError(f"{name}: scores must have shape (N, classes), got {tuple(scores.shape)}")
    labels = np.asarray(labels)
    if labels.shape != (scores.shape[0],) or not np.issubdtype(labels.dtype, np.integer):
        raise ShapeError(f"{name}: labels must be {scores.shape[0]} integers (one per row of scores), "
                         f"got shape {tuple(labels.shape)} of {labels.dtype}")
    if labels.size and (labels.min() < 0 or labels.max() >= scores.shape[1]):
        raise ValueError(f"{name}: labels must lie in [0, {scores.shape[1] - 1}], "
                         f"got values from {labels.min()} to {labels.max()}")
    return labels


def log_softmax(scores: np.ndarray) -> np.ndarray:
    """log(softmax(scores)) along axis 1, shifted by the row maximum so exp never overflows."""
    shifted = scores - scores.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def softmax(scores: np.ndarray) -> np.ndarray:
    """Probabilities (N, classes) from scores (N, classes)."""
    return np.exp(log_softmax(scores))


def softmax_cross_entropy(logits: np.ndarray, labels: np.ndarray):
    """Fused softmax + negative log-likelihood: logits (N, K), integer labels (N,).

    loss = mean_n -log softmax(logits_n)[labels_n]; dlogits = (softmax(logits) - onehot(labels)) / N.
    """
    labels = _check_labels(logits, labels, "softmax_cross_entropy")
    N = logits.shape[0]
    logp = log_softmax(logits)  # (N, K)
    rows = np.arange(N)
    loss = -logp[rows, labels].mean()
    dlogits = np.exp(logp)
    dlogits[rows, labels] -= 1
    dlogits *= 1.0 / N
    return float(loss), dlogits


def multiclass_hinge(scores: np.ndarray, labels: np.ndarray, margin: float = 1.0):
    """Multiclass SVM loss (Weston & Watkins; ConvNetJS's SVMLayer, CS231n):
    loss = mean_n sum_{j != y_n} max(0, scores[n, j] - scores[n, y_n] + margin).
    """
    labels = _check_labels(scores, labels, "multiclass_hinge")
    N = scores.shape[0]
    rows = np.arange(N)
    margins = scores - scores[rows, labels][:, None] + margin  # (N, K)
    margins[rows, labels] = 0
    active = margins > 0
    loss = np.where(active, margins, 0).sum() / N
    dscores = active.astype(scores.dtype)
    dscores[rows, labels] = -active.sum(axis=1)
    dscores *= 1.0 / N
    return float(loss), dscores


def mean_squared_error(pred: np.ndarray, target: np.ndarray):
    """loss = mean over all elements of (pred - target)^2, as torch.nn.MSELoss; pred and target (N, D)."""
    target = np.asarray(target, dtype=pred.dtype)
    if target.shape != pred.shape:
        raise ShapeError(f"mean_squared_error: target shape {tuple(target.shape)} does not match "
                         f"predictions {tuple(pred.shape)}")
    diff = pred - target
    return float(np.mean(diff * diff)), diff * (2.0 / diff.size)


HEAD_LOSSES = {"softmax": softmax_cross_entropy, "svm": multiclass_hinge, "regression": mean_squared_error}
