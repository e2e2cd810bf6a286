"""Encoder-fusion strategies: shapes, gradients, knob semantics and validation (tiny configs)."""

import pytest
import torch

import variants
from bench.errors import UserError
from bench.flops import count_flop_counter_mode, count_fvcore
from variants.interface import Batch

STRATEGIES = [s.name for s in variants.list_strategies("encoder-fusion")]
# Gates start closed by default (tanh(0) = 0; the tiny preset opens them), which zeroes
# the gradient of everything behind them at step 0 by design; open them a little so
# every weight is exercised.
OPEN_GATES = {"jar": {"gate_init": 0.5}, "flamingo": {"gate_init": 0.5}}
VARIANTS = [(s, OPEN_GATES.get(s, {})) for s in STRATEGIES] + [
    ("jar", {"resampling": "spatial", "gate_init": 0.5}),
    ("jar", {"gating": False}),
    ("jar", {"combination": "none", "gate_init": 0.5}),
    ("jar", {"combination": "residual", "gate_init": 0.5}),
]


def batch_for(model, batch_size: int, text_len: int, pad: int = 0) -> Batch:
    """Random pixels and ids; the last ``pad`` positions of the first example are padding."""
    cfg = model.cfg
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(4, cfg.text_vocab_size, (batch_size, text_len), generator=g)
    mask = torch.ones_like(ids)
    if pad:
        mask[0, -pad:] = 0
    images = torch.randn(batch_size, 3, cfg.image_size, cfg.image_size, generator=g)
    scores = torch.zeros(batch_size, cfg.num_answers)
    scores[:, 0] = 1.0
    return Batch(images, ids, mask, answer_scores=scores)


def test_all_issue_strategies_are_registered():
    expected = {"concat", "cross_attn", "perceiver", "cotok", "jar", "flamingo", "late_fusion"}
    assert expected <= set(STRATEGIES)


@pytest.mark.parametrize("name", STRATEGIES)
@pytest.mark.parametrize("image_size", [32, 64, 96])
def test_output_shapes_over_image_sizes_and_text_lengths(name, image_size):
    model = variants.create(name, preset="tiny", image_size=image_size).eval()
    for text_len in (3, 16, 24):
        batch = batch_for(model, 2, text_len, pad=1)
        image = model.encode_image(batch.images)["tokens"]
        text = model.text_encoder(batch.input_ids, batch.attention_mask)
        pooled = model.fusion(image, text, batch.attention_mask)
        assert pooled.shape == (2, model.cfg.width)
        assert torch.isfinite(pooled).all()
        assert model(batch).logits.shape == (2, model.cfg.num_answers)


@pytest.mark.parametrize("name,overrides", VARIANTS, ids=lambda v: str(v))
def test_every_trainable_parameter_gets_a_nonzero_gradient(name, overrides):
    model = variants.create(name, preset="tiny", **overrides)
    batch = batch_for(model, 2, 12, pad=3)
    # one step first: the conv stem's residual blocks start as identities (last norm at
    # 0, timm's zero_init_last), so their inner weights get gradient from step two on
    model(batch).loss.backward()
    torch.optim.SGD(model.parameters(), lr=1e-2).step()
    model.zero_grad()
    model(batch).loss.backward()
    missing = [n for n, p in model.named_parameters()
               if p.requires_grad and (p.grad is None or not p.grad.abs().sum() > 0)]
    assert not missing, missing


def test_closed_gates_still_learn_to_open():
    """With gate_init=0 the gated branches contribute nothing, but the gates get gradient."""
    for name in ("jar", "flamingo"):
        model = variants.create(name, preset="tiny", gate_init=0.0)
        model(batch_for(model, 2, 8)).loss.backward()
        gates = {n: p.grad for n, p in model.named_parameters() if n.endswith(".gate")}
        assert gates and all(g.abs() > 0 for g in gates.values()), name


@pytest.mark.parametrize("name", STRATEGIES)
def test_text_padding_does_not_leak_into_the_output(name):
    """Changing the ids under padding must not change the output."""
    model = variants.create(name, preset="tiny", **OPEN_GATES.get(name, {})).eval()
    batch = batch_for(model, 2, 10, pad=4)
    other = Batch(batch.images, batch.input_ids.clone(), batch.attention_mask)
    other.input_ids[0, -4:] = 5
    with torch.no_grad():
        assert torch.allclose(model(batch).logits, model(other).logits, atol=1e-5)


