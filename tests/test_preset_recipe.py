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


def test_a_warmup_given_in_steps_replaces_the_recipes_warmup_ratio():
    """tiny warms up over a third of the run (``warmup_ratio``), which ``warmup_for``
    prefers to ``warmup_steps``: the steps a user gives must not be silently unused."""
    from bench.train_config import over_recipe, warmup_for

    assert preset_recipe("tiny")["warmup_ratio"] > 0
    cfg = _train_cfg("--preset", "tiny", "--warmup-steps", "50")
    assert (cfg.warmup_ratio, warmup_for(cfg, 1000)) == (0, 50)
    # the ratio given too (or alone) still wins, and the recipe's ratio stays without steps
    cfg = _train_cfg("--preset", "tiny", "--warmup-steps", "50", "--warmup-ratio", "0.1")
    assert warmup_for(cfg, 1000) == 100
    assert warmup_for(_train_cfg("--preset", "tiny", "--lr", "0.002"), 999) == 333
    point = _sweep().points[0]
    assert warmup_for(TrainConfig(**_sweep({"warmup_steps": 7}).recipe(point)), 1000) == 7
    # studies merge a trial's train values the same way
    assert over_recipe(preset_recipe("tiny"), {"warmup_steps": 7})["warmup_ratio"] == 0


def test_preset_backbones_apply_where_the_data_supplies_them_under_the_users_keys(tmp_path, capsys):
    from bench.experiment import with_preset_backbones
    from bench.spec import ModelSpec

    builtin, other = tmp_path / "builtin", tmp_path / "other"
    for d in (builtin, other):
        d.mkdir()
    for name in ("synthvqa.json", "scenes.json"):
        (builtin / name).write_text("{}")
    spec = ModelSpec("cross_attn", "tiny")
    assert with_preset_backbones(spec, builtin).overrides == variants.get_preset(
        "tiny").pretrained == {"vision_path": "@pretrained", "freeze_vision": True}
    # the user's keys win, the rest still apply: fine-tune from the pretrained encoder
    tuned = with_preset_backbones(spec.with_overrides(freeze_vision=False), builtin)
    assert tuned.overrides == {"vision_path": "@pretrained", "freeze_vision": False}
    assert capsys.readouterr().out == ""
    # data that cannot pretrain them: the run keeps the preset's plain overrides and says so
    assert with_preset_backbones(spec, other) == spec
    assert "is not the built-in data" in capsys.readouterr().out
    # once per preset and data: a sweep's every point does not repeat it
    assert with_preset_backbones(ModelSpec("jar", "tiny"), other).overrides == {}
    assert capsys.readouterr().out == ""
    assert with_preset_backbones(ModelSpec("cross_attn"), other) == ModelSpec("cross_attn")
    # the frozen-LM preset needs frozen pretrained backbones: made from the other data
    frozen_lm = ModelSpec("epalm", "epalm-tiny")
    assert with_preset_backbones(frozen_lm, other).overrides == {
        "vision_path": "@pretrained", "lm_path": "@pretrained"}
    assert "pretrained on its training split" in capsys.readouterr().out


@pytest.fixture
def tiny_patch_from_pixels(monkeypatch):
    """tiny, declaring a patch embedding for encoders trained from raw pixels (its own
    ``from_pixels`` keeps the conv stem), to see a key the model would not have otherwise."""
    import dataclasses

    from variants import registry

    tiny = variants.get_preset("tiny")
    monkeypatch.setitem(registry._PRESETS, "tiny",
                        dataclasses.replace(tiny, from_pixels={"vision_stem": "patch"}))
    return variants.get_preset("tiny")


