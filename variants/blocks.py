"""Shared layers: attention, MLP, transformer blocks, cross-attention.

Written out (rather than ``nn.TransformerEncoderLayer``) so that every matmul is visible to
FLOP counters: the PyTorch layer's eval-mode fast path hides them. Attention goes through
``F.scaled_dot_product_attention``; ``bench.flops`` registers counting handles for it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Attention(nn.Module):
    """Multi-head attention; self-attention when ``context`` is None, else cross-attention."""

    def __init__(self, dim: int, heads: int, context_dim: int | None = None):
        super().__init__()
        if dim % heads:
            raise ValueError(f"width {dim} is not divisible by heads {heads}")
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(context_dim or dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(
        self, x: torch.Tensor, context: torch.Tensor | None = None, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """x [B, N, D], context [B, M, Dc], mask [B, M] (True/1 = attend)."""
        B, N, D = x.shape
        context = x if context is None else context
        q = self.q(x).view(B, N, self.heads, -1).transpose(1, 2)
        k, v = self.kv(context).view(B, context.shape[1], 2, self.heads, -1).unbind(2)
        k, v = k.transpose(1, 2), v.transpose(1, 2)
        attn_mask = None if mask is None else mask[:, None, None, :].bool()
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        return self.proj(out.transpose(1, 2).reshape(B, N, D))


class Mlp(nn.Module):
    def __init__(self, dim: int, ratio: float = 4.0):
        super().__init__()
        hidden = int(dim * ratio)
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm transformer layer: self-attention + MLP (ViT/nanoGPT style)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, mlp_ratio)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), mask=mask)
        return x + self.mlp(self.norm2(x))


class CrossBlock(nn.Module):
    """Pre-norm cross-attention (queries ``x`` read ``context``) + MLP, optionally gated.

    With ``gated=True`` the two residual branches are scaled by ``tanh(alpha)`` and
    ``tanh(beta)`` (learnable scalars initialised at ``gate_init``), as in Flamingo and JAR.
    """

    def __init__(self, dim: int, heads: int, context_dim: int | None = None,
                 mlp_ratio: float = 4.0, gated: bool = False, gate_init: float = 0.0):
        super().__init__()
        self.norm_q = nn.LayerNorm(dim)
        self.norm_kv = nn.LayerNorm(context_dim or dim)
        self.attn = Attention(dim, heads, context_dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, mlp_ratio)
        self.gated = gated
        if gated:
            self.alpha = nn.Parameter(torch.tensor(float(gate_init)))
            self.beta = nn.Parameter(torch.tensor(float(gate_init)))

    def forward(
        self, x: torch.Tensor, context: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        a = self.attn(self.norm_q(x), self.norm_kv(context), mask)
        x = x + (torch.tanh(self.alpha) * a if self.gated else a)
        m = self.mlp(self.norm2(x))
        return x + (torch.tanh(self.beta) * m if self.gated else m)


class Latents(nn.Module):
    """N learned query tokens (DETR/Perceiver style), broadcast over the batch."""

    def __init__(self, num: int, dim: int):
        super().__init__()
        self.tokens = nn.Parameter(torch.randn(num, dim) * 0.02)

    def forward(self, batch_size: int) -> torch.Tensor:
        return self.tokens.unsqueeze(0).expand(batch_size, -1, -1)


class ClassifierHead(nn.Module):
    """VQA answer classifier on a pooled representation (2-layer MLP, as in bottom-up VQA)."""

    def __init__(self, dim: int, num_answers: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, 2 * dim)
        self.fc2 = nn.Linear(2 * dim, num_answers)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(self.norm(pooled))))


def masked_mean(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean over tokens of x [B, N, D], counting only mask==1 positions when given."""
    if mask is None:
        return x.mean(1)
    m = mask.to(x.dtype).unsqueeze(-1)
    return (x * m).sum(1) / m.sum(1).clamp_min(1.0)


def vqa_loss(logits: torch.Tensor, scores: torch.Tensor | None) -> torch.Tensor | None:
    """Soft-score binary cross-entropy, scaled by the answer count (standard VQA objective)."""
    if scores is None:
        return None
    return F.binary_cross_entropy_with_logits(logits, scores) * scores.shape[1]
