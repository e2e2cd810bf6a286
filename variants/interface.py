"""The model contract every strategy keeps: a ``Batch`` in, an ``Output`` out.

Datasets, the feature cache and the profiler's dummy-input maker all produce ``Batch``, so
training and profiling see the same shapes. The profiler's per-component breakdown reads
``FusionModel.components()`` and nothing else.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from typing import Any

import torch
from torch import nn

from .blocks import RecurrentLayer

COMPONENTS = ("image_encoder", "text_encoder", "fusion", "head")
# Weight decay applies to the weight matrices of these layers only (minGPT's rule); biases,
# norms, embeddings, position tables, learned latents/queries and tanh-gate scalars are
# free parameters whose decay pulls them towards 0 (a closed gate, a blank latent).
DECAYED = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.RNNBase, nn.MultiheadAttention,
           RecurrentLayer)


def decay_groups(model: nn.Module, params: list[nn.Parameter], lr: float,
                 weight_decay: float, name: str = "main") -> list[dict]:
    """``params`` split into a ``{name}`` group with ``weight_decay`` (weights of
    ``DECAYED`` layers) and a ``{name}_no_decay`` group without; empty groups dropped."""
    decayed = {id(p) for m in model.modules() if isinstance(m, DECAYED)
               for pname, p in m.named_parameters(recurse=False)
               if "weight" in pname and p.ndim >= 2}  # weight, weight_ih_l0, x2h_weight
    groups = [
        {"name": name, "params": [p for p in params if id(p) in decayed], "lr": lr,
         "weight_decay": weight_decay},
        {"name": f"{name}_no_decay", "params": [p for p in params if id(p) not in decayed],
         "lr": lr, "weight_decay": 0.0},
    ]
    return [g for g in groups if g["params"]]


@dataclass
class Batch:
    """One batch of image-question(-answer) examples.

    images:          [B, 3, H, W] float pixels (normalised), or None when features are cached;
                     with ``image_slots``, the batch's distinct images [U, 3, H, W] only.
    input_ids:       [B, L] question token ids; attention_mask [B, L] (1 = real token).
    answer_scores:   [B, A] soft VQA targets over the answer vocabulary (classification heads).
    answer_ids:      [B, T] answer/caption token ids for generative heads (pad = -100 in loss).
    image_features:  cached frozen-encoder outputs, a dict of tensors, used instead of images.
    image_slots:     [B] index into ``images`` of each example's image, when examples share
                     images (questions about one picture): each is encoded once a batch.
    """

    images: torch.Tensor | None
    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    answer_scores: torch.Tensor | None = None
    answer_ids: torch.Tensor | None = None
    image_features: dict[str, torch.Tensor] | None = None
    image_slots: torch.Tensor | None = None

    @property
    def size(self) -> int:
        return self.input_ids.shape[0]

    def per_example(self, encoded: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Image-encoder outputs of ``images`` as one row per example (``image_slots``)."""
        if self.image_slots is None:
            return encoded
        return {k: v[self.image_slots] for k, v in encoded.items()}

    def without_padding(self) -> Batch:
        """The batch without the token columns that are padding in every row: questions
        (left- or right-padded) and answers (-100 after their end) as long as this batch's
        longest. Every model reads tokens through the mask, so its outputs are unchanged;
        the work on columns no example uses is not done (the built-in questions fill ~10 of
        16 question tokens, the answers 1-3 of 8)."""
        used = self.attention_mask.bool().any(0)
        trimmed = {}
        if not bool(used.all()):
            trimmed = {"input_ids": self.input_ids[:, used],
                       "attention_mask": self.attention_mask[:, used]}
        if self.answer_ids is not None:
            real = (self.answer_ids != -100).any(0)
            width = int(real.nonzero().max()) + 1 if bool(real.any()) else real.numel()
            if width < real.numel():
                trimmed["answer_ids"] = self.answer_ids[:, :width]
        return replace(self, **trimmed) if trimmed else self

    def to(self, device: torch.device | str) -> Batch:
        moved = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, torch.Tensor):
                value = value.to(device, non_blocking=True)
            elif isinstance(value, dict):
                value = {k: v.to(device, non_blocking=True) for k, v in value.items()}
            moved[f.name] = value
        return replace(self, **moved)


