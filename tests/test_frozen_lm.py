"""eP-ALM family mechanics: injection schedule and slot contents, input placement, loss
alignment, generation (against plain OPT and against cache-free decoding), freezing."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

import variants
from bench.errors import UserError
from tests.frozen_lm_helpers import greedy_without_cache, make, padded_batch, reference_logits
from variants.frozen_lm_parts import injection_schedule

FROZEN_LM = [s.name for s in variants.list_strategies("frozen-lm")]


def test_schedule_places_levels_on_the_last_layers():
    assert injection_schedule(24, 6, "last", 2, 0) == {12 + j: j // 2 for j in range(12)}
    assert injection_schedule(32, 6, "last", 2, 1) == {19 + j: j // 2 for j in range(12)}
    everywhere = injection_schedule(24, 6, "all", 2, 0)
    assert sorted(everywhere) == list(range(24)) and everywhere[0] == 0 and everywhere[23] == 5
    assert list(everywhere.values()) == sorted(everywhere.values())  # shallow feeds early
    assert injection_schedule(24, 6, "input", 2, 0) == {}
    with pytest.raises(UserError, match="need 13 LM layers"):
        injection_schedule(12, 6, "last", 2, 1)


def _layer_inputs(model, batch):
    """Each decoder layer's input hidden states and output length in one forward."""
    inputs, lengths, hooks = {}, {}, []
    for i, layer in enumerate(model.head.model.decoder.layers):
        hooks.append(layer.self_attn_layer_norm.register_forward_pre_hook(  # pre-LN: layer input
            lambda m, a, i=i: inputs.__setitem__(i, a[0].detach().clone())))
        hooks.append(layer.register_forward_hook(
            lambda m, a, out, i=i: lengths.__setitem__(i, out.shape[1])))
    with torch.no_grad():
        model(batch)
    for h in hooks:
        h.remove()
    return inputs, lengths


@pytest.mark.parametrize("reinject", ["on-change", "every-layer"])
def test_injection_places_each_cls_at_its_layer_and_replaces_it(reinject):
    model = make("epalm", reinject=reinject)  # micro OPT: 6 layers; 2 [CLS] levels x 2 layers
    assert model.schedule == {2: 0, 3: 0, 4: 1, 5: 1}
    batch = padded_batch(model)
    n = model.cfg.prompt_len + batch.input_ids.shape[1]
    inputs, lengths = _layer_inputs(model, batch)
    assert [lengths[i] for i in range(6)] == [n, n, n + 1, n + 1, n + 1, n + 1]
    assert [inputs[i].shape[1] for i in range(6)] == [n, n, n + 1, n + 1, n + 1, n + 1]

    # the expected tokens, computed independently: hooks on the ViT blocks + final norm
    vit, cls = model.image_encoder.vit, {}
    hooks = [vit.blocks[d].register_forward_hook(
        lambda m, a, out, d=d: cls.__setitem__(d, vit.norm(out)[:, 0])) for d in (0, 1)]
    with torch.no_grad():
        vit(batch.images)
        tokens = model.fusion.connector(torch.stack([cls[0], cls[1]], 1))
    for h in hooks:
        h.remove()
    close = lambda a, b: torch.allclose(a, b, atol=1e-6)  # noqa: E731
    assert close(inputs[2][:, 0], tokens[:, 0])  # shallower ViT block -> earlier LM layer
    assert close(inputs[4][:, 0], tokens[:, 1])  # replaced after layers_per_cls=2 layers
    assert close(inputs[3][:, 0], tokens[:, 0]) == (reinject == "every-layer")
    assert close(inputs[5][:, 0], tokens[:, 1]) == (reinject == "every-layer")
    # text positions are untouched by the injection: layer 2's input equals layer 1's output
    assert close(inputs[2][:, 1:], inputs[2][:, 1:]) and not torch.isnan(inputs[5]).any()