def test_an_encoder_trained_from_raw_pixels_takes_the_presets_pixel_settings(
        tmp_path, tiny_patch_from_pixels):
    """Where the image encoder trains from raw pixels (no checkpoint, not frozen), a
    preset's ``from_pixels`` keys and ``from_pixels_train`` recipe apply, under the user's
    keys; never with the pretrained frozen encoder, nor for presets that declare nothing."""
    from bench.experiment import trains_from_pixels, with_pixel_settings
    from bench.spec import ModelSpec

    tiny = tiny_patch_from_pixels
    pixels = ModelSpec("cross_attn", "tiny")  # the preset's plain overrides: random, trained
    assert trains_from_pixels(pixels)
    assert with_pixel_settings(pixels).config().vision_stem == "patch" != \
        pixels.config().vision_stem
    mine = pixels.with_overrides(vision_stem="conv")
    assert with_pixel_settings(mine).config().vision_stem == "conv"  # the user's key wins
    pretrained = pixels.with_overrides(**tiny.pretrained)
    assert not trains_from_pixels(pretrained) and with_pixel_settings(pretrained) == pretrained
    frozen_random = pixels.with_overrides(freeze_vision=True)
    assert not trains_from_pixels(frozen_random)
    assert with_pixel_settings(ModelSpec("epalm", "epalm-tiny")) == ModelSpec("epalm",
                                                                             "epalm-tiny")
    assert preset_recipe("tiny", from_pixels=True) == {**tiny.train, **tiny.from_pixels_train}

    # sweeps: on other data the point trains from pixels with them, and is keyed so
    builtin = _sweep()
    other = parse_spec({"name": "t", "mode": "train", "preset": "tiny", "data": str(tmp_path),
                        "grid": {"strategy": ["concat"]}})
    point = other.points[0]
    assert other.recipe(point) == preset_recipe("tiny", from_pixels=True)
    assert builtin.recipe(point) == preset_recipe("tiny")
    assert other.trained_model(point).config().vision_stem == "patch"
    assert builtin.trained_model(point).config().vision_stem == "conv"
    assert other.key(point) != builtin.key(point)


def test_tiny_from_raw_pixels_trains_longer_with_image_grouped_shifted_batches():
    """tiny's own pixel recipe: its conv stem at a higher encoder lr than for fine-tuning
    the pretrained ViT, more epochs than with the cached frozen encoder, each batch's
    questions grouped by image (the encoder runs on fewer images), images shifted a few
    pixels (the longer run would over-fit without it), dropout in the encoder's blocks."""
    from bench.experiment import with_pixel_settings
    from bench.spec import ModelSpec

    pixels = ModelSpec("cross_attn", "tiny")
    assert with_pixel_settings(pixels).config().vision_stem == "conv"
    assert with_pixel_settings(pixels).config().vision_lr > pixels.config().vision_lr
    assert with_pixel_settings(pixels).config().vision_dropout > 0 == pixels.config().vision_dropout
    recipe = preset_recipe("tiny", from_pixels=True)
    assert recipe["epochs"] > preset_recipe("tiny")["epochs"]
    assert recipe["image_group"] > 1 and not preset_recipe("tiny").get("image_group")
    assert recipe["shift_pixels"] > 0 and not preset_recipe("tiny").get("shift_pixels")


def test_train_command_from_raw_pixels_uses_the_pixel_recipe(small_data, tmp_path, capsys):
    import json

    from tests.helpers import run_cli

    code, out, err = run_cli(["train", "late_fusion", "--preset", "tiny", "--data",
                              str(small_data), "--set", "vision_path=", "--set",
                              "freeze_vision=false", "--set", "image_size=32", "--max-steps",
                              "2", "--out", str(tmp_path / "run"), "--no-progress"], capsys)
    assert code == 0, err
    assert "not shifted" not in out  # its encoder trains: the recipe's shift applies
    run = tmp_path / "run"
    recipe = json.loads((run / "train_config.json").read_text())
    keys = ("epochs", "image_group", "shift_pixels")
    assert {k: recipe[k] for k in keys} == {
        k: preset_recipe("tiny", from_pixels=True)[k] for k in keys}


def test_a_shift_asked_of_a_frozen_encoder_is_said_to_do_nothing(small_data, tmp_path, capsys):
    """shift_pixels moves the pixels an encoder trains on; a frozen encoder's features are
    cached, so the flag would otherwise be silently unused."""
    from tests.helpers import run_cli

    code, out, err = run_cli(["train", "late_fusion", "--preset", "tiny", "--data",
                              str(small_data), "--set", "vision_path=", "--set",
                              "freeze_vision=true", "--set", "image_size=32", "--shift-pixels",
                              "2", "--max-steps", "1", "--out", str(tmp_path / "run"),
                              "--no-progress"], capsys)
    assert code == 0, err
    assert "note: shift_pixels=2 shifts the images of an image encoder that trains" in out
