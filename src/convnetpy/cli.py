"""The ``convnetpy`` command: train | evaluate | predict | summary | demo | studio.

Every failure the user can cause (bad arguments, missing or corrupt data, a spec that does not fit) ends
with one line ``convnetpy: error: ...`` and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from . import models
from .allocator import keep_freed_memory
from .errors import ConvnetpyError

EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130
TRAIN_DEFAULTS: dict = {}  # the train subcommand's flag defaults (filled by build_parser)

# Per-dataset defaults a user would pick: flips suit photos and clothes, not digits (nor 1D signals).
FLIP_DEFAULT = {"cifar10": True, "fashion-mnist": True, "fashion-mnist-sample": True, "mnist": False,
                "mnist1d": False, "mnist1d-shuffled": False}


class UsageError(ConvnetpyError):
    """Bad command-line usage (exit code 2)."""


# -- shared helpers -------------------------------------------------------------------------------------
def load_specs(model: str) -> list[dict]:
    """MODEL is a name from convnetpy.models or a JSON file holding a spec list."""
    if model in models.MODELS:
        return models.MODELS[model]()
    path = Path(model)
    if path.suffix == ".json" or path.is_file():
        try:
            return json.loads(path.read_text())
        except FileNotFoundError:
            raise UsageError(f"no spec file at {path}") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise UsageError(f"{path} is not valid JSON: {e}") from None
    raise UsageError(f"unknown model {model!r}: use one of {', '.join(models.MODELS)} or a JSON spec file")


def load_split(dataset: str, split: str, data_dir, input_shape=None):
    """A named dataset's split, or an image folder (``DIR/<class>/*.png``, or ``DIR/<split>/<class>/...``)."""
    from .data import load_dataset, load_image_folder

    path = Path(dataset)
    if path.is_dir():
        if input_shape is None:
            raise UsageError("an image folder needs a model (its input size) to resize the images")
        if len(input_shape) != 3:
            raise UsageError(f"{path} is an image folder, but the model takes input of shape {list(input_shape)}, "
                             "not an image [C, H, W]")
        root = path / split if (path / split).is_dir() else path
        if root == path and split == "test":
            raise UsageError(f"{path} has no test/ folder to evaluate on")
        c, h, w = input_shape
        return load_image_folder(root, (h, w), grey=c == 1)
    return load_dataset(dataset, split, data_dir=data_dir)


def load_run(checkpoint: str):
    """(net, preprocessor, trainer state dict) from a checkpoint written by ``convnetpy train``."""
    from .checkpoint import load_checkpoint
    from .preprocess import Preprocessor

    net, _, trainer = load_checkpoint(checkpoint)
    return net, Preprocessor.from_dict(trainer["preprocess"]), trainer


def write_figures(run_dir: Path, net, pre, history: dict, test, evaluation: dict | None) -> list[Path]:
    """Curves, first-layer filters, feature maps, the top-3 grid and the confusion matrix, into ``run_dir``."""
    from . import viz
    from .layers import Conv1D, Conv2D
    from .train import top_k

    written = [viz.plot_history(history, run_dir / "curves.png")]
    conv = next((layer for layer in net.layers if isinstance(layer, (Conv2D, Conv1D))), None)
    if conv is not None:
        written.append(viz.plot_filters(conv.params["weight"], run_dir / "filters.png", title="first conv layer"))
    if test is not None and len(test):
        written.append(viz.plot_feature_maps(net, pre(test.images[:1]), run_dir / "feature_maps.png"))
        pick = test.images[:12]
        written.append(viz.plot_predictions(pick, top_k(net, pre, pick, 3), test.labels[:12], pre.classes,
                                            run_dir / "predictions.png"))
        if evaluation is not None:
            written.append(viz.plot_confusion(np.array(evaluation["confusion"]), pre.classes,
                                              run_dir / "confusion.png"))
    return written