@pytest.mark.parametrize("name", ["epalm", "epalm_ada", "magma_all", "promptfuse"])
def test_logits_match_a_hand_written_decoder_loop(name):
    model = make(name)
    for answers in (False, True):
        batch = padded_batch(model, answers=answers)
        with torch.no_grad():
            got, want = model(batch).logits, reference_logits(model, batch)
        real = batch.answer_ids != -100 if answers else torch.ones(got.shape[:2], dtype=bool)
        torch.testing.assert_close(got[real], want[real], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", ["limber", "magma", "magma_all", "promptfuse"])
def test_input_placement_puts_tokens_only_at_the_input(name):
    model = make(name)
    assert model.schedule == {}
    batch = padded_batch(model)
    visual = 1 + (model.cfg.image_size // model.cfg.patch_size) ** 2 if name == "magma_all" else 1
    n = visual + model.cfg.prompt_len + batch.input_ids.shape[1]
    seen = {}
    hook = model.head.model.decoder.register_forward_pre_hook(
        lambda m, a, kw: seen.__setitem__("embeds", kw["inputs_embeds"]), with_kwargs=True)
    inputs, lengths = _layer_inputs(model, batch)
    hook.remove()
    assert set(lengths.values()) == {n}
    with torch.no_grad():
        tokens = model.fusion.connector(model.encode_image(batch.images)["tokens"])
    torch.testing.assert_close(seen["embeds"][:, :visual], tokens)


def test_loss_covers_answer_tokens_only():
    model = make("epalm")
    batch = padded_batch(model, answers=True)
    with torch.no_grad():
        out = model(batch)
        # OPT's own shifted loss over the whole sequence, labels -100 on prompt and question
        embeds, mask, keep, tokens = model._prepare(batch)
        labels = torch.full(embeds.shape[:2], -100)
        labels[:, -keep + 1:] = batch.answer_ids[:, :-1]
        labels = torch.cat([labels, batch.answer_ids[:, -1:]], 1)[:, 1:]  # last label too
        labels = torch.cat([torch.full((labels.shape[0], 1), -100), labels], 1)
        with model.injector(tokens):
            full = model.head(inputs_embeds=embeds, attention_mask=mask).logits
        extended = torch.cat([full, full[:, -1:]], 1)  # the appended position predicts nothing
        hf = model.head.loss_function(logits=extended, labels=labels, vocab_size=full.shape[-1])
        # the first answer logits are the next-token logits after the question alone
        first = model(dataclasses.replace(batch, answer_ids=None)).logits[:, 0]
    torch.testing.assert_close(out.loss, hf)
    torch.testing.assert_close(out.logits[:, 0], first, atol=1e-5, rtol=1e-5)
    manual = F.cross_entropy(out.logits.flatten(0, 1), batch.answer_ids.flatten(),
                             ignore_index=-100)
    torch.testing.assert_close(out.loss, manual)


@pytest.mark.parametrize("name, knobs", [
    ("epalm", {}), ("epalm_ada", {}), ("magma_all", {}), ("promptfuse", {}),
    # schedules that reach LM layer 0, whose KV cache the decoder reads its past length from
    ("epalm", {"inject": "all"}), ("epalm_ada", {"layers_per_cls": 3}),
])
def test_cached_generation_matches_cache_free_decoding(name, knobs):
    model = make(name, **knobs)
    batch = padded_batch(model)
    assert model.generate(batch, max_new_tokens=5) == greedy_without_cache(model, batch, 5)
    beams = model.generate(batch, max_new_tokens=5, num_beams=3)
    assert len(beams) == batch.size and all(len(b) <= 5 for b in beams)


@pytest.mark.parametrize("name", ["limber", "epalm_ada"])
def test_text_only_generation_equals_plain_opt(name, tmp_path):
    """With no image (the visual path off), no prompt and zeroed adapters, the model is the
    plain OPT: greedy and beam outputs equal OPTForCausalLM.generate on the same ids."""
    from transformers import OPTForCausalLM

    torch.manual_seed(0)
    plain = OPTForCausalLM(variants.opt.opt_config("micro", 128)).eval()
    plain.save_pretrained(tmp_path)
    model = make(name, lm_path=str(tmp_path))
    for adapter in model.adapter_modules:
        torch.nn.init.zeros_(adapter.up.weight)
    batch = dataclasses.replace(padded_batch(model), images=None)
    left = torch.stack([torch.cat([r[m == 0], r[m == 1]]) for r, m in
                        zip(batch.input_ids, batch.attention_mask)])
    left_mask = torch.sort(batch.attention_mask, dim=1, stable=True).values
    for beams in (1, 3):
        ref = plain.generate(input_ids=left, attention_mask=left_mask, max_new_tokens=6,
                             num_beams=beams, do_sample=False, pad_token_id=1, eos_token_id=2)
        ref = [r[:r.index(2)] if 2 in r else r for r in ref[:, left.shape[1]:].tolist()]
        assert model.generate(batch, max_new_tokens=6, num_beams=beams) == ref


@pytest.mark.parametrize("name", FROZEN_LM)
def test_training_step_updates_only_trainable_parts(name):
    model = make(name)
    frozen = {k: v.clone() for k, v in model.named_parameters() if not v.requires_grad}
    trainable = {k: v.clone() for k, v in model.named_parameters() if v.requires_grad}
    assert trainable and (frozen or name == "finetune")
    groups = model.param_groups(lr=1e-3)
    grouped = [p for g in groups for p in g["params"]]
    assert len(grouped) == len({id(p) for p in grouped}) == len(trainable)
    model.train()
    assert all(not m.training for m in model.modules() if getattr(m, "frozen", False))
    optimizer = torch.optim.AdamW(groups)
    for _ in range(2):  # finetune trains the conv stem, whose residual blocks start as
        optimizer.zero_grad()  # identities (last norm 0): inner weights move from step 2
        model(padded_batch(model, answers=True)).loss.backward()
        for k, p in model.named_parameters():
            assert (p.grad is not None) == p.requires_grad, k
        optimizer.step()
    for k, p in model.named_parameters():
        if k in frozen:
            assert torch.equal(p, frozen[k]), k
        else:
            assert not torch.equal(p, trainable[k]), k


def test_param_groups_give_prompt_and_adapters_their_fixed_lr():
    model = make("epalm_ada", prompt_len=10, adapter_lr=3e-5, prompt_lr=2e-5)
    groups = {g["name"]: g for g in model.param_groups(lr=1e-4, weight_decay=0.1)}
    assert groups["main"]["lr"] == 1e-4 and "fixed_lr" not in groups["main"]
    assert groups["prompt"]["lr"] == 2e-5 and groups["prompt"]["fixed_lr"]
    assert groups["adapters"]["lr"] == 3e-5 and groups["adapters"]["fixed_lr"]
    assert groups["adapters_no_decay"]["lr"] == 3e-5 and groups["adapters_no_decay"]["fixed_lr"]
    layers = model.cfg.lm and len(model.head.model.decoder.layers)
    # 2 adapters x 2 linears per layer: weights decay, biases do not
    assert len(groups["adapters"]["params"]) == len(groups["adapters_no_decay"]["params"]) \
        == 2 * 2 * layers
    assert all(p.ndim == 2 for p in groups["adapters"]["params"])
    prompt_table = model.fusion.prompt.embed.weight  # an embedding: never decayed
    assert any(p is prompt_table for p in groups["prompt_no_decay"]["params"])
    assert {n: g["weight_decay"] for n, g in groups.items()} == {
        "main": 0.1, "main_no_decay": 0.0, "prompt": 0.1, "prompt_no_decay": 0.0,
        "adapters": 0.1, "adapters_no_decay": 0.0}


@pytest.mark.parametrize("overrides, message", [
    (dict(inject="middle"), "not one of last, all, input"),
    (dict(vision_layers=3), "vision_layers=3: ViT-micro has only 2 layers"),
    (dict(visual_tokens="all"), "needs inject=input"),
    (dict(layers_per_cls=4), "need 8 LM layers"),
    (dict(sep_token_id=500), "outside the LM vocabulary"),
    (dict(adapter_act="swish"), "not one of"),
])
def test_bad_config_is_a_user_error(overrides, message):
    with pytest.raises(UserError, match=message):
        make("epalm", **overrides)


def test_cli_profiles_a_frozen_lm_and_rejects_bad_knobs(capsys):
    from tests.helpers import run_cli

    code, out, _ = run_cli(["profile", "epalm", "--preset", "epalm-tiny", "--measure", "never"],
                           capsys)
    assert code == 0 and "per prompt" in out and "per token" in out and "trainable" in out
    code, _, err = run_cli(["profile", "epalm", "--preset", "epalm-tiny", "--set",
                            "inject=middle"], capsys)
    assert code == 2 and "inject='middle'" in err and len(err.strip().splitlines()) == 1


def test_kv_cache_is_found_by_its_api_not_its_keyword():
    """transformers 5.24 renamed the layers' ``past_key_values`` keyword to ``cache``: the
    injector finds the cache by ``Cache.get_seq_length`` under either name, or positionally."""
    from transformers import DynamicCache

    from variants.frozen_lm_parts import cache_keyword, find_cache

    cache = DynamicCache()
    assert find_cache((), {"past_key_values": cache}) is cache
    assert find_cache((), {"cache": cache, "attention_mask": None}) is cache
    assert find_cache((None, cache), {}) is cache
    assert find_cache((), {"attention_mask": torch.ones(1, 1, 2, 2)}) is None
    assert cache_keyword(make("epalm").head) in ("cache", "past_key_values")


def test_trained_backbones_get_their_own_scheduled_lr():
    """finetune's pretrained ViT and LM at backbone_lr, its new connectors at the run's lr;
    frozen backbones (or backbone_lr 0) leave the groups as they were."""
    model = make("finetune", backbone_lr=1e-5)
    groups = {g["name"]: g for g in model.param_groups(lr=1e-3, weight_decay=0.1)}
    backbone = {id(p) for m in (model.image_encoder, model.head) for p in m.parameters()}
    slow = [p for n in ("backbones", "backbones_no_decay") for p in groups[n]["params"]]
    fast = [p for n in ("main", "main_no_decay") for p in groups[n]["params"]]
    assert groups["backbones"]["lr"] == groups["backbones_no_decay"]["lr"] == 1e-5
    assert not groups["backbones"].get("fixed_lr")  # warm-up and cosine apply
    assert groups["main"]["lr"] == 1e-3 and fast
    assert all(id(p) in backbone for p in slow) and not any(id(p) in backbone for p in fast)
    assert len(slow) == len([p for p in model.parameters() if id(p) in backbone])
    assert "backbones" not in {g["name"] for g in make("finetune", backbone_lr=0.0)
                               .param_groups(lr=1e-3)}
    assert "backbones" not in {g["name"] for g in make("epalm", backbone_lr=1e-5)
                               .param_groups(lr=1e-3)}
