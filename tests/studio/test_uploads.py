"""Uploaded files: images checked and resized as the dataset's, signals for 1D nets, clear refusals."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from convnetpy.studio.uploads import UploadError, decode_image, decode_signal


def encoded(image: Image.Image, kind: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=kind)
    return buffer.getvalue()


@pytest.mark.parametrize("kind", ["PNG", "JPEG", "BMP", "GIF", "WEBP"])
def test_images_are_resized_to_the_dataset_shape(kind):
    body = encoded(Image.new("RGB", (40, 30), (200, 10, 10)), kind)
    colour = decode_image(body, (3, 32, 32))
    grey = decode_image(body, (1, 28, 28))
    assert colour.shape == (3, 32, 32) and colour.dtype == np.uint8 and colour[0].mean() > colour[1].mean()
    assert grey.shape == (1, 28, 28)


@pytest.mark.parametrize("body, message", [
    (b"\x89PNG\r\n\x1a\n truncated", "not an image"),
    (b"hello", "not an image"),
])
def test_not_images_are_refused(body, message):
    with pytest.raises(UploadError, match=message):
        decode_image(body, (1, 28, 28))


def test_image_formats_outside_the_list_are_refused():
    with pytest.raises(UploadError, match="a ICO image"):
        decode_image(encoded(Image.new("RGB", (16, 16)), "ICO"), (1, 28, 28))


def test_signals_from_npy_and_text():
    signal = np.linspace(-1, 1, 40)
    buffer = io.BytesIO()
    np.save(buffer, signal)
    assert np.allclose(decode_signal(buffer.getvalue(), (1, 40))[0], signal)
    text = ", ".join(map(str, signal)).encode()
    assert decode_signal(text, (1, 40)).dtype == np.float32
    with pytest.raises(UploadError, match="holds 3 float64 values; the net takes 1-channel signals of length 40"):
        decode_signal(b"1 2 3", (1, 40))
    with pytest.raises(UploadError, match="not a signal"):
        decode_signal(b"1 two 3", (1, 40))
    with pytest.raises(UploadError, match="finite"):
        decode_signal(" ".join(["nan"] * 40).encode(), (1, 40))
