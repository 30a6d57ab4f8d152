"""Preprocessor: crops (centre in evaluation, random in training), shifts, flips, normalisation, errors, round trip."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from convnetpy import ShapeError
from convnetpy.data import Normalizer
from convnetpy.preprocess import Preprocessor


@pytest.fixture(scope="module")
def digits():
    """28x28 grey images (16, 1, 28, 28) uint8 with no zero pixels, so padding is recognisable."""
    return np.random.default_rng(0).integers(1, 256, (16, 1, 28, 28)).astype(np.uint8)


def windows_of(image: np.ndarray, size: int, padding: int = 0) -> list[np.ndarray]:
    """Every size x size window of image (C, H, W) zero-padded by ``padding``."""
    padded = np.pad(image, ((0, 0), (padding, padding), (padding, padding)))
    h, w = padded.shape[1:]
    return [padded[:, t:t + size, l:l + size] for t in range(h - size + 1) for l in range(w - size + 1)]


def test_evaluation_crops_the_centre(digits):
    """28 -> 24 like the ConvNetJS MNIST net: 2 pixels off every side."""
    pre = Preprocessor.fit(digits, (1, 24, 24), flip=True, max_shift=2)
    x = pre(digits)
    assert x.shape == (16, 1, 24, 24) and x.dtype == np.float32
    np.testing.assert_array_equal(x, pre.normalizer(digits[:, :, 2:26, 2:26]))
    np.testing.assert_array_equal(pre(digits), x)  # deterministic without a generator, flip and shift ignored


def test_odd_size_difference_crops_the_same_centre_as_integer_division():
    images = np.arange(2 * 27 * 27, dtype=np.int64).reshape(2, 1, 27, 27).astype(np.uint8)
    pre = Preprocessor.fit(images, (1, 24, 24))
    np.testing.assert_array_equal(pre(images), pre.normalizer(images[:, :, 1:25, 1:25]))


def test_training_crops_at_random(digits):
    pre = Preprocessor.fit(digits, (1, 24, 24))
    x = pre(digits, rng=np.random.default_rng(1))
    assert x.shape == (16, 1, 24, 24) and x.dtype == np.float32
    raw = pre.normalizer.inverse(x).round().astype(np.uint8)
    offsets = set()
    for crop, image in zip(raw, digits):
        matches = [i for i, w in enumerate(windows_of(image, 24)) if np.array_equal(w, crop)]
        assert len(matches) == 1  # each output is one 24x24 window of its own image
        offsets.add(matches[0])
    assert len(offsets) > 1  # ... not always the same one
    assert not np.array_equal(x, pre(digits))  # and not the centre crop


def test_training_shifts_with_zero_padding():
    images = np.full((32, 1, 12, 12), 200, np.uint8)
    pre = Preprocessor.fit(np.concatenate([images, np.zeros_like(images)]), (1, 12, 12), max_shift=2)
    x = pre(images, rng=np.random.default_rng(0))
    zero = pre.normalizer(np.zeros((1, 1, 1, 1), np.uint8))[0, 0, 0, 0]
    padded = (x == zero).any(axis=(1, 2, 3))
    assert padded.any() and (x.shape == images.shape)
    assert ((x == zero).sum(axis=(1, 2, 3)) <= 12 * 12 - 10 * 10).all()  # at most 2 rows and 2 columns moved in


def test_training_flips_some_images():
    images = np.zeros((32, 1, 6, 6), np.uint8)
    images[:, :, :, 0] = 255  # a bright left column
    pre = Preprocessor.fit(images, (1, 6, 6), flip=True)
    x = pre(images, rng=np.random.default_rng(0))
    left, right = x[:, 0, :, 0].mean(axis=1), x[:, 0, :, -1].mean(axis=1)
    flipped = right > left
    assert 0 < flipped.sum() < 32
    np.testing.assert_array_equal(x[flipped], pre(images[flipped])[..., ::-1])
    no_flip = Preprocessor.fit(images, (1, 6, 6), flip=False)
    np.testing.assert_array_equal(no_flip(images, rng=np.random.default_rng(0)), no_flip(images))


def test_training_randomness_comes_from_the_generator(digits):
    pre = Preprocessor.fit(digits, (1, 24, 24), flip=True, max_shift=2)
    a = pre(digits, rng=np.random.default_rng(7))
    b = pre(digits, rng=np.random.default_rng(7))
    c = pre(digits, rng=np.random.default_rng(8))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_normalises_each_channel_with_training_statistics():
    rng = np.random.default_rng(0)
    images = np.stack([rng.integers(0, 50, (64, 8, 8)), rng.integers(100, 250, (64, 8, 8))], axis=1).astype(np.uint8)
    pre = Preprocessor.fit(images, (2, 8, 8))
    x = pre(images)
    np.testing.assert_allclose(x.mean(axis=(0, 2, 3)), 0, atol=1e-4)
    np.testing.assert_allclose(x.std(axis=(0, 2, 3)), 1, rtol=1e-4)


@pytest.mark.parametrize("shape, message", [
    ((2, 3, 28, 28), "the net takes 1-channel 24x24 images; these are 3-channel 28x28 (colour): pick a dataset or "
                     "model that matches"),
    ((2, 1, 20, 28), "the net takes 1-channel 24x24 images; these are 1-channel 20x28 (grey)"),
    ((2, 28, 28), "expected images (N, C, H, W), got shape (2, 28, 28)"),
])
def test_images_that_cannot_feed_the_net_raise_shape_error(digits, shape, message):
    pre = Preprocessor.fit(digits, (1, 24, 24))
    with pytest.raises(ShapeError, match=re.escape(message)):
        pre(np.zeros(shape, np.uint8))


def test_fit_checks_the_images_against_the_net():
    colour = np.zeros((4, 3, 32, 32), np.uint8)
    with pytest.raises(ShapeError, match=re.escape("the net takes 1-channel 28x28 images; these are 3-channel")):
        Preprocessor.fit(colour, (1, 28, 28))


def test_to_dict_from_dict_round_trip(digits):
    pre = Preprocessor.fit(digits, (1, 24, 24), classes=["zero", "one"], flip=True, max_shift=3)
    d = json.loads(json.dumps(pre.to_dict()))  # as stored in a checkpoint
    back = Preprocessor.from_dict(d)
    assert back.input_shape == (1, 24, 24) and back.classes == ["zero", "one"]
    assert (back.flip, back.max_shift) == (True, 3)
    np.testing.assert_array_equal(back.normalizer.mean, pre.normalizer.mean)
    np.testing.assert_array_equal(back.normalizer.std, pre.normalizer.std)
    np.testing.assert_array_equal(back(digits), pre(digits))
    np.testing.assert_array_equal(back(digits, rng=np.random.default_rng(3)), pre(digits, rng=np.random.default_rng(3)))
    assert back.to_dict() == d


def test_constructed_directly():
    pre = Preprocessor(Normalizer([10.0], [2.0]), (1, 2, 2))
    x = pre(np.full((1, 1, 2, 2), 14, np.uint8))
    np.testing.assert_array_equal(x, np.full((1, 1, 2, 2), 2.0, np.float32))
    assert (pre.classes, pre.flip, pre.max_shift) == ([], False, 0)


# -- 1D signals: no crop or flip, an optional shift along L, per-channel standardisation ------------------------
@pytest.fixture(scope="module")
def signals():
    """(16, 1, 40) float32 signals with no zeros, so zero-filled positions are recognisable."""
    return np.random.default_rng(1).uniform(1, 3, (16, 1, 40)).astype(np.float32)


def test_signals_are_only_normalised_in_evaluation(signals):
    pre = Preprocessor.fit(signals, (1, 40), flip=True, max_shift=3)
    x = pre(signals)
    assert x.shape == (16, 1, 40) and x.dtype == np.float32
    np.testing.assert_array_equal(x, pre.normalizer(signals))
    np.testing.assert_allclose(x.mean(), 0, atol=1e-5)
    np.testing.assert_array_equal(Preprocessor.fit(signals, (1, 40))(signals, rng=np.random.default_rng(0)), x)


def test_signals_are_shifted_in_training_never_flipped(signals):
    pre = Preprocessor.fit(signals, (1, 40), flip=True, max_shift=3)
    x = pre.normalizer.inverse(pre(signals, rng=np.random.default_rng(0)))  # back in signal units
    shifts = set()
    for i in range(len(signals)):
        s = next(s for s in range(-3, 4) if np.allclose(x[i, 0], np.roll(np.pad(signals[i, 0], 3), s)[3:43],
                                                        atol=1e-5))
        shifts.add(s)
    assert len(shifts) > 2
    again = pre(signals, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(pre(signals, rng=np.random.default_rng(0)), again)


@pytest.mark.parametrize("shape, message", [
    ((2, 1, 39), "the net takes 1-channel signals of length 40; these are 1-channel of length 39: pick a dataset "
                 "or model that matches"),
    ((2, 2, 40), "the net takes 1-channel signals of length 40; these are 2-channel of length 40"),
    ((2, 1, 28, 28), "expected signals (N, C, L), got shape (2, 1, 28, 28)"),
])
def test_signals_that_cannot_feed_the_net_raise_shape_error(signals, shape, message):
    pre = Preprocessor.fit(signals, (1, 40))
    with pytest.raises(ShapeError, match=re.escape(message)):
        pre(np.ones(shape, np.float32))


def test_signals_round_trip(signals):
    pre = Preprocessor.fit(signals, (1, 40), classes=list("0123456789"), max_shift=2)
    back = Preprocessor.from_dict(json.loads(json.dumps(pre.to_dict())))
    assert back.input_shape == (1, 40)
    rngs = np.random.default_rng(4), np.random.default_rng(4)
    np.testing.assert_array_equal(back(signals, rng=rngs[0]), pre(signals, rng=rngs[1]))
