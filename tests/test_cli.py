"""The ``convnetpy`` command: train (resume, Ctrl-C, divergence), evaluate, predict, summary, and its exit codes.

Runs ``convnetpy.cli.main`` in-process on a 256 + 64 image subset of the bundled Fashion-MNIST sample, written in
the official IDX format to a temporary ``--data-dir``; a few real subprocess calls check the installed script.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from convnetpy import Net, callbacks, cli
from convnetpy.callbacks import ProgressBar
from convnetpy.checkpoint import load_checkpoint, save_checkpoint
from convnetpy.data import DownloadError, datasets, download, load_dataset
from convnetpy.data.datasets import FASHION_CLASSES
from convnetpy.preprocess import Preprocessor
from convnetpy.train import FitConfig, Trainer, evaluate, top_k
from helpers import assert_same_evaluation
from train_helpers import assert_same_weights, fashion_data_dir

N_TRAIN, N_TEST, BATCH = 256, 64, 32
STEPS_PER_EPOCH = math.ceil((N_TRAIN - round(N_TRAIN * 0.1)) / BATCH)  # 230 training images -> 8 steps
FIGURES = ("curves.png", "filters.png", "feature_maps.png", "predictions.png", "confusion.png")
# 24x24 crops of the 28x28 images (like ConvNetJS's MNIST net), one small conv layer, 10 classes.
SPECS = [
    {"type": "input", "shape": [1, 24, 24]},
    {"type": "conv", "filters": 4, "size": 3, "pad": 1, "activation": "relu"},
    {"type": "pool", "size": 4},
    {"type": "softmax", "classes": 10},
]


def _no_download(urls, dest, md5=None, **kwargs):
    raise DownloadError(f"tests never download (wanted {Path(dest).name})", [(u, "blocked by the tests") for u in urls])


def _isolate(mp: pytest.MonkeyPatch, folder: Path) -> None:
    """No user data, no cache, no network."""
    mp.setenv("CONVNETPY_DATA", str(folder / "env-data"))
    mp.setenv("XDG_CACHE_HOME", str(folder / "xdg-cache"))
    mp.setattr(datasets, "download_file", _no_download)


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path_factory):
    _isolate(monkeypatch, tmp_path_factory.mktemp("isolated"))


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """data: a --data-dir holding fashion-mnist/ (a subset of the bundled sample); spec: the tiny net's JSON file."""
    root = tmp_path_factory.mktemp("cli")
    spec = root / "tiny.json"
    spec.write_text(json.dumps(SPECS))
    return SimpleNamespace(data=fashion_data_dir(root, N_TRAIN, N_TEST), spec=spec)


def train_argv(env, out, *extra) -> list[str]:
    return ["train", str(env.spec), "--dataset", "fashion-mnist", "--data-dir", str(env.data), "--batch-size",
            str(BATCH), "--out", str(out), *extra]


