"""The frozen-LM family's model: a frozen OPT given perception by a frozen ViT (eP-ALM).

``FrozenLM`` is every strategy of the family; each registers it with other config
defaults (``register_frozen_lm``: ``epalm.py`` holds the paper's variants,
``epalm_baselines.py`` the input-level baselines). The parts it is built from (connector,
soft prompt, adapters, the injection hooks) are in ``frozen_lm_parts.py``.

The [CLS] tokens of the last ``vision_layers`` ViT layers are projected to the LM width and
prepended inside the last ``vision_layers * layers_per_cls`` LM layers; every
``layers_per_cls`` layers the injected token is replaced by the next deeper one, so the
sequence grows by one token (``frozen_lm_parts.Injector`` explains how). A soft prompt of
``prompt_len`` tokens and/or bottleneck adapters are the other trainable parts; the model
answers by generating text after the question's ``</a>`` separator.

Layout of the LM input, left to right: [visual tokens, only for ``inject=input``]
[soft prompt] [question, left-padded, ending with ``</a>``] [answer tokens when training].
Contract: ``Batch.input_ids`` already ends with the separator (the tokenizer side appends
it, ``sep_token_id``); ``Batch.answer_ids`` holds answer tokens + eos, padded with -100.
``Output.logits`` [B, T, V] are the next-token scores at the T positions that predict the
T answer tokens (T = 1 without answers: the first answer token), so the loss sees answer
tokens only and prompt, visual and question positions never enter it.

Defaults follow the paper's text (OPT-350M + ViT-B/16, last 6 [CLS] into the last 12
layers, 2 layers per [CLS], prompt MLP, adapter reduction 8); the public code's choices are
knobs: ``inject_skip_last=1`` (its last layer gets no [CLS]), ``reinject=every-layer``,
``adapter_reduction=4``. One choice is left as transformers does it: the prompt tokens take
positions 0..9 of OPT's learned position embedding (the public code gives them none).
"""

from __future__ import annotations

import copy
import dataclasses
import typing
from contextlib import nullcontext
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from .backbones import VIT_SIZES, VisionConfig, build_vit, freeze
from .config import knob
from .errors import UserError
from .frozen_lm_parts import (
    ACTIVATIONS,
    Connector,
    Injector,
    SoftPrompt,
    VisualFeatures,
    add_adapters,
    cache_keyword,
    injection_schedule,
    left_align,
    output_cache,
)
from .interface import Batch, FusionModel, Output, decay_groups
from .opt import OPT_SIZES, OPT_VOCAB, build_opt
from .registry import register_strategy

PAPER = "eP-ALM (Shukor, Dancette & Cord 2023, arXiv 2303.11403)"


