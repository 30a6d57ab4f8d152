"""The shape debugger: strict conv and pool specs (pinned messages), the "ragged" opt-in, permissive layer
classes, and that every fix a message proposes really fits."""

from __future__ import annotations

import itertools
import json
import re

import numpy as np
import pytest

from convnetpy import Net, ShapeError, SpecError, load, models
from convnetpy.layers import AvgPool1D, Conv1D, Conv2D, Dense, Flatten, MaxPool1D, MaxPool2D, ReLU
from convnetpy.shape_debugger import Window, is_ragged

IMAGE = {"type": "input", "shape": [3, 8, 8]}
SIGNAL = {"type": "input", "shape": [1, 40]}


def conv(**kw) -> dict:
    return {"type": "conv", "filters": 2, **kw}


def pool(**kw) -> dict:
    return {"type": "pool", **kw}


def image(h: int, w: int) -> dict:
    return {"type": "input", "shape": [3, h, w]}


def floor_rule(tail: str, out: int, leftover: int, padded: int) -> str:
    return (f'{tail}add "ragged": true to the spec to floor it to {out} as PyTorch does, leaving the last '
            f"{leftover} of {padded} padded positions unread")


# -- strict specs: a fractional output size is an error, with the arithmetic and the fixes -----------------
@pytest.mark.parametrize("specs, message", [
    # The MNIST-1D paper's first conv: stride 2 cannot fix an odd 37 with any padding, so no pad is proposed.
    ([SIGNAL, conv(size=5, stride=2, pad=1)],
     "layer 1 (conv) on input [1, 40]: Conv1D: output L would be 19.5 (not a whole number): "
     "(L - D*(K-1) - 1 + 2P) / S + 1 = (40 - 1*(5-1) - 1 + 2) / 2 + 1 = 19.5; "
     + floor_rule('use pad "same", or stride 1, or size 4 or 6; or ', 19, 1, 42)),
    ([image(32, 32), conv(size=6, stride=4, pad=2)],
     "layer 1 (conv) on input [3, 32, 32]: Conv2D: output H would be 8.5 (not a whole number): "
     "(H - D*(K-1) - 1 + 2P) / S + 1 = (32 - 1*(6-1) - 1 + 4) / 4 + 1 = 8.5; "
     + floor_rule('use pad 1 or 3 or "same", or stride 3 or 5; or ', 8, 2, 36)),
    ([IMAGE, pool(size=3)],  # the stride defaults to the size, so a new size is a new stride too
     "layer 1 (pool) on input [3, 8, 8]: MaxPool2D: output H would be 2.667 (not a whole number): "
     "(H - K + 2P) / S + 1 = (8 - 3 + 2*0) / 3 + 1 = 2.667; "
     + floor_rule("use stride 1, or size 2 or 4; or ", 2, 2, 8)),
    ([image(8, 9), conv(size=3, stride=2)],  # H is ragged, W fits: a new size keeps W's
     "layer 1 (conv) on input [3, 8, 9]: Conv2D: output H would be 3.5 (not a whole number): "
     "(H - D*(K-1) - 1 + 2P) / S + 1 = (8 - 1*(3-1) - 1 + 0) / 2 + 1 = 3.5; "
     + floor_rule('use pad "same", or stride 1, or size [2, 3] or [4, 3]; or ', 3, 1, 8)),
    ([image(9, 8), conv(size=3, stride=2)],
     "layer 1 (conv) on input [3, 9, 8]: Conv2D: output W would be 3.5 (not a whole number): "
     "(W - D*(K-1) - 1 + 2P) / S + 1 = (8 - 1*(3-1) - 1 + 0) / 2 + 1 = 3.5; "
     + floor_rule('use pad "same", or stride 1, or size [3, 2] or [3, 4]; or ', 3, 1, 8)),
    ([IMAGE, conv(size=3, pad=[1, 0], stride=[3, 1])],  # per-axis values stay per-axis lists
     "layer 1 (conv) on input [3, 8, 8]: Conv2D: output H would be 3.333 (not a whole number): "
     "(H - D*(K-1) - 1 + 2P) / S + 1 = (8 - 1*(3-1) - 1 + 2) / 3 + 1 = 3.333; "
     + floor_rule('use pad [2, 0] or [5, 0] or "same", or stride 1; or ', 3, 1, 10)),
    ([IMAGE, pool(size=2, stride=2), pool(size=2, stride=2), pool(size=3, stride=2, pad=1, mode="avg")],
     "layer 3 (pool) on input [3, 2, 2]: AvgPool2D: output H would be 1.5 (not a whole number): "
     "(H - K + 2P) / S + 1 = (2 - 3 + 2*1) / 2 + 1 = 1.5; "
     + floor_rule("use stride 1, or size 2 or 4; or ", 1, 1, 4)),
    ([{"type": "input", "shape": [2, 3]}, pool(size=2)],  # nothing but "ragged" fits
     "layer 1 (pool) on input [2, 3]: MaxPool1D: output L would be 1.5 (not a whole number): "
     "(L - K + 2P) / S + 1 = (3 - 2 + 2*0) / 2 + 1 = 1.5; " + floor_rule("use stride 1, or size 3; or ", 1, 1, 3)),
])
def test_fractional_output_is_a_spec_error(specs, message):
    with pytest.raises(SpecError, match="^" + re.escape(message) + "$"):
        Net(specs)


