"""Flamingo-style fusion (Alayrac et al. 2022): a Perceiver resampler turns the image tokens
into ``num_tokens`` visual tokens, and tanh-gated cross-attention layers (GATED
XATTN-DENSE, gates initialised at 0) let the text read them, interleaved with text
self-attention layers (one gated cross-attention before every ``cross_every``-th layer).

Why it is here although the JAR paper lacks it: it is the design most image-language
models in use build on (Flamingo, OpenFlamingo, IDEFICS), and it sits between the paper's
points of comparison: like JAR it resamples the image once to a fixed number of latents
(cost flat in image size beyond the resampler) and uses tanh gates, which JAR borrowed;
like ``cross_attn`` the text tokens stay the queries. So it isolates what JAR adds: latent
*text* tokens and iterated joint fusion. With zero-initialised gates the fusion starts as a
text-only model and opens the image path while training, which is what lets Flamingo bolt
onto pretrained language layers. Here the text layers are new (bidirectional, not causal)
on top of the shared text encoder, as for every encoder-fusion strategy.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .blocks import Block, CrossBlock, LatentResampler, masked_mean
from .config import knob
from .fusion_base import EncoderFusionConfig, EncoderFusionModel
from .registry import register_strategy


@dataclass
class FlamingoConfig(EncoderFusionConfig):
    num_tokens: int = knob(64, "visual tokens out of the Perceiver resampler (Flamingo: 64)",
                           minimum=1)
    resampler_depth: int = knob(6, "Perceiver resampler layers (Flamingo: 6)", minimum=1)
    depth: int = knob(6, "text self-attention layers in the fusion stack", minimum=1)
    cross_every: int = knob(1, "a gated cross-attention before every n-th text layer",
                            minimum=1)
    gate_init: float = knob(0.0, "initial tanh-gate values (Flamingo: 0, image path closed)")

    @property
    def fusion_depth(self) -> int:
        """Fusion layers in total (text self-attention layers, each with a gated cross-attention);
        the depth axis of the FLOPs-scaling plot."""
        return self.depth



class FlamingoFusion(nn.Module):
    def __init__(self, cfg: FlamingoConfig, image_dim: int, text_dim: int):
        super().__init__()
        dim = cfg.width
        self.image_proj = nn.Linear(image_dim, dim)
        self.text_proj = nn.Linear(text_dim, dim)
        self.resampler = LatentResampler(dim, cfg.heads, cfg.num_tokens, cfg.resampler_depth,
                                         mlp_ratio=cfg.mlp_ratio, concat_latents=True)
        self.cross_every = cfg.cross_every
        self.xattn = nn.ModuleList(
            CrossBlock(dim, cfg.heads, mlp_ratio=cfg.mlp_ratio, gated=True,
                       gate_init=cfg.gate_init)
            for _ in range(0, cfg.depth, cfg.cross_every))
        self.layers = nn.ModuleList(Block(dim, cfg.heads, cfg.mlp_ratio)
                                    for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(dim)

    def forward(self, image: torch.Tensor, text: torch.Tensor, text_mask: torch.Tensor):
        visual = self.resampler(self.image_proj(image))
        x = self.text_proj(text)
        for i, layer in enumerate(self.layers):
            if i % self.cross_every == 0:
                x = self.xattn[i // self.cross_every](x, visual)
            x = layer(x, text_mask)
        return masked_mean(self.norm(x), text_mask)


@register_strategy(
    "flamingo", config=FlamingoConfig,
    paper="Flamingo (Alayrac et al. 2022); not in the JAR paper",
    description="Perceiver resampler over image tokens + tanh-gated cross-attention "
                "interleaved with text self-attention",
)
def build_flamingo(cfg: FlamingoConfig) -> EncoderFusionModel:
    return EncoderFusionModel(cfg, FlamingoFusion)
