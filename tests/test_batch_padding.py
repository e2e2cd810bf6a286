"""Batches drop the token columns that are padding in every row (``Batch.without_padding``):
the data's collates do it, so the models must give the same losses with and without them."""

import dataclasses

import pytest
import torch

import variants
from variants.interface import Batch

from .frozen_lm_helpers import make, padded_batch


def _padded(batch: Batch, left: bool) -> Batch:
    """``batch`` with two all-padding question columns (left or right) and two all -100
    answer columns added."""
    pad_ids = torch.zeros(batch.size, 2, dtype=batch.input_ids.dtype)
    pad_mask = torch.zeros(batch.size, 2, dtype=batch.attention_mask.dtype)
    ids = [pad_ids, batch.input_ids] if left else [batch.input_ids, pad_ids]
    mask = [pad_mask, batch.attention_mask] if left else [batch.attention_mask, pad_mask]
    answers = batch.answer_ids
    if answers is not None:
        answers = torch.cat([answers, torch.full((batch.size, 2), -100)], 1)
    return dataclasses.replace(batch, input_ids=torch.cat(ids, 1),
                               attention_mask=torch.cat(mask, 1), answer_ids=answers)


def test_only_columns_padded_in_every_row_go():
    ids = torch.tensor([[5, 6, 0, 0], [5, 6, 7, 0]])
    answers = torch.tensor([[3, 2, -100, -100], [2, -100, -100, -100]])
    batch = Batch(None, ids, (ids > 0).long(), answer_ids=answers).without_padding()
    assert batch.input_ids.tolist() == [[5, 6, 0], [5, 6, 7]]
    assert batch.answer_ids.tolist() == [[3, 2], [2, -100]]
    full = Batch(None, ids[:, :2], torch.ones(2, 2, dtype=torch.long))
    assert full.without_padding() is full  # nothing to drop: the same batch


@pytest.mark.parametrize("name", ["cross_attn", "concat", "jar", "flamingo", "perceiver",
                                  "cotok", "late_fusion"])
@pytest.mark.parametrize("left", [False, True])
def test_encoder_fusion_outputs_do_not_depend_on_shared_padding(name, left):
    torch.manual_seed(0)
    model = variants.create(name, "tiny", text_vocab_size=50, num_answers=7).eval()
    batch = model.dummy_batch(3)
    batch.attention_mask[1, -3:] = 0  # rows of different lengths
    padded = _padded(batch, left)
    with torch.no_grad():
        assert torch.allclose(model(padded).logits, model(padded.without_padding()).logits,
                              atol=1e-5)


@pytest.mark.parametrize("name", ["epalm", "epalm_lin", "magma"])
def test_frozen_lm_loss_does_not_depend_on_shared_padding(name):
    model = make(name)
    batch = padded_batch(model, answers=True)
    padded = _padded(batch, left=True)
    with torch.no_grad():
        assert torch.allclose(model(padded).loss, model(padded.without_padding()).loss,
                              atol=1e-5)
