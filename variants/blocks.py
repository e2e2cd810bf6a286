"""Shared layers: attention, MLP, transformer blocks, gated cross-attention, latent resampler,
TokenLearner pooling, recurrent cells and the bidirectional-GRU question encoder.

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


class TanhGate(nn.Module):
    """``tanh(a) * x`` with a learnable scalar ``a`` (Flamingo, JAR). Initialised at 0 the
    gated branch starts switched off, so a new branch does not disturb a pretrained path."""

    def __init__(self, init: float = 0.0):
        super().__init__()
        self.gate = nn.Parameter(torch.tensor(float(init)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.gate) * x


class CrossBlock(nn.Module):
    """Pre-norm cross-attention (queries ``x`` read ``context``) + MLP, optionally gated.

    With ``gated=True`` the two residual branches are scaled by ``tanh(alpha)`` and
    ``tanh(beta)`` (``TanhGate``s initialised at ``gate_init``), as in Flamingo's
    GATED XATTN-DENSE. ``mlp_ratio=0`` leaves out the MLP (attention only).
    """

    def __init__(self, dim: int, heads: int, context_dim: int | None = None,
                 mlp_ratio: float = 4.0, gated: bool = False, gate_init: float = 0.0):
        super().__init__()
        self.norm_q = nn.LayerNorm(dim)
        self.norm_kv = nn.LayerNorm(context_dim or dim)
        self.attn = Attention(dim, heads, context_dim)
        self.gate_attn = TanhGate(gate_init) if gated else nn.Identity()
        self.mlp = None
        if mlp_ratio > 0:
            self.norm2 = nn.LayerNorm(dim)
            self.mlp = Mlp(dim, mlp_ratio)
            self.gate_mlp = TanhGate(gate_init) if gated else nn.Identity()

    def forward(
        self, x: torch.Tensor, context: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        x = x + self.gate_attn(self.attn(self.norm_q(x), self.norm_kv(context), mask))
        if self.mlp is None:
            return x
        return x + self.gate_mlp(self.mlp(self.norm2(x)))


class Latents(nn.Module):
    """N learned query tokens (DETR/Perceiver style), broadcast over the batch."""

    def __init__(self, num: int, dim: int):
        super().__init__()
        self.tokens = nn.Parameter(torch.randn(num, dim) * 0.02)

    def forward(self, batch_size: int) -> torch.Tensor:
        # repeat, not expand: a view of a parameter made under no_grad claims requires_grad
        # without a grad_fn, which breaks FlopCounterMode's module hooks.
        return self.tokens.unsqueeze(0).repeat(batch_size, 1, 1)


class LatentResampler(nn.Module):
    """N learned latents read a token set [B, M, D] by cross-attention -> [B, N, D].

    ``depth=1, mlp_ratio=0``: one multi-head cross-attention (JAR's one-time resampling).
    ``depth>1, mlp_ratio>0, concat_latents=True``: Flamingo's Perceiver resampler, whose
    keys/values are the inputs and the latents together. Cost is linear in M.
    """

    def __init__(self, dim: int, heads: int, num_latents: int, depth: int = 1,
                 mlp_ratio: float = 0.0, concat_latents: bool = False):
        super().__init__()
        self.latents = Latents(num_latents, dim)
        self.layers = nn.ModuleList(CrossBlock(dim, heads, mlp_ratio=mlp_ratio)
                                    for _ in range(depth))
        self.concat_latents = concat_latents

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        lat = self.latents(x.shape[0])
        for layer in self.layers:
            if self.concat_latents:
                context = torch.cat([x, lat], dim=1)
                m = None if mask is None else torch.cat([mask, mask.new_ones(lat.shape[:2])], 1)
                lat = layer(lat, context, m)
            else:
                lat = layer(lat, x, mask)
        return lat


class TokenLearner(nn.Module):
    """TokenLearner-style spatial pooling (Ryoo et al. 2021, v1.1): an MLP scores every
    input position for each of ``num_tokens`` maps, a softmax over positions turns the scores
    into spatial attention maps, and token k is the map-weighted sum of the inputs.

    ``cond_dim``: a conditioning vector (e.g. the pooled question, as in iterative
    co-tokenization) is projected and added to every position before scoring, so the maps
    depend on the text. ``mask`` [B, M] (1 = real) keeps padding out of the maps.
    """

    def __init__(self, dim: int, num_tokens: int, hidden: int, cond_dim: int | None = None):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.cond = nn.Linear(cond_dim, dim) if cond_dim else None
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, num_tokens)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None,
                cond: torch.Tensor | None = None) -> torch.Tensor:
        h = self.norm(x)
        if self.cond is not None:
            h = h + self.cond(cond).unsqueeze(1)
        scores = self.fc2(F.gelu(self.fc1(h)))  # [B, M, N]
        if mask is not None:
            scores = scores.masked_fill(~mask.bool().unsqueeze(-1), float("-inf"))
        maps = scores.softmax(dim=1).transpose(1, 2)  # [B, N, M], each row sums to 1
        return maps @ x


CELLS = {"lstm": 4, "gru": 3}  # gates per cell


class RecurrentLayer(nn.Module):
    """One LSTM or GRU layer over [B, L, D] -> [B, L, directions * H]. Where ``mask`` is 0
    the state is carried unchanged, so the last position holds the state after the last real
    token, whichever side the padding is on. ``directions=2`` also runs the sequence
    backwards with its own weights, in the same batched matmuls as the forward pass (one
    recurrence of 2 x B rows rather than two of B: half the small ops per step)."""

    def __init__(self, input_dim: int, hidden: int, cell: str, directions: int = 1):
        super().__init__()
        if directions not in (1, 2):
            raise ValueError(f"directions must be 1 or 2, not {directions}")
        self.cell, self.hidden, self.directions = cell, hidden, directions
        gates = CELLS[cell] * hidden
        # [directions, in, out] weights for bmm; nn.Linear's init (uniform, 1/sqrt(fan_in))
        self.x2h_weight = nn.Parameter(_uniform(input_dim, directions, input_dim, gates))
        self.x2h_bias = nn.Parameter(_uniform(input_dim, directions, 1, gates))
        self.h2h_weight = nn.Parameter(_uniform(hidden, directions, hidden, gates))
        self.h2h_bias = nn.Parameter(_uniform(hidden, directions, 1, gates))
        if cell == "lstm":  # forget gate open at the start (Jozefowicz et al. 2015)
            with torch.no_grad():
                self.x2h_bias[..., hidden:2 * hidden].fill_(1.0)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        B, L, _ = x.shape
        H, keep = self.hidden, mask.bool()
        if self.directions == 2:  # the backward direction reads the flipped sequence
            x, keep = torch.stack([x, x.flip(1)]), torch.stack([keep, keep.flip(1)])
        else:
            x, keep = x.unsqueeze(0), keep.unsqueeze(0)
        # every step's input projection in one matmul: [dirs, B * L, gates]
        gates_x = (torch.bmm(x.reshape(self.directions, B * L, -1), self.x2h_weight)
                   + self.x2h_bias).view(self.directions, B, L, -1)
        # per-step views made once: indexing gates_x[:, :, t] inside the loop would, in the
        # backward pass, write each step's gradient into a zero tensor as large as gates_x
        steps_x, steps_keep = gates_x.unbind(2), keep.unsqueeze(-1).unbind(2)
        h = x.new_zeros(self.directions, B, H)
        c = h
        states = []
        for gx, keep_t in zip(steps_x, steps_keep):
            gh = torch.bmm(h, self.h2h_weight) + self.h2h_bias
            if self.cell == "lstm":
                i, f, g, o = (gx + gh).chunk(4, dim=-1)
                c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                h_new = torch.sigmoid(o) * torch.tanh(c_new)
                c = torch.where(keep_t, c_new, c)
            else:  # torch's GRU: reset and update gates, then the candidate state
                (gx_rz, gx_n), (gh_rz, gh_n) = gx.split([2 * H, H], -1), gh.split([2 * H, H], -1)
                r, z = torch.sigmoid(gx_rz + gh_rz).chunk(2, dim=-1)
                n = torch.tanh(gx_n + r * gh_n)
                h_new = n + z * (h - n)  # (1 - z) * n + z * h
            h = torch.where(keep_t, h_new, h)
            states.append(h)
        out = torch.stack(states, dim=2)  # [dirs, B, L, H]
        if self.directions == 1:
            return out[0]
        return torch.cat([out[0], out[1].flip(1)], dim=-1)


def _uniform(fan_in: int, *shape: int) -> torch.Tensor:
    bound = fan_in ** -0.5
    return torch.empty(*shape).uniform_(-bound, bound)


class BiGRUText(nn.Module):
    """Question tokens from a bidirectional GRU over word embeddings, [B, L, width]: each
    token sees the whole question. The encoder-fusion family's small-scale text encoder
    (``text=gru``): at width 64 a randomly initialised 2-layer BERT learns the question
    slowly (measured on synthvqa: cross_attn 53 % val after 10 epochs with it, 58 % after
    8 with this), while a GRU is the classic VQA question encoder."""

    def __init__(self, vocab_size: int, width: int):
        super().__init__()
        if width % 2:
            raise ValueError(f"width {width} must be even (half per direction)")
        self.embed = nn.Embedding(vocab_size, width)
        self.rnn = RecurrentLayer(width, width // 2, "gru", directions=2)
        self.dim = width

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        # padding carries the state unchanged, so the reversed pass starts at the last token
        return self.rnn(self.embed(input_ids), attention_mask)


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


VQA_LOSSES = ("bce", "softmax")


def vqa_loss(logits: torch.Tensor, scores: torch.Tensor | None,
             kind: str = "bce") -> torch.Tensor | None:
    """``bce``: soft-score binary cross-entropy, scaled by the answer count (bottom-up VQA's
    objective); ``softmax``: cross-entropy against the soft scores normalised to a
    distribution (one answer competes with the others, as in most recent VQA heads)."""
    if scores is None:
        return None
    if kind == "softmax":
        target = scores / scores.sum(1, keepdim=True).clamp_min(1e-6)
        return -(target * F.log_softmax(logits, dim=1)).sum(1).mean()
    return F.binary_cross_entropy_with_logits(logits, scores) * scores.shape[1]
