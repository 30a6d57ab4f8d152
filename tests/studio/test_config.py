"""The page's setup, checked: spec JSON, parameter counts before building, optimizer and live settings."""

from __future__ import annotations

import json

import pytest

from convnetpy import Net, models
from convnetpy.studio.config import SetupError, build_net, count_params, live_settings, parse_setup, parse_specs
from studio_helpers import BAR_SPECS, FASHION_SPECS

FLIPS = {"mnist": False}


@pytest.mark.parametrize("name", sorted(models.MODELS))
def test_count_params_matches_the_built_net(name):
    specs = models.MODELS[name]()
    assert count_params(parse_specs(specs)) == Net(specs, seed=0).num_params()


@pytest.mark.parametrize("specs", [
    BAR_SPECS, FASHION_SPECS,
    [{"type": "input", "shape": [3, 17, 15]}, {"type": "conv", "filters": 5, "size": [3, 2], "stride": [2, 1],
      "pad": "same", "bias": False}, {"type": "batchnorm"}, {"type": "pool", "size": 3, "stride": 2, "ragged": True},
     {"type": "conv", "filters": 2, "size": 2, "dilation": 2, "pad": [1, 0], "ragged": True},
     {"type": "flatten"}, {"type": "fc", "neurons": 7, "bias": False}, {"type": "svm", "classes": 4}],
    [{"type": "input", "shape": [2, 40]}, {"type": "conv", "filters": 3, "size": 5, "pad": "valid"},
     {"type": "pool", "size": 2, "mode": "avg"}, {"type": "regression", "outputs": 2}],
])
def test_count_params_follows_every_layer_kind(specs):
    assert count_params(parse_specs(specs)) == Net(specs, seed=0).num_params()


def test_spec_json_errors_name_line_and_column():
    with pytest.raises(SetupError, match=r"not valid JSON: Expecting value at line 1, column 2") as e:
        parse_specs("[nope]")
    assert e.value.field == "spec"


def test_specs_are_never_evaluated():
    with pytest.raises(SetupError, match="not valid JSON"):
        parse_specs("[dict(type='input', shape=[1, 2, 2])]")


def test_build_net_names_the_layer_that_does_not_fit():
    specs = [{"type": "input", "shape": [1, 8, 8]}, {"type": "pool", "size": 3}, {"type": "softmax", "classes": 2}]
    with pytest.raises(SetupError, match=r"layer 1 \(pool\) on input \[1, 8, 8\]: MaxPool2D: output H would be"):
        build_net(json.dumps(specs))


def test_long_spec_text_is_refused():
    with pytest.raises(SetupError, match="at most 100,000"):
        parse_specs(" " * 100_001)


def test_parse_setup_fills_defaults_as_the_command_line():
    setup = parse_setup({"dataset": "mnist", "specs": json.dumps(FASHION_SPECS)}, FLIPS)
    c = setup.config
    assert (c.optimizer, c.lr, c.momentum, c.batch_size, c.weight_decay, c.epochs) == ("sgd", 0.01, 0.9, 64, 5e-4, 10)
    assert c.flip is False and c.max_shift == 2
    adam = parse_setup({"dataset": "cifar10", "specs": json.dumps(FASHION_SPECS), "optimizer": "adam"}, FLIPS)
    assert adam.config.lr == 0.001 and adam.config.flip is True


@pytest.mark.parametrize("change, field, message", [
    ({"dataset": ""}, "dataset", "choose a dataset"),
    ({"optimizer": "lbfgs"}, "settings", "optimizer must be one of"),
    ({"optimizer": "adam", "nesterov": True}, "settings", "Nesterov momentum needs the sgd optimizer"),
    ({"epochs": 0}, "settings", "epochs must be between 1 and 100000"),
    ({"augment": "yes"}, "settings", "nesterov and augment must be true or false"),
])
def test_parse_setup_errors_name_their_field(change, field, message):
    with pytest.raises(SetupError, match=message) as e:
        parse_setup({"dataset": "mnist", "specs": json.dumps(FASHION_SPECS), **change}, FLIPS)
    assert e.value.field == field


def test_live_settings_are_checked_and_converted():
    assert live_settings({"lr": 0.1, "batch_size": 32.0}) == {"lr": 0.1, "batch_size": 32}
    for bad in ({"lr": float("nan")}, {"momentum": 1.5}, {"batch_size": True}, {"weight_decay": -1}):
        with pytest.raises(SetupError):
            live_settings(bad)
