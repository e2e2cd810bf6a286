"""A model preset's training recipe (``Preset.train``): what `train`, sweeps and studies start
from, under their own flags and ``train:`` keys."""

import pytest

import variants
from bench.cli import build_parser
from bench.cli.common import train_config
from bench.sweep import parse_spec
from bench.train_config import TrainConfig, preset_recipe


@pytest.mark.parametrize("preset", [p.name for p in variants.list_presets()])
def test_every_preset_recipe_is_a_valid_train_config(preset):
    cfg = TrainConfig.from_mapping(preset_recipe(preset), f"preset {preset}")
    for key, value in preset_recipe(preset).items():
        assert getattr(cfg, key) == value


def test_the_cpu_presets_declare_the_recipe_their_sweeps_use():
    assert preset_recipe("tiny")["epochs"] > TrainConfig.epochs  # the generic default is 3
    assert preset_recipe(None) == {}


def _train_cfg(*flags: str) -> TrainConfig:
    return train_config(build_parser().parse_args(["train", "concat", *flags]))


def test_train_command_takes_the_preset_recipe_and_flags_override_it():
    recipe = preset_recipe("tiny")
    cfg = _train_cfg("--preset", "tiny")
    assert (cfg.epochs, cfg.batch_size, cfg.lr) == (recipe["epochs"], recipe["batch_size"],
                                                    recipe["lr"])
    cfg = _train_cfg("--preset", "tiny", "--epochs", "1", "--lr", "0.01")
    assert (cfg.epochs, cfg.lr, cfg.batch_size) == (1, 0.01, recipe["batch_size"])
    assert _train_cfg().epochs == TrainConfig.epochs  # no preset: the generic defaults


def _sweep(train: dict | None = None) -> dict:
    raw = {"name": "t", "mode": "train", "preset": "tiny", "grid": {"strategy": ["concat"]}}
    return parse_spec({**raw, "train": train} if train is not None else raw)


def test_sweep_points_train_with_the_recipe_under_the_spec_train_keys():
    inherited = _sweep()
    point = inherited.points[0]
    assert inherited.recipe(point) == preset_recipe("tiny")
    overridden = _sweep({"epochs": 1})
    assert overridden.recipe(point) == {**preset_recipe("tiny"), "epochs": 1}
    # a point's identity is what it trains with: stating the recipe's own values is the
    # same point, changing one is another
    assert _sweep(preset_recipe("tiny")).key(point) == inherited.key(point)
    assert overridden.key(point) != inherited.key(point)