@pytest.mark.parametrize("specs, message", [
    # A window wider than the padded input: pads, dilations or sizes, never strides.
    ([image(6, 6), conv(size=7)],
     "layer 1 (conv) on input [3, 6, 6]: Conv2D: output H would be 0 (empty): (H - D*(K-1) - 1 + 2P) / S + 1 = "
     "(6 - 1*(7-1) - 1 + 0) // 1 + 1 = 0; use pad 1 or 2 or \"same\", or size 5 or 6"),
    # Strict: pad 1 would give (2 - 3 + 2) / 3 + 1, not whole, so only a smaller window is proposed...
    ([image(2, 2), pool(size=3)],
     "layer 1 (pool) on input [3, 2, 2]: MaxPool2D: output H would be 0 (empty): (H - K + 2P) / S + 1 = "
     "(2 - 3 + 2*0) // 3 + 1 = 0; use size 2"),
    # ...while with "ragged" the floored pad 1 is fine too.
    ([image(2, 2), pool(size=3, ragged=True)],
     "layer 1 (pool) on input [3, 2, 2]: MaxPool2D: output H would be 0 (empty): (H - K + 2P) / S + 1 = "
     "(2 - 3 + 2*0) // 3 + 1 = 0; use pad 1, or size 2"),
    ([{"type": "input", "shape": [2, 1]}, pool(size=2)],  # nothing fits: the general advice
     "layer 1 (pool) on input [2, 1]: MaxPool1D: output L would be 0 (empty): (L - K + 2P) / S + 1 = "
     "(1 - 2 + 2*0) // 2 + 1 = 0; use a smaller window or a larger input"),
])
def test_empty_output_is_a_spec_error_with_fixes(specs, message):
    with pytest.raises(SpecError, match="^" + re.escape(message) + "$"):
        Net(specs)


# -- the "ragged" opt-in ------------------------------------------------------------------------------------
def test_ragged_floors_as_pytorch():
    # MNIST-1D's CNN: 40 -> 19 -> 10 -> 5 positions, floored at the first and third conv.
    specs = [SIGNAL, conv(size=5, stride=2, pad=1, ragged=True), conv(size=3, stride=2, pad=1),
             conv(size=3, stride=2, pad=1, ragged=True), {"type": "softmax", "classes": 10}]
    net = Net(specs)
    assert [layer.output_shape(s)[1] for layer, s in zip(net.layers[:3], [(1, 40), (2, 19), (2, 10)])] == [19, 10, 5]
    assert [s.get("ragged") for s in net.specs()[1:4]] == [True, False, True]
    assert Net(net.specs()).specs() == net.specs()
    with pytest.raises(SpecError, match=re.escape("layer 3 (conv) on input [2, 10]: Conv1D: output L would be 5.5")):
        Net([*specs[:3], conv(size=3, stride=2, pad=1), specs[-1]])


