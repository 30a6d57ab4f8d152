"""viz: every figure is a valid PNG written atomically, shows what it claims, and bad inputs fail clearly.

All images here are synthetic (random noise and drawn garment-like shapes), never real dataset images.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import convnetpy
from convnetpy import viz

pytest.importorskip("matplotlib")

CLASSES = ["top", "trouser", "bag"]
NET_2D = [{"type": "input", "shape": [3, 16, 16]},
          {"type": "conv", "filters": 4, "size": 3, "pad": 1, "activation": "relu"},
          {"type": "pool", "size": 2}, {"type": "softmax", "classes": 3}]
NET_1D = [{"type": "input", "shape": [1, 40]}, {"type": "conv", "filters": 4, "size": 5, "activation": "relu"},
          {"type": "pool", "size": 2}, {"type": "softmax", "classes": 3}]


def garments(n: int, rng: np.random.Generator, channels: int = 1, size: int = 28) -> np.ndarray:
    """Fashion-MNIST-like synthetic images (n, channels, size, size) uint8: a top, trousers or a bag, in noise."""
    images = rng.integers(0, 40, size=(n, channels, size, size)).astype(np.uint8)
    a, b = size // 4, 3 * size // 4
    for i in range(n):
        shade = rng.integers(150, 256, size=(channels, 1, 1)).astype(np.uint8)
        img = images[i]
        if i % 3 == 0:  # a top: body and sleeves
            img[:, a:b, a:b] = shade
            img[:, a:a + 4, 2:size - 2] = shade
        elif i % 3 == 1:  # trousers: two legs and a waistband
            img[:, 2:a, a:b] = shade
            img[:, a:size - 2, a:a + size // 5] = shade
            img[:, a:size - 2, b - size // 5:b] = shade
        else:  # a bag with a handle
            img[:, size // 2:size - 3, 3:size - 3] = shade
            img[:, a:size // 2, a:a + 2] = shade
            img[:, a:size // 2, b - 2:b] = shade
            img[:, a:a + 2, a:b] = shade
    return images


def history(epochs: int = 3, steps_per_epoch: int = 25, val: bool = True, rng=None) -> dict:
    """A Trainer-shaped history: step records (0-based epoch, global step) and epoch records (1-based)."""
    rng = rng or np.random.default_rng(0)
    out, step = {"epochs": [], "steps": []}, 0
    for e in range(epochs):
        losses, accs = [], []
        for _ in range(steps_per_epoch):
            step += 1
            loss, acc = 2.0 * np.exp(-step / 30) + 0.2 * rng.random(), min(1.0, 0.3 + step / 100)
            losses.append(loss)
            accs.append(acc)
            out["steps"].append({"epoch": e, "step": step, "loss": loss, "accuracy": acc, "lr": 0.01,
                                 "images_per_second": 900.0})
        record = {"epoch": e + 1, "seconds": step * 0.01, "train_loss": float(np.mean(losses)),
                  "train_accuracy": float(np.mean(accs))}
        if val:
            record.update(val_loss=record["train_loss"] + 0.1, val_accuracy=record["train_accuracy"] - 0.05)
        out["epochs"].append(record)
    return out


def read_png(path: Path, min_size=(150, 100)) -> np.ndarray:
    """Check ``path`` is a PNG of a plausible size with nothing else left in its folder; return RGB (H, W, 3)."""
    assert path.is_file()
    with Image.open(path) as im:
        assert im.format == "PNG"
        assert im.width >= min_size[0] and im.height >= min_size[1], im.size
        assert im.width <= 5000 and im.height <= 5000, im.size
        rgb = np.asarray(im.convert("RGB"))
    assert [p.name for p in path.parent.iterdir()] == [path.name], "temp files left behind"
    return rgb


def has_colour(rgb: np.ndarray, colour, tol: int = 12, min_pixels: int = 50) -> bool:
    """At least ``min_pixels`` pixels within ``tol`` of ``colour`` (0-1 floats) in every channel."""
    target = np.round(np.array(colour) * 255)
    return int((np.abs(rgb.astype(int) - target).max(axis=2) <= tol).sum()) >= min_pixels


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def net_2d():
    return convnetpy.Net(NET_2D, seed=0)


@pytest.fixture
def net_1d():
    return convnetpy.Net(NET_1D, seed=0)


# -- history ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("hist", [
    history(), history(val=False), {"epochs": [], "steps": history(1, 7)["steps"]},
    {"epochs": history(2)["epochs"], "steps": []}, {"epochs": [], "steps": []}, {},
    {"epochs": history(3)["epochs"], "steps": history(3)["steps"][40:]},  # trimmed: epoch 1's steps gone
], ids=["full", "no-val", "steps-only", "epochs-only", "empty-lists", "empty", "trimmed"])
def test_plot_history_writes_png(tmp_path, hist):
    out = viz.plot_history(hist, tmp_path / "history.png")
    assert out == tmp_path / "history.png"
    read_png(out, min_size=(800, 300))


def test_plot_history_rejects_non_dict(tmp_path):
    with pytest.raises(TypeError, match="history must be a dict with 'epochs' and 'steps'"):
        viz.plot_history([1, 2], tmp_path / "h.png")
    assert not list(tmp_path.iterdir())


def test_epoch_markers_sit_at_the_step_that_ended_the_epoch():
    h = history(3, 10)
    np.testing.assert_array_equal(viz._epoch_x(h["epochs"], h["steps"]), [10, 20, 30])
    np.testing.assert_array_equal(viz._epoch_x(h["epochs"], h["steps"][15:]), [10, 20, 30])  # epoch 1 estimated


def test_moving_average_is_trailing_and_skips_nans():
    values = np.array([1.0, 3.0, np.nan, 5.0])
    np.testing.assert_allclose(viz._moving_average(values, 2), [1.0, 2.0, 3.0, 5.0])


# -- filters ----------------------------------------------------------------------------------------------
def test_plot_filters_rgb_is_in_colour(tmp_path, net_2d):
    weight = net_2d.layers[0].params["weight"]  # (4, 3, 3, 3)
    rgb = read_png(viz.plot_filters(weight, tmp_path / "f.png"))
    spread = rgb.astype(int).max(axis=2) - rgb.astype(int).min(axis=2)
    assert (spread > 60).sum() > 500  # many saturated pixels: the filters are drawn as RGB


def test_plot_filters_one_channel_is_grey(tmp_path, rng):
    weight = rng.standard_normal((6, 1, 5, 5)).astype(np.float32)
    rgb = read_png(viz.plot_filters(weight, tmp_path / "f.png", title="first layer"), min_size=(200, 100))
    spread = rgb.astype(int).max(axis=2) - rgb.astype(int).min(axis=2)
    assert spread.max() <= 10  # greyscale tiles, grey frames, black title


def test_plot_filters_tiles_input_channels(tmp_path, rng):
    weight = rng.standard_normal((10, 12, 3, 3))  # float64 is fine too
    rgb = read_png(viz.plot_filters(weight, tmp_path / "f.png", max_channels=4))
    assert has_colour(rgb, viz.GAP)  # pale gaps between each filter's channel tiles


def test_plot_filters_1d(tmp_path, net_1d):
    read_png(viz.plot_filters(net_1d.layers[0].params["weight"], tmp_path / "f.png"))  # (4, 1, 5)


def test_filter_tile_scales_each_filter_to_its_own_range():
    w = np.arange(2 * 2 * 2, dtype=np.float32).reshape(2, 2, 2) * 100  # (C=2, 2, 2)
    tile = viz._filter_tile(w, max_channels=8)  # (2, 2 * 3 - 1)
    assert tile.shape == (2, 5)
    assert np.isnan(tile[:, 2]).all()
    assert np.nanmin(tile) == 0 and np.nanmax(tile) == 1


@pytest.mark.parametrize("shape", [(3, 3), (2, 3, 3, 3, 3), (0, 3, 3, 3)])
def test_plot_filters_rejects_wrong_rank(tmp_path, shape):
    with pytest.raises(ValueError, match=r"\(F, C, KH, KW\) \(Conv2D\) or \(F, C, K\) \(Conv1D\)"):
        viz.plot_filters(np.zeros(shape), tmp_path / "f.png")
    assert not list(tmp_path.iterdir())


# -- feature maps -----------------------------------------------------------------------------------------
def test_plot_feature_maps_2d(tmp_path, net_2d, rng):
    x = rng.standard_normal((1, 3, 16, 16)).astype(np.float32)
    read_png(viz.plot_feature_maps(net_2d, x, tmp_path / "maps.png"), min_size=(400, 200))


def test_plot_feature_maps_1d(tmp_path, net_1d):
    x = np.sin(np.linspace(0, 6, 40, dtype=np.float32))[None, None]  # (1, 1, 40)
    read_png(viz.plot_feature_maps(net_1d, x, tmp_path / "maps.png", max_maps=2), min_size=(400, 200))


def test_plot_feature_maps_of_a_net_without_convs(tmp_path, rng):
    net = convnetpy.Net([{"type": "input", "shape": [1, 8, 8]}, {"type": "softmax", "classes": 2}], seed=0)
    read_png(viz.plot_feature_maps(net, rng.random((1, 1, 8, 8)), tmp_path / "maps.png"), min_size=(400, 80))


def test_stages_are_conv_after_activation_and_pool(net_2d, rng):
    x = rng.standard_normal((1, 3, 16, 16)).astype(np.float32)
    stages = viz._stages(net_2d, x)
    assert [label for label, _ in stages] == [
        "input (3, 16, 16)", "layer 0 Conv2D + ReLU (4, 16, 16)", "layer 2 MaxPool2D (4, 8, 8)"]
    conv = net_2d.layers[0].forward(x)
    np.testing.assert_array_equal(stages[1][1], np.maximum(conv, 0)[0])
    assert stages[2][1].shape == (4, 8, 8)


@pytest.mark.parametrize("x, error, message", [
    (np.zeros((2, 3, 16, 16), np.float32), ValueError, r"one input \(1, C, H, W\) = \(1, 3, 16, 16\)"),
    (np.zeros((3, 16, 16), np.float32), ValueError, r"got \(3, 16, 16\); take x\[i:i\+1\]"),
    (np.zeros((1, 3, 16, 16), np.uint8), TypeError, "must be a float NumPy array"),
])
def test_plot_feature_maps_rejects_bad_input(tmp_path, net_2d, x, error, message):
    with pytest.raises(error, match=message):
        viz.plot_feature_maps(net_2d, x, tmp_path / "maps.png")
    assert not list(tmp_path.iterdir())


# -- predictions ------------------------------------------------------------------------------------------
def predictions(n: int) -> tuple[list, np.ndarray]:
    """Top-3 lists: image 0 right, image 1 wrong with the truth second, the rest with the truth absent."""
    labels = np.arange(n) % 3
    top = []
    for i, y in enumerate(labels):
        others = [c for c in range(3) if c != y]
        if i == 0:
            top.append([(int(y), 0.8), (others[0], 0.15), (others[1], 0.05)])
        elif i == 1:
            top.append([(others[0], 0.6), (int(y), 0.3), (others[1], 0.1)])
        else:
            top.append([(others[0], 0.7), (others[1], 0.3)])  # a top-2 list without the true class
    return top, labels


@pytest.mark.parametrize("channels", [1, 3])
def test_plot_predictions_marks_true_class_green(tmp_path, rng, channels):
    images = garments(6, rng, channels)
    top, labels = predictions(6)
    rgb = read_png(viz.plot_predictions(images, top, labels, CLASSES, tmp_path / "p.png"), min_size=(600, 150))
    assert has_colour(rgb, viz.GREEN, min_pixels=500)  # the true-class bars
    assert has_colour(rgb, viz.RED, min_pixels=500)  # wrong top-1 guesses


def test_plot_predictions_of_1d_signals(tmp_path, rng):
    signals = np.sin(np.linspace(0, 6, 40) * (1 + np.arange(6)[:, None]))[:, None, :].astype(np.float32)  # (6, 1, 40)
    top, labels = predictions(6)
    rgb = read_png(viz.plot_predictions(signals, top, labels, CLASSES, tmp_path / "p.png"), min_size=(600, 150))
    assert has_colour(rgb, viz.GREEN, min_pixels=500) and has_colour(rgb, viz.RED, min_pixels=500)


@pytest.mark.parametrize("kwargs, message", [
    ({"images": np.zeros((2, 1, 8, 8), np.float32)}, r"uint8 of shape \(N, C, H, W\) with C = 1 or 3"),
    ({"images": np.zeros((2, 0, 8), np.float32)}, r"or signals \(N, C, L\), got float32 \(2, 0, 8\)"),
    ({"images": np.zeros((2, 2, 8, 8), np.uint8)}, r"uint8 of shape \(N, C, H, W\) with C = 1 or 3"),
    ({"labels": np.array([0])}, "one label and one top-k list per image: 2 images"),
    ({"labels": np.array([0, 3])}, r"image 1: class indices must be in range\(3\)"),
    ({"top": [[(0, 0.9)], [(5, 0.9)]]}, r"image 1: class indices must be in range\(3\)"),
])
def test_plot_predictions_rejects_bad_input(tmp_path, kwargs, message):
    args = {"images": np.zeros((2, 1, 8, 8), np.uint8), "top": [[(0, 0.9)], [(1, 0.9)]],
            "labels": np.array([0, 1]), "classes": CLASSES, **kwargs}
    with pytest.raises(ValueError, match=message):
        viz.plot_predictions(path=tmp_path / "p.png", **args)
    assert not list(tmp_path.iterdir())


# -- confusion --------------------------------------------------------------------------------------------
def test_plot_confusion(tmp_path):
    confusion = [[50, 3, 2], [4, 40, 6], [0, 0, 0]]  # a list of lists, as train.evaluate returns; one empty row
    read_png(viz.plot_confusion(confusion, CLASSES, tmp_path / "c.png"), min_size=(400, 300))


def test_plot_confusion_many_classes(tmp_path, rng):
    k = 30  # counts are left out above 25 classes; the colours and accuracies stay
    confusion = rng.integers(0, 5, (k, k)) + 50 * np.eye(k, dtype=np.int64)
    read_png(viz.plot_confusion(confusion, [f"class {i}" for i in range(k)], tmp_path / "c.png"))


@pytest.mark.parametrize("confusion, message", [
    (np.zeros((3, 2)), r"\(K, K\) = \(3, 3\) matrix of counts"),
    (np.zeros((2, 2)), r"\(K, K\) = \(3, 3\) matrix of counts"),
    (-np.eye(3), "counts must be >= 0"),
])
def test_plot_confusion_rejects_bad_input(tmp_path, confusion, message):
    with pytest.raises(ValueError, match=message):
        viz.plot_confusion(confusion, CLASSES, tmp_path / "c.png")


# -- files and imports ------------------------------------------------------------------------------------
def test_overwrites_atomically_and_creates_folders(tmp_path):
    path = tmp_path / "run" / "figures" / "history.png"
    viz.plot_history(history(1, 5), path)
    first = path.read_bytes()
    viz.plot_history(history(3, 5), path)
    assert path.read_bytes() != first
    read_png(path, min_size=(800, 300))


def test_plot_failure_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "history.png"
    viz.plot_history(history(1, 5), path)
    before = path.read_bytes()
    from matplotlib.figure import Figure

    def broken(self, *args, **kwargs):
        raise RuntimeError("disk full")
    monkeypatch.setattr(Figure, "savefig", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        viz.plot_history(history(2, 5), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["history.png"]


def test_imports_stay_lazy_and_pyplot_free(tmp_path):
    """``import convnetpy.viz`` pulls in no matplotlib; plotting never imports pyplot (no global backend)."""
    code = (
        "import sys, numpy as np\n"
        "import convnetpy, convnetpy.viz as viz\n"
        "assert 'matplotlib' not in sys.modules, 'importing convnetpy imported matplotlib'\n"
        f"viz.plot_filters(np.ones((2, 3, 3, 3)), {str(tmp_path / 'f.png')!r})\n"
        "assert 'matplotlib' in sys.modules\n"
        "assert 'matplotlib.pyplot' not in sys.modules, 'plotting imported pyplot'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
