"""eP-ALM family measurements: FLOP counters agree, injection costs about one token,
parameter figures at paper scale (meta device), local checkpoints load (or fail clearly)."""

from __future__ import annotations

import json

import pytest
import torch

import variants
from bench.errors import UserError
from bench.flops import component_flops, count_flop_counter_mode, count_fvcore
from tests.frozen_lm_helpers import make, padded_batch

FROZEN_LM = [s.name for s in variants.list_strategies("frozen-lm")]


def _fc(fn) -> int:
    """Multiply-adds of a callable's forward (FlopCounterMode counts 2 per multiply-add)."""
    from torch.utils.flop_counter import FlopCounterMode

    from bench.flops import _fc_sdpa_cpu

    custom = {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _fc_sdpa_cpu}
    with torch.no_grad(), FlopCounterMode(display=False, custom_mapping=custom) as mode:
        fn()
    return mode.get_total_flops() // 2


@pytest.mark.parametrize("name", FROZEN_LM)
def test_fvcore_and_flop_counter_mode_agree(name):
    model = make(name)
    batch = model.dummy_batch(2)
    fv, fc = count_fvcore(model, batch), count_flop_counter_mode(model, batch)
    assert fv.total > 0 and abs(fv.total - fc.total) <= 0.02 * fc.total
    assert fv.uncounted_ops == []
    roles = [component_flops(c, model.components(), model) for c in (fv, fc)]
    assert roles[0] == roles[1] and roles[0]["other"] == 0 and roles[0]["fusion"] > 0
    if model.adapter_modules:  # adapters run inside the LM blocks but count as fusion
        bare = make(name, adapters=False)
        bare_roles = component_flops(count_fvcore(bare, batch), bare.components(), bare)
        assert roles[0]["head"] == bare_roles["head"]
        assert roles[0]["fusion"] > bare_roles["fusion"]


def test_injection_costs_about_one_token_and_magma_all_an_image():
    """Head (LM) FLOPs over the bare LM on the same question: eP-ALM's [CLS] rides through
    the injected layers only (< 1 token); magma_all feeds 1 + HW tokens through all."""
    models = {n: make(n, prompt_len=0) for n in ("epalm_lin", "epalm", "limber", "magma_all")}
    batch = models["epalm"].dummy_batch(1)
    lm = models["epalm"].head
    ids = batch.input_ids

    def bare(n_extra: int) -> int:
        longer = torch.cat([ids, ids[:, :n_extra]], 1)
        return _fc(lambda: lm(input_ids=longer, logits_to_keep=1))

    token = bare(1) - bare(0)
    extra = {n: component_flops(count_flop_counter_mode(m, batch), m.components(), m)["head"]
             - bare(0) for n, m in models.items()}
    injected = len(models["epalm"].schedule) / len(lm.model.decoder.layers)  # 4 / 6 layers
    for n in ("epalm_lin", "epalm"):
        assert 0.9 * injected * token <= extra[n] <= 1.0 * token, (n, extra[n], token)
    assert 0.95 * token <= extra["limber"] <= 1.05 * token
    image_tokens = 1 + (models["magma_all"].cfg.image_size // 8) ** 2
    assert extra["magma_all"] >= image_tokens * token


def test_profile_extras_per_prompt_and_per_token():
    model = make("epalm")
    extras = model.profile_extras(_fc)
    prompt = count_flop_counter_mode(model, model.dummy_batch(1)).total
    assert extras["gflops_per_prompt"] * 1e9 == pytest.approx(prompt)
    assert 0 < extras["gflops_per_token"] < extras["gflops_per_prompt"] / 5


def _meta(name: str, preset: str):
    with torch.device("meta"):
        return variants.create(name, preset=preset)


def test_pt_l_trainable_parameters_match_the_paper():
    """pt-L: one 1024->4096 linear + a 10 x 4096 prompt = 4.24M, 0.061 % of ViT-L + OPT-6.7B."""
    model = _meta("epalm_pt_l", "epalm-pt-l")
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.trainable_parameters())
    assert trainable == 1024 * 4096 + 4096 + 10 * 4096 == 4_239_360
    assert 100 * trainable / total == pytest.approx(0.061, abs=0.0005)
    assert model.head.num_parameters() == 6_658_473_984  # OPT-6.7B
    extras = model.profile_extras(_fc)  # meta tensors: no memory
    assert 0 < extras["gflops_per_token"] < extras["gflops_per_prompt"]