def test_ragged_must_be_a_bool_and_exists_only_on_conv_and_pool():
    with pytest.raises(SpecError, match=re.escape("layer 1 (conv): key 'ragged' expected true or false, got 1")):
        Net([IMAGE, conv(size=3, ragged=1)])
    with pytest.raises(SpecError, match=re.escape("layer 1 (fc): unknown key 'ragged'")):
        Net([IMAGE, {"type": "fc", "neurons": 2, "ragged": True}])


def test_whole_outputs_and_same_padding_need_no_ragged():
    assert Net([IMAGE, conv(size=4, stride=2, pad=1)]).output_shape == (2, 4, 4)  # (8 - 3 - 1 + 2) / 2 + 1 = 4
    assert Net([IMAGE, pool(size=2, stride=3)]).output_shape == (3, 3, 3)  # (8 - 2 + 0) / 3 + 1 = 3
    # 'same' means ceil(N / S) by definition, even where a 1x1 kernel with stride 2 skips the last pixel.
    net = Net([IMAGE, conv(size=1, stride=2, pad="same"), conv(size=3, stride=2, pad="same")])
    assert net.output_shape == (2, 2, 2)
    assert not any(is_ragged(layer, (3, 8, 8)) for layer in net.layers)


@pytest.mark.parametrize("name", sorted(models.MODELS))
def test_models_build(name):
    Net(models.MODELS[name]())


# -- the layer classes stay permissive: they floor, and only an empty output is an error ----------------------
def test_layers_floor_a_ragged_window():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 8, 8)).astype(np.float32)
    assert Conv2D(3, 2, 3, stride=2, rng=rng).forward(x).shape == (2, 2, 3, 3)  # (8 - 3) / 2 + 1 = 3.5 -> 3
    assert MaxPool2D(3).forward(x).shape == (2, 3, 2, 2)  # 2.667 -> 2
    assert AvgPool1D(2).forward(x[:, :, 0, :7]).shape == (2, 3, 3)  # 3.5 -> 3
    net = Net([Conv1D(1, 4, 5, stride=2, padding=1, rng=rng), ReLU(), Flatten(), Dense(4 * 19, 3, rng=rng)],
              input_shape=(1, 40))
    assert net.forward(rng.standard_normal((2, 1, 40)).astype(np.float32)).shape == (2, 3)


def test_specs_of_a_ragged_layer_net_say_ragged(tmp_path):
    rng = np.random.default_rng(0)
    net = Net([Conv1D(1, 4, 5, stride=2, padding=1, rng=rng), MaxPool1D(2), Conv1D(4, 2, 3, rng=rng)],
              input_shape=(1, 40))
    specs = net.specs()
    assert [s.get("ragged") for s in specs[1:]] == [True, True, None]  # 40 -> 19.5 -> 9.5, floored; 9 -> 7
    rebuilt = Net(specs)
    assert rebuilt.output_shape == net.output_shape
    net.save(tmp_path / "net.npz")
    assert load(tmp_path / "net.npz").output_shape == net.output_shape


