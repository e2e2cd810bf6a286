"""Perceiver fusion (Jaegle et al. 2021), the JAR paper's Table 2 baseline.

N learned latents (DETR-style queries) cross-attend to the union of image and text tokens,
then ``self_per_cross`` latent self-attention layers follow; the pair repeats
``iterations`` times, each repeat with its own weights. Unlike JAR, every iteration reads
the full (1 + H·W + L)-token input again, so its cost grows linearly with the image token
count per iteration, while the latent layers cost the same as JAR's.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .blocks import Block, CrossBlock, Latents
from .config import knob
from .fusion_base import EncoderFusionConfig, EncoderFusionModel
from .registry import register_strategy


@dataclass
class PerceiverConfig(EncoderFusionConfig):
    num_tokens: int = knob(64, "learned latent tokens N", minimum=1)
    iterations: int = knob(4, "cross-attention reads of the inputs", minimum=1)
    self_per_cross: int = knob(8, "latent self-attention layers after each cross-attention",
                               minimum=0)

    @property
    def fusion_depth(self) -> int:
        """Fusion layers in total (cross-attention reads plus latent self-attention layers);
        the depth axis of the FLOPs-scaling plot."""
        return self.iterations * (1 + self.self_per_cross)



class PerceiverFusion(nn.Module):
    def __init__(self, cfg: PerceiverConfig, image_dim: int, text_dim: int):
        super().__init__()
        dim = cfg.width
        self.image_proj = nn.Linear(image_dim, dim)
        self.text_proj = nn.Linear(text_dim, dim)
        self.modality = nn.Parameter(torch.zeros(2, dim))  # type embeddings
        self.latents = Latents(cfg.num_tokens, dim)
        self.cross = nn.ModuleList(CrossBlock(dim, cfg.heads, mlp_ratio=cfg.mlp_ratio)
                                   for _ in range(cfg.iterations))
        self.selfs = nn.ModuleList(
            nn.ModuleList(Block(dim, cfg.heads, cfg.mlp_ratio) for _ in range(cfg.self_per_cross))
            for _ in range(cfg.iterations))
        self.norm = nn.LayerNorm(dim)

    def forward(self, image: torch.Tensor, text: torch.Tensor, text_mask: torch.Tensor):
        inputs = torch.cat([self.image_proj(image) + self.modality[0],
                            self.text_proj(text) + self.modality[1]], dim=1)
        mask = torch.cat([text_mask.new_ones(image.shape[:2]), text_mask], dim=1)
        x = self.latents(image.shape[0])
        for cross, layers in zip(self.cross, self.selfs, strict=True):
            x = cross(x, inputs, mask)
            for layer in layers:
                x = layer(x)
        return self.norm(x).mean(1)


@register_strategy(
    "perceiver", config=PerceiverConfig,
    paper="Perceiver (Jaegle et al. 2021); JAR (Piergiovanni & Angelova 2023) Table 2",
    description="learned latents cross-attend to image+text tokens, then latent "
                "self-attention, repeated",
)
def build_perceiver(cfg: PerceiverConfig) -> EncoderFusionModel:
    return EncoderFusionModel(cfg, PerceiverFusion)
