"""Figures a training run writes: learning curves, filter grids, feature maps, prediction bars, confusion matrix.

Each ``plot_*`` function draws one PNG with matplotlib and writes it atomically (temp file + ``os.replace``,
so a browser polling the file never sees half an image), returning its ``Path``. Matplotlib is imported
inside the functions, so ``import convnetpy`` stays NumPy-only. Figures are ``matplotlib.figure.Figure``
objects on an Agg canvas, never pyplot: no global backend is chosen, no figure is kept alive, and the
functions are safe to call from a training thread (the studio's worker).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .layers import (
    AvgPool1D,
    AvgPool2D,
    BatchNorm1D,
    BatchNorm2D,
    Conv1D,
    Conv2D,
    Dropout,
    LeakyReLU,
    MaxPool1D,
    MaxPool2D,
    ReLU,
    Sigmoid,
    Tanh,
)
from .serialization import atomic_write

__all__ = ["plot_confusion", "plot_feature_maps", "plot_filters", "plot_history", "plot_predictions"]

DPI = 100
GREEN = (0.33, 0.73, 0.33)  # ConvNetJS's rgb(85,187,85): the true class
RED = (0.73, 0.33, 0.33)  # ConvNetJS's rgb(187,85,85): a wrong top-1 guess
GREY = (0.62, 0.62, 0.62)  # other wrong guesses
GAP = (0.80, 0.88, 0.95)  # pale blue between a filter's channel tiles: no grey value is mistaken for it
_CONV = (Conv1D, Conv2D)
_POOL = (MaxPool1D, MaxPool2D, AvgPool1D, AvgPool2D)
_ELEMENTWISE = (ReLU, LeakyReLU, Tanh, Sigmoid, BatchNorm1D, BatchNorm2D, Dropout)  # drawn fused with their conv


# -- shared helpers --------------------------------------------------------------------------------------
def _figure(width: float, height: float):
    """A pyplot-free Figure on its own Agg canvas (inches)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path) -> Path:
    path = Path(path)
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=DPI))
    return path


def _scaled(a: np.ndarray) -> np.ndarray:
    """``a`` mapped to [0, 1] by its own min and max (a constant array becomes 0.5)."""
    a = np.asarray(a, dtype=np.float64)
    lo, hi = np.nanmin(a), np.nanmax(a)
    return (a - lo) / (hi - lo) if hi > lo else np.full_like(a, 0.5)


def _grid(n: int, max_cols: int) -> tuple[int, int]:
    """(rows, cols) for n cells: about square, at most ``max_cols`` wide."""
    cols = max(1, min(max_cols, math.ceil(math.sqrt(n))))
    return math.ceil(n / cols) if n else 1, cols


def _empty_axis(ax, message: str) -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, color="0.4")
    ax.set_xticks([])
    ax.set_yticks([])