def jar_outputs(**overrides) -> dict[str, torch.Tensor]:
    """Build tiny JARs that share every common weight; return their pooled outputs."""
    torch.manual_seed(0)
    reference = variants.create("jar", preset="tiny", gate_init=0.5).eval()
    batch = batch_for(reference, 2, 10, pad=2)
    outs = {}
    for label, kw in overrides.items():
        model = variants.create("jar", preset="tiny", **kw).eval()
        missing, unexpected = model.load_state_dict(reference.state_dict(), strict=False)
        assert not unexpected or not kw.get("gating", True)
        assert all(k.endswith(".gate") for k in missing)
        with torch.no_grad():
            outs[label] = model(batch).logits
    return outs


def test_gating_off_changes_the_computation_and_drops_the_gates():
    outs = jar_outputs(on={"gate_init": 0.5}, off={"gating": False})
    assert not torch.allclose(outs["on"], outs["off"], atol=1e-4)
    on = variants.create("jar", preset="tiny")
    off = variants.create("jar", preset="tiny", gating=False)
    gates = [n for n, _ in on.named_parameters() if n.endswith(".gate")]
    assert len(gates) == 2 * on.cfg.iterations  # alpha and beta per fusion block
    assert not [n for n, _ in off.named_parameters() if "gate" in n]


def test_each_combination_mode_computes_something_different():
    outs = jar_outputs(**{c: {"combination": c, "gate_init": 0.5}
                          for c in ("none", "residual", "weighted")})
    for a, b in (("none", "residual"), ("none", "weighted"), ("residual", "weighted")):
        assert not torch.allclose(outs[a], outs[b], atol=1e-4), (a, b)


def test_fusion_layers_are_shared_out_over_iterations():
    model = variants.create("jar", preset="tiny", iterations=2, fusion_layers=6)
    assert [len(b.layers) for b in model.fusion.blocks] == [3, 3]
    model = variants.create("cotok", preset="tiny", iterations=2, fusion_layers=4)
    assert [len(s) for s in model.fusion.stacks] == [2, 2]


@pytest.mark.parametrize("name,overrides,message", [
    ("jar", {"resampling": "grid"}, "resampling='grid': not one of latent, spatial"),
    ("jar", {"combination": "sum"}, "combination='sum': not one of none, residual, weighted"),
    ("jar", {"gating": "maybe"}, "gating='maybe': expected bool"),
    ("jar", {"iterations": 0}, "iterations=0: must be >= 1"),
    ("jar", {"num_tokens": -4}, "num_tokens=-4: must be >= 1"),
    ("jar", {"iterations": 3, "fusion_layers": 8}, "fusion_layers=8 must be a multiple of "
                                                   "iterations=3"),
    ("jar", {"learner_hidden": -1}, "learner_hidden=-1: must be >= 0"),
    ("cotok", {"iterations": 4, "fusion_layers": 6}, "must be a multiple of iterations=4"),
    ("perceiver", {"self_per_cross": -1}, "self_per_cross=-1: must be >= 0"),
    ("perceiver", {"num_tokens": "many"}, "num_tokens='many': expected int"),
    ("cross_attn", {"depth": 0}, "depth=0: must be >= 1"),
    ("flamingo", {"cross_every": 0}, "cross_every=0: must be >= 1"),
    ("flamingo", {"iterations": 2}, "unknown config key\\(s\\) iterations"),
])
def test_invalid_knob_values_are_rejected_clearly(name, overrides, message):
    with pytest.raises(UserError, match=message):
        variants.resolve_config(name, "tiny", overrides)


@pytest.mark.parametrize("name,overrides", VARIANTS, ids=lambda v: str(v))
def test_fvcore_and_flop_counter_mode_agree_within_2_percent(name, overrides):
    model = variants.create(name, preset="tiny", **overrides).eval()
    batch = batch_for(model, 1, 16)
    fcm, fv = count_flop_counter_mode(model, batch), count_fvcore(model, batch)
    assert fv.uncounted_ops == []
    assert abs(fcm.total - fv.total) <= 0.02 * fcm.total, (fcm.total, fv.total)
    assert fcm.by_module["fusion"] == pytest.approx(fv.by_module["fusion"], rel=0.02)


