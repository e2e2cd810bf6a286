"""Joint Adaptive Representations (JAR; Piergiovanni & Angelova 2023, arXiv 2305.19924).

1. Image tokens are projected to the fusion width D by a learnable linear map W1 (eq. 1);
   text tokens already have width D (projected only when the text encoder's width differs).
2. Once, not per iteration, N learned latents resample each modality to N tokens:
   ``f_N`` (image) and ``t_N`` (text). ``resampling=latent``: one multi-head cross-attention
   with the latents as queries (separate latents per modality); ``spatial``: TokenLearner
   maps over the H·W image positions (and the L text positions), Table 4(c).
3. Every iteration runs the gated fusion block on ``(t, f_N)``:
   ``P_cr = Ln(t) + tanh(α)·MHA(q=Ln(t), kv=Ln(f_N))``, ``F = P_cr + tanh(β)·MLP(P_cr)``,
   then standard transformer layers (self-attention + MLP) on F. ``gating=off`` drops the
   two ``tanh`` factors (and the α, β parameters).
4. ``combination`` sets the text latents of the next iteration (t_0 = t_N from step 2;
   F_i is iteration i's output after its transformer layers):
   ``weighted`` (the paper's update) ``t_{i+1} = F_i + t_i``, an accumulating sum;
   ``residual`` ``t_{i+1} = F_i + t_0``, a skip to the resampled question only;
   ``none`` ``t_{i+1} = F_i``, a plain stack. The update follows the last iteration too;
   the pooled output is the mean over the N tokens of ``Ln(t_iterations)``.

``fusion_layers`` and ``iterations`` (Table 4(e) and 4(a); Base: 32 and 4).
``fusion_layers`` is the total number of standard transformer layers over the N latents,
shared out evenly: each iteration is one gated cross-attention step followed by
``fusion_layers / iterations`` layers (``fusion_layers == iterations`` is the literal
one-layer block). This is the reading under which the FLOPs behave as Table 4 reports:
going from 1 to 8 iterations at 32 fusion layers adds only +24 % (34.2 -> 42.5 GF), i.e.
iterations add the cheap cross-attention steps and not whole stacks (8 stacks of 32 layers
would cost far more), while 8 -> 32 fusion layers at 4 iterations adds +74 %
(22.4 -> 38.9 GF), so the layers are the bulk of the fusion cost and cannot be the same
thing as the iterations. Each iteration has its own weights (the paper mentions no sharing).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .blocks import Attention, Block, LatentResampler, Mlp, TanhGate, TokenLearner
from .config import knob
from .fusion_base import EncoderFusionConfig, EncoderFusionModel, IteratedLayers
from .registry import register_strategy


@dataclass
class JarConfig(IteratedLayers, EncoderFusionConfig):
    iterations: int = knob(4, "gated fusion iterations (Table 4a)", minimum=1)
    num_tokens: int = knob(64, "latent tokens N per modality (Table 4b)", minimum=1)
    fusion_layers: int = knob(32, "standard transformer layers in total, fusion_layers / "
                              "iterations per iteration (Table 4e)", minimum=1)
    resampling: str = knob("latent", "one-time resampling to N tokens (Table 4c)",
                           choices=("latent", "spatial"))
    combination: str = knob("weighted", "next iteration's text latents: F+t (weighted), "
                            "F+t_0 (residual), F (none) (Table 4d)",
                            choices=("none", "residual", "weighted"))
    gating: bool = knob(True, "tanh(alpha)/tanh(beta) gates on the fusion block (Table 3)")
    gate_init: float = knob(0.0, "initial alpha and beta (0 = gated branches start closed)")
    learner_hidden: int = knob(0, "TokenLearner scoring-MLP width for resampling=spatial "
                               "(0 = mlp_ratio x width)", minimum=0)


class GatedFusionBlock(nn.Module):
    """One JAR iteration: P_cr, F as in the paper, then ``layers`` transformer layers."""

    def __init__(self, cfg: JarConfig, layers: int):
        super().__init__()
        dim = cfg.width
        self.norm_t = nn.LayerNorm(dim)
        self.norm_f = nn.LayerNorm(dim)
        self.attn = Attention(dim, cfg.heads)
        self.mlp = Mlp(dim, cfg.mlp_ratio)
        self.gate_attn = TanhGate(cfg.gate_init) if cfg.gating else nn.Identity()
        self.gate_mlp = TanhGate(cfg.gate_init) if cfg.gating else nn.Identity()
        self.layers = nn.ModuleList(Block(dim, cfg.heads, cfg.mlp_ratio) for _ in range(layers))

    def forward(self, t: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        q = self.norm_t(t)
        p_cr = q + self.gate_attn(self.attn(q, self.norm_f(f)))
        x = p_cr + self.gate_mlp(self.mlp(p_cr))
        for layer in self.layers:
            x = layer(x)
        return x


# combination -> next text latents from (F_i, t_i, t_0)
COMBINE = {
    "weighted": lambda out, t, t0: out + t,
    "residual": lambda out, t, t0: out + t0,
    "none": lambda out, t, t0: out,
}


def make_resampler(cfg: JarConfig) -> nn.Module:
    """``(x [B, M, D], mask [B, M] | None) -> [B, N, D]``, latent or spatial (Table 4c)."""
    if cfg.resampling == "latent":
        return LatentResampler(cfg.width, cfg.heads, cfg.num_tokens, depth=1, mlp_ratio=0)
    hidden = cfg.learner_hidden or int(cfg.mlp_ratio * cfg.width)
    return TokenLearner(cfg.width, cfg.num_tokens, hidden)


class JarFusion(nn.Module):
    def __init__(self, cfg: JarConfig, image_dim: int, text_dim: int):
        super().__init__()
        self.combine = COMBINE[cfg.combination]
        self.image_proj = nn.Linear(image_dim, cfg.width)  # W1, eq. (1)
        self.text_proj = nn.Identity() if text_dim == cfg.width else nn.Linear(text_dim, cfg.width)
        self.image_resampler = make_resampler(cfg)
        self.text_resampler = make_resampler(cfg)
        per_iteration = cfg.fusion_layers // cfg.iterations
        self.blocks = nn.ModuleList(GatedFusionBlock(cfg, per_iteration)
                                    for _ in range(cfg.iterations))
        self.norm = nn.LayerNorm(cfg.width)

    def forward(self, image: torch.Tensor, text: torch.Tensor, text_mask: torch.Tensor):
        f = self.image_resampler(self.image_proj(image))
        t0 = t = self.text_resampler(self.text_proj(text), text_mask)
        for block in self.blocks:
            t = self.combine(block(t, f), t, t0)
        return self.norm(t).mean(1)


@register_strategy(
    "jar", config=JarConfig,
    paper="JAR (Piergiovanni & Angelova 2023, arXiv 2305.19924), Tables 1-4",
    description="one-time latent resampling of image and text to N tokens, then iterated "
                "tanh-gated cross-attention fusion blocks",
)
def build_jar(cfg: JarConfig) -> EncoderFusionModel:
    return EncoderFusionModel(cfg, JarFusion)
