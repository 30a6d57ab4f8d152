"""What the page draws: encodings, one example's path through the net, test cards, confusion, explanations."""

from __future__ import annotations

import base64

import numpy as np
import pytest

from convnetpy import Net, models
from convnetpy.preprocess import Preprocessor
from convnetpy.studio import views
from studio_helpers import BAR_SPECS


def decoded(enc: dict) -> np.ndarray:
    """The array an encoding stands for, back in its own units (to within one level of 255)."""
    levels = np.frombuffer(base64.b64decode(enc["data"]), np.uint8).reshape(enc["shape"])
    return enc["min"] + levels / 255 * (enc["max"] - enc["min"])


def test_encode_keeps_shape_range_and_values_to_one_level():
    a = np.random.default_rng(0).standard_normal((3, 5, 7)).astype(np.float32)
    enc = views.encode(a)
    assert enc["shape"] == [3, 5, 7] and (enc["min"], enc["max"]) == (float(a.min()), float(a.max()))
    assert np.abs(decoded(enc) - a).max() <= (a.max() - a.min()) / 255 / 2 + 1e-6


def test_encode_of_a_constant_or_non_finite_array():
    assert set(base64.b64decode(views.encode(np.ones(4))["data"])) == {128}
    enc = views.encode(np.array([np.nan, np.inf, 1.0]))
    assert (enc["min"], enc["max"]) == (0.0, 1.0)


def test_uint8_examples_travel_as_their_own_pixels():
    image = np.arange(12, dtype=np.uint8).reshape(3, 2, 2)
    enc = views.encode_example(image)
    assert base64.b64decode(enc["data"]) == image.tobytes() and (enc["min"], enc["max"]) == (0.0, 255.0)


def net_and_pre(specs, shape, classes):
    net = Net(specs, seed=0)
    images = np.random.default_rng(0).integers(0, 255, (8, *shape)).astype(np.uint8)
    return net, Preprocessor.fit(images, net.input_shape, classes), images


def test_network_view_of_the_cifar10_net_shows_every_layer_and_rgb_first_filters():
    net, pre, images = net_and_pre(models.cifar10net(), (3, 32, 32), [str(k) for k in range(10)])
    view = views.network_view(net, pre, images[0], 3, pre.classes)
    assert len(view["layers"]) == len(net.layers) and view["label"] == 3 and len(view["top3"]) == 3
    first, second = view["layers"][0], view["layers"][3]
    assert first["activations"]["shape"] == [16, 32, 32] and first["rgb"] is True
    assert first["filters"]["shape"] == [16, 3, 5, 5] and first["filter_grads"]["shape"] == [16, 3, 5, 5]
    assert second["rgb"] is False and second["filters"]["shape"] == [20, 16, 5, 5]
    assert view["layers"][-1]["activations"]["shape"] == [10]
    assert view["input"]["shape"] == [3, 32, 32]


def test_network_view_of_a_1d_net_sends_signals_and_1d_maps():
    net, pre, _ = net_and_pre(models.mnist1d_cnn(), (1, 40), [str(k) for k in range(10)])
    signal = np.random.default_rng(1).standard_normal((1, 40)).astype(np.float32)
    view = views.network_view(net, pre, signal, None, pre.classes)
    assert view["input"]["shape"] == [1, 40] and view["layers"][0]["activations"]["shape"] == [25, 19]
    assert view["layers"][0]["filters"]["shape"] == [25, 1, 5]


def test_wide_layers_are_capped():
    specs = [{"type": "input", "shape": [1, 8, 8]}, {"type": "conv", "filters": 100, "size": 3, "pad": 1},
             {"type": "fc", "neurons": 2000}, {"type": "softmax", "classes": 2}]
    net, pre, images = net_and_pre(specs, (1, 8, 8), ["a", "b"])
    layers = views.network_view(net, pre, images[0], 0, pre.classes)["layers"]
    assert layers[0]["maps"] == 100 and layers[0]["activations"]["shape"] == [64, 8, 8]
    assert layers[0]["filter_count"] == 100 and layers[0]["filters"]["shape"] == [64, 1, 3, 3]
    assert layers[2]["activations"]["shape"] == [views.MAX_UNITS]


def test_layer_rows_give_shapes_and_parameter_counts():
    rows = views.layer_rows(Net(models.lenet5(), seed=0))
    assert rows[0] == {"index": 0, "type": "conv", "name": "Conv2D 5x5x6, pad (2, 2)", "output_shape": [6, 28, 28],
                       "params": 156}
    assert sum(r["params"] for r in rows) == 61_706


def test_explain_unit_on_a_conv_layer_and_on_its_activation():
    net, pre, images = net_and_pre(BAR_SPECS, (1, 14, 14), ["h", "v", "d"])
    conv = views.explain_unit(net, pre, images[0], 0, [2, 4, 5])
    relu = views.explain_unit(net, pre, images[0], 1, [2, 4, 5])
    assert conv["conv_layer"] == relu["conv_layer"] == 0 and conv["formula"] == relu["formula"]
    assert conv["formula"].startswith("relu(") and np.array(conv["weights"]).shape == (1, 3, 3)
    with pytest.raises(ValueError, match="layer 2 \\(pool\\) has no formula"):
        views.explain_unit(net, pre, images[0], 2, [0, 0, 0])


def test_top3_confusion_and_most_confused():
    probs = np.array([0.1, 0.6, 0.3])
    assert [t["class"] for t in views.top3(probs, ["a", "b", "c"])] == [1, 2, 0]
    true, pred = np.array([0, 0, 1, 2, 2]), np.array([0, 1, 1, 0, 1])
    assert views.confusion(true, pred, 3) == [[1, 1, 0], [0, 1, 0], [1, 1, 0]]
    confidence = np.array([0.9, 0.5, 0.8, 0.99, 0.7])
    assert views.most_confused(true, pred, confidence, np.array([10, 11, 12, 13, 14])).tolist() == [3, 4, 1]
    # an example predicted twice (the window wraps around the test set) is shown once
    assert views.most_confused(true, pred, confidence, np.array([10, 11, 12, 11, 11])).tolist() == [3]
