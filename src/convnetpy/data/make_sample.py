"""Regenerate the packaged ``fashion-mnist-sample`` from the official Fashion-MNIST files, reproducibly.

    python -m convnetpy.data.make_sample /path/to/fashion-mnist    # the folder with the four official .gz files

The sample is class-balanced and keeps the official order: the first 300 images of each class of the training
set (3,000) and the first 100 of each class of the test set (1,000). The files are written as gzip'd IDX with no
name and mtime 0 in the gzip header, so the same source gives byte-identical files.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from .datasets import _IDX_FILES, SAMPLE_DIR, _present, read_idx_pair
from .idx import write_idx

PER_CLASS = {"train": 300, "test": 100}


def first_per_class(labels: np.ndarray, per_class: int) -> np.ndarray:
    """Indices (sorted) of the first ``per_class`` examples of each label; labels (N,) -> (k * per_class,)."""
    order = np.argsort(labels, kind="stable")  # (N,) grouped by label, original order within a label
    sorted_labels = labels[order]
    starts = np.searchsorted(sorted_labels, sorted_labels)  # first position of each one's label
    rank = np.arange(len(labels)) - starts  # how many of the same label come before it
    keep = order[rank < per_class]
    counts = np.bincount(labels[keep])
    if len(counts) == 0 or counts.min() < per_class:
        raise ValueError(f"first_per_class: some class has fewer than {per_class} examples: {counts.tolist()}")
    return np.sort(keep)


def make_sample(source, dest=SAMPLE_DIR) -> None:
    """Write the sample's four IDX files into ``dest`` from the official files in ``source``."""
    source, dest = Path(source), Path(dest)
    for split, per_class in PER_CLASS.items():
        images_name, labels_name = _IDX_FILES[split]
        paths = [_present(source, f) for f in (images_name, labels_name)]
        if None in paths:
            raise FileNotFoundError(f"no {images_name} / {labels_name} in {source}")
        images, labels = read_idx_pair(*paths)
        keep = first_per_class(labels, per_class)
        write_idx(dest / images_name, images[keep, 0])  # (n, 28, 28)
        write_idx(dest / labels_name, labels[keep].astype(np.uint8))  # (n,)
        print(f"{split}: {len(keep)} images -> {dest / images_name}, {dest / labels_name}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", help="folder holding the official Fashion-MNIST .gz files")
    parser.add_argument("--dest", default=str(SAMPLE_DIR), help="output folder (default: the packaged sample)")
    args = parser.parse_args(argv)
    make_sample(args.source, args.dest)


if __name__ == "__main__":
    main()
