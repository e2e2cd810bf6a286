"""Image and text encoders: timm's VisionTransformer and transformers' BERT, tiny to large.

Sizes follow the public configs (ViT-S/B/L-16; BERT tiny/mini/small/base/large widths) plus
a ``micro`` size that trains on 2 CPU cores in minutes. Real weights load from local paths
only (no hub): a ViT state dict in safetensors, a BERT directory from ``save_pretrained``.
Everything builds on the meta device for FLOP counting without memory.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .config import BaseConfig, knob
from .errors import UserError
from .sizes import BERT_SIZES, VIT_SIZES

STEMS = ("patch", "conv", "conv-deep")


@dataclass
class VisionConfig(BaseConfig):
    """The ViT knobs every family that reads an image shares (encoder fusion, frozen LM)."""

    vision: str = knob("base", "timm ViT size", choices=tuple(VIT_SIZES))
    patch_size: int = knob(16, "ViT patch size in pixels", minimum=1)
    vision_stem: str = knob("patch", "ViT input stem: patch (linear patch embedding), conv "
                            "(a small timm ResNet at the same stride) or conv-deep (the "
                            "same with timm's deep stem: three 3x3 convolutions for the 7x7)",
                            choices=STEMS)
    vision_path: str = knob("", "local safetensors ViT state dict: a file, or a "
                            "directory holding model.safetensors (empty = random init)")
    vision_dropout: float = knob(0.0, "dropout on the ViT blocks' attention and MLP outputs "
                                 "(timm's proj_drop_rate); acts only while the encoder "
                                 "trains", minimum=0.0, maximum=0.9)

    def validate(self) -> None:
        super().validate()
        if self.image_size % self.patch_size:
            raise UserError(
                f"image_size={self.image_size} is not divisible by patch_size={self.patch_size}"
            )


def conv_stem(patch_size: int, width: int, deep: bool = False) -> nn.Module:
    """timm's ResNet (BasicBlock, one block per stage, channels 16/32/64/``width``) as a
    ViT's input stem: its ``output_stride`` = ``patch_size`` (later stages dilate instead of
    striding), so it returns the same token grid as a patch embedding, which timm's
    ``HybridEmbed`` projects to tokens. Convolutions see colour, edges and shape at every
    pixel; a linear patch embedding of few-pixel objects must learn that from far more data
    ("early convolutions help transformers see better", Xiao et al. 2021). Its norms are
    timm's ``GroupNorm1`` (per example, over channels and pixels), not BatchNorm: an
    example's features never depend on the rest of its batch, so data-parallel shards,
    the feature cache and evaluation all see the features training saw. Each block's last
    norm starts at 0 (timm's ``zero_init_last``: blocks start as identities); measured on
    the built-in data (seeds 0 and 1), that keeps colour linearly readable (probe 87-94 %
    against 42-56 % with norms at 1). Images enter channels-last (oneDNN's fast layout on
    CPU; same weights and outputs): measured at 64 px, batch 64, 1 thread, forward 49 -> 23
    ms, forward + backward 109 -> 81 ms. ``deep``: timm's deep stem (ResNet-C: three 3x3
    convolutions, 16-16-32 channels, in place of the 7x7), as many multiply-adds; from raw
    pixels it lifts cross_attn and sinks flamingo (``variants/presets.py``)."""
    from timm.layers import GroupNorm1
    from timm.models.resnet import BasicBlock, ResNet

    if patch_size not in (8, 16, 32):
        raise UserError(f"a conv stem needs patch_size 8, 16 or 32, not {patch_size}")
    stem = ResNet(BasicBlock, layers=(1, 1, 1, 1), channels=(16, 32, 64, width),
                  stem_width=16, stem_type="deep" if deep else "", output_stride=patch_size,
                  num_classes=0, global_pool="", norm_layer=GroupNorm1)
    stem.register_forward_pre_hook(_channels_last)
    return stem


def _channels_last(module: nn.Module, args: tuple) -> tuple:
    """Forward pre-hook: the input images in channels-last memory layout."""
    return (args[0].contiguous(memory_format=torch.channels_last), *args[1:])


def build_vit(size: str, image_size: int, patch_size: int, path: str = "",
              stem: str = "patch", dropout: float = 0.0) -> nn.Module:
    """A timm VisionTransformer without classifier; ``path`` loads a safetensors state dict, a
    file or a checkpoint directory's ``model.safetensors`` (position embeddings are resampled
    to ``image_size`` by timm's checkpoint filter).
    ``stem``: ``patch`` (a linear patch embedding), ``conv`` or ``conv-deep``
    (``conv_stem`` + timm's ``HybridEmbed``: same token grid, [CLS] and blocks).
    ``dropout``: timm's ``proj_drop_rate`` (after each block's attention projection and
    MLP layers; a no-op in eval mode and for a frozen encoder)."""

    from timm.layers import HybridEmbed
    from timm.models.vision_transformer import VisionTransformer, checkpoint_filter_fn

    if image_size % patch_size:
        raise UserError(f"image_size={image_size} is not divisible by patch_size={patch_size}")
    width, depth, heads = VIT_SIZES[size]
    embed = {}
    if stem in ("conv", "conv-deep"):
        backbone = conv_stem(patch_size, width, deep=stem == "conv-deep")
        embed = dict(patch_size=1, embed_layer=partial(HybridEmbed, backbone=backbone))
    model = VisionTransformer(
        img_size=image_size, patch_size=embed.pop("patch_size", patch_size), embed_dim=width,
        depth=depth, num_heads=heads, num_classes=0, proj_drop_rate=dropout, **embed,
    )
    path = vit_checkpoint(path) if path else path
    if path and not model.pos_embed.is_meta:  # on meta, loading weights is a no-op
        state = load_safetensors(path)
        state = checkpoint_filter_fn(state, model)
        check_state(model, state, f"vision checkpoint {path}", f"ViT-{size}/{patch_size}",
                    ignore=("head.", "patch_head."))
        model.load_state_dict(state, strict=True)
    return model


VIT_WEIGHTS = "model.safetensors"  # the file of a timm / Hugging Face checkpoint directory
_PICKLED = ("*.bin", "*.pth", "*.pt")  # pytorch_model.bin and other torch.save files


def vit_checkpoint(path: str) -> str:
    """The safetensors file ``path`` names: the file itself, or ``model.safetensors`` in a
    checkpoint directory (timm's and Hugging Face's layout). Pickled weights are never
    loaded (unpickling runs code): a directory with only those is one clear error."""
    where = Path(path)
    if where.is_dir():
        if (where / VIT_WEIGHTS).is_file():
            return str(where / VIT_WEIGHTS)
        pickled = sorted({p.name for pattern in _PICKLED for p in where.glob(pattern)})
        raise UserError(f"ViT checkpoint directory {path} has no {VIT_WEIGHTS}"
                        + (f" (only pickled {', '.join(pickled[:2])}, which is never loaded: "
                           "convert it once with safetensors.torch.save_file)" if pickled
                           else ""))
    if not where.is_file():
        raise UserError(f"checkpoint not found: {path}")
    return path


def check_state(model: nn.Module, state: dict[str, torch.Tensor], what: str, arch: str,
                ignore: tuple[str, ...] = ()) -> None:
    """``UserError`` naming the missing, unexpected and mis-shaped tensors when ``state``
    does not fit ``model`` exactly (no silent random initialisation of what is absent).
    Keys starting with ``ignore`` (heads a backbone does not use) may be unexpected."""
    want = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    missing = [k for k in want if k not in state]
    unexpected = [k for k in state if k not in want and not k.startswith(ignore)]
    shaped = [f"{k} {list(state[k].shape)} vs {list(want[k])}" for k in want
              if k in state and tuple(state[k].shape) != want[k]]
    parts = [f"{label} {len(keys)} ({', '.join(keys[:2])}{', ...' if len(keys) > 2 else ''})"
             for label, keys in (("missing", missing), ("unexpected", unexpected),
                                 ("mis-shaped", shaped)) if keys]
    if parts:
        raise UserError(f"{what} does not fit {arch}: {'; '.join(parts)}")


def on_meta() -> bool:
    """True inside ``with torch.device("meta")`` (where ``from_pretrained`` refuses to run)."""
    return torch.empty(()).device.type == "meta"


def load_safetensors(path: str) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if not Path(path).is_file():
        raise UserError(f"checkpoint not found: {path}")
    try:
        return load_file(path)
    except (SafetensorError, OSError, ValueError) as e:
        raise UserError(f"cannot read safetensors checkpoint {path}: {e}") from None


def build_bert(size: str, vocab_size: int, max_len: int, path: str = "") -> nn.Module:
    """A transformers BertModel (no pooler); ``path`` loads a ``save_pretrained`` directory."""
    from transformers import BertConfig, BertModel

    if path:
        if not (Path(path) / "config.json").is_file():
            raise UserError(f"text encoder directory {path} has no config.json")
        try:
            check_bert_config(Path(path) / "config.json")
            config = BertConfig.from_pretrained(path)
            if on_meta():  # the profiler's meta pass: the checkpoint's shapes, no weights
                return BertModel(config, add_pooling_layer=False)
            model, info = _quiet_from_pretrained(BertModel, path, config=config,
                                                 add_pooling_layer=False,
                                                 output_loading_info=True)
        except (OSError, ValueError, RuntimeError) as e:
            first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
            raise UserError(f"cannot load text encoder {path}: {first}") from None
        _check_loading_info(info, path)
        return model
    hidden, layers, heads = BERT_SIZES[size]
    config = BertConfig(
        vocab_size=vocab_size, hidden_size=hidden, num_hidden_layers=layers,
        num_attention_heads=heads, intermediate_size=4 * hidden,
        max_position_embeddings=max(512, max_len), attn_implementation="sdpa",
    )
    return BertModel(config, add_pooling_layer=False)


# config.json fields -> upper bound: a checkpoint's sizes are checked before allocating
BERT_LIMITS = {"hidden_size": 8192, "num_hidden_layers": 256, "num_attention_heads": 256,
               "intermediate_size": 65536, "vocab_size": 4_000_000,
               "max_position_embeddings": 65536, "type_vocab_size": 1024}
OPT_LIMITS = {"hidden_size": 16384, "num_hidden_layers": 256, "num_attention_heads": 256,
              "ffn_dim": 131072, "vocab_size": 4_000_000, "max_position_embeddings": 65536,
              "word_embed_proj_dim": 16384}


def check_bert_config(path: Path) -> None:
    """A text encoder's config.json (``check_config_json`` with ``BERT_LIMITS``)."""
    check_config_json(path, BERT_LIMITS, "text encoder")


