"""Registry, presets and typed config validation."""

import pytest
import torch

import variants
from bench.cli.common import parse_sets
from bench.errors import UserError
from variants.concat import ConcatConfig
from variants.config import apply_overrides


def test_every_strategy_is_listed_with_family_and_paper():
    infos = variants.list_strategies()
    assert "concat" in {s.name for s in infos}
    for info in infos:
        assert info.family in ("encoder-fusion", "frozen-lm")
        assert info.paper and info.description


def test_create_applies_preset_then_overrides():
    model = variants.create("concat", preset="tiny", depth=3)
    assert model.cfg.image_size == 64 and model.cfg.depth == 3
    assert len(model.fusion.blocks) == 3


@pytest.mark.parametrize("overrides,message", [
    ({"depth": 0}, "depth=0: must be >= 1"),
    ({"depth": "x"}, "expected int"),
    ({"depth": 2.5}, "expected int"),
    ({"vision": "giant"}, "not one of micro"),
    ({"image_size": 100}, "not divisible by patch_size"),
    ({"width": 60, "heads": 7}, "not divisible by heads"),
    ({"freeze_text": "maybe"}, "expected bool"),
    ({"nope": 1}, "unknown config key(s) nope"),
])
def test_bad_values_raise_one_clear_user_error(overrides, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        apply_overrides(ConcatConfig(), overrides)


def test_strings_are_typed_from_the_dataclass():
    cfg = apply_overrides(ConcatConfig(), {"depth": "4", "freeze_text": "on", "mlp_ratio": "2"})
    assert (cfg.depth, cfg.freeze_text, cfg.mlp_ratio) == (4, True, 2.0)


def test_unknown_strategy_and_preset_list_valid_names():
    with pytest.raises(UserError, match="valid: .*concat"):
        variants.create("nope")
    with pytest.raises(UserError, match="valid: .*tiny"):
        variants.create("concat", preset="nope")


def test_parse_sets():
    assert parse_sets(["a=1", "b = x"]) == {"a": "1", "b": "x"}
    with pytest.raises(UserError):
        parse_sets(["novalue"])


def test_forward_backward_on_tiny_concat():
    model = variants.create("concat", preset="tiny")
    batch = model.dummy_batch(2, targets=True)
    out = model(batch)
    assert out.logits.shape == (2, model.cfg.num_answers)
    out.loss.backward()
    assert all(p.grad is not None for p in model.trainable_parameters())


def test_frozen_encoders_have_no_trainable_params_and_stay_in_eval():
    model = variants.create("concat", preset="tiny", freeze_vision=True, freeze_text=True)
    assert not any(p.requires_grad for p in model.image_encoder.parameters())
    model.train()
    assert not model.image_encoder.training and model.fusion.training


def test_meta_build_has_shapes_without_storage():
    with torch.device("meta"):
        model = variants.create("concat", vision="large", image_size=384, depth=32)
    assert all(p.is_meta for p in model.parameters())
    assert sum(p.numel() for p in model.parameters()) > 600e6


def test_the_model_library_does_not_import_the_harness():
    """variants/ is a model library: nothing in it imports bench (DESIGN.md's layering)."""
    import ast
    from pathlib import Path

    for path in Path(variants.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level \
                else []
            assert not any(n == "bench" or n.startswith("bench.") for n in names), path.name


def test_a_built_model_knows_its_registered_family():
    """``bench.evaluate`` generates answers for frozen-LM models by reading
    ``model.family``: it must be the registry's, for every strategy."""
    for info in variants.list_strategies():
        cfg = variants.resolve_config(info.name)
        assert cfg.family == info.family, info.name
    assert variants.create("epalm", "epalm-tiny").family == "frozen-lm"
    assert variants.create("jar", "tiny", text_vocab_size=50, num_answers=5).family == \
        "encoder-fusion"