def run_main(argv, capsys) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def run_quietly(argv) -> int:
    """main() for module fixtures (no capsys there): its output is discarded."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return cli.main([str(a) for a in argv])


def assert_one_error_line(err: str, start: str = "convnetpy: error: ") -> str:
    """The last line of stderr is the one error message (after any progress-bar output); no traceback."""
    assert "Traceback" not in err
    assert err.endswith("\n")
    last = err[:-1].split("\n")[-1]
    assert last.startswith(start), err
    assert "\r" not in last  # not glued to a progress bar line
    assert err.count("convnetpy: error") == (1 if "error" in start else 0)
    return last


def assert_only_error(err: str) -> str:
    """stderr is exactly one line, the error."""
    last = assert_one_error_line(err)
    assert err == last + "\n", err
    return last


def assert_same_checkpoints(a, b) -> None:
    net_a, opt_a, saved_a = load_checkpoint(a)
    net_b, opt_b, saved_b = load_checkpoint(b)
    assert_same_weights(net_a, net_b)
    assert opt_a["steps"] == opt_b["steps"]
    for key in opt_a["arrays"]:
        assert np.array_equal(opt_a["arrays"][key], opt_b["arrays"][key]), key
    sa, sb = saved_a["state"], saved_b["state"]
    assert (sa["epoch"], sa["step"], sa["global_step"]) == (sb["epoch"], sb["step"], sb["global_step"])
    assert [r["loss"] for r in sa["history"]["steps"]] == [r["loss"] for r in sb["history"]["steps"]]


@pytest.fixture(scope="module")
def straight_run(env, tmp_path_factory):
    """``train --epochs 2`` in one go: the reference for resumed runs."""
    out = tmp_path_factory.mktemp("straight") / "run"
    with pytest.MonkeyPatch.context() as mp:
        _isolate(mp, out.parent)
        assert run_quietly(train_argv(env, out, "--epochs", "2")) == 0
    return out


@pytest.fixture(scope="module")
def trained(straight_run):
    return straight_run / "checkpoint.npz"


# -- train ----------------------------------------------------------------------------------------------------------
def test_train_writes_checkpoint_history_and_figures(env, tmp_path, capsys):
    out = tmp_path / "run"
    code, stdout, err = run_main(train_argv(env, out, "--epochs", "1"), capsys)
    assert code == 0, err
    assert "Traceback" not in err
    assert f"training {env.spec} on fashion-mnist ({N_TRAIN} images) -> {out}" in err
    assert stdout.startswith("test accuracy ") and f"({N_TEST} images)" in stdout
    net, _, saved = load_checkpoint(out / "checkpoint.npz")
    assert net.specs() == Net(SPECS).specs()
    assert saved["dataset"] == "fashion-mnist" and saved["image_shape"] == [1, 28, 28]
    assert saved["state"]["epoch"] == 1 and saved["state"]["finished"] is True
    assert saved["preprocess"]["classes"] == list(FASHION_CLASSES)
    config = saved["config"]
    assert (config["augment"], config["flip"], config["max_shift"], config["batch_size"]) == (True, True, 2, BATCH)
    history = json.loads((out / "history.json").read_text())
    assert len(history["epochs"]) == 1 and len(history["steps"]) == STEPS_PER_EPOCH
    for name in FIGURES:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
        assert f"wrote {out / name}" in err


def test_resume_with_more_epochs_equals_a_straight_run(env, tmp_path, capsys, straight_run):
    out = tmp_path / "run"
    assert run_main(train_argv(env, out, "--epochs", "1"), capsys)[0] == 0
    code, _, err = run_main(train_argv(env, out, "--epochs", "2", "--resume"), capsys)
    assert code == 0, err
    assert f"resuming {out / 'checkpoint.npz'} at epoch 2, step 0" in err
    assert_same_checkpoints(out / "checkpoint.npz", straight_run / "checkpoint.npz")
    resumed_epochs = json.loads((out / "history.json").read_text())["epochs"]
    straight_epochs = json.loads((straight_run / "history.json").read_text())["epochs"]
    assert [{k: v for k, v in r.items() if k != "seconds"} for r in resumed_epochs] == \
           [{k: v for k, v in r.items() if k != "seconds"} for r in straight_epochs]


class CtrlCAtStep3(ProgressBar):
    """The progress bar, and a Ctrl-C after the third step."""

    def __call__(self, event, trainer):
        super().__call__(event, trainer)
        if event["event"] == "step" and event["step"] == 3:
            raise KeyboardInterrupt


def test_ctrl_c_saves_exits_130_and_resumes_exactly(env, tmp_path, capsys, monkeypatch, straight_run):
    out = tmp_path / "run"
    monkeypatch.setattr(callbacks, "ProgressBar", CtrlCAtStep3)
    code, stdout, err = run_main(train_argv(env, out, "--epochs", "2"), capsys)
    assert code == 130
    last = assert_one_error_line(err, start="convnetpy: interrupted")
    assert last == "convnetpy: interrupted; the checkpoint was saved (continue with --resume)"
    assert stdout == ""  # no test evaluation, no figures
    assert not (out / "curves.png").exists()
    _, opt, saved = load_checkpoint(out / "checkpoint.npz")
    assert (saved["state"]["epoch"], saved["state"]["step"], opt["steps"]) == (0, 3, 3)

    monkeypatch.setattr(callbacks, "ProgressBar", ProgressBar)
    code, _, err = run_main(train_argv(env, out, "--resume"), capsys)  # epochs come from the checkpoint
    assert code == 0, err
    assert "resuming" in err and "at epoch 1, step 3" in err
    assert_same_checkpoints(out / "checkpoint.npz", straight_run / "checkpoint.npz")


def test_nan_loss_exits_1_with_one_line_and_keeps_the_last_good_checkpoint(env, tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    real_step, calls = Net.train_step, []

    def train_step(self, x, targets):  # the trainer's one call per step (a sharded batch calls Net.loss per shard)
        calls.append(1)
        value, scores = real_step(self, x, targets)
        return (math.nan if len(calls) == STEPS_PER_EPOCH + 2 else value), scores

    monkeypatch.setattr(Net, "train_step", train_step)
    code, stdout, err = run_main(train_argv(env, out, "--epochs", "3"), capsys)
    assert code == 1
    last = assert_one_error_line(err)
    assert last == ("convnetpy: error: the loss became nan at epoch 2, step 2 (lr 0.01): training stopped; lower the "
                    "learning rate. The last good checkpoint is kept.")
    net, _, saved = load_checkpoint(out / "checkpoint.npz")
    assert (saved["state"]["epoch"], saved["state"]["step"]) == (1, 0)
    assert all(np.isfinite(v).all() for v in net.state_dict().values())
    assert stdout == ""


def test_huge_learning_rate_from_the_installed_script(env, tmp_path):
    result = subprocess.run(
        [_script(), *train_argv(env, tmp_path / "run", "--epochs", "2", "--lr", "1e9")],
        capture_output=True, text=True, timeout=120, env=_subprocess_env(tmp_path))
    assert result.returncode == 1
    last = assert_one_error_line(result.stderr)
    assert "the loss became" in last or "became NaN or infinite" in last
    assert "(lr 1e+09)" in last and "lower the learning rate" in last


# -- evaluate ------------------------------------------------------------------------------------------------------
def test_evaluate_prints_accuracy(env, trained, capsys):
    code, out, err = run_main(["evaluate", trained, "--dataset", "fashion-mnist", "--data-dir", env.data], capsys)
    assert code == 0, err
    assert out.startswith("fashion-mnist test: accuracy ") and f"({N_TEST} images)" in out
    assert out.count("\n") == 1


def test_evaluate_json_is_one_object(env, trained, capsys):
    code, out, err = run_main(["evaluate", trained, "--dataset", "fashion-mnist", "--data-dir", env.data, "--json"],
                              capsys)
    assert code == 0, err
    result = json.loads(out)  # the whole of stdout is one JSON object
    assert result.keys() >= {"accuracy", "loss", "n", "confusion"}
    assert result["n"] == N_TEST and 0 <= result["accuracy"] <= 1 and math.isfinite(result["loss"])
    confusion = np.array(result["confusion"])
    assert confusion.shape == (10, 10) and confusion.sum() == N_TEST
    assert np.trace(confusion) == round(result["accuracy"] * N_TEST)

    # the same numbers as the library's
    net, pre, _ = cli.load_run(trained)
    test = load_dataset("fashion-mnist", "test", data_dir=env.data)
    assert_same_evaluation(evaluate(net, pre, test.images, test.labels), result)


@pytest.mark.parametrize("extra, n", [(["--tta"], N_TEST), (["--split", "train"], N_TRAIN)])
def test_evaluate_tta_and_train_split(env, trained, capsys, extra, n):
    code, out, err = run_main(["evaluate", trained, "--dataset", "fashion-mnist", "--data-dir", env.data, "--json",
                               *extra], capsys)
    assert code == 0, err
    assert json.loads(out)["n"] == n


# -- predict -------------------------------------------------------------------------------------------------------
@pytest.fixture
def pictures(tmp_path):
    from PIL import Image

    test = load_dataset("fashion-mnist-sample", "test")
    rng = np.random.default_rng(0)
    paths = [tmp_path / "item.png", tmp_path / "colour.png", tmp_path / "big grey.png"]
    Image.fromarray(test.images[0, 0]).save(paths[0])  # a real 28x28 test image
    Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8), "RGB").save(paths[1])  # RGB for a grey net
    Image.fromarray(rng.integers(0, 256, (100, 60), dtype=np.uint8), "L").save(paths[2])
    return paths


def parse_prediction(line: str) -> tuple[str, list[tuple[str, float]]]:
    path, ranked = line.rsplit(": ", 1)
    pairs = []
    for part in ranked.split(", "):
        name, percent = part.rsplit(" ", 1)
        assert percent.endswith("%")
        pairs.append((name, float(percent[:-1])))
    return path, pairs


def test_predict_prints_the_top_3_classes_of_any_image(trained, pictures, capsys):
    code, out, err = run_main(["predict", trained, *pictures], capsys)
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == len(pictures)
    for line, picture in zip(lines, pictures):
        path, pairs = parse_prediction(line)
        assert path == str(picture)
        assert len(pairs) == 3 and len({name for name, _ in pairs}) == 3
        assert all(name in FASHION_CLASSES for name, _ in pairs)
        percents = [p for _, p in pairs]
        assert percents == sorted(percents, reverse=True) and sum(percents) <= 100.2

    # the same ranking as the library's
    net, pre, _ = cli.load_run(trained)
    best = top_k(net, pre, cli.read_image(pictures[0], (1, 28, 28))[None], 3)[0]
    assert [name for name, _ in parse_prediction(lines[0])[1]] == [FASHION_CLASSES[c] for c, _ in best]


def test_predict_top_1(trained, pictures, capsys):
    code, out, _ = run_main(["predict", trained, pictures[0], "--top", "1"], capsys)
    assert code == 0
    assert len(parse_prediction(out.strip())[1]) == 1


# -- summary -------------------------------------------------------------------------------------------------------
def test_summary_of_a_model_name(capsys):
    code, out, _ = run_main(["summary", "lenet5"], capsys)
    assert code == 0
    assert "total: 61,706 parameters" in out and "Conv2D 5x5x6" in out


def test_summary_of_a_spec_file_a_checkpoint_and_a_saved_net(env, trained, tmp_path, capsys):
    code, from_spec, _ = run_main(["summary", env.spec], capsys)
    assert code == 0
    assert f"total: {Net(SPECS).num_params():,} parameters" in from_spec
    code, from_checkpoint, _ = run_main(["summary", trained], capsys)
    assert code == 0 and from_checkpoint == from_spec
    saved = tmp_path / "net.npz"
    Net(SPECS, seed=1).save(saved)
    code, from_net, _ = run_main(["summary", saved], capsys)
    assert code == 0 and from_net == from_spec


# -- exit codes and one-line errors ------------------------------------------------------------------------------------
def test_unknown_model_is_a_usage_error(env, tmp_path, capsys):
    code, _, err = run_main(["train", "nosuchnet", "--dataset", "fashion-mnist", "--out", tmp_path / "run"], capsys)
    assert code == 2
    assert assert_only_error(err) == ("convnetpy: error: unknown model 'nosuchnet': use one of cifar10net, lenet5, "
                                      "mnistnet, mnist1d_cnn, mnist1d_mlp, mnist1d_logreg or a JSON spec file")


def test_resume_without_checkpoint_is_a_usage_error(env, tmp_path, capsys):
    code, _, err = run_main(train_argv(env, tmp_path / "run", "--resume"), capsys)
    assert code == 2
    assert assert_only_error(err).startswith(f"convnetpy: error: --resume: no checkpoint at {tmp_path / 'run'}")


def test_existing_checkpoint_without_resume_is_a_usage_error(env, tmp_path, capsys, trained):
    out = tmp_path / "run"
    out.mkdir()
    shutil.copy(trained, out / "checkpoint.npz")
    before = (out / "checkpoint.npz").read_bytes()
    code, _, err = run_main(train_argv(env, out, "--epochs", "1"), capsys)
    assert code == 2
    assert "exists: pass --resume to continue that run" in assert_only_error(err)
    assert (out / "checkpoint.npz").read_bytes() == before


def test_missing_arguments_exit_2(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["train", "lenet5"])  # no --dataset, no --out
    assert info.value.code == 2
    assert "the following arguments are required" in capsys.readouterr().err


def test_missing_dataset_exits_1_naming_where_it_looked(tmp_path, capsys, monkeypatch, closed_port_url):
    empty, env_data, cache = tmp_path / "empty", tmp_path / "env-data", tmp_path / "cache"
    for folder in (empty, env_data, cache):
        folder.mkdir()
    monkeypatch.setenv("CONVNETPY_DATA", str(env_data))
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    # The real download code, but every mirror is a closed local port: it fails at once, offline.
    monkeypatch.setattr(datasets, "download_file", download.download_file)
    monkeypatch.setitem(datasets.DATASETS, "mnist",
                        dataclasses.replace(datasets.DATASETS["mnist"], mirrors=(closed_port_url,)))
    code, _, err = run_main(["train", "lenet5", "--dataset", "mnist", "--data-dir", empty, "--out",
                             tmp_path / "run"], capsys)
    assert code == 1
    last = assert_only_error(err)
    assert last.startswith("convnetpy: error: dataset 'mnist' (train split) not found")
    assert str(empty / "mnist") in last and str(env_data / "mnist") in last and closed_port_url in last
    assert not any(empty.iterdir()) and not (tmp_path / "run" / "checkpoint.npz").exists()


def test_net_that_does_not_fit_the_data_exits_1(env, tmp_path, capsys):
    code, _, err = run_main(["train", "cifar10net", "--dataset", "fashion-mnist", "--data-dir", env.data, "--out",
                             tmp_path / "run"], capsys)
    assert code == 1
    assert "the net takes 3-channel 32x32 images; these are 1-channel 28x28" in assert_only_error(err)


def test_unreadable_image_exits_1(trained, tmp_path, capsys):
    bad = tmp_path / "bad.png"
    bad.write_text("this is not a picture")
    code, out, err = run_main(["predict", trained, bad], capsys)
    assert code == 1
    assert assert_only_error(err).startswith(f"convnetpy: error: {bad} is not a readable image")
    assert out == ""
    code, _, err = run_main(["predict", trained, tmp_path / "missing.png"], capsys)
    assert code == 1
    assert assert_only_error(err) == f"convnetpy: error: no image file at {tmp_path / 'missing.png'}"


def test_corrupt_missing_or_wrong_checkpoints_exit_1(env, tmp_path, capsys):
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"PK\x03\x04 definitely not a whole zip archive")
    net_only = tmp_path / "net.npz"
    Net(SPECS, seed=0).save(net_only)
    cases = {corrupt: "is not a readable convnetpy checkpoint file",
             tmp_path / "missing.npz": "no convnetpy checkpoint file at",
             net_only: "holds a saved net, not a training checkpoint"}
    for path, message in cases.items():
        for argv in (["evaluate", path, "--dataset", "fashion-mnist", "--data-dir", env.data],
                     ["predict", path, "whatever.png"]):
            code, _, err = run_main(argv, capsys)
            assert code == 1, argv
            assert message in assert_only_error(err)


def test_evaluate_on_data_with_more_classes_than_the_net_exits_1(env, tmp_path, capsys):
    specs = [*SPECS[:-1], {"type": "softmax", "classes": 3}]
    images = load_dataset("fashion-mnist-sample", "test").images[:8]
    net = Net(specs, seed=0)
    trainer = Trainer(net, FitConfig(), Preprocessor.fit(images, net.input_shape))
    save_checkpoint(tmp_path / "three.npz", net, trainer.optimizer, trainer.state_dict())
    code, out, err = run_main(["evaluate", tmp_path / "three.npz", "--dataset", "fashion-mnist", "--data-dir",
                               env.data], capsys)
    assert code == 1 and out == ""
    assert assert_only_error(err).startswith("convnetpy: error: labels go from 0 to 9, but the net has 3 classes")


@pytest.mark.parametrize("content, code, message", [
    (None, 2, "no spec file at"),
    ("[{not json", 2, "is not valid JSON"),
    ('[{"type": "input", "shape": [1, 28, 28]}, {"type": "warp"}]', 1, "warp"),
])
def test_bad_spec_files(tmp_path, capsys, content, code, message):
    spec = tmp_path / "net.json"
    if content is not None:
        spec.write_text(content)
    result, _, err = run_main(["summary", spec], capsys)
    assert result == code
    assert message in assert_only_error(err)


# -- the installed script ----------------------------------------------------------------------------------------------
def _script() -> str:
    beside_python = Path(sys.executable).with_name("convnetpy")  # this environment's, before any other on PATH
    script = str(beside_python) if beside_python.exists() else shutil.which("convnetpy")
    if script is None:
        pytest.skip("the convnetpy console script is not installed")
    return script


def _subprocess_env(tmp_path) -> dict:
    return dict(os.environ, CONVNETPY_DATA=str(tmp_path / "env-data"), XDG_CACHE_HOME=str(tmp_path / "cache"))


@pytest.mark.parametrize("argv, code", [
    (["summary", "mnistnet"], 0),
    (["summary", "nosuchnet"], 2),
    (["evaluate", "{corrupt}", "--dataset", "fashion-mnist-sample"], 1),
    (["summary"], 2),
])
def test_installed_script_exit_codes(tmp_path, argv, code):
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"garbage")
    argv = [a.replace("{corrupt}", str(corrupt)) for a in argv]
    result = subprocess.run([_script(), *argv], capture_output=True, text=True, timeout=60,
                            env=_subprocess_env(tmp_path))
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    if code == 0:
        assert "total: 5,994 parameters" in result.stdout
    elif argv != ["summary"]:  # argparse's own usage message is two lines
        assert_only_error(result.stderr)


# -- demo ------------------------------------------------------------------------------------------------------
def test_demo_without_cifar10_trains_lenet5_on_the_bundled_sample(tmp_path, capsys):
    out = tmp_path / "demo"
    code, stdout, err = run_main(["demo", "--minutes", "0.03", "--out", str(out)], capsys)
    assert code == 0, err
    assert "CIFAR-10 is not available" in err and "lenet5 --dataset fashion-mnist-sample" in err
    assert re.search(r"test accuracy \d+\.\d+%", stdout)
    assert "top-3 predictions" in stdout and stdout.count("image ") == 5
    assert all((out / name).is_file() for name in FIGURES)
    # A second demo starts afresh instead of resuming a finished run.
    code, _, err = run_main(["demo", "--minutes", "0.03", "--out", str(out)], capsys)
    assert code == 0 and "replacing the previous demo run" in err


def _tiny_cifar10(folder: Path, n: int = 20) -> None:
    """A cifar-10-batches-bin folder in the official binary format, 20 random records per batch file."""
    rng = np.random.default_rng(0)
    root = folder / "cifar-10-batches-bin"
    root.mkdir(parents=True)
    names = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
    for name in names:
        records = rng.integers(0, 256, (n, 3073), dtype=np.uint8)
        records[:, 0] = rng.integers(0, 10, n)
        (root / name).write_bytes(records.tobytes())
    (root / "batches.meta.txt").write_text("\n".join(
        ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]) + "\n")


def test_demo_with_cifar10_trains_the_cifar10_net(tmp_path, capsys):
    _tiny_cifar10(tmp_path / "data" / "cifar10")
    out = tmp_path / "demo"
    code, stdout, err = run_main(["demo", "--minutes", "0.02", "--data-dir", str(tmp_path / "data"),
                                  "--out", str(out)], capsys)
    assert code == 0, err
    assert "CIFAR-10 was found" in err and "cifar10net --dataset cifar10" in err
    assert load_checkpoint(out / "checkpoint.npz")[2]["dataset"] == "cifar10"
    assert "top-3 predictions" in stdout