def check_config_json(path: Path, limits: dict[str, int], what: str) -> None:
    """A backbone's config.json: a JSON object whose sizes are positive integers within
    ``limits`` (``hidden_size: 100000`` would try tens of GB before any other check)."""

    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, RecursionError) as e:
        raise UserError(f"cannot load {what} {path.parent}: {path.name} is not valid "
                        f"JSON ({str(e)[:80]})") from None
    if not isinstance(raw, dict):
        raise UserError(f"cannot load {what} {path.parent}: {path.name} must hold a "
                        f"JSON object, not {type(raw).__name__}")
    for key, high in limits.items():
        if key not in raw:
            continue
        value = raw[key]
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= high:
            raise UserError(f"{path}: {key}={str(value)[:40]}: expected an integer in "
                            f"1..{high}")
    heads = raw.get("num_attention_heads", 1)
    if raw.get("hidden_size", heads) % heads:
        raise UserError(f"{path}: hidden_size is not divisible by num_attention_heads")


def check_backbone_paths(cfg: Any) -> None:
    """Validate the config.json of every local backbone a config names, before building."""
    lm_path = getattr(cfg, "lm_path", "")
    if lm_path and (Path(lm_path) / "config.json").is_file():
        check_config_json(Path(lm_path) / "config.json", OPT_LIMITS, "language model")
    text_path = getattr(cfg, "text_path", "")
    if text_path and (Path(text_path) / "config.json").is_file():
        check_bert_config(Path(text_path) / "config.json")


