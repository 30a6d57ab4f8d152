"""From uint8 dataset images (or float 1D signals) to the float32 batches a net takes: crop, augment, normalise.

A ``Preprocessor`` is fitted once on the training images and saved in checkpoints, so evaluation and
prediction later apply exactly the same transformation as training did.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .data.augment import Normalizer, random_crop, random_flip, random_shift
from .errors import ShapeError


@dataclass
class Preprocessor:
    """uint8 images (N, C, H, W) -> float32 net input (N, *input_shape); or signals (N, C, L) for a 1D net.

    Images larger than the net's input are cropped to it: at random in training (ConvNetJS trained its
    MNIST net on random 24x24 crops of the 28x28 digits), in the centre otherwise. With a generator,
    training batches are also shifted by up to ``max_shift`` pixels (zero-filled) and, when ``flip``,
    mirrored left-right at random. Then each channel is standardised with the training set's statistics.
    Signals (input_shape (C, L)) must have the net's length: they are neither cropped nor flipped, only
    shifted along L by up to ``max_shift`` positions (zero-filled) in training, then standardised.
    """

    normalizer: Normalizer
    input_shape: tuple[int, ...]  # (C, H, W), or (C, L) for signals
    classes: list[str] = field(default_factory=list)
    flip: bool = False
    max_shift: int = 0

    @classmethod
    def fit(cls, images: np.ndarray, input_shape, classes=(), flip: bool = False, max_shift: int = 0) -> Preprocessor:
        """Fit the per-channel statistics on training ``images`` (N, C, H, W) uint8 (or signals (N, C, L))."""
        pre = cls(Normalizer.fit(images), tuple(input_shape), list(classes), flip, max_shift)
        pre.check(images)
        return pre

    def check(self, images: np.ndarray) -> None:
        """Raise a clear error when images (or signals) cannot feed the net (channels or sizes)."""
        if len(self.input_shape) == 2:
            if images.ndim != 3:
                raise ShapeError(f"expected signals (N, C, L), got shape {tuple(images.shape)}")
            (c, length), (C, L) = images.shape[1:], self.input_shape
            if (c, length) != (C, L):
                raise ShapeError(f"the net takes {C}-channel signals of length {L}; these are {c}-channel of "
                                 f"length {length}: pick a dataset or model that matches")
            return
        if images.ndim != 4:
            raise ShapeError(f"expected images (N, C, H, W), got shape {tuple(images.shape)}")
        c, h, w = images.shape[1:]
        C, H, W = self.input_shape
        if c != C or h < H or w < W:
            raise ShapeError(f"the net takes {C}-channel {H}x{W} images; these are {c}-channel {h}x{w} "
                             f"({'grey' if c == 1 else 'colour'}): pick a dataset or model that matches")

    def __call__(self, images: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        """Preprocess a batch; ``rng`` given means training (random crop, shift, flip), else deterministic."""
        self.check(images)
        if len(self.input_shape) == 2:  # signals (N, C, L)
            shifted = rng is not None and self.max_shift
            return self.normalizer(random_shift(images, self.max_shift, rng) if shifted else images)
        H, W = self.input_shape[1:]
        h, w = images.shape[2:]
        if rng is not None:
            x = images
            if (h, w) != (H, W) or self.max_shift:
                x = random_crop(x, (H, W), rng, padding=self.max_shift)
            if self.flip:
                x = random_flip(x, rng)
        else:
            top, left = (h - H) // 2, (w - W) // 2
            x = images[:, :, top:top + H, left:left + W]
        return self.normalizer(x)

    def tta_views(self, images: np.ndarray) -> list[np.ndarray]:
        """Test-time augmentation for images (N, C, h, w) uint8: net inputs (N, *input_shape) float32 for the
        centre crop and the crop window moved by one pixel up, down, left and right (zeros beyond the image,
        as training's shifts fill), each also mirrored when training flipped. ConvNetJS's demos averaged their
        predictions over several shifted crops like these.
        """
        self.check(images)
        H, W = self.input_shape[1:]
        h, w = images.shape[2:]
        padded = np.pad(images, ((0, 0), (0, 0), (1, 1), (1, 1)))  # (N, C, h + 2, w + 2)
        top, left = (h - H) // 2 + 1, (w - W) // 2 + 1
        views = []
        for dy, dx in ((0, 0), (-1, 0), (1, 0), (0, -1), (0, 1)):
            view = padded[:, :, top + dy:top + dy + H, left + dx:left + dx + W]
            views += [view, view[..., ::-1]] if self.flip else [view]
        return [self.normalizer(v) for v in views]

    def to_dict(self) -> dict:
        return {**self.normalizer.to_dict(), "input_shape": list(self.input_shape), "classes": list(self.classes),
                "flip": self.flip, "max_shift": self.max_shift}

    @classmethod
    def from_dict(cls, d: dict) -> Preprocessor:
        return cls(Normalizer(d["mean"], d["std"]), tuple(d["input_shape"]), list(d["classes"]), d["flip"],
                   d["max_shift"])