def test_opt350m_setting_parameter_breakdown():
    model = _meta("epalm_ada", "epalm-opt350m")
    roles = model.component_parameters()
    assert roles["head"]["total"] == 331_196_416 and roles["head"]["trainable"] == 0  # OPT-350M
    adapters = 24 * 2 * (2 * 1024 * 128 + 128 + 1024)
    connectors = 6 * (768 * 1024 + 1024)
    assert roles["fusion"] == {"total": adapters + connectors, "trainable": adapters + connectors}
    assert roles["image_encoder"]["trainable"] == 0
    assert sum(r["total"] for r in roles.values()) == sum(p.numel() for p in model.parameters())


def _save_tiny_backbones(tmp_path):
    from safetensors.torch import save_file
    from transformers import OPTForCausalLM

    from variants.backbones import build_vit
    from variants.opt import opt_config

    torch.manual_seed(3)
    lm = OPTForCausalLM(opt_config("micro", 128))
    lm.save_pretrained(tmp_path / "opt")
    vit = build_vit("micro", 32, 8, stem="conv")  # epalm-tiny's stem
    save_file(vit.state_dict(), str(tmp_path / "vit.safetensors"))
    return lm, vit


def test_local_checkpoints_load(tmp_path):
    lm, vit = _save_tiny_backbones(tmp_path)
    model = make("epalm", lm_path=str(tmp_path / "opt"),
                 vision_path=str(tmp_path / "vit.safetensors"))
    for k, v in lm.state_dict().items():
        assert torch.equal(model.head.state_dict()[k], v), k
    for k, v in vit.state_dict().items():
        assert torch.equal(model.image_encoder.vit.state_dict()[k], v), k
    assert model(padded_batch(model, answers=True)).loss.isfinite()


def test_post_norm_opt_with_projected_embeddings(tmp_path):
    """OPT-350M's layout (512-wide embeddings in a wider stack, post-LN, no final norm)."""
    from transformers import OPTConfig, OPTForCausalLM

    from tests.frozen_lm_helpers import reference_logits

    config = OPTConfig(vocab_size=128, hidden_size=64, num_hidden_layers=6, ffn_dim=128,
                       num_attention_heads=2, word_embed_proj_dim=32, max_position_embeddings=64,
                       do_layer_norm_before=False)
    OPTForCausalLM(config).save_pretrained(tmp_path)
    for name in ("epalm", "promptfuse"):
        model = make(name, lm_path=str(tmp_path))
        assert model.fusion.prompt.embed.embedding_dim == 32
        width = 64 if name == "epalm" else 32  # hidden vs word-embedding width
        assert model.fusion.connector.proj[0].out_features == width
        batch = padded_batch(model)
        with torch.no_grad():
            torch.testing.assert_close(model(batch).logits, reference_logits(model, batch))


def test_bad_checkpoints_are_user_errors(tmp_path):
    _save_tiny_backbones(tmp_path)
    config = json.loads((tmp_path / "opt" / "config.json").read_text())
    (tmp_path / "wrong").mkdir()
    (tmp_path / "wrong" / "config.json").write_text(json.dumps({**config, "ffn_dim": 96}))
    (tmp_path / "wrong" / "model.safetensors").write_bytes(
        (tmp_path / "opt" / "model.safetensors").read_bytes())
    with pytest.raises(UserError, match="cannot load OPT checkpoint"):
        make("epalm", lm_path=str(tmp_path / "wrong"))
    with pytest.raises(UserError, match="has no config.json"):
        make("epalm", lm_path=str(tmp_path))
    with pytest.raises(UserError, match="does not fit ViT-small"):
        make("epalm", vision="small", vision_path=str(tmp_path / "vit.safetensors"))
    with pytest.raises(UserError, match="not found"):
        make("epalm", vision_path=str(tmp_path / "missing.safetensors"))
