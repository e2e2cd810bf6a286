"""Shared helpers of the frozen-LM tests: tiny models, a padded batch, and two independent
references (a hand-written OPT layer loop with explicit masks; greedy decoding by repeated
teacher-forced forwards without a KV cache)."""

from __future__ import annotations

import dataclasses

import torch

import variants
from variants.interface import Batch

TINY = dict(image_size=32, patch_size=8, text_vocab_size=128, sep_token_id=100, text_len=6)
EOS = 2


def make(name: str, **overrides):
    torch.manual_seed(0)
    return variants.create(name, preset="epalm-tiny", **{**TINY, **overrides}).eval()


def padded_batch(model, batch_size: int = 3, answers: bool = False) -> Batch:
    """Questions of different lengths, right-padded (the model must left-align them)."""
    g = torch.Generator().manual_seed(1)
    cfg, vocab = model.cfg, model.head.config.vocab_size
    ids = torch.randint(4, cfg.sep_token_id, (batch_size, cfg.text_len), generator=g)
    mask = torch.ones_like(ids)
    for row in range(batch_size):
        n = cfg.text_len - row  # real tokens, the last one </a>
        ids[row, n - 1] = cfg.sep_token_id
        ids[row, n:], mask[row, n:] = model.head.config.pad_token_id, 0
    images = torch.randn(batch_size, 3, cfg.image_size, cfg.image_size, generator=g)
    answer_ids = None
    if answers:
        answer_ids = torch.randint(4, vocab, (batch_size, 4), generator=g)
        answer_ids[0, 3] = EOS
        answer_ids[1, 2], answer_ids[1, 3] = EOS, -100
        answer_ids[2, 1], answer_ids[2, 2:] = EOS, -100
        answer_ids = answer_ids[:batch_size]
    return Batch(images, ids, mask, answer_ids=answer_ids)


def reference_logits(model, batch: Batch) -> torch.Tensor:
    """The model's logits recomputed by a hand-written OPT layer loop with one explicit
    boolean mask per sequence length: the injected token prepended / replaced by hand."""
    dec, sched = model.head.model.decoder, model.schedule
    embeds, mask, keep, tokens = model._prepare(batch)
    mask = torch.ones(embeds.shape[:2], dtype=torch.long) if mask is None else mask
    h = dec.project_in(embeds) if dec.project_in is not None else embeds
    h = h + dec.embed_positions(mask, 0)
    for i, layer in enumerate(dec.layers):
        if i in sched:
            tok = tokens[:, sched[i]:sched[i] + 1]
            if i == min(sched):
                h = torch.cat([tok, h], 1)
            elif sched[i] != sched[i - 1] or model.cfg.reinject == "every-layer":
                h = torch.cat([tok, h[:, 1:]], 1)
        n, slot = h.shape[1], h.shape[1] - mask.shape[1]
        keys = torch.cat([torch.ones(mask.shape[0], slot, dtype=torch.long), mask], 1).bool()
        allowed = torch.ones(n, n).tril().bool()[None] & keys[:, None, :]
        allowed |= torch.eye(n, dtype=torch.bool)[None]  # padded rows: no all-masked row
        h = layer(h, attention_mask=allowed[:, None])
    if dec.final_layer_norm is not None:
        h = dec.final_layer_norm(h)
    if dec.project_out is not None:
        h = dec.project_out(h)
    return model.head.lm_head(h[:, -keep:])


def greedy_without_cache(model, batch: Batch, steps: int) -> list[list[int]]:
    """Greedy decoding by teacher-forced forwards (no KV cache, no ``generate``)."""
    out = torch.empty(batch.size, 0, dtype=torch.long)
    for _ in range(steps):
        answers = torch.cat([out, torch.zeros(batch.size, 1, dtype=torch.long)], 1)
        logits = model(dataclasses.replace(batch, answer_ids=answers)).logits
        out = torch.cat([out, logits[:, -1].argmax(-1, keepdim=True)], 1)
    rows = out.tolist()
    return [row[:row.index(EOS)] if EOS in row else row for row in rows]