# -- learning curves -------------------------------------------------------------------------------------
def _moving_average(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean over up to ``window`` values (shorter at the start), ignoring NaNs."""
    ok = np.isfinite(values)
    sums = np.concatenate([[0.0], np.cumsum(np.where(ok, values, 0.0))])
    counts = np.concatenate([[0], np.cumsum(ok)])
    hi = np.arange(1, len(values) + 1)
    lo = np.maximum(hi - window, 0)
    n = counts[hi] - counts[lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, (sums[hi] - sums[lo]) / n, np.nan)


def _epoch_x(epochs: list[dict], steps: list[dict]) -> np.ndarray:
    """Where each epoch record sits on the step axis: the global step that ended it.

    Step records carry a 0-based ``epoch`` and epoch records a 1-based one (the count completed). Epochs whose
    steps are missing (a trimmed history) are placed by the mean steps per epoch of those present.
    """
    last = {}
    for r in steps:
        last[int(r["epoch"])] = max(last.get(int(r["epoch"]), 0), int(r["step"]))
    per_epoch = max(last.values()) / (max(last) + 1) if last else 1.0
    return np.array([last.get(int(e["epoch"]) - 1, int(e["epoch"]) * per_epoch) for e in epochs], dtype=float)


def _column(records: list[dict], key: str) -> np.ndarray:
    """One field of every record as floats; a missing or None field is NaN."""
    return np.array([np.nan if r.get(key) is None else r[key] for r in records], dtype=float)


def plot_history(history: dict, path) -> Path:
    """Loss and accuracy curves of a training run, from the Trainer's history.

    history: {"epochs": [{epoch, seconds, train_loss, train_accuracy, val_loss?, val_accuracy?}, ...],
              "steps": [{epoch, step, loss, accuracy, lr, images_per_second}, ...]}; either list may be
    missing or empty (a run that has just started, or one without validation).
    Left panel: the loss of every step (faint), its moving average, and the mean train loss and validation loss
    of each epoch (markers at the step that ended it). Right panel: train and validation accuracy per epoch in
    percent (the steps' moving average when no epoch has finished). The x axis is the global step, or the
    epoch when the history has no steps.
    """
    if not isinstance(history, dict):
        raise TypeError(f"plot_history: history must be a dict with 'epochs' and 'steps' lists, "
                        f"got {type(history).__name__}")
    epochs = [r for r in history.get("epochs") or [] if "epoch" in r]
    steps = [r for r in history.get("steps") or [] if "step" in r and "epoch" in r]
    fig = _figure(11, 4)
    ax_loss, ax_acc = fig.subplots(1, 2)
    step_x = np.array([r["step"] for r in steps], dtype=float)
    epoch_x = _epoch_x(epochs, steps) if steps else np.array([r["epoch"] for r in epochs], dtype=float)
    window = max(1, min(100, len(steps) // 10))  # ~10 points per average early on, 100 steps once runs are long

    if steps:
        loss = _column(steps, "loss")
        ax_loss.plot(step_x, loss, color="tab:blue", alpha=0.25 if window > 1 else 1.0, linewidth=0.8,
                     label="step loss")
        if window > 1:
            ax_loss.plot(step_x, _moving_average(loss, window), color="tab:blue", linewidth=1.6,
                         label=f"moving average ({window} steps)")
    for key, color, label in (("train_loss", "tab:blue", "train (epoch mean)"), ("val_loss", "tab:orange",
                                                                                  "validation")):
        values = _column(epochs, key)
        if np.isfinite(values).any():
            ax_loss.plot(epoch_x, values, "o-", color=color, markersize=5, markeredgecolor="white",
                         linewidth=1.2, label=label)
    if not steps and not epochs:
        _empty_axis(ax_loss, "no steps yet")
    ax_loss.set_title("loss")

    plotted = False
    for key, color, label in (("train_accuracy", "tab:blue", "train"), ("val_accuracy", "tab:orange",
                                                                         "validation")):
        values = 100 * _column(epochs, key)
        if np.isfinite(values).any():
            ax_acc.plot(epoch_x, values, "o-", color=color, markersize=5, markeredgecolor="white", label=label)
            plotted = True
    if not plotted and steps:
        acc = 100 * _column(steps, "accuracy")
        ax_acc.plot(step_x, _moving_average(acc, window), color="tab:blue",
                    label=f"train (moving average, {window} steps)" if window > 1 else "train (per step)")
        plotted = True
    if plotted:
        ax_acc.set_ylim(0, 100)
        last = epochs[-1] if epochs else None
        if last is not None and last.get("val_accuracy") is not None:
            ax_acc.set_title(f"accuracy (%): validation {100 * last['val_accuracy']:.1f}% after epoch "
                             f"{last['epoch']}")
        else:
            ax_acc.set_title("accuracy (%)")
    else:
        _empty_axis(ax_acc, "no accuracy yet")
        ax_acc.set_title("accuracy (%)")

    for ax in (ax_loss, ax_acc):
        ax.set_xlabel("step" if steps else "epoch")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return _save(fig, path)


# -- filters ---------------------------------------------------------------------------------------------
def _filter_tile(w: np.ndarray, max_channels: int) -> np.ndarray:
    """One 2D filter (C, KH, KW) as an image: (KH, KW, 3) RGB when C == 3, else its first ``max_channels``
    input channels side by side (KH, C' * (KW + 1) - 1) with NaN gaps. Scaled by the filter's own min/max."""
    w = _scaled(w)
    if w.shape[0] == 3:
        return w.transpose(1, 2, 0)  # (KH, KW, 3)
    c, kh, kw = min(w.shape[0], max_channels), w.shape[1], w.shape[2]
    tile = np.full((kh, c * (kw + 1) - 1), np.nan)
    for i in range(c):
        tile[:, i * (kw + 1):i * (kw + 1) + kw] = w[i]
    return tile


def plot_filters(weight: np.ndarray, path, title: str | None = None, *, max_channels: int = 8) -> Path:
    """A conv layer's filters as a grid, so you can see what its first layer learned (edges, colour blobs).

    weight: (F, C, KH, KW) of a Conv2D, or (F, C, K) of a Conv1D. Every filter is scaled to its own min/max
    (black = most negative, white = most positive), as ConvNetJS draws them. When C == 3 each filter is one RGB
    image (the input channels read as red, green, blue); otherwise its input channels are tiled left to right
    in greyscale, the first ``max_channels`` of them (all of a deep layer's channels would be too small to see).
    1D filters are small line plots, one line per input channel (up to ``max_channels``).
    """
    from matplotlib import colormaps

    weight = np.asarray(weight)
    if weight.ndim not in (3, 4) or 0 in weight.shape or not np.issubdtype(weight.dtype, np.number):
        raise ValueError(f"plot_filters: weight must be a numeric array of shape (F, C, KH, KW) (Conv2D) or "
                         f"(F, C, K) (Conv1D), got shape {weight.shape} dtype {weight.dtype}")
    if max_channels < 1:
        raise ValueError(f"plot_filters: max_channels must be >= 1, got {max_channels}")
    f, c = weight.shape[:2]
    kernel = "x".join(map(str, weight.shape[2:]))
    shown = "" if c <= max_channels or (c == 3 and weight.ndim == 4) else f", first {max_channels} channels shown"
    title = title or f"{f} filters, {c} input channel{'s' * (c != 1)}, {kernel} kernel{shown}"
    if weight.ndim == 4:
        tiles = [_filter_tile(w, max_channels) for w in weight]
        aspect = tiles[0].shape[1] / tiles[0].shape[0]  # width / height of one tile
        cols = max(1, min(f, round(math.sqrt(f / aspect))))  # about as wide as tall overall
        rows = math.ceil(f / cols)
        kh = tiles[0].shape[0]
        cell = max(0.12 * kh, 2.6 / (1.1 * cols * aspect))  # inches per tile: the title's 3 inches wide at least
        cell = min(cell, 0.9, 12 / (cols * aspect))  # and at most 12 inches wide
        fig = _figure(max(3.0, cols * aspect * cell * 1.1 + 0.4), rows * cell * 1.1 + 0.7)
        cmap = colormaps["gray"].with_extremes(bad=GAP)  # NaN gaps between a filter's channels
        for i, ax in enumerate(fig.subplots(rows, cols, squeeze=False).ravel()):
            if i >= f:
                ax.set_axis_off()
                continue
            ax.imshow(tiles[i], cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():  # a frame per filter, to tell filters from channels
                spine.set_edgecolor("0.6")
    else:
        rows, cols = _grid(f, max_cols=8)
        fig = _figure(max(3.0, cols * 1.3 + 0.4), rows * 1.0 + 0.7)
        for i, ax in enumerate(fig.subplots(rows, cols, squeeze=False).ravel()):
            if i >= f:
                ax.set_axis_off()
                continue
            for ch in range(min(c, max_channels)):
                ax.plot(weight[i, ch], linewidth=1, marker=".", markersize=3)
            ax.axhline(0, color="0.7", linewidth=0.6)
            ax.set_xticks([])
            ax.set_yticks([])
    height = fig.get_figheight()
    fig.suptitle(title, fontsize=10, y=1 - 0.1 / height, va="top")
    fig.subplots_adjust(left=0.02, right=0.98, bottom=0.1 / height, top=1 - 0.45 / height, wspace=0.1, hspace=0.1)
    return _save(fig, path)


# -- feature maps ----------------------------------------------------------------------------------------
def _stages(net, x: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """(label, activations (C, H, W) or (C, L)) for the input, each conv stage and each pooling layer.

    A conv stage is a conv layer with the elementwise layers that follow it (activation, batch norm, dropout),
    drawn after the last of them: what the next layer actually sees. Layers run in list order (not the net's
    pool-before-ReLU execution order, which gives the same values). Stops at the first non-spatial layer.
    """
    stages = [(f"input {tuple(x.shape[1:])}", x[0])]
    h, pending = x, None
    for i, layer in enumerate(net.layers):
        h = layer.forward(h)
        if h.ndim != x.ndim:  # Flatten / Dense: no more maps
            break
        name = type(layer).__name__
        if isinstance(layer, _CONV):
            pending = f"layer {i} {name}"
        elif isinstance(layer, _ELEMENTWISE) and pending:
            pending += f" + {name}"
        elif isinstance(layer, _POOL):
            stages.append((f"layer {i} {name} {tuple(h.shape[1:])}", h[0]))
        nxt = net.layers[i + 1] if i + 1 < len(net.layers) else None
        if pending and not isinstance(nxt, _ELEMENTWISE):
            stages.append((f"{pending} {tuple(h.shape[1:])}", h[0]))
            pending = None
    return stages


def plot_feature_maps(net, x: np.ndarray, path, max_maps: int = 16) -> Path:
    """What one input looks like inside the net: a row per stage, its channels' activations side by side.

    x: ONE preprocessed input (1, C, H, W) (or (1, C, L) for a 1D net), as the net's forward takes it.
    Rows: the input, then each conv layer's output after its activation (and batch norm), then each pooling
    layer's output, until the net flattens. Each row shows its first ``max_maps`` channels on one grey scale
    (black = the row's min, white = its max), so a dead ReLU channel is visibly black; the row's label gives
    its min and max, as ConvNetJS's demos do. A 3-channel input also shows as one colour image first.
    1D nets draw each channel as a small line plot, with the y axis shared along a row.
    """
    if not isinstance(x, np.ndarray) or not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"plot_feature_maps: x must be a float NumPy array (a preprocessed input), got "
                        f"{type(x).__name__}{'' if not isinstance(x, np.ndarray) else ' ' + str(x.dtype)}")
    expected = (1, *net.input_shape)
    if x.shape != expected or len(net.input_shape) not in (2, 3):
        layout = "(1, C, H, W)" if len(net.input_shape) == 3 else "(1, C, L)"
        raise ValueError(f"plot_feature_maps: x must be one input {layout} = {expected} for this net "
                         f"(a conv net's input), got {x.shape}; take x[i:i+1] of a batch")
    if max_maps < 1:
        raise ValueError(f"plot_feature_maps: max_maps must be >= 1, got {max_maps}")
    stages = _stages(net, x.astype(net.dtype, copy=False))
    is_2d = x.ndim == 4
    rgb_input = is_2d and x.shape[1] == 3
    cols = max(min(len(a), max_maps) + (rgb_input and i == 0) for i, (_, a) in enumerate(stages))
    cell = 0.8 if is_2d else 1.2
    fig = _figure(max(5.0, cols * cell + 0.4), len(stages) * (cell * (1 if is_2d else 0.75) + 0.35) + 0.2)
    for i, (sub, (label, a)) in enumerate(zip(np.atleast_1d(fig.subfigures(len(stages), 1)), stages)):
        lo, hi = float(a.min()), float(a.max())
        n = min(len(a), max_maps)
        more = f", first {n} of {len(a)} channels" if len(a) > n else ""
        sub.suptitle(f"{label}: min {lo:.3g}, max {hi:.3g}{more}", fontsize=9, x=0.01, ha="left")
        axes = sub.subplots(1, cols, squeeze=False)[0]
        sub.subplots_adjust(left=0.01, right=0.99, bottom=0.04, top=0.78, wspace=0.08)
        for ax in axes:
            ax.set_axis_off()
        maps = list(a[:n])
        if i == 0 and rgb_input:
            axes[0].imshow(_scaled(a).transpose(1, 2, 0), interpolation="nearest")
            axes = axes[1:]
        for ax, m in zip(axes, maps):
            if is_2d:
                ax.imshow(m, cmap="gray", vmin=lo, vmax=hi if hi > lo else lo + 1, interpolation="nearest")
            else:
                ax.set_axis_on()
                ax.plot(m, linewidth=0.9)
                ax.set_ylim(lo - 0.05 * (hi - lo + 1e-12), hi + 0.05 * (hi - lo + 1e-12))
                ax.set_xticks([])
                ax.set_yticks([])
    return _save(fig, path)


# -- predictions -----------------------------------------------------------------------------------------
def plot_predictions(images: np.ndarray, top: list[list[tuple[int, float]]], labels: np.ndarray,
                     classes: list[str], path, *, columns: int = 4) -> Path:
    """ConvNetJS's "testing the network" view: each test image beside bars for its most likely classes.

    images: (N, C, H, W) uint8, C = 1 (grey) or 3 (RGB), or 1D signals (N, C, L) of any real dtype, drawn as
    a small line plot (one line per channel). top: for each image its top-k (class index, probability) pairs,
    most likely first (``train.top_k``). labels: (N,) true classes; classes: their names.
    The bar of the true class is green; a wrong top guess is red, other wrong guesses grey. When the true class
    is not among the top k, its name is written under the bars.
    """
    images, labels = np.asarray(images), np.asarray(labels)
    signals = images.ndim == 3 and np.issubdtype(images.dtype, np.number) and 0 not in images.shape[1:]
    if not signals and (images.ndim != 4 or images.shape[1] not in (1, 3) or images.dtype != np.uint8):
        raise ValueError(f"plot_predictions: images must be uint8 of shape (N, C, H, W) with C = 1 or 3, or "
                         f"signals (N, C, L), got {images.dtype} {images.shape}")
    n, k = len(images), len(classes)
    if labels.shape != (n,) or len(top) != n:
        raise ValueError(f"plot_predictions: need one label and one top-k list per image: {n} images, labels "
                         f"of shape {labels.shape}, {len(top)} top-k lists")
    for i, (label, guesses) in enumerate(zip(labels, top)):
        bad = [c for c, _ in guesses if not 0 <= int(c) < k]
        if not 0 <= int(label) < k or bad:
            raise ValueError(f"plot_predictions: image {i}: class indices must be in range({k}) (one per class "
                             f"name), got label {int(label)} and top-k classes {[int(c) for c, _ in guesses]}")
    columns = max(1, min(columns, n))
    rows = max(1, math.ceil(n / columns))
    fig = _figure(columns * 3.3, rows * 1.15 + 0.1)
    grid = fig.add_gridspec(rows, 2 * columns, width_ratios=[1, 2.1] * columns, wspace=0.08, hspace=0.25,
                            left=0.01, right=0.99, bottom=0.02, top=0.98)
    for i in range(rows * columns):
        r, c = divmod(i, columns)
        ax_img, ax_bar = fig.add_subplot(grid[r, 2 * c]), fig.add_subplot(grid[r, 2 * c + 1])
        ax_img.set_axis_off()
        ax_bar.set_axis_off()
        if i >= n:
            continue
        img = images[i]
        if signals:  # (C, L): a line per channel, framed like an image
            for channel in img:
                ax_img.plot(channel, linewidth=1)
            ax_img.set_axis_on()
            ax_img.set_xticks([])
            ax_img.set_yticks([])
        elif img.shape[0] == 3:
            ax_img.imshow(img.transpose(1, 2, 0), interpolation="nearest")  # (H, W, 3)
        else:
            ax_img.imshow(img[0], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        guesses, label = top[i], int(labels[i])
        depth = max(3, len(guesses))
        ax_bar.set_xlim(0, 1)
        ax_bar.set_ylim(depth - 0.5, -0.5 - (0.6 if label not in [int(g) for g, _ in guesses] else 0))
        for j, (cls, p) in enumerate(guesses):
            cls = int(cls)
            color = GREEN if cls == label else RED if j == 0 else GREY
            ax_bar.barh(j, 1, height=0.8, color="0.93")  # the track: 100%
            ax_bar.barh(j, float(p), height=0.8, color=color)
            ax_bar.text(0.03, j, f"{classes[cls]}", va="center", ha="left", fontsize=8)
            ax_bar.text(0.97, j, f"{100 * float(p):.1f}%", va="center", ha="right", fontsize=8, color="0.25")
        if label not in [int(g) for g, _ in guesses]:
            ax_bar.text(0.03, -0.8, f"true: {classes[label]}", va="center", ha="left", fontsize=8,
                        color=GREEN, fontweight="bold")
    return _save(fig, path)


# -- confusion matrix ------------------------------------------------------------------------------------
def plot_confusion(confusion, classes: list[str], path) -> Path:
    """Which classes the net mixes up: the confusion matrix with counts and each class's accuracy.

    confusion: (K, K) counts, rows the true class and columns the predicted one (``train.evaluate``'s
    "confusion", a list of lists or an array); classes: the K names. Colour is the row's fraction (the recall),
    so rare classes are as visible as common ones; counts are written in the cells when K <= 25; the column
    on the right gives each class's accuracy (diagonal / row sum), and the title the overall accuracy.
    """
    m = np.asarray(confusion)
    k = len(classes)
    if m.ndim != 2 or m.shape != (k, k) or not np.issubdtype(m.dtype, np.number):
        raise ValueError(f"plot_confusion: confusion must be a (K, K) = ({k}, {k}) matrix of counts, one row and "
                         f"column per class name, got shape {m.shape}")
    if (m < 0).any():
        raise ValueError("plot_confusion: confusion counts must be >= 0")
    rows = m.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.where(rows[:, None] > 0, m / np.maximum(rows[:, None], 1), 0.0)  # (K, K)
        per_class = np.where(rows > 0, np.diag(m) / np.maximum(rows, 1), np.nan)  # (K,)
    total = m.sum()
    size = min(16.0, max(4.5, 0.45 * k + 2.5))
    fig = _figure(size + 1.0, size)
    ax = fig.add_subplot()
    ax.imshow(recall, cmap="Blues", vmin=0, vmax=1)
    ticks, font = np.arange(k), 8 if k <= 40 else 5  # CIFAR-100's 100 names still fit at 5 points
    ax.set_xticks(ticks, [str(c) for c in classes], rotation=45, ha="right", fontsize=font)
    ax.set_yticks(ticks, [str(c) for c in classes], fontsize=font)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    if k <= 25:
        for (r, c), count in np.ndenumerate(m):
            ax.text(c, r, f"{count:g}", ha="center", va="center", fontsize=7 if k > 12 else 9,
                    color="white" if recall[r, c] > 0.5 else "black")
    ax.text(k - 0.5 + 0.25, -0.75, "accuracy", ha="left", va="center", fontsize=8, fontweight="bold")
    for r, acc in enumerate(per_class):
        ax.text(k - 0.5 + 0.25, r, "-" if np.isnan(acc) else f"{100 * acc:.1f}%", ha="left", va="center",
                fontsize=font)
    overall = f"{100 * np.trace(m) / total:.2f}% of {total:g}" if total else "no examples"
    ax.set_title(f"confusion matrix (rows true, columns predicted): accuracy {overall}", fontsize=10)
    fig.tight_layout()
    return _save(fig, path)
