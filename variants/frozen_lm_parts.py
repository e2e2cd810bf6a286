"""Pieces the frozen-LM strategies share: connectors, soft prompt, adapters, injection.

Injection design (eP-ALM: a [CLS] token enters *inside* the decoder stack). transformers'
``OPTDecoder`` adds learned positions once at the input and builds one causal mask before
its layer loop. Rather than re-implementing that loop, ``Injector`` installs hooks for the
length of one call: a forward pre-hook on each decoder layer from the first injected one
on prepends (first layer) or overwrites (later levels) position 0 of the hidden states and
hands the layer a mask one key wider; a forward hook on the decoder drops position 0 again
before the final projection, so logits stay aligned with the input tokens. Why hooks:

- the LM's own ``forward`` and ``generate`` (greedy, beam, sampling; its KV cache, beam
  reordering) run unchanged;
- the cost is exact: the injected token exists only in the layers that hold it (a reserved
  input slot would cost one token in every layer and hide it by masking).

Contracts relied on (public API, stable across transformers 4.45-5.24 and tested):
each decoder layer receives the hidden states as its first argument (or ``hidden_states=``)
and its 4-D mask as ``attention_mask=`` (``None`` = sdpa's implicit causal mask); the KV
cache, whatever its keyword (``past_key_values`` before 5.24, ``cache`` since), is a
``transformers.Cache``, found by its public ``get_seq_length(layer_idx)`` method, never by
name. With a KV cache the injected layers keep one more entry than earlier layers
(position 0); decode steps carry no slot, and their mask gets the extra key column (a
schedule that starts at layer 0 has the decoder itself count it: it reads the past length
from layer 0's cache, so it is handed the slot-free positions and a widened padding mask). The
injected token has no position embedding (it never passes the input) and attends only to
itself; every later token attends to it.
"""

from __future__ import annotations

import inspect
from contextlib import contextmanager
from functools import partial

import torch
from torch import nn

from .errors import UserError

ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh, "silu": nn.SiLU}


class VisualFeatures(nn.Module):
    """What a frozen-LM strategy reads from timm's ViT (one pass): the final-normed [CLS]
    of the last ``levels`` blocks [B, levels, C], or (``all_tokens``) every token of the
    last block [B, 1 + HW, C]."""

    def __init__(self, vit: nn.Module, levels: int, all_tokens: bool):
        super().__init__()
        self.vit = vit
        self.levels = levels
        self.all_tokens = all_tokens
        self.dim = vit.embed_dim

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        feats = self.vit.forward_intermediates(
            images, indices=self.levels, return_prefix_tokens=True, norm=True,
            output_fmt="NLC", intermediates_only=True)  # [(patches, prefix tokens)] per block
        if self.all_tokens:
            patches, prefix = feats[-1]
            return torch.cat([prefix, patches], dim=1)
        return torch.stack([prefix[:, 0] for _, prefix in feats], dim=1)


class Connector(nn.Module):
    """Linear maps from the encoder width to the LM width: one per [CLS] level, or one
    shared by all levels (and by all tokens when every visual token is passed)."""

    def __init__(self, levels: int, in_dim: int, out_dim: int, shared: bool):
        super().__init__()
        maps = 1 if shared else levels
        self.proj = nn.ModuleList(nn.Linear(in_dim, out_dim) for _ in range(maps))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, n, Cv] -> [B, n, D]."""
        if len(self.proj) == 1:
            return self.proj[0](x)
        return torch.stack([proj(x[:, i]) for i, proj in enumerate(self.proj)], dim=1)


class SoftPrompt(nn.Module):
    """``length`` learned input tokens: an embedding over positions 0..length-1, optionally
    re-parametrised by an MLP (Embedding -> Linear -> Tanh -> Linear, as eP-ALM's code)."""

    def __init__(self, length: int, dim: int, mlp: bool, hidden: int = 0):
        super().__init__()
        self.embed = nn.Embedding(length, dim)
        nn.init.normal_(self.embed.weight, std=0.02)
        self.register_buffer("positions", torch.arange(length), persistent=False)
        hidden = hidden or dim
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.Tanh(), nn.Linear(hidden, dim)) \
            if mlp else None

    def forward(self, batch_size: int) -> torch.Tensor:
        """-> [B, length, dim] (the same prompt for every example)."""
        prompt = self.embed(self.positions)
        if self.mlp is not None:
            prompt = self.mlp(prompt)
        return prompt.unsqueeze(0).expand(batch_size, -1, -1)