@dataclass
class FrozenLMConfig(VisionConfig):
    family: ClassVar[str] = "frozen-lm"  # the registry reads it: declared once, here
    text_vocab_size: int = knob(OPT_VOCAB, "LM vocabulary (an lm_path checkpoint brings its own)",
                                minimum=8)
    lm: str = knob("opt-350m", "OPT size (public configs; micro for CPU)", choices=tuple(OPT_SIZES))
    lm_path: str = knob("", "local save_pretrained OPT directory (empty = random init of `lm`)")
    freeze_backbones: bool = knob(True, "keep ViT and LM frozen: no grads, eval mode")
    visual_tokens: str = knob("cls", "cls: [CLS] of the last vision_layers layers; all: every "
                              "token of the last layer (inject=input only)", choices=("cls", "all"))
    vision_layers: int = knob(6, "last ViT layers whose [CLS] is used (1 = final [CLS])",
                              minimum=1)
    inject: str = knob("last", "LM layers receiving [CLS]: last vision_layers*layers_per_cls, "
                       "all, or input (prepended to the embeddings)",
                       choices=("last", "all", "input"))
    layers_per_cls: int = knob(2, "consecutive LM layers sharing one [CLS] (inject=last)",
                               minimum=1)
    inject_skip_last: int = knob(0, "final LM layers receiving no [CLS] (eP-ALM code: 1)",
                                 minimum=0)
    reinject: str = knob("on-change", "write the [CLS] when its level changes (paper) or at "
                         "every injected layer", choices=("on-change", "every-layer"))
    shared_connector: bool = knob(False, "one linear map for all [CLS] levels (eP-ALM lin)")
    prompt_len: int = knob(10, "soft prompt tokens at the LM input (0 = none)", minimum=0)
    prompt_mlp: bool = knob(True, "re-parametrise the prompt with Linear-Tanh-Linear")
    prompt_hidden: int = knob(0, "prompt MLP width (0 = LM word-embedding width)", minimum=0)
    adapters: bool = knob(False, "bottleneck adapters after attention and FFN in all blocks")
    adapter_reduction: int = knob(8, "adapter bottleneck = width / reduction (code: 4)", minimum=1)
    adapter_act: str = knob("relu", "adapter activation", choices=tuple(ACTIVATIONS))
    prompt_lr: float = knob(1e-5, "fixed learning rate of the soft prompt", minimum=0.0)
    adapter_lr: float = knob(1e-5, "fixed learning rate of the adapters", minimum=0.0)
    backbone_lr: float = knob(0.0, "learning rate of the ViT and LM weights when they train "
                              "(freeze_backbones=false; scheduled; 0 = the run's lr)",
                              minimum=0.0)
    sep_token_id: int = knob(50265, "id of the question/answer separator </a> (the token "
                             "after OPT's 50265-token vocabulary)", minimum=0)
    eos_token_id: int = knob(2, "end-of-answer id: ends answers, stops generation (OPT: 2)",
                             minimum=0)
    pad_token_id: int = knob(1, "padding id of the tokenizer (OPT: 1)", minimum=0)
    answer_len: int = knob(8, "answer tokens incl. eos: what answers are padded or cut to "
                           "in training, and in dummy_batch(targets=True)", minimum=1)

    def validate(self) -> None:
        super().validate()
        depth = VIT_SIZES[self.vision][1]
        if self.visual_tokens == "cls" and self.vision_layers > depth:
            raise UserError(f"vision_layers={self.vision_layers}: ViT-{self.vision} has only "
                            f"{depth} layers")
        if self.visual_tokens == "all" and self.inject != "input":
            raise UserError("visual_tokens=all needs inject=input (a whole image cannot sit in "
                            "one injected slot)")


class FrozenLMFusion(nn.Module):
    """The trainable bridge outside the LM: visual connector and soft prompt."""

    def __init__(self, connector: Connector, prompt: SoftPrompt | None):
        super().__init__()
        self.connector = connector
        self.prompt = prompt

    def forward(self, visual: torch.Tensor | None, batch_size: int):
        tokens = None if visual is None else self.connector(visual)
        prompt = None if self.prompt is None else self.prompt(batch_size)
        return tokens, prompt


