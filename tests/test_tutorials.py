"""The tutorial notebooks as committed: six of them, without outputs, each asserting and saving figures.

Running them is nbmake's job (``python -m pytest`` collects ``docs/tutorials/*.ipynb`` with ``--nbmake``); these
checks keep what is committed clean: outputs could carry MNIST or CIFAR-10 images, which must never be committed.
"""

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TUTORIALS = ROOT / "docs" / "tutorials"
NAMES = ["01_multiplication_vs_convolution", "02_images_2d", "03_filters_and_templates", "04_stacking_and_pooling",
         "05_lenet_and_cifar10_net", "06_why_cnns_rule"]


def load(name):
    return json.loads((TUTORIALS / f"{name}.ipynb").read_text(encoding="utf-8"))


def code(nb):
    return "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")


def test_the_six_tutorials_and_nothing_else():
    assert sorted(p.stem for p in TUTORIALS.glob("*.ipynb")) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_committed_without_outputs(name):
    nb = load(name)
    assert nb["nbformat"] == 4 and nb["metadata"]["kernelspec"]["name"] == "python3"
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None, f"{name}: cell {i} has outputs"
        assert "attachments" not in cell, f"{name}: cell {i} has attachments"


@pytest.mark.parametrize("name", NAMES)
def test_asserts_its_claims_and_saves_its_figures(name):
    source = code(load(name))
    assert len(re.findall(r"^\s*assert ", source, flags=re.M)) >= 5
    assert re.search(r"\bsave\(fig, \"\d\d_\w+\.png\"\)|figure_dir\(\) / ", source)
    assert "plt.show()" not in source  # figures are saved to files, not only shown inline


@pytest.mark.parametrize("name", NAMES)
def test_nbformat_valid(name):
    nbformat = pytest.importorskip("nbformat")
    nbformat.validate(nbformat.reads((TUTORIALS / f"{name}.ipynb").read_text(encoding="utf-8"), as_version=4))


def test_readme_links_every_tutorial_and_its_figures_exist():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    learn = readme.split("## Learn", 1)[1].split("\n## ", 1)[0]
    for name in NAMES:
        assert f"(docs/tutorials/{name}.ipynb)" in learn
    images = re.findall(r"!\[[^\]]*\]\((docs/images/[^)]+\.png)\)", learn)
    assert images and all((ROOT / image).is_file() for image in images)
