"""The encoder-fusion family's shared frame: encoders -> fusion -> VQA classifier.

A strategy file only supplies its fusion module: ``fusion(image_tokens [B, M, Cv],
text_tokens [B, L, Ct], text_mask [B, L]) -> pooled [B, width]``. The image encoder, the
text encoder (BERT, unless a strategy brings its own: ``late_fusion``'s LSTM), the answer
head and the loss live here, identical for every strategy, so a comparison differs only in
the fusion.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from .backbones import BERT_SIZES, ImageEncoder, TextEncoder, VisionConfig, freeze
from .blocks import VQA_LOSSES, BiGRUText, ClassifierHead, vqa_loss
from .config import knob
from .errors import UserError
from .interface import Batch, FusionModel, Output, decay_groups


@dataclass
class ImageFusionConfig(VisionConfig):
    """What every encoder-fusion strategy shares: the image encoder and the fusion width."""

    family: ClassVar[str] = "encoder-fusion"  # the registry reads it: declared once, here
    freeze_vision: bool = knob(False, "freeze the image encoder")
    vision_lr: float = knob(0.0, "learning rate of the image encoder when it trains "
                            "(freeze_vision=false; scheduled; 0 = the run's lr)", minimum=0.0)
    width: int = knob(768, "fusion width D (both modalities are projected to it)", minimum=1)
    answer_loss: str = knob("bce", "classifier loss: bce (soft scores, bottom-up VQA) or "
                            "softmax (cross-entropy on the normalised scores)",
                            choices=VQA_LOSSES)



@dataclass
class EncoderFusionConfig(ImageFusionConfig):
    """Attention-based fusion over BERT text tokens."""

    text: str = knob("base", "text encoder: a BERT size, or gru (a bidirectional GRU over word "
                     "embeddings, fusion-width tokens; the CPU presets' choice)",
                     choices=(*BERT_SIZES, "gru"))
    text_path: str = knob("", "local save_pretrained BERT directory (empty = random init)")
    freeze_text: bool = knob(False, "freeze the text encoder")
    heads: int = knob(12, "attention heads in the fusion layers", minimum=1)
    mlp_ratio: float = knob(4.0, "MLP hidden size as a multiple of the width", minimum=0.25)

    def validate(self) -> None:
        super().validate()
        if self.width % self.heads:
            raise UserError(f"width={self.width} is not divisible by heads={self.heads}")
        if self.text == "gru" and self.width % 2:
            raise UserError(f"width={self.width}: text=gru needs an even width (half per "
                            "direction)")


def token_text_encoder(cfg: EncoderFusionConfig) -> nn.Module:
    """The text encoder of the attention-based strategies: BERT, or a bidirectional GRU with
    ``text=gru`` (frozen if configured)."""
    if cfg.text == "gru":
        if cfg.text_path:
            raise UserError("text_path loads a BERT checkpoint; text=gru has none to load")
        encoder = BiGRUText(cfg.text_vocab_size, cfg.width)
    else:
        encoder = TextEncoder(cfg.text, cfg.text_vocab_size, cfg.text_len, cfg.text_path)
    return freeze(encoder) if cfg.freeze_text else encoder


class IteratedLayers:
    """Config mixin of the iterative fusions (jar, cotok): their ``fusion_layers``
    transformer layers are shared out evenly over ``iterations``, and ``fusion_layers`` is
    the depth axis of the FLOPs-scaling plot. Both knobs are declared by each strategy
    (their help names what one iteration does there)."""

    fusion_layers: int
    iterations: int

    @property
    def fusion_depth(self) -> int:
        return self.fusion_layers

    def validate(self) -> None:
        super().validate()
        layers, iterations = self.fusion_layers, self.iterations
        if layers % iterations:
            raise UserError(f"fusion_layers={layers} must be a multiple of iterations="
                            f"{iterations} (each iteration runs fusion_layers / iterations "
                            "layers)")


class EncoderFusionModel(FusionModel):
    def __init__(self, cfg: ImageFusionConfig,
                 make_fusion: Callable[[ImageFusionConfig, int, int], nn.Module],
                 make_text: Callable[[ImageFusionConfig], nn.Module] = token_text_encoder):
        """``make_text(cfg)``: the text encoder (``.dim`` wide token features [B, L, dim]);
        the fusion's ``out_dim`` (default: the width) sizes the classifier."""
        super().__init__()
        self.cfg = cfg
        self.image_encoder = ImageEncoder(cfg.vision, cfg.image_size, cfg.patch_size,
                                          cfg.vision_path, cfg.vision_stem, cfg.vision_dropout)
        self.text_encoder = make_text(cfg)
        if cfg.freeze_vision:
            freeze(self.image_encoder)
        self.fusion = make_fusion(cfg, self.image_encoder.dim, self.text_encoder.dim)
        self.head = ClassifierHead(getattr(self.fusion, "out_dim", cfg.width), cfg.num_answers)

    def param_groups(self, lr: float, weight_decay: float = 0.0) -> list[dict]:
        """``decay_groups`` at ``lr``; a trained image encoder in its own "vision" groups at
        ``vision_lr`` when set (an encoder learning from raw pixels under the fusion's rate
        stops learning: see the tiny preset)."""
        encoder = {id(p) for p in self.image_encoder.parameters() if p.requires_grad}
        if not (self.cfg.vision_lr and encoder):
            return super().param_groups(lr, weight_decay)
        params = self.trainable_parameters()
        return (decay_groups(self, [p for p in params if id(p) not in encoder], lr,
                             weight_decay)
                + decay_groups(self, [p for p in params if id(p) in encoder],
                               self.cfg.vision_lr, weight_decay, "vision"))

    def encode_image(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Image-encoder outputs; what the frozen-feature cache stores per image."""
        return {"tokens": self.image_encoder(images)}

    def forward(self, batch: Batch) -> Output:
        features = batch.image_features or batch.per_example(self.encode_image(batch.images))
        image_tokens = features["tokens"]
        text_tokens = self.text_encoder(batch.input_ids, batch.attention_mask)
        pooled = self.fusion(image_tokens, text_tokens, batch.attention_mask)
        logits = self.head(pooled)
        return Output(logits=logits,
                      loss=vqa_loss(logits, batch.answer_scores, self.cfg.answer_loss))