@pytest.mark.parametrize("layer, shape, message", [
    (Conv2D(1, 1, 7), (1, 6, 6),
     "Conv2D: output H would be 0 (empty): (H - D*(K-1) - 1 + 2P) / S + 1 = (6 - 1*(7-1) - 1 + 0) // 1 + 1 = 0; "
     "use padding 1 or 2 or 'same', or kernel_size 5 or 6"),
    (Conv2D(1, 1, 3, stride=2, padding=(0, 1), dilation=(1, 2)), (1, 9, 2),
     "Conv2D: output W would be 0 (empty): (W - D*(K-1) - 1 + 2P) / S + 1 = (2 - 2*(3-1) - 1 + 2) // 2 + 1 = 0; "
     "use padding (0, 2) or (0, 3) or 'same', or dilation 1, or kernel_size 1 or 2"),
    (MaxPool2D(3), (1, 2, 8),  # floors: any padding that fits will do, whole or not
     "MaxPool2D: output H would be 0 (empty): (H - K + 2P) / S + 1 = (2 - 3 + 2*0) // 3 + 1 = 0; "
     "use padding 1, or kernel_size 2"),
])
def test_layer_empty_output_message_names_the_fixes(layer, shape, message):
    with pytest.raises(ShapeError, match="^" + re.escape(message) + "$"):
        layer.output_shape(shape)
    with pytest.raises(ShapeError, match="^" + re.escape(message) + "$"):
        layer.forward(np.zeros((1, *shape), np.float32))


# -- every proposed fix fits ------------------------------------------------------------------------------------
def proposals(message: str) -> list[tuple[str, object]]:
    """The (key, value) pairs a message proposes: "use pad 1 or [2, 0] or "same", or stride 1; or ..."."""
    found = re.search(r"; use (.*?)(?:; or add|$)", message)
    if not found:
        return []
    out = []
    for group in found.group(1).split(", or "):
        key, values = group.split(" ", 1)
        out += [(key, json.loads(v)) for v in values.split(" or ")]  # spec values are JSON: 1, [2, 0], "same"
    return out


CASES_1D = list(itertools.product([5, 12, 17], [2, 3, 5], [1, 2, 3], [0, 1, 2], [1, 2]))  # N, K, S, P, D


@pytest.mark.parametrize("kind", ["conv", "pool"])
def test_every_proposed_fix_fits(kind):
    tried = 0
    for n, k, s, p, d in CASES_1D:
        if kind == "pool" and (d > 1 or 2 * p > k):
            continue
        spec = conv(size=k, stride=s, pad=p, dilation=d) if kind == "conv" else pool(size=k, stride=s, pad=p)
        for ragged in (False, True):
            spec["ragged"] = ragged
            try:
                Net([{"type": "input", "shape": [1, n]}, spec])
                continue
            except SpecError as e:
                message = str(e)
            for key, value in proposals(message):
                tried += 1
                Net([{"type": "input", "shape": [1, n]}, {**spec, key: value}])  # raises if the fix does not fit
    assert tried > 50


def test_proposed_2d_fixes_fit():
    for h, w, k, s in itertools.product([6, 7, 8], [6, 9], [2, 3, [2, 3], [3, 1]], [2, [1, 2], 3]):
        spec = conv(size=k, stride=s)
        try:
            Net([image(h, w), spec])
            continue
        except SpecError as e:
            message = str(e)
        for key, value in proposals(message):
            Net([image(h, w), {**spec, key: value}])


# -- the arithmetic ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("window, numerator, out, leftover", [
    (Window(40, 5, 2, 1), 37, 19, 1),
    (Window(8, 3, 2, 1, d=2), 5, 3, 1),
    (Window(6, 7, 1, 0), -1, 0, 0),
    (Window(2, 3, 3, 0, pool=True), -1, 0, 2),
    (Window(32, 2, 2, 0, pool=True), 30, 16, 0),
])
def test_window_arithmetic(window, numerator, out, leftover):
    assert (window.numerator, window.out, window.leftover) == (numerator, out, leftover)
    # The floored size is PyTorch's formula.
    n, k, s, p, d = window.n, window.k, window.s, window.p, window.d
    assert window.out == (n + 2 * p - d * (k - 1) - 1) // s + 1