class Adapter(nn.Module):
    """Sequential bottleneck adapter (Houlsby): x + up(act(down(x))), near-identity init."""

    def __init__(self, dim: int, reduction: int, activation: str):
        super().__init__()
        self.down = nn.Linear(dim, max(1, dim // reduction))
        self.act = ACTIVATIONS[activation]()
        self.up = nn.Linear(self.down.out_features, dim)
        for lin in (self.down, self.up):
            nn.init.normal_(lin.weight, std=1e-3)
            nn.init.zeros_(lin.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.up(self.act(self.down(x)))


def add_adapters(lm: nn.Module, reduction: int, activation: str) -> list[Adapter]:
    """Put an adapter after self-attention and after the FFN of every OPT block.

    Each adapter is registered as a child of the sub-layer it follows (``self_attn.adapter``,
    ``fc2.adapter``) and called by a forward hook on it, so it transforms the sub-layer's
    output before OPT's dropout and residual add; the LM's own weights and names stay as
    they are, and a deep copy keeps the wiring. Returns the adapters (the fusion role's
    share of the LM, see ``FusionModel.embedded_components``).
    """
    adapters = []
    for layer in lm.model.decoder.layers:
        for sub, hook in ((layer.self_attn, _adapt_attention), (layer.fc2, _adapt_ffn)):
            sub.adapter = Adapter(layer.embed_dim, reduction, activation)
            sub.register_forward_hook(hook)
            adapters.append(sub.adapter)
    return adapters


def _adapt_attention(module: nn.Module, args, out: tuple) -> tuple:
    return (module.adapter(out[0]), *out[1:])  # OPTAttention returns (output, weights)


def _adapt_ffn(module: nn.Module, args, out: torch.Tensor) -> torch.Tensor:
    return module.adapter(out)


def injection_schedule(num_layers: int, levels: int, where: str, per_level: int,
                       skip_last: int) -> dict[int, int]:
    """LM layer index -> [CLS] level (0 = the shallowest encoder layer used).

    ``last``: the last ``levels * per_level`` layers (before ``skip_last`` untouched ones),
    each level held for ``per_level`` layers; ``all``: every layer, levels spread evenly;
    ``input``: none (the tokens go in with the input embeddings)."""
    if where == "input":
        return {}
    stop = num_layers - skip_last
    if where == "all":
        if stop < levels:
            raise UserError(f"inject=all: {stop} LM layers cannot receive {levels} [CLS] levels")
        return {i: i * levels // stop for i in range(stop)}
    start = stop - levels * per_level
    if start < 0:
        raise UserError(
            f"{levels} [CLS] levels x layers_per_cls={per_level} + inject_skip_last="
            f"{skip_last} need {levels * per_level + skip_last} LM layers; the LM has "
            f"{num_layers}")
    return {start + j: j // per_level for j in range(levels * per_level)}


def widen_mask(mask: torch.Tensor | None, with_query: bool) -> torch.Tensor | None:
    """A decoder-layer attention mask [B, 1, q, k] for one more key at position 0, visible
    to every query; ``with_query``: position 0 is also a new query row that sees only itself.
    ``None`` (sdpa's implicit causal mask) already means exactly that."""
    if mask is None:
        return None
    B, H, q, k = mask.shape
    on = mask.new_ones(B, H, q, 1) if mask.dtype == torch.bool else mask.new_zeros(B, H, q, 1)
    mask = torch.cat([on, mask], dim=-1)
    if with_query:  # the new row: key 0 only (bool: True = attend; float: 0 = attend)
        first = mask.new_zeros(B, H, 1, k + 1) if mask.dtype == torch.bool else \
            mask.new_full((B, H, 1, k + 1), torch.finfo(mask.dtype).min)
        first[..., 0] = True if mask.dtype == torch.bool else 0.0
        mask = torch.cat([first, mask], dim=-2)
    return mask


class Injector:
    """Inject visual tokens into an OPT decoder's layers for the duration of a call."""

    def __init__(self, decoder: nn.Module, schedule: dict[int, int], reinject: str = "on-change"):
        self.decoder = decoder
        self.schedule = schedule
        self.reinject = reinject

    @contextmanager
    def __call__(self, tokens: torch.Tensor | None):
        """tokens [B, levels, D_hidden]; a no-op when None or nothing is scheduled."""
        if tokens is None or not self.schedule:
            yield
            return
        call = _InjectedCall(self.schedule, self.reinject, tokens)
        handles = [self.decoder.register_forward_hook(call.leave_decoder)]
        if call.first == 0:  # the decoder counts layer 0's cache, slot included
            handles.append(self.decoder.register_forward_pre_hook(call.enter_decoder,
                                                                  with_kwargs=True))
        handles += [layer.register_forward_pre_hook(partial(call.enter_layer, i), with_kwargs=True)
                    for i, layer in enumerate(self.decoder.layers) if i >= min(self.schedule)]
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()


class _InjectedCall:
    """Hook state for one call of the decoder (one forward, or one whole ``generate``)."""

    def __init__(self, schedule: dict[int, int], reinject: str, tokens: torch.Tensor):
        self.schedule, self.reinject, self.tokens = schedule, reinject, tokens
        self.first = min(schedule)
        self.added = False  # this forward put the slot in (no cache yet); decode steps don't
        self.widened: tuple | None = None  # (decoder mask, its widened copy): same per layer

    def token(self, level: int, batch: int) -> torch.Tensor:
        tok = self.tokens[:, level:level + 1]
        if tok.shape[0] != batch:  # beam search repeats each example num_beams times
            tok = tok.repeat_interleave(batch // tok.shape[0], dim=0)
        return tok

    def enter_decoder(self, decoder: nn.Module, args: tuple, kwargs: dict):
        """Decode steps of a schedule that starts at layer 0 (only those are hooked): the
        decoder takes its past length from layer 0's cache, which holds the slot, so it would
        shift the new tokens' positions and build its mask one key short of the padding. Give
        it the positions the tokens have without the slot and a padding mask with the slot's
        column in front."""
        cache = find_cache(args, kwargs)
        if cache is None or cache.get_seq_length(0) == 0:
            return None
        inputs = kwargs.get("input_ids", args[0] if args else None)
        if inputs is None:
            inputs = kwargs["inputs_embeds"]
        batch, new = inputs.shape[:2]
        mask = kwargs.get("attention_mask")
        if kwargs.get("position_ids") is None:
            if mask is None:
                past = cache.get_seq_length(0) - 1
                positions = torch.arange(past, past + new, device=inputs.device).expand(batch, new)
            else:
                positions = (mask.cumsum(1) * mask - 1)[:, -new:]
            kwargs["position_ids"] = positions.long()
        if mask is not None:
            kwargs["attention_mask"] = torch.cat([mask.new_ones(batch, 1), mask], dim=1)
        return args, kwargs

    def enter_layer(self, i: int, layer: nn.Module, args: tuple, kwargs: dict):
        hidden = args[0] if args else kwargs.pop("hidden_states")
        level = self.schedule.get(i)
        if i == self.first:
            cache = find_cache(args[1:], kwargs)
            self.added = cache is None or cache.get_seq_length(i) == 0
            if self.added:  # prepend
                hidden = torch.cat([self.token(level, hidden.shape[0]), hidden], dim=1)
        elif self.added and level is not None and (
                self.reinject == "every-layer" or level != self.schedule.get(i - 1)):
            hidden = torch.cat([self.token(level, hidden.shape[0]), hidden[:, 1:]], dim=1)
        mask = kwargs.get("attention_mask")
        if self.widened is None or self.widened[0] is not mask:
            # a decode step of a schedule from layer 0: enter_decoder widened it already
            counted = self.first == 0 and not self.added
            self.widened = (mask, mask if counted else widen_mask(mask, self.added))
        kwargs["attention_mask"] = self.widened[1]
        return (hidden, *args[1:]), kwargs

    def leave_decoder(self, decoder: nn.Module, args: tuple, out):
        if self.added:  # drop the slot: outputs align with the input positions again
            out.last_hidden_state = out.last_hidden_state[:, 1:]
        return out


def find_cache(args: tuple, kwargs: dict):
    """The KV cache among a layer call's arguments: the one object with ``Cache``'s public
    ``get_seq_length``, whatever keyword this transformers release passes it under."""
    for value in (*args, *kwargs.values()):
        if callable(getattr(value, "get_seq_length", None)):
            return value
    return None


def cache_keyword(lm: nn.Module) -> str:
    """The keyword ``lm.forward`` takes its KV cache by (``cache`` from transformers 5.24,
    ``past_key_values`` before), read from its signature."""
    params = inspect.signature(lm.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def output_cache(out):
    """The KV cache a model output carries (``out.cache`` from 5.24, ``past_key_values``)."""
    cache = getattr(out, "cache", None)
    return cache if cache is not None else getattr(out, "past_key_values", None)


def left_align(ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Move padding to the left of each row (order of real tokens kept), so the last column
    is every question's final token: generation and the answer continue from there."""
    order = torch.sort(mask, dim=1, stable=True).indices
    return ids.gather(1, order), mask.gather(1, order)