class FrozenLM(FusionModel):
    """Frozen ViT -> connector -> frozen OPT (injected or input tokens, prompt, adapters)."""

    def __init__(self, cfg: FrozenLMConfig):
        super().__init__()
        self.cfg = cfg
        self.levels = 1 if cfg.visual_tokens == "all" else cfg.vision_layers
        vit = build_vit(cfg.vision, cfg.image_size, cfg.patch_size, cfg.vision_path,
                        cfg.vision_stem, cfg.vision_dropout)
        self.image_encoder = VisualFeatures(vit, self.levels, cfg.visual_tokens == "all")
        self.text_encoder = None
        self.head = build_opt(cfg.lm, cfg.text_vocab_size, cfg.lm_path,
                              eos=cfg.eos_token_id, pad=cfg.pad_token_id)
        if cfg.freeze_backbones:
            freeze(self.image_encoder)
            freeze(self.head)
        lm = self.head.config
        for key in ("sep_token_id", "eos_token_id", "pad_token_id"):
            if getattr(cfg, key) >= lm.vocab_size:
                raise UserError(f"{key}={getattr(cfg, key)} is outside the LM vocabulary "
                                f"({lm.vocab_size} ids); set it from your tokenizer")
        self.schedule = injection_schedule(lm.num_hidden_layers, self.levels, cfg.inject,
                                           cfg.layers_per_cls, cfg.inject_skip_last)
        # mid-stack tokens live in the hidden width; input tokens in the word-embedding width
        width = lm.hidden_size if self.schedule else lm.word_embed_proj_dim
        connector = Connector(self.levels, self.image_encoder.dim, width,
                              cfg.shared_connector or cfg.visual_tokens == "all")
        prompt = SoftPrompt(cfg.prompt_len, lm.word_embed_proj_dim, cfg.prompt_mlp,
                            cfg.prompt_hidden) if cfg.prompt_len else None
        self.fusion = FrozenLMFusion(connector, prompt)
        self.adapter_modules = (add_adapters(self.head, cfg.adapter_reduction, cfg.adapter_act)
                                if cfg.adapters else [])
        self.injector = Injector(self.head.model.decoder, self.schedule, cfg.reinject)

    def embedded_components(self) -> dict[str, list[nn.Module]]:
        """Adapters are fusion parameters that live (and run) inside the LM's blocks."""
        return {"fusion": list(self.adapter_modules)} if self.adapter_modules else {}

    # -- inputs -------------------------------------------------------------------------
    def encode_image(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Frozen ViT features, what the feature cache stores: ``tokens`` [B, n, Cv] (see
        ``VisualFeatures``)."""
        with torch.no_grad() if self.cfg.freeze_backbones else nullcontext():
            return {"tokens": self.image_encoder(images)}

    def _visual(self, batch: Batch) -> torch.Tensor | None:
        """Visual features, or None for a text-only batch (no image: the bare LM path)."""
        if batch.image_features is not None:
            return batch.image_features["tokens"]
        if batch.images is None:
            return None
        return batch.per_example(self.encode_image(batch.images))["tokens"]

    def _inputs(self, batch: Batch, tokens, prompt):
        """LM input embeddings, attention mask, and how many final positions need logits."""
        embed = self.head.get_input_embeddings()
        ids, mask = left_align(batch.input_ids, batch.attention_mask.long())
        keep = 1
        if batch.answer_ids is not None:  # teacher forcing: answer[:-1] continues the question
            answer = batch.answer_ids[:, :-1]
            real = answer != -100
            ids = torch.cat([ids, answer.masked_fill(~real, self.cfg.pad_token_id)], 1)
            mask = torch.cat([mask, real.long()], 1)
            keep = batch.answer_ids.shape[1]
        parts = [embed(ids)]
        if prompt is not None:
            parts.insert(0, prompt)
        if tokens is not None and not self.schedule:
            parts.insert(0, tokens)
        embeds = torch.cat(parts, dim=1)
        mask = torch.cat([mask.new_ones(mask.shape[0], embeds.shape[1] - ids.shape[1]), mask], 1)
        if embeds.is_meta:  # the mask builder reads values; the profiler's mask is all ones
            mask = None
        return embeds, mask, keep

    def _prepare(self, batch: Batch):
        tokens, prompt = self.fusion(self._visual(batch), batch.size)
        embeds, mask, keep = self._inputs(batch, tokens, prompt)
        return embeds, mask, keep, (tokens if self.schedule else None)

    # -- model API ----------------------------------------------------------------------
    def forward(self, batch: Batch) -> Output:
        embeds, mask, keep, injected = self._prepare(batch)
        with self.injector(injected):
            logits = self.head(inputs_embeds=embeds, attention_mask=mask, use_cache=False,
                               logits_to_keep=keep).logits
        loss = None
        if batch.answer_ids is not None:
            loss = F.cross_entropy(logits.flatten(0, 1).float(), batch.answer_ids.flatten(),
                                   ignore_index=-100)
        return Output(logits=logits, loss=loss)

    @torch.no_grad()
    def generate(self, batch: Batch, max_new_tokens: int = 10, num_beams: int = 1
                 ) -> list[list[int]]:
        """Greedy (num_beams=1) or beam-search answers through the LM's own ``generate``
        (KV cache included); token ids per example, cut before the first eos."""
        batch = dataclasses.replace(batch, answer_ids=None)
        embeds, mask, _, injected = self._prepare(batch)
        eos = self.cfg.eos_token_id
        with self.injector(injected):
            out = self.head.generate(
                inputs_embeds=embeds, attention_mask=mask, max_new_tokens=max_new_tokens,
                num_beams=num_beams, do_sample=False, eos_token_id=eos,
                pad_token_id=self.cfg.pad_token_id)
        rows = out.tolist()  # only the new tokens: generate was given embeddings, not ids
        return [row[:row.index(eos)] if eos in row else row for row in rows]

    def profile_extras(self, count) -> dict[str, float]:
        """GFLOPs (multiply-adds) of one prompt (image, prompt and question through the
        whole model, logits of the last position only: generation's prefill, the same count
        as ``forward`` without answers) and of one generated token (a decode step against
        that prompt's KV cache, whose injected layers hold the [CLS] entry)."""
        batch = dataclasses.replace(self.dummy_batch(1, self.head.device), answer_ids=None)
        state = {}

        def prefill() -> torch.Tensor:
            embeds, mask, _, state["injected"] = self._prepare(batch)
            with self.injector(state["injected"]):
                out = self.head(inputs_embeds=embeds, attention_mask=mask, use_cache=True,
                                logits_to_keep=1)
            state["cache"] = output_cache(out)
            return out.logits

        def decode_step() -> torch.Tensor:
            cache = {cache_keyword(self.head): copy.deepcopy(state["cache"])}
            with self.injector(state["injected"]):
                return self.head(input_ids=batch.input_ids[:, -1:], use_cache=True,
                                 **cache).logits

        prompt_macs = count(prefill)
        return {"gflops_per_prompt": prompt_macs / 1e9,
                "gflops_per_token": count(decode_step) / 1e9}

    def param_groups(self, lr: float, weight_decay: float = 0.0) -> list[dict]:
        """Prompt and adapters at their own fixed learning rates (``fixed_lr``: schedulers
        leave them alone, as eP-ALM's recipe); trained backbones at ``backbone_lr`` when set
        (pretrained weights usually want a lower rate than new layers); everything else
        trainable at ``lr``. Each part is split by ``decay_groups`` (no decay on biases,
        norms, the prompt table)."""
        prompt = list(self.fusion.prompt.parameters()) if self.fusion.prompt else []
        adapters = [p for a in self.adapter_modules for p in a.parameters()]
        special = {id(p) for p in prompt + adapters}
        backbones = []
        if self.cfg.backbone_lr and not self.cfg.freeze_backbones:
            backbones = [p for m in (self.image_encoder, self.head) for p in m.parameters()
                         if p.requires_grad and id(p) not in special]
            special |= {id(p) for p in backbones}
        rest = [p for p in self.trainable_parameters() if id(p) not in special]
        backbone_groups = decay_groups(self, backbones, self.cfg.backbone_lr, weight_decay,
                                       "backbones")
        fixed = [
            {"name": "prompt", "params": prompt, "lr": self.cfg.prompt_lr, "fixed_lr": True},
            {"name": "adapters", "params": adapters, "lr": self.cfg.adapter_lr, "fixed_lr": True},
        ]
        groups = [g for part in fixed if part["params"]
                  for g in decay_groups(self, part["params"], part["lr"], weight_decay,
                                        part["name"])
                  for g in [{**g, "fixed_lr": True}]]
        return decay_groups(self, rest, lr, weight_decay) + backbone_groups + groups

    def dummy_batch(self, batch_size: int = 1, device: torch.device | str = "cpu",
                    targets: bool = False) -> Batch:
        """Random pixels and question ids ending with </a>; with ``targets``,
        ``cfg.answer_len`` answer tokens ending with eos (a training step)."""
        cfg, vocab = self.cfg, self.head.config.vocab_size
        g = torch.Generator().manual_seed(0)
        images = torch.randn(batch_size, 3, cfg.image_size, cfg.image_size, generator=g)
        ids = torch.randint(0, vocab, (batch_size, cfg.text_len), generator=g)
        ids[:, -1] = cfg.sep_token_id
        answers = None
        if targets:
            answers = torch.randint(0, vocab, (batch_size, cfg.answer_len), generator=g)
            answers[:, -1] = cfg.eos_token_id
        return Batch(images, ids, torch.ones_like(ids), answer_ids=answers).to(device)


def config_with(name: str, base: type, **defaults) -> type:
    """A subclass of config ``base`` with other defaults (help, choices, bounds kept)."""
    hints = typing.get_type_hints(base)
    meta = {f.name: f.metadata for f in dataclasses.fields(base)}
    return dataclasses.make_dataclass(
        name, [(k, hints[k], dataclasses.field(default=v, metadata=meta[k]))
               for k, v in defaults.items()], bases=(base,))


def register_frozen_lm(name: str, description: str, paper: str = PAPER, **defaults) -> type:
    """Register a frozen-LM strategy: ``FrozenLM`` with its own config defaults."""
    title = "".join(part.title() for part in name.split("_"))
    config = config_with(f"{title}Config", FrozenLMConfig, **defaults)
    register_strategy(name, config=config, paper=paper,
                      description=description)(FrozenLM)
    return config
