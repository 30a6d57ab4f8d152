"""The datasets the page offers: image folders inside the data directory only."""

from __future__ import annotations

import pytest

from convnetpy.studio.config import SetupError
from convnetpy.studio.datasets import image_folders, is_digits, load_run_data, resolve_folder


def test_image_folders_are_found_up_to_two_levels_deep(data_dir, tmp_path):
    assert image_folders(data_dir) == ["bars", "digits"]
    (tmp_path / "nested").mkdir()
    (tmp_path / "nested" / "bars").symlink_to(data_dir / "bars")
    assert image_folders(tmp_path) == ["nested/bars"]
    assert image_folders(None) == []


@pytest.mark.parametrize("relative", ["..", "bars/../..", "/tmp", "", "bars\\..\\.."])
def test_paths_outside_the_data_dir_are_refused(data_dir, relative):
    with pytest.raises(SetupError) as e:
        resolve_folder(data_dir, relative)
    assert e.value.field == "dataset"


def test_a_folder_needs_a_data_dir():
    with pytest.raises(SetupError, match="--data-dir"):
        resolve_folder(None, "bars")


def test_load_an_image_folder_with_train_and_test(data_dir):
    data = load_run_data("folder:bars", data_dir, (1, 12, 12), download=False)
    assert data.train.images.shape == (120, 1, 12, 12) and len(data.test) == 30
    assert data.source == str((data_dir / "bars").resolve())


def test_a_named_dataset_that_is_missing_says_where_it_looked(tmp_path):
    with pytest.raises(SetupError, match="dataset 'mnist' \\(train split\\) not found") as e:
        load_run_data("mnist", tmp_path, (1, 28, 28), download=False)
    assert e.value.field == "dataset"


def test_the_bundled_sample_loads_without_a_data_dir():
    data = load_run_data("fashion-mnist-sample", None, (1, 28, 28), download=False)
    assert len(data.train) == 3000 and len(data.test) == 1000


def test_digit_datasets_get_a_drawing_canvas():
    digits = [str(d) for d in range(10)]
    assert is_digits(digits, (1, 28, 28)) and not is_digits(digits, (3, 32, 32)) and not is_digits(digits, (1, 40))
    assert not is_digits(["T-shirt/top"] * 10, (1, 28, 28))