@pytest.mark.parametrize("name", ["jar", "flamingo", "perceiver", "concat"])
def test_weight_decay_spares_norms_biases_gates_latents_and_embeddings(name):
    """Only weight matrices of linear/conv layers decay: decaying a tanh gate, a latent
    array or an embedding table pulls it to 0 (a closed gate, a blank query)."""
    from variants.blocks import TanhGate

    model = variants.create(name, "tiny")  # the encoder trains: "vision" groups as well
    groups = {g["name"]: g for g in model.param_groups(lr=1e-3, weight_decay=0.05)}
    assert groups["main"]["weight_decay"] == groups["vision"]["weight_decay"] == 0.05
    assert groups["main_no_decay"]["weight_decay"] == 0.0
    decayed = {id(p) for n in ("main", "vision") for p in groups[n]["params"]}
    assert len(decayed) + sum(len(groups[n]["params"]) for n in groups if "no_decay" in n) \
        == len(model.trainable_parameters())
    names = {id(p): n for n, p in model.named_parameters()}
    assert all(names[i].endswith("weight") for i in decayed)
    spared = [p for m in model.modules()
              if isinstance(m, TanhGate | torch.nn.LayerNorm | torch.nn.Embedding)
              for p in m.parameters()]
    spared += [p for n, p in model.named_parameters() if p.ndim < 2 or
               n.split(".")[-1] in ("tokens", "modality", "pos_embed", "cls_token")]
    assert spared and not any(id(p) in decayed for p in spared)


def test_vision_dropout_acts_only_while_the_encoder_trains():
    """vision_dropout is timm's proj_drop_rate in every ViT block: a trained encoder in
    train mode gives two passes of one batch different features; in eval mode, or frozen
    (eval mode for good), one answer; at 0 the blocks have none."""
    images = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    small = dict(vision="micro", image_size=32, patch_size=8, vision_path="")
    model = variants.create("cross_attn", preset="tiny", freeze_vision=False,
                            vision_dropout=0.5, **small).train()
    assert all(b.attn.proj_drop.p == b.mlp.drop2.p == 0.5 for b in model.image_encoder.vit.blocks)
    assert not torch.equal(model.encode_image(images)["tokens"],
                           model.encode_image(images)["tokens"])
    frozen = variants.create("cross_attn", preset="tiny", freeze_vision=True,
                             vision_dropout=0.5, **small).train()
    for encoder in (model.eval(), frozen):
        assert torch.equal(encoder.encode_image(images)["tokens"],
                           encoder.encode_image(images)["tokens"])
    plain = variants.create("cross_attn", preset="tiny", **small)
    assert all(b.attn.proj_drop.p == 0 for b in plain.image_encoder.vit.blocks)


@pytest.mark.parametrize("name", ["cross_attn", "late_fusion"])
def test_an_encoder_trained_from_pixels_gets_vision_lr_and_a_frozen_one_no_group(name):
    """tiny trains a raw-pixel encoder at its vision_lr (a tenth of the run's lr), scheduled
    like the rest; a frozen encoder has no parameters to place, so the groups stay as they
    were, and vision_lr=0 means the run's lr."""
    model = variants.create(name, preset="tiny", freeze_vision=False)
    groups = {g["name"]: g for g in model.param_groups(lr=2e-3, weight_decay=0.01)}
    encoder = {id(p) for p in model.image_encoder.parameters()}
    slow = [p for n in ("vision", "vision_no_decay") for p in groups[n]["params"]]
    fast = [p for n in ("main", "main_no_decay") for p in groups[n]["params"]]
    assert groups["vision"]["lr"] == groups["vision_no_decay"]["lr"] == model.cfg.vision_lr
    assert 0 < model.cfg.vision_lr < 2e-3 and groups["main"]["lr"] == 2e-3
    assert {id(p) for p in slow} == encoder and not encoder & {id(p) for p in fast}
    assert groups["vision"]["weight_decay"] == 0.01 and not groups["vision"].get("fixed_lr")
    for overrides in ({"freeze_vision": True}, {"freeze_vision": False, "vision_lr": 0.0}):
        names = {g["name"] for g in variants.create(name, preset="tiny", **overrides)
                 .param_groups(lr=2e-3)}
        assert names == {"main", "main_no_decay"}, overrides