# -- commands -------------------------------------------------------------------------------------------
def cmd_train(args) -> int:
    from .callbacks import CheckpointWriter, HistoryWriter, ProgressBar
    from .distributed import DataParallel, world
    from .net import Net
    from .preprocess import Preprocessor
    from .train import FitConfig, Trainer, TrainerState, make_optimizer

    mpi = world()  # under mpiexec: the MPI world; rank 0 alone reads the run folder and writes to it
    run_dir = Path(args.out)
    ckpt = run_dir / "checkpoint.npz"
    if args.resume:
        net, opt_state, saved = _on_rank0(mpi, _read_checkpoint, ckpt)
        _warn_ignored_on_resume(args, TRAIN_DEFAULTS)
        config = FitConfig(**saved["config"])
        if args.epochs is not None:
            config.epochs = args.epochs
        if args.time_limit is not None:
            config.time_limit = args.time_limit
        state = TrainerState(**saved["state"])
        pre = Preprocessor.from_dict(saved["preprocess"])
        dataset = saved["dataset"]
        optimizer = make_optimizer(net, config)
        optimizer.load_state_dict(opt_state)
        print(f"resuming {ckpt} at epoch {state.epoch + 1}, step {state.step}", file=sys.stderr)
    else:
        _on_rank0(mpi, _check_new_run, ckpt)
        specs = load_specs(args.model)
        net = Net(specs, seed=args.seed)
        dataset = args.dataset
        try:
            config = _fit_config(args, dataset)
        except ValueError as e:
            raise UsageError(str(e)) from None
        state, optimizer, pre = None, None, None
    train = load_split(dataset, "train", args.data_dir, net.input_shape)
    if pre is None:
        pre = Preprocessor.fit(train.images, net.input_shape, train.classes, flip=config.flip,
                               max_shift=config.max_shift)
    test = _try_test_split(dataset, args.data_dir, net.input_shape)
    val = (test.images, test.labels) if args.validate_on_test and test is not None else (None, None)

    root = mpi is None or mpi.rank == 0
    callbacks = [ProgressBar(), CheckpointWriter(ckpt), HistoryWriter(run_dir / "history.json")] if root else []
    trainer = Trainer(net, config, pre, optimizer=optimizer, state=state, callbacks=callbacks,
                      parallel=None if mpi is None else DataParallel(mpi))
    trainer.extra = {"dataset": dataset, "image_shape": list(train.images.shape[1:])}
    print(f"training {args.model if not args.resume else 'from checkpoint'} on {dataset} "
          f"({len(train):,} images) -> {run_dir}" + (f" on {mpi.size} MPI processes" if mpi else ""), file=sys.stderr)
    trainer.fit(train.images, train.labels, *val)
    evaluation = None
    if test is not None:
        evaluation = trainer.evaluate(test.images, test.labels)
        print(f"test accuracy {evaluation['accuracy']:.2%}, loss {evaluation['loss']:.4f} "
              f"({evaluation['n']:,} images)")
    if root:
        for path in write_figures(run_dir, net, pre, trainer.state.history, test, evaluation):
            print(f"wrote {path}", file=sys.stderr)
    return 0


def _on_rank0(mpi, fn, *args):
    """``fn(*args)``; under mpiexec run by rank 0 alone (the run folder may be on its disk only), the result
    (or the error) sent to every rank."""
    return fn(*args) if mpi is None else mpi.from_root(fn, *args)


def _read_checkpoint(ckpt: Path):
    from .checkpoint import load_checkpoint

    if not ckpt.is_file():
        raise UsageError(f"--resume: no checkpoint at {ckpt}")
    return load_checkpoint(ckpt)


def _check_new_run(ckpt: Path) -> None:
    if ckpt.exists():
        raise UsageError(f"{ckpt} exists: pass --resume to continue that run, or choose another --out")


