"""Augmentation, normalisation and batching: vectorised, reproducible from a seed, float32 where it matters."""

import numpy as np
import pytest

from convnetpy.data import Normalizer, batches, random_crop, random_flip, random_shift
from convnetpy.errors import ShapeError


@pytest.fixture
def x():
    return np.random.default_rng(0).integers(0, 256, (16, 3, 5, 7), dtype=np.uint8)  # (N, C, H, W)


def test_flip_is_its_own_inverse(x):
    once = random_flip(x, np.random.default_rng(1))
    flipped = np.any(once != x, axis=(1, 2, 3))
    assert 0 < flipped.sum() < len(x)  # some flipped, some not (p = 0.5)
    np.testing.assert_array_equal(once[flipped], x[flipped][..., ::-1])
    np.testing.assert_array_equal(random_flip(once, np.random.default_rng(1)), x)
    assert once.dtype == x.dtype and once.shape == x.shape


def test_flip_probability(x):
    np.testing.assert_array_equal(random_flip(x, np.random.default_rng(0), p=1.0), x[..., ::-1])
    np.testing.assert_array_equal(random_flip(x, np.random.default_rng(0), p=0.0), x)


def test_shift_keeps_shape_and_zero_fills(x):
    out = random_shift(x, 2, np.random.default_rng(0))
    assert out.shape == x.shape and out.dtype == x.dtype
    seen = set()
    for i in range(len(x)):  # the test (not the code) finds each image's shift by brute force
        matches = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
                   if np.array_equal(out[i], _shift(x[i], dy, dx))]
        assert matches, f"image {i} is not a shift of its input by at most 2 pixels"
        seen.add(matches[0])
    assert len(seen) > 3


def _shift(img, dy, dx):
    out = np.zeros_like(img)
    h, w = img.shape[1:]
    out[:, max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = img[:, max(-dy, 0):h - max(dy, 0),
                                                                        max(-dx, 0):w - max(dx, 0)]
    return out


def test_shift_zero_is_identity(x):
    np.testing.assert_array_equal(random_shift(x, 0, np.random.default_rng(0)), x)


def test_crop(x):
    out = random_crop(x, (3, 4), np.random.default_rng(0))
    assert out.shape == (16, 3, 3, 4)
    out = random_crop(x, 9, np.random.default_rng(0), padding=2)
    assert out.shape == (16, 3, 9, 9)
    with pytest.raises(ShapeError, match="does not fit"):
        random_crop(x, 10, np.random.default_rng(0), padding=2)
    with pytest.raises(ShapeError, match=r"expected a batch of images \(N, C, H, W\)"):
        random_flip(x[0], np.random.default_rng(0))


def test_same_seed_same_augmentation(x):
    a = random_shift(random_flip(x, r := np.random.default_rng(5)), 2, r)
    b = random_shift(random_flip(x, r := np.random.default_rng(5)), 2, r)
    np.testing.assert_array_equal(a, b)


def test_normalizer():
    rng = np.random.default_rng(0)
    images = np.stack([rng.integers(0, 50, (64, 6, 6)), rng.integers(100, 256, (64, 6, 6)),
                       np.full((64, 6, 6), 7)], axis=1).astype(np.uint8)  # (64, 3, 6, 6); channel 2 constant
    norm = Normalizer.fit(images, chunk=10)
    assert norm.mean.dtype == np.float32 and norm.mean.shape == (3,)
    np.testing.assert_allclose(norm.mean, images.mean(axis=(0, 2, 3)), rtol=1e-6)
    np.testing.assert_allclose(norm.std[:2], images.std(axis=(0, 2, 3))[:2], rtol=1e-6)
    out = norm(images)
    assert out.dtype == np.float32 and out.shape == images.shape
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(out.std(axis=(0, 2, 3)), [1, 1, 0], atol=1e-5)
    np.testing.assert_allclose(norm.inverse(out), images, atol=1e-3)
    assert Normalizer(**norm.to_dict()).to_dict() == norm.to_dict()
    with pytest.raises(ShapeError, match="fitted on 3 channels"):
        norm(images[:, :1])


def test_batches_same_seed_same_batches():
    a = list(batches(10, 3, np.random.default_rng(7)))
    b = list(batches(10, 3, np.random.default_rng(7)))
    assert [len(i) for i in a] == [3, 3, 3, 1]
    assert all(np.array_equal(i, j) for i, j in zip(a, b))
    assert sorted(np.concatenate(a).tolist()) == list(range(10))
    assert np.concatenate(a).tolist() != list(range(10))
    assert [len(i) for i in batches(10, 3, np.random.default_rng(7), drop_last=True)] == [3, 3, 3]
    assert np.concatenate(list(batches(5, 2))).tolist() == [0, 1, 2, 3, 4]
    assert list(batches(0, 4)) == []


def test_batches_rejects_bad_arguments():
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        batches(10, 0)
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        batches(10, 2, np.random.RandomState(0))


# -- 1D signals (N, C, L) ------------------------------------------------------------------------------------
def test_shift_of_signals_keeps_shape_and_zero_fills():
    signals = np.random.default_rng(1).uniform(1, 2, (32, 2, 9)).astype(np.float32)  # no zeros of its own
    out = random_shift(signals, 2, np.random.default_rng(0))
    assert out.shape == signals.shape and out.dtype == np.float32
    seen = set()
    for i in range(len(signals)):
        matches = [s for s in range(-2, 3) if np.array_equal(out[i], _shift(signals[i][:, None, :], 0, s)[:, 0])]
        assert matches, f"signal {i} is not a shift of its input by at most 2 positions"
        seen.add(matches[0])
    assert seen == {-2, -1, 0, 1, 2}
    np.testing.assert_array_equal(random_shift(signals, 0, np.random.default_rng(0)), signals)
    with pytest.raises(ShapeError, match=r"expected a batch of images \(N, C, H, W\)"):
        random_shift(signals[0], 1, np.random.default_rng(0))  # one signal, not a batch


def test_normalizer_on_signals_matches_images_with_one_row():
    rng = np.random.default_rng(2)
    signals = (rng.standard_normal((50, 2, 40)) * [[3.0], [0.5]] + [[1.0], [-4.0]]).astype(np.float32)
    norm = Normalizer.fit(signals, chunk=7)
    as_images = Normalizer.fit(signals[:, :, None, :], chunk=7)  # (N, C, 1, L): the same numbers
    np.testing.assert_array_equal(norm.mean, as_images.mean)
    np.testing.assert_array_equal(norm.std, as_images.std)
    out = norm(signals)
    assert out.dtype == np.float32 and out.shape == signals.shape
    np.testing.assert_allclose(out.mean(axis=(0, 2)), 0, atol=1e-5)
    np.testing.assert_allclose(out.std(axis=(0, 2)), 1, atol=1e-5)
    np.testing.assert_allclose(norm.inverse(out), signals, atol=1e-5)
    with pytest.raises(ShapeError, match=r"expected a batch \(N, C, ...\)"):
        norm(signals[:, 0])
