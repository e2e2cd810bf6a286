"""Both FLOP counters against hand formulas (1 multiply-add = 1 FLOP), and each other."""

import pytest
import torch
from torch import nn

from bench.flops import count_flop_counter_mode, count_fvcore, sdpa_macs
from variants.blocks import Block
from variants.interface import Batch


class Probe(nn.Module):
    """Wraps a layer so the counters' Batch-based entry points can call it on ``images``."""

    def __init__(self, layer: nn.Module):
        super().__init__()
        self.layer = layer

    def forward(self, batch: Batch):
        from variants.interface import Output

        return Output(logits=self.layer(batch.images))


def probe_batch(x: torch.Tensor) -> Batch:
    ids = torch.zeros(x.shape[0], 1, dtype=torch.long)
    return Batch(images=x, input_ids=ids, attention_mask=torch.ones_like(ids))


def block_macs(b: int, n: int, d: int, mlp_ratio: float = 4.0) -> int:
    """q, k, v, out projections 4ND^2 + attention 2N^2D + MLP 2*ratio*ND^2, per example."""
    return b * (4 * n * d * d + 2 * n * n * d + int(2 * mlp_ratio * n * d * d))


@pytest.mark.parametrize("counter", [count_fvcore, count_flop_counter_mode])
def test_linear_matches_hand_formula(counter):
    x = torch.randn(3, 7, 32)
    count = counter(Probe(nn.Linear(32, 48)).eval(), probe_batch(x))
    assert count.total == 3 * 7 * 32 * 48


@pytest.mark.parametrize("counter", [count_fvcore, count_flop_counter_mode])
@pytest.mark.parametrize("n,d,heads", [(10, 64, 4), (33, 96, 3)])
def test_transformer_block_matches_hand_formula(counter, n, d, heads):
    x = torch.randn(2, n, d)
    count = counter(Probe(Block(d, heads)).eval(), probe_batch(x))
    assert count.total == block_macs(2, n, d)


def test_flop_counter_mode_counts_attention_on_meta_too():
    with torch.device("meta"):
        block = Block(64, 4)
        x = torch.randn(2, 10, 64)
    count = count_flop_counter_mode(Probe(block), probe_batch(x))
    assert count.total == block_macs(2, 10, 64)


def test_sdpa_formula_counts_both_matmuls():
    assert sdpa_macs((2, 4, 10, 16), (2, 4, 12, 16), (2, 4, 12, 8)) == 2 * 4 * 10 * 12 * (16 + 8)


def test_fvcore_lists_elementwise_ops_instead_of_hiding_them():
    count = count_fvcore(Probe(Block(32, 2)).eval(), probe_batch(torch.randn(1, 5, 32)))
    assert "gelu" in count.elementwise_ops and "layer_norm" in count.elementwise_ops
    assert count.uncounted_ops == []