def _fit_config(args, dataset: str):
    from .train import FitConfig

    augment = args.augment if args.augment is not None else True
    default_lr = {"adam": 0.001, "adadelta": 1.0}.get(args.optimizer, 0.01)
    return FitConfig(epochs=args.epochs if args.epochs is not None else (None if args.time_limit else 10),
                     time_limit=args.time_limit, batch_size=args.batch_size, optimizer=args.optimizer,
                     lr=args.lr if args.lr is not None else default_lr, momentum=args.momentum,
                     nesterov=args.nesterov, weight_decay=args.weight_decay, schedule=args.schedule,
                     augment=augment, flip=FLIP_DEFAULT.get(dataset, True),
                     max_shift=args.max_shift if augment else 0,
                     val_fraction=0.0 if args.validate_on_test else args.val_fraction, seed=args.seed)


def _warn_ignored_on_resume(args, parser_defaults: dict) -> None:
    """--resume continues with the saved settings; say which given flags it does not apply."""
    ignored = [f"--{k.replace('_', '-')}" for k, default in parser_defaults.items()
               if k not in ("epochs", "time_limit", "out", "resume", "data_dir", "model", "dataset", "run")
               and getattr(args, k, default) != default]
    if ignored:
        print(f"convnetpy: note: --resume continues with the run's saved settings; ignoring {', '.join(ignored)} "
              "(only --epochs and --time-limit can be raised)", file=sys.stderr)


def _try_test_split(dataset: str, data_dir, input_shape):
    from .data import DatasetNotFoundError

    try:
        return load_split(dataset, "test", data_dir, input_shape)
    except (DatasetNotFoundError, UsageError):
        return None


def cmd_evaluate(args) -> int:
    from . import distributed
    from .train import evaluate

    mpi = distributed.world()  # under mpiexec each rank evaluates its share of the images
    net, pre, _ = _on_rank0(mpi, load_run, args.checkpoint)
    data = load_split(args.dataset, args.split, args.data_dir, net.input_shape)
    if mpi is None:
        result = evaluate(net, pre, data.images, data.labels, tta=args.tta)
    else:
        result = distributed.evaluate(mpi, net, pre, data.images, data.labels, tta=args.tta)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{args.dataset} {args.split}: accuracy {result['accuracy']:.2%}, loss {result['loss']:.4f} "
              f"({result['n']:,} images)")
    return 0


def read_image(path: Path, shape) -> np.ndarray:
    """One image file of any size -> uint8 (C, H, W) resized to ``shape`` (grey when C == 1)."""
    from PIL import UnidentifiedImageError

    from .data.image_folder import decode_image

    c, h, w = shape
    try:
        return decode_image(path, (h, w), grey=c == 1)
    except FileNotFoundError:
        raise FileNotFoundError(f"no image file at {path}") from None
    except (UnidentifiedImageError, OSError) as e:  # bad data, not bad usage: exit code 1
        raise ConvnetpyError(f"{path} is not a readable image: {e}") from None


def read_signal(path: Path, shape) -> np.ndarray:
    """One signal file -> float32 (C, L): a ``.npy`` array or a text file of numbers (spaces, commas, lines)."""
    try:
        if path.suffix == ".npy":
            a = np.load(path, allow_pickle=False)
        else:
            a = np.array(path.read_text().replace(",", " ").split(), dtype=np.float64)
    except FileNotFoundError:
        raise FileNotFoundError(f"no signal file at {path}") from None
    except (OSError, ValueError, UnicodeDecodeError) as e:  # bad data, not bad usage: exit code 1
        raise ConvnetpyError(f"{path} is not a readable signal (a .npy array or a text file of numbers): {e}") from None
    c, length = shape
    if a.size != c * length or not np.issubdtype(a.dtype, np.number):
        raise ConvnetpyError(f"{path} holds {a.size} {a.dtype} values; the net takes {c}-channel signals of length "
                             f"{length} ({c * length} numbers)")
    return a.astype(np.float32).reshape(c, length)


def cmd_predict(args) -> int:
    from .train import top_k

    net, pre, trainer = load_run(args.checkpoint)
    shape = tuple(trainer.get("image_shape") or pre.input_shape)
    read = read_signal if len(shape) == 2 else read_image  # a 1D net: signals (C, L), not images
    images = np.stack([read(Path(p), shape) for p in args.images])
    for path, best in zip(args.images, top_k(net, pre, images, args.top)):
        ranked = ", ".join(f"{pre.classes[c] if c < len(pre.classes) else c} {p:.1%}" for c, p in best)
        print(f"{path}: {ranked}")
    return 0


