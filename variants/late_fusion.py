"""Late fusion: a pooled image vector meets an LSTM/GRU question vector once, then an MLP.

The VQA v2 paper's baseline "deeper LSTM Q + norm I" (Goyal et al. 2017, after Antol et
al. 2015): the image is one L2-normalised feature vector, the question the final states of
a 2-layer LSTM over word embeddings; both are mapped to a common width with tanh, combined
by an elementwise product (or concatenated), and classified by an MLP. Image and question
never see each other's tokens: the bar every token-level fusion strategy has to clear.

The image encoder and the answer head are the encoder-fusion family's own (the same ViT,
pretrained and frozen or not, the same 2-layer classifier), so the comparison differs in
the fusion only. The recurrent cells are ``blocks.RecurrentLayer`` (written with
``nn.Linear``, so both FLOP counters see every multiply-add; ``nn.LSTM``'s fused kernel is
invisible to fvcore).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .blocks import CELLS, RecurrentLayer
from .config import knob
from .fusion_base import EncoderFusionModel, ImageFusionConfig
from .registry import register_strategy


@dataclass
class LateFusionConfig(ImageFusionConfig):
    rnn: str = knob("lstm", "question encoder cell", choices=tuple(CELLS))
    rnn_layers: int = knob(2, "stacked recurrent layers ('deeper LSTM Q': 2)", minimum=1)
    embed_dim: int = knob(300, "question word-embedding size", minimum=1)
    combine: str = knob("product", "how the image and question vectors meet",
                        choices=("product", "concat"))
    image_pool: str = knob("mean", "image vector: mean over all image tokens, or the first "
                           "([CLS]) token", choices=("mean", "cls"))

    @property
    def fusion_depth(self) -> int:
        """Fusion layers in total: one combination, whatever the knobs."""
        return 1



class QuestionEncoder(nn.Module):
    """Word embeddings (tanh, as in the VQA baseline) -> stacked recurrent layers; per-token
    features are every layer's state side by side, [B, L, layers * width], so the last
    position is the "deeper LSTM Q" vector (the final state of each layer)."""

    def __init__(self, cfg: LateFusionConfig):
        super().__init__()
        self.embed = nn.Embedding(cfg.text_vocab_size, cfg.embed_dim)
        dims = [cfg.embed_dim] + [cfg.width] * cfg.rnn_layers
        self.layers = nn.ModuleList(RecurrentLayer(dims[i], cfg.width, cfg.rnn)
                                    for i in range(cfg.rnn_layers))
        self.dim = cfg.width * cfg.rnn_layers

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        x, states = torch.tanh(self.embed(input_ids)), []
        for layer in self.layers:
            x = layer(x, attention_mask)
            states.append(x)
        return torch.cat(states, dim=-1)


class LateFusion(nn.Module):
    """Pooled, L2-normalised image vector and final question vector, each mapped to the
    width with tanh, then multiplied elementwise (width) or concatenated (2 x width)."""

    def __init__(self, cfg: LateFusionConfig, image_dim: int, text_dim: int):
        super().__init__()
        self.pool, self.combine = cfg.image_pool, cfg.combine
        self.image_proj = nn.Linear(image_dim, cfg.width)
        self.text_proj = nn.Linear(text_dim, cfg.width)
        self.out_dim = cfg.width * (2 if cfg.combine == "concat" else 1)

    def forward(self, image: torch.Tensor, text: torch.Tensor, text_mask: torch.Tensor):
        pooled = image.mean(dim=1) if self.pool == "mean" else image[:, 0]
        pooled = pooled / pooled.norm(dim=-1, keepdim=True).clamp_min(1e-6)  # "norm I"
        v = torch.tanh(self.image_proj(pooled))
        q = torch.tanh(self.text_proj(text[:, -1]))  # padding carried the final state here
        return v * q if self.combine == "product" else torch.cat([v, q], dim=-1)


@register_strategy(
    "late_fusion", config=LateFusionConfig,
    paper="VQA v2 (Goyal et al. 2017) baseline 'deeper LSTM Q + norm I' (Antol et al. 2015)",
    description="pooled image vector x LSTM/GRU question vector, then an MLP classifier",
)
def build_late_fusion(cfg: LateFusionConfig) -> EncoderFusionModel:
    return EncoderFusionModel(cfg, LateFusion, make_text=QuestionEncoder)
