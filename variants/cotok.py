"""Iterative co-tokenization (Piergiovanni et al. 2022), the JAR paper's Table 2 baseline.

At every iteration a TokenLearner, conditioned on the current text representation (its
masked mean), computes ``num_tokens`` spatial attention maps over the image features and
pools that many image tokens; they are concatenated with the text tokens and fused in
``fusion_layers / iterations`` transformer layers. The fused text tokens condition the
next iteration's maps, so the tokens picked from the image follow the question as it is
being read. The pooled output is the masked mean of the last joint sequence.

``fusion_layers`` has JAR's meaning (total layers, shared out over iterations), so a
sweep over it moves both strategies alike. The TokenLearner's scoring MLP is as wide as the
fusion's MLPs by default (``learner_hidden``), as in JAR's spatial resampling.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .blocks import Block, TokenLearner, masked_mean
from .config import knob
from .fusion_base import EncoderFusionConfig, EncoderFusionModel, IteratedLayers
from .registry import register_strategy


@dataclass
class CotokConfig(IteratedLayers, EncoderFusionConfig):
    iterations: int = knob(4, "co-tokenization iterations", minimum=1)
    num_tokens: int = knob(64, "image tokens pooled per iteration", minimum=1)
    fusion_layers: int = knob(32, "transformer layers in total, fusion_layers / iterations "
                              "per iteration", minimum=1)
    learner_hidden: int = knob(0, "TokenLearner scoring-MLP width (0 = mlp_ratio x width)",
                               minimum=0)


class CotokFusion(nn.Module):
    def __init__(self, cfg: CotokConfig, image_dim: int, text_dim: int):
        super().__init__()
        dim, per_iteration = cfg.width, cfg.fusion_layers // cfg.iterations
        hidden = cfg.learner_hidden or int(cfg.mlp_ratio * dim)
        self.image_proj = nn.Linear(image_dim, dim)
        self.text_proj = nn.Linear(text_dim, dim)
        self.modality = nn.Parameter(torch.zeros(2, dim))  # type embeddings
        self.learners = nn.ModuleList(TokenLearner(dim, cfg.num_tokens, hidden, cond_dim=dim)
                                      for _ in range(cfg.iterations))
        self.stacks = nn.ModuleList(
            nn.ModuleList(Block(dim, cfg.heads, cfg.mlp_ratio) for _ in range(per_iteration))
            for _ in range(cfg.iterations))
        self.norm = nn.LayerNorm(dim)

    def forward(self, image: torch.Tensor, text: torch.Tensor, text_mask: torch.Tensor):
        image = self.image_proj(image)
        x = self.text_proj(text) + self.modality[1]
        for learner, layers in zip(self.learners, self.stacks, strict=True):
            tokens = learner(image, cond=masked_mean(x, text_mask)) + self.modality[0]
            k = tokens.shape[1]
            z = torch.cat([tokens, x], dim=1)
            mask = torch.cat([text_mask.new_ones(z.shape[0], k), text_mask], dim=1)
            for layer in layers:
                z = layer(z, mask)
            x = z[:, k:]
        return masked_mean(self.norm(z), mask)


@register_strategy(
    "cotok", config=CotokConfig,
    paper="Iterative Co-tokenization (Piergiovanni et al. 2022); JAR (Piergiovanni & "
          "Angelova 2023) Table 2",
    description="per iteration a text-conditioned TokenLearner pools a few image tokens, "
                "fused with the text tokens in transformer layers",
)
def build_cotok(cfg: CotokConfig) -> EncoderFusionModel:
    return EncoderFusionModel(cfg, CotokFusion)
