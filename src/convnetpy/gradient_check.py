"""gradcheck: every layer's analytic parameter gradients against centred finite differences, in float64.

The net is copied and cast to float64 (the caller's net is left as it was), run in training mode with
dropout masks held fixed, and for each parameter a seeded random subset of entries is nudged by +/-eps:
numerical = (L(w + eps) - L(w - eps)) / (2 eps), compared with what ``backward`` wrote. Entries whose nudge
moves a kink (a ReLU or LeakyReLU input changing sign, a max-pool window changing its maximum, a hinge
margin of the svm head changing sign) are left out: there the loss is not differentiable and the two
gradients legitimately disagree (CS231n, "Gradient checks": kinks in the objective).
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass

import numpy as np

from .layers import LeakyReLU, MaxPool1D, MaxPool2D, ReLU


@dataclass(frozen=True)
class GradcheckRow:
    """One parameter: its layer's index and type, its name, the relative error over the entries checked
    (||analytic - numerical|| / (||analytic|| + ||numerical||), 0 when both are 0, nan when none was
    checked), and how many entries were checked, skipped at a kink, and exist in all."""

    index: int
    layer: str
    param: str
    rel_error: float
    checked: int
    skipped: int
    size: int


@dataclass(frozen=True)
class GradcheckResult:
    """What ``gradcheck`` found: one row per parameter; ``str()`` prints them as a table."""

    rows: tuple[GradcheckRow, ...]
    eps: float

    @property
    def max_error(self) -> float:
        """The largest relative error of any parameter (0.0 when no entry could be checked)."""
        errors = [r.rel_error for r in self.rows if r.checked]
        return max(errors, default=0.0)

    def passed(self, threshold: float = 1e-6) -> bool:
        """True when some entry was checked and every checked parameter's relative error is below threshold."""
        return any(r.checked for r in self.rows) and self.max_error < threshold

    def __str__(self) -> str:
        table = [("#", "layer", "param", "rel. error", "checked", "skipped", "entries")]
        table += [(str(r.index), r.layer, r.param, f"{r.rel_error:.2e}" if r.checked else "-", str(r.checked),
                   str(r.skipped), f"{r.size:,}") for r in self.rows]
        widths = [max(len(row[c]) for row in table) for c in range(len(table[0]))]
        align = "<<<>>>>"
        lines = ["  ".join(f"{cell:{a}{w}}" for cell, a, w in zip(row, align, widths)).rstrip() for row in table]
        lines.insert(1, "  ".join("-" * w for w in widths))
        verdict = "passes" if self.passed() else "fails"
        lines.append(f"max relative error {self.max_error:.2e} ({verdict} 1e-06; eps {self.eps:g}, float64)")
        return "\n".join(lines)


def _float64_copy(net):
    """A deep copy of the net in float64, without the caches and scratch buffers of earlier passes."""
    memo = {}
    for layer in net.layers:
        if getattr(layer, "_cache", None) is not None:
            memo[id(layer._cache)] = None
        if isinstance(getattr(layer, "_workspace", None), dict):
            memo[id(layer._workspace)] = {}
    return copy.deepcopy(net, memo).astype(np.float64)


def _pool_winners(layer, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """For each max-pool output, the offset (row-major in the window) of its first maximum; x and y are
    the pool's input and output."""
    if layer.ndim == 1:
        x, y = x[:, :, None, :], y[:, :, None, :]
    (kh, kw), (sh, sw), (ph, pw) = (layer._as2d(layer.kernel_size, 1), layer._as2d(layer.stride, 1),
                                    layer._as2d(layer.padding, 0))
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=-np.inf)
    oh, ow = y.shape[2:]
    winners = np.full(y.shape, -1, np.int32)
    for t, (a, b) in enumerate(itertools.product(range(kh), range(kw))):
        window = xp[:, :, a:a + sh * (oh - 1) + 1:sh, b:b + sw * (ow - 1) + 1:sw]
        winners[(winners < 0) & (window == y)] = t
    return winners


