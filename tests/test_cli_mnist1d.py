"""``convnetpy train | evaluate | predict`` on MNIST-1D: 1D signals end to end, generated in an isolated cache."""

from __future__ import annotations

import contextlib
import io
import json
import re
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from convnetpy import cli
from convnetpy.checkpoint import load_checkpoint
from convnetpy.data import load_dataset
from convnetpy.preprocess import Preprocessor
from convnetpy.train import evaluate

pytest.importorskip("mnist1d", reason="the mnist1d package generates MNIST-1D: pip install 'convnetpy[mnist1d]'")

FIGURES = ("curves.png", "filters.png", "feature_maps.png", "predictions.png", "confusion.png")


def _isolate(mp: pytest.MonkeyPatch, root: Path) -> None:
    """No user data, no user cache: MNIST-1D is generated into root/xdg-cache."""
    mp.setenv("CONVNETPY_DATA", str(root / "env-data"))
    mp.setenv("XDG_CACHE_HOME", str(root / "xdg-cache"))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One real ``convnetpy train mnist1d_cnn --dataset mnist1d`` (4 epochs, augmentation on by default),
    generating the dataset on the way; its folder, stdout and stderr."""
    root = tmp_path_factory.mktemp("mnist1d-cli")
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        _isolate(mp, root)
        code = cli.main(["train", "mnist1d_cnn", "--dataset", "mnist1d", "--epochs", "4", "--optimizer", "adam",
                         "--lr", "0.01", "--batch-size", "100", "--weight-decay", "0", "--out", str(root / "run")])
    assert code == 0, err.getvalue()
    return SimpleNamespace(root=root, dir=root / "run", ckpt=root / "run" / "checkpoint.npz", out=out.getvalue(),
                           err=err.getvalue())


@pytest.fixture(autouse=True)
def isolated(monkeypatch, run):
    """Every test sees the module's isolated cache (already holding mnist1d.npz)."""
    _isolate(monkeypatch, run.root)


def run_main(argv, capsys) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_train_generates_the_dataset_and_writes_a_run(run):
    assert (run.root / "xdg-cache" / "convnetpy" / "mnist1d" / "mnist1d.npz").is_file()
    assert not (run.root / "env-data").exists()  # the cache, not the data folder
    assert "training mnist1d_cnn on mnist1d (4,000 images)" in run.err
    accuracy = float(re.search(r"test accuracy (\d+\.\d+)%", run.out).group(1))
    assert accuracy > 50  # 4 epochs (144 steps) of Adam: well above chance (10%)
    for name in FIGURES:
        assert (run.dir / name).stat().st_size > 1000, name
    _, _, saved = load_checkpoint(run.ckpt)
    assert saved["dataset"] == "mnist1d" and saved["image_shape"] == [1, 40]
    assert saved["preprocess"]["input_shape"] == [1, 40] and saved["preprocess"]["flip"] is False
    assert saved["config"]["augment"] is True and saved["config"]["max_shift"] == 2  # shifts along L


def test_evaluate_matches_the_training_runs_test_accuracy(run, capsys):
    code, out, err = run_main(["evaluate", run.ckpt, "--dataset", "mnist1d"], capsys)
    assert code == 0, err
    assert re.fullmatch(r"mnist1d test: accuracy \d+\.\d+%, loss \d+\.\d+ \(1,000 images\)\n", out)
    assert out.split("accuracy ")[1].split(",")[0] in run.out  # the same figure train printed
    code, out, _ = run_main(["evaluate", run.ckpt, "--dataset", "mnist1d", "--split", "train", "--json"], capsys)
    result = json.loads(out)
    assert code == 0 and result["n"] == 4000 and np.array(result["confusion"]).shape == (10, 10)
    net, _, saved = load_checkpoint(run.ckpt)
    test = load_dataset("mnist1d", "test")
    expected = evaluate(net, Preprocessor.from_dict(saved["preprocess"]), test.images, test.labels)
    _, out, _ = run_main(["evaluate", run.ckpt, "--dataset", "mnist1d", "--json"], capsys)
    assert json.loads(out)["accuracy"] == expected["accuracy"]


def test_evaluate_on_the_shuffled_variant(run, capsys):
    """Same shapes, so it runs; the CNN trained on ordered positions does much worse on shuffled ones."""
    code, out, err = run_main(["evaluate", run.ckpt, "--dataset", "mnist1d-shuffled", "--json"], capsys)
    assert code == 0, err
    assert json.loads(out)["accuracy"] < 0.5
    assert (run.root / "xdg-cache" / "convnetpy" / "mnist1d" / "mnist1d-shuffled.npz").is_file()


def test_predict_reads_signal_files(run, tmp_path, capsys):
    test = load_dataset("mnist1d", "test")
    npy, txt = tmp_path / "a.npy", tmp_path / "b.csv"
    np.save(npy, test.images[0])  # (1, 40)
    txt.write_text(",".join(f"{v:.6f}" for v in test.images[1, 0]))  # one line of 40 numbers
    code, out, err = run_main(["predict", run.ckpt, npy, txt, "--top", "2"], capsys)
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == 2 and lines[0].startswith(f"{npy}: ") and lines[1].startswith(f"{txt}: ")
    assert all(re.fullmatch(r".*: \d \d+\.\d%, \d \d+\.\d%", line) for line in lines)


def test_predict_rejects_a_signal_of_the_wrong_length(run, tmp_path, capsys):
    bad = tmp_path / "short.txt"
    bad.write_text("1 2 3")
    code, _, err = run_main(["predict", run.ckpt, bad], capsys)
    assert code == 1
    assert err == (f"convnetpy: error: {bad} holds 3 float64 values; the net takes 1-channel signals of length 40 "
                   f"(40 numbers)\n")


def test_an_image_model_on_signals_is_one_clear_error(run, tmp_path, capsys):
    code, _, err = run_main(["train", "lenet5", "--dataset", "mnist1d", "--out", tmp_path / "r"], capsys)
    assert code == 1
    assert err.endswith("convnetpy: error: expected images (N, C, H, W), got shape (4000, 1, 40)\n"), err


def test_missing_package_is_one_clear_error(run, tmp_path, monkeypatch, capsys):
    _isolate(monkeypatch, tmp_path)  # an empty cache: MNIST-1D must be generated
    monkeypatch.setitem(sys.modules, "mnist1d", None)
    monkeypatch.setitem(sys.modules, "mnist1d.data", None)
    code, _, err = run_main(["train", "mnist1d_cnn", "--dataset", "mnist1d", "--out", tmp_path / "r"], capsys)
    assert code == 1
    assert err.startswith("convnetpy: error: MNIST-1D is generated by the mnist1d package, which is not installed")
    assert err.endswith("pip install 'convnetpy[mnist1d]'\n") and err.count("\n") == 1
