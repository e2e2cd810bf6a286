"""Text pretraining packs its corpus the way causal LMs are pretrained."""

from __future__ import annotations

import pytest
import torch

from bench.errors import UserError
from bench.pretrain import _packed


def test_lines_are_packed_end_to_end_into_full_blocks():
    lines = [[1, 5, 6, 2], [1, 7, 2], [1, 8, 9, 10, 2]]  # 12 tokens
    blocks = _packed(lines, block=5)
    assert blocks.tolist() == [[1, 5, 6, 2, 1], [7, 2, 1, 8, 9]]  # the 2-token tail dropped
    assert blocks.dtype == torch.long


def test_a_corpus_shorter_than_one_block_is_one_clear_error():
    with pytest.raises(UserError, match="fewer than one 128-token block"):
        _packed([[1, 2, 3]], block=128)