@dataclass
class Output:
    """What a strategy returns: a loss when targets are given, and logits (class scores for
    encoder-fusion heads, next-token scores for frozen-LM heads)."""

    logits: torch.Tensor
    loss: torch.Tensor | None = None


class FusionModel(nn.Module):
    """Base class of every registered strategy.

    Subclasses build the attributes named in ``COMPONENTS`` (any may be ``None``);
    ``forward(batch) -> Output``; their family is their config's (``cfg.family``).
    Frozen-LM strategies also implement ``generate``.
    """

    cfg: Any  # the resolved config it was built from (set by ``registry.create``)

    @property
    def family(self) -> str:
        """``encoder-fusion`` or ``frozen-lm``: the config's, declared once per family."""
        return self.cfg.family

    def components(self) -> dict[str, nn.Module]:
        """Sub-modules by role, for the profiler's breakdown (image/text encoder, fusion, head)."""
        return {name: getattr(self, name) for name in COMPONENTS if getattr(self, name, None)}

    def embedded_components(self) -> dict[str, list[nn.Module]]:
        """Modules that belong to a role but are registered (and run) inside another role's
        module, e.g. eP-ALM's adapters (fusion) inside the LM's blocks (head). The profiler
        moves their parameters and FLOPs to the role named here. Default: none."""
        return {}

    def profile_extras(self, count: Callable[[Callable[[], Any]], int]) -> dict[str, float]:
        """Extra profile columns beyond one forward pass; ``count(fn)`` returns the
        multiply-adds of calling ``fn``. Default: none (frozen-LM models add prefill and per-token
        decode costs)."""
        return {}

    def component_parameters(self) -> dict[str, dict[str, int]]:
        """Total and trainable parameter counts per role, embedded modules moved to the role
        that owns them."""
        owned = {id(p): role for role, mods in self.embedded_components().items()
                 for m in mods for p in m.parameters()}
        out = {}
        for role, module in self.components().items():
            params = [p for p in module.parameters() if owned.get(id(p), role) == role]
            params += [p for m in self.embedded_components().get(role, []) for p in m.parameters()
                       if not any(p is q for q in params)]
            out[role] = {"total": sum(p.numel() for p in params),
                         "trainable": sum(p.numel() for p in params if p.requires_grad)}
        return out

    def train(self, mode: bool = True) -> FusionModel:
        """Like nn.Module.train, but frozen sub-modules (``frozen = True``) stay in eval."""
        super().train(mode)
        for module in self.modules():
            if getattr(module, "frozen", False):
                module.eval()
        return self

    def encode_image(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Image-encoder outputs that ``forward`` reads from ``batch.image_features`` when
        present; the feature cache stores them once per image when the encoder is frozen."""
        raise NotImplementedError

    def image_encoder_frozen(self) -> bool:
        encoder = getattr(self, "image_encoder", None)
        return encoder is not None and not any(p.requires_grad for p in encoder.parameters())

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]

    def param_groups(self, lr: float, weight_decay: float = 0.0) -> list[dict]:
        """Optimizer groups (``decay_groups``); strategies with per-part learning rates
        (eP-ALM's prompt and adapters) override this."""
        return decay_groups(self, self.trainable_parameters(), lr, weight_decay)

    def dummy_batch(self, batch_size: int = 1, device: torch.device | str = "cpu",
                    targets: bool = False) -> Batch:
        """A batch of the shapes this model is configured for (random ids and pixels), with
        VQA soft targets when ``targets`` (for a training step)."""
        cfg = self.cfg
        g = torch.Generator().manual_seed(0)
        images = torch.randn(batch_size, 3, cfg.image_size, cfg.image_size, generator=g)
        ids = torch.randint(4, cfg.text_vocab_size, (batch_size, cfg.text_len), generator=g)
        batch = Batch(images=images, input_ids=ids, attention_mask=torch.ones_like(ids))
        if targets:
            answers = torch.randint(0, cfg.num_answers, (batch_size,), generator=g)
            batch.answer_scores = nn.functional.one_hot(answers, cfg.num_answers).float()
        return batch.to(device)
