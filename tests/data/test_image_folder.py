"""Image folders: classes sorted into labels, images of any size and mode resized to (C, H, W) uint8."""

import numpy as np
import pytest
from PIL import Image

from convnetpy.data import DataFormatError, DatasetNotFoundError, load_image_folder


@pytest.fixture
def folder(tmp_path):
    """root/<class>/: 'cat' 2 RGB images (one PNG, one JPG in a sub-folder), 'ant' 1 grey PNG, 'bee' 1 RGBA PNG."""
    root = tmp_path / "pets"
    for name in ("cat/sub", "ant", "bee", ".hidden"):
        (root / name).mkdir(parents=True)
    Image.new("RGB", (10, 6), (255, 0, 0)).save(root / "cat" / "a.png")
    Image.new("RGB", (40, 30), (0, 0, 255)).save(root / "cat" / "sub" / "b.jpg", quality=95)
    Image.fromarray(np.full((7, 5), 128, np.uint8), mode="L").save(root / "ant" / "x.PNG")
    Image.new("RGBA", (8, 8), (0, 255, 0, 10)).save(root / "bee" / "y.png")
    (root / "bee" / "notes.txt").write_text("not an image")
    Image.new("RGB", (4, 4)).save(root / ".hidden" / "z.png")
    return root


def test_rgb(folder):
    data = load_image_folder(folder, 8)
    assert data.classes == ["ant", "bee", "cat"]
    assert data.images.shape == (4, 3, 8, 8) and data.images.dtype == np.uint8
    np.testing.assert_array_equal(data.labels, [0, 1, 2, 2])
    assert data.labels.dtype == np.int64 and data.name == "pets"
    np.testing.assert_array_equal(data.images[0], 128)  # grey -> RGB
    np.testing.assert_array_equal(data.images[1].reshape(3, -1).T, [[0, 255, 0]] * 64)  # alpha dropped
    np.testing.assert_array_equal(data.images[2].reshape(3, -1).T, [[255, 0, 0]] * 64)  # channels first, R G B
    assert np.all(np.abs(data.images[3].astype(int) - np.array([0, 0, 255])[:, None, None]) <= 3)  # JPEG


def test_grey_and_rectangular_size(folder):
    data = load_image_folder(folder, (5, 9), grey=True)
    assert data.images.shape == (4, 1, 5, 9)
    np.testing.assert_array_equal(data.images[0], 128)
    assert abs(int(data.images[2, 0, 0, 0]) - 76) <= 1  # pure red in ITU-R 601 luma: 0.299 * 255


def test_errors(tmp_path, folder):
    with pytest.raises(DatasetNotFoundError, match="no image folder"):
        load_image_folder(tmp_path / "nope", 8)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataFormatError, match="has no class folders"):
        load_image_folder(tmp_path / "empty", 8)
    (folder / "dog").mkdir()
    with pytest.raises(DataFormatError, match="class folder\\(s\\) dog hold no images"):
        load_image_folder(folder, 8)
    (folder / "dog" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(DataFormatError, match="broken.png: not a readable image"):
        load_image_folder(folder, 8)