def cmd_summary(args) -> int:
    from .checkpoint import is_checkpoint
    from .net import Net
    from .serialization import load

    target = args.model
    if Path(target).suffix == ".npz" or (Path(target).is_file() and is_checkpoint(target)):
        net = load(target)
    else:
        net = Net(load_specs(target), seed=0)
    print(net.summary())
    return 0


def cmd_demo(args) -> int:
    from .data import DatasetNotFoundError, load_dataset

    try:
        load_dataset("cifar10", "test", data_dir=args.data_dir)
        reason = "CIFAR-10 was found"
        train_args = ["cifar10net", "--dataset", "cifar10", "--time-limit", str(args.minutes * 60),
                      "--schedule", "onecycle", "--lr", "0.02", "--nesterov", "--batch-size", "64"]
    except (DatasetNotFoundError, OSError) as e:
        reason = f"CIFAR-10 is not available ({str(e).splitlines()[0]})"
        train_args = ["lenet5", "--dataset", "fashion-mnist-sample", "--time-limit", str(args.minutes * 60),
                      "--schedule", "onecycle", "--lr", "0.05", "--nesterov"]
    print(f"demo: {reason}, so: convnetpy train {' '.join(train_args)}", file=sys.stderr)
    argv = ["train", *train_args, "--out", str(args.out)]
    if args.data_dir:
        argv += ["--data-dir", str(args.data_dir)]
    previous = Path(args.out) / "checkpoint.npz"
    if previous.exists():  # the demo always starts afresh
        print(f"demo: replacing the previous demo run in {args.out}", file=sys.stderr)
        previous.unlink()
    code = main(argv)
    if code:
        return code
    return _show_top3(Path(args.out) / "checkpoint.npz", args.data_dir)


def _show_top3(checkpoint: Path, data_dir) -> int:
    from .train import top_k

    net, pre, trainer = load_run(checkpoint)
    test = _try_test_split(trainer["dataset"], data_dir, net.input_shape)
    if test is None:
        return 0
    print("top-3 predictions for the first test images:")
    for i, best in enumerate(top_k(net, pre, test.images[:5], 3)):
        truth = pre.classes[test.labels[i]]
        ranked = ", ".join(f"{pre.classes[c]} {p:.0%}" for c, p in best)
        print(f"  image {i} ({truth}): {ranked}")
    return 0


def cmd_studio(args) -> int:
    try:
        from .studio import serve
    except ImportError as e:
        if (e.name or "").split(".")[0] not in ("starlette", "uvicorn", "websockets", "anyio"):
            raise
        raise UsageError(f"the studio needs its extra ({e.name} is missing): pip install 'convnetpy[studio]'") from None
    return serve(args.host, args.port, args.data_dir, args.out)