class _Runner:
    """Runs the float64 copy as ``Net.forward`` does (training mode, same layer order) with fixed dropout
    masks, and returns the loss together with the pattern of kinks it went through."""

    def __init__(self, net, x: np.ndarray, y) -> None:
        self.net, self.x, self.y = net, x, y
        gens = {id(g): g for layer in net.layers if (g := getattr(layer, "rng", None)) is not None}
        self.rng_states = [(g, copy.deepcopy(g.bit_generator.state)) for g in gens.values()]

    def loss(self) -> tuple[float, np.ndarray, list[np.ndarray]]:
        """(loss, dscores, kinks): kinks is a list of boolean or integer arrays, equal when no kink moved."""
        for g, state in self.rng_states:
            g.bit_generator.state = state  # the same dropout masks in every pass
        h, kinks = self.x, []
        for i in self.net._order:
            layer = self.net.layers[i]
            out = layer.forward(h, training=True)
            if isinstance(layer, (ReLU, LeakyReLU)):
                kinks.append(h > 0)
            elif isinstance(layer, (MaxPool1D, MaxPool2D)):
                kinks.append(_pool_winners(layer, h, out))
            h = out
        if self.net.head is None:  # no loss head: y weights the scores, L = sum(scores * y)
            return float(np.sum(h * self.y)), np.asarray(self.y, np.float64), kinks
        loss, dscores = self.net.loss(h, self.y)
        if self.net.head == "svm":  # the hinge max(0, margin) is a kink too
            rows = np.arange(len(h))
            kinks.append(h - h[rows, self.y][:, None] + 1 > 0)
        return loss, dscores, kinks


def gradcheck(net, x: np.ndarray, y, *, eps: float = 1e-6, max_points: int = 20, seed: int = 0) -> GradcheckResult:
    """Relative error of ``backward``'s gradient against centred differences, for every parameter.

    x: a batch (N, *input_shape); y: the head's targets (labels (N,) for softmax and svm, (N, K) for
    regression), or, for a net without a head, weights of the scores' shape (the loss is then
    sum(scores * y)). For each parameter at most ``max_points`` entries are checked (all of a smaller one),
    visited in an order drawn with ``np.random.default_rng(seed)``; entries at a kink are skipped and the
    next ones taken instead, up to 4 * max_points tries. ``eps``: the nudge, in float64.
    Returns a GradcheckResult (rows per parameter, ``max_error``, ``passed(threshold)``, a table as str).
    """
    if max_points < 1:
        raise ValueError(f"gradcheck: max_points must be >= 1, got {max_points}")
    work = _float64_copy(net)
    x = np.asarray(x)
    work._check_input(x)
    if work.head is None:
        y = np.asarray(y, np.float64)
        if y.shape != (len(x), *work.output_shape):
            raise ValueError(f"gradcheck: a net without a loss head takes y of the scores' shape "
                             f"{(len(x), *work.output_shape)} (the loss is sum(scores * y)), got {y.shape}")
    runner = _Runner(work, x.astype(np.float64), y)
    _, dscores, base_kinks = runner.loss()
    work.backward(dscores)
    analytic = {p.name: p.grad.copy() for p in work.params()}
    order_rng = np.random.default_rng(seed)

    def nudged(value: np.ndarray, i: int, delta: float) -> tuple[float, bool]:
        old = value.flat[i]
        value.flat[i] = old + delta
        loss, _, kinks = runner.loss()
        value.flat[i] = old
        moved = any(not np.array_equal(a, b) for a, b in zip(kinks, base_kinks))
        return loss, moved

    rows = []
    for p in work.params():
        value = p.value
        checked, skipped, ours, theirs = 0, 0, [], []
        for i in order_rng.permutation(value.size)[:4 * max_points]:
            if checked == max_points:
                break
            plus, kink_plus = nudged(value, i, eps)
            minus, kink_minus = nudged(value, i, -eps)
            if kink_plus or kink_minus:
                skipped += 1
                continue
            checked += 1
            ours.append(analytic[p.name].flat[i])
            theirs.append((plus - minus) / (2 * eps))
        a, b = np.array(ours), np.array(theirs)
        denom = np.linalg.norm(a) + np.linalg.norm(b)
        error = float(np.linalg.norm(a - b) / denom) if denom > 0 else (0.0 if checked else float("nan"))
        index, key = p.name.split(".", 1)
        rows.append(GradcheckRow(int(index), type(p.layer).__name__, key, error, checked, skipped, value.size))
    return GradcheckResult(tuple(rows), eps)