def _quiet_from_pretrained(cls, path: str, **kwargs):
    """``from_pretrained`` without transformers' loading report (a multi-line table on
    stderr); what it reports is checked and raised as one line by the caller."""
    from transformers.utils import logging as hf_logging

    before, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        return cls.from_pretrained(path, **kwargs)
    finally:
        hf_logging.set_verbosity(before)
        if bars:
            hf_logging.enable_progress_bar()


def _check_loading_info(info: dict, path: str) -> None:
    """transformers' loading report: weights absent from (or mis-shaped in) the checkpoint
    would be randomly initialised; refuse instead, naming them."""
    missing = sorted(info.get("missing_keys") or [])
    shaped = sorted(str(k) for k in info.get("mismatched_keys") or [])
    unexpected = sorted(k for k in info.get("unexpected_keys") or []
                        if not k.startswith(("pooler.", "cls.", "bert.pooler.")))
    parts = [f"{label} {len(keys)} ({', '.join(keys[:2])}{', ...' if len(keys) > 2 else ''})"
             for label, keys in (("missing", missing), ("unexpected", unexpected),
                                 ("mis-shaped", shaped)) if keys]
    if parts:
        raise UserError(f"text encoder checkpoint {path} does not fit its config.json: "
                        f"{'; '.join(parts)}")


class ImageEncoder(nn.Module):
    """ViT features: all tokens ([CLS] + patches) after the final norm, [B, 1+HW, C]."""

    def __init__(self, size: str, image_size: int, patch_size: int, path: str = "",
                 stem: str = "patch", dropout: float = 0.0):
        super().__init__()
        self.vit = build_vit(size, image_size, patch_size, path, stem, dropout)
        self.dim = self.vit.embed_dim

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.vit.forward_features(images)


class TextEncoder(nn.Module):
    """BERT token features [B, L, C]."""

    def __init__(self, size: str, vocab_size: int, max_len: int, path: str = ""):
        super().__init__()
        self.bert = build_bert(size, vocab_size, max_len, path)
        self.dim = self.bert.config.hidden_size

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        if input_ids.is_meta:
            # BERT's mask builder inspects values (.item()); on meta the profiler's mask is
            # all ones by construction, which is the same computation as no mask.
            attention_mask = None
        return self.bert(input_ids=input_ids, attention_mask=attention_mask)[0]


def freeze(module: nn.Module) -> nn.Module:
    """Stop gradients and put the module in eval mode for good (dropout off)."""
    for p in module.parameters():
        p.requires_grad_(False)
    module.frozen = True  # FusionModel.train() keeps frozen modules in eval mode
    return module.eval()