# -- argument parsing -------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="convnetpy", description="Convolutional networks in NumPy.")
    sub = parser.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a model on a dataset, writing a checkpoint, history and figures")
    t.add_argument("model", help=f"one of {', '.join(models.MODELS)}, or a JSON spec file")
    t.add_argument("--dataset", required=True,
                   help="mnist, fashion-mnist, cifar10, fashion-mnist-sample, mnist1d, mnist1d-shuffled, or an "
                        "image folder")
    t.add_argument("--data-dir", help="folder holding the dataset files (or a parent of <name>/)")
    t.add_argument("--epochs", type=int)
    t.add_argument("--time-limit", type=float, metavar="SECONDS")
    t.add_argument("--batch-size", type=int, default=64)
    t.add_argument("--optimizer", choices=["sgd", "adam", "adadelta", "adagrad"], default="sgd")
    t.add_argument("--lr", type=float)
    t.add_argument("--momentum", type=float, default=0.9)
    t.add_argument("--nesterov", action="store_true")
    t.add_argument("--weight-decay", type=float, default=5e-4)
    t.add_argument("--schedule", choices=["constant", "step", "cosine", "onecycle"], default="constant")
    t.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None,
                   help="random shifts (and flips for photos and clothes); on by default")
    t.add_argument("--max-shift", type=int, default=2)
    t.add_argument("--val-fraction", type=float, default=0.1)
    t.add_argument("--validate-on-test", action="store_true", help="validate on the test split each epoch")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--out", required=True, help="run folder: checkpoint.npz, history.json, figures")
    t.add_argument("--resume", action="store_true", help="continue the run saved in --out")
    t.set_defaults(run=cmd_train)
    TRAIN_DEFAULTS.update({a.dest: a.default for a in t._actions if a.dest != "help"})

    e = sub.add_parser("evaluate", help="accuracy and loss of a checkpoint on a dataset split")
    e.add_argument("checkpoint")
    e.add_argument("--dataset", required=True)
    e.add_argument("--data-dir")
    e.add_argument("--split", choices=["test", "train"], default="test")
    e.add_argument("--tta", action="store_true",
                   help="average predictions over 1-pixel shifted crops, mirrored too when training flipped "
                   "(images only)")
    e.add_argument("--json", action="store_true", help="print one JSON object (accuracy, loss, n, confusion)")
    e.set_defaults(run=cmd_evaluate)

    p = sub.add_parser("predict", help="the most likely classes of image files (or, for a 1D net, signal files: "
                                       ".npy or text)")
    p.add_argument("checkpoint")
    p.add_argument("images", nargs="+")
    p.add_argument("--top", type=int, default=3)
    p.set_defaults(run=cmd_predict)

    s = sub.add_parser("summary", help="layers, output shapes, parameters and multiply-adds")
    s.add_argument("model", help="a model name, a JSON spec file, a saved net or a checkpoint")
    s.set_defaults(run=cmd_summary)

    d = sub.add_parser("demo", help="train CIFAR-10 (or the bundled Fashion-MNIST sample) for a few minutes")
    d.add_argument("--data-dir")
    d.add_argument("--minutes", type=float, default=3.0)
    d.add_argument("--out", default="runs/demo")
    d.set_defaults(run=cmd_demo)

    st = sub.add_parser("studio", help="a live training page in the browser (needs convnetpy[studio])")
    st.add_argument("--host", default="127.0.0.1",
                    help="address to listen on; any but 127.0.0.1 requires the token printed in the URL")
    st.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    st.add_argument("--data-dir", help="datasets and image folders the page may open (nothing outside it)")
    st.add_argument("--out", default="runs/studio", help="where each run's checkpoint is written")
    st.set_defaults(run=cmd_studio)
    return parser


def main(argv=None) -> int:
    from .distributed import world

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        mpi = world()
    except ConvnetpyError as e:  # started by mpiexec, but mpi4py is missing or from another MPI
        print(f"convnetpy: error: {e}", file=sys.stderr)
        return EXIT_ERROR
    if mpi is not None:  # rank 0 alone prints; a rank that fails ends the whole job, naming itself
        return mpi.run_rank(lambda err, where: _run(args, err, where))
    return _run(args, sys.stderr, "")


def _run(args, err, where: str) -> int:
    """The command's exit code; a failure is one line on ``err``, after ``where`` (the MPI rank, if any)."""
    try:
        return args.run(args)
    except UsageError as e:
        print(f"convnetpy: error: {where}{e}", file=err)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("convnetpy: interrupted; the checkpoint was saved (continue with --resume)", file=err)
        return EXIT_INTERRUPTED
    except (ConvnetpyError, OSError, ValueError) as e:
        message = str(e).replace("\n", " ").strip()
        print(f"convnetpy: error: {where}{message}", file=err)
        return EXIT_ERROR


def entry_point() -> None:
    keep_freed_memory()  # this process trains: spare every step its page faults (see convnetpy.allocator)
    sys.exit(main())


if __name__ == "__main__":
    entry_point()
