"""Cross-attention fusion, ALBEF/BLIP style: the text tokens are the queries.

Each of ``depth`` layers runs text self-attention (padding masked), cross-attention from
the text tokens to all image tokens, then an MLP, as in ALBEF's multimodal encoder (a BERT
layer with cross-attention inserted). The image tokens are keys and values only, so the
fused representation has as many tokens as the question: cheap, but the JAR paper's point
is that it squeezes the whole image into ~10 text tokens. Pooled output: masked mean.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .blocks import Attention, CrossBlock, masked_mean
from .config import knob
from .fusion_base import EncoderFusionConfig, EncoderFusionModel
from .registry import register_strategy


@dataclass
class CrossAttnConfig(EncoderFusionConfig):
    depth: int = knob(6, "fusion layers (self-attn, cross-attn to image, MLP); ALBEF: 6",
                      minimum=1)

    @property
    def fusion_depth(self) -> int:
        """Fusion layers in total (fusion layers);
        the depth axis of the FLOPs-scaling plot."""
        return self.depth



class TextCrossLayer(nn.Module):
    """Pre-norm text self-attention, then cross-attention to the image + MLP."""

    def __init__(self, dim: int, heads: int, image_dim: int, mlp_ratio: float):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.self_attn = Attention(dim, heads)
        self.cross = CrossBlock(dim, heads, context_dim=image_dim, mlp_ratio=mlp_ratio)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        x = x + self.self_attn(self.norm(x), mask=mask)
        return self.cross(x, image)


class CrossAttnFusion(nn.Module):
    def __init__(self, cfg: CrossAttnConfig, image_dim: int, text_dim: int):
        super().__init__()
        self.text_proj = nn.Linear(text_dim, cfg.width)
        self.layers = nn.ModuleList(TextCrossLayer(cfg.width, cfg.heads, image_dim, cfg.mlp_ratio)
                                    for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(cfg.width)

    def forward(self, image: torch.Tensor, text: torch.Tensor, text_mask: torch.Tensor):
        x = self.text_proj(text)
        for layer in self.layers:
            x = layer(x, text_mask, image)
        return masked_mean(self.norm(x), text_mask)


@register_strategy(
    "cross_attn", config=CrossAttnConfig,
    paper="ALBEF (Li et al. 2021) / BLIP (Li et al. 2022); JAR paper's cross-attention baseline",
    description="text tokens as queries cross-attend to all image tokens, layer by layer",
)
def build_cross_attn(cfg: CrossAttnConfig) -> EncoderFusionModel:
    return EncoderFusionModel(cfg, CrossAttnFusion)
