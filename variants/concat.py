"""Concatenation: every image token and every text token through one joint transformer.

The simplest fusion and the JAR paper's upper FLOPs curve: the joint sequence has
1 + HW + L tokens, so attention cost grows with the square of the image token count.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .blocks import Block, masked_mean
from .config import knob
from .fusion_base import EncoderFusionConfig, EncoderFusionModel
from .registry import register_strategy


@dataclass
class ConcatConfig(EncoderFusionConfig):
    depth: int = knob(12, "joint transformer layers over [image; text] tokens", minimum=1)

    @property
    def fusion_depth(self) -> int:
        """Fusion layers in total (joint layers);
        the depth axis of the FLOPs-scaling plot."""
        return self.depth



class ConcatFusion(nn.Module):
    def __init__(self, cfg: ConcatConfig, image_dim: int, text_dim: int):
        super().__init__()
        self.image_proj = nn.Linear(image_dim, cfg.width)
        self.text_proj = nn.Linear(text_dim, cfg.width)
        self.modality = nn.Parameter(torch.zeros(2, cfg.width))  # type embeddings
        self.blocks = nn.ModuleList(Block(cfg.width, cfg.heads, cfg.mlp_ratio)
                                    for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(cfg.width)

    def forward(self, image: torch.Tensor, text: torch.Tensor, text_mask: torch.Tensor):
        x = torch.cat([self.image_proj(image) + self.modality[0],
                       self.text_proj(text) + self.modality[1]], dim=1)
        mask = torch.cat([text_mask.new_ones(image.shape[:2]), text_mask], dim=1)
        for block in self.blocks:
            x = block(x, mask)
        return masked_mean(self.norm(x), mask)


@register_strategy(
    "concat", config=ConcatConfig,
    paper="JAR (Piergiovanni & Angelova 2023), Table 3 baseline",
    description="all image + text tokens through one joint transformer",
)
def build_concat(cfg: ConcatConfig) -> EncoderFusionModel:
    return EncoderFusionModel(cfg, ConcatFusion)
