"""transformers' OPT decoder (``OPTForCausalLM``): the frozen language model of eP-ALM.

Sizes copy the public ``facebook/opt-*`` configs (hidden, layers, heads, FFN width, word
embedding width, pre/post layer norm); note OPT-350M's quirks: 512-wide word embeddings
projected in and out of a 1024-wide stack, and post-layer-norm blocks without a final norm.
``micro`` trains on 2 CPU cores. Real weights load from a local ``save_pretrained``
directory only (no hub). Built under ``torch.device("meta")`` an OPT-6.7B costs no memory.
"""

from __future__ import annotations

import json
from pathlib import Path

from torch import nn

from .backbones import on_meta
from .errors import UserError
from .sizes import OPT_SIZES

OPT_VOCAB = 50272  # the public checkpoints' (padded) vocabulary; the tokenizer uses 50265


def opt_config(size: str, vocab_size: int = OPT_VOCAB, eos: int = 2, pad: int = 1):
    """The ``OPTConfig`` of a named size (public values; ``micro`` is ours); ``eos`` and
    ``pad`` ids follow the tokenizer (OPT's own: 2 and 1, bos = eos)."""
    from transformers import OPTConfig

    hidden, layers, heads, ffn, word_dim, pre_norm = OPT_SIZES[size]
    return OPTConfig(
        vocab_size=vocab_size, hidden_size=hidden, num_hidden_layers=layers,
        num_attention_heads=heads, ffn_dim=ffn, word_embed_proj_dim=word_dim,
        do_layer_norm_before=pre_norm, max_position_embeddings=512 if size == "micro" else 2048,
        pad_token_id=pad, bos_token_id=eos, eos_token_id=eos, attn_implementation="sdpa",
    )


def build_opt(size: str, vocab_size: int = OPT_VOCAB, path: str = "", eos: int = 2,
              pad: int = 1) -> nn.Module:
    """An ``OPTForCausalLM``: random init of ``size``, or loaded from ``path``
    (a ``save_pretrained`` directory; its own config decides the size and vocabulary)."""
    from transformers import OPTConfig, OPTForCausalLM

    if not path:
        return OPTForCausalLM(opt_config(size, vocab_size, eos, pad))
    config_file = Path(path) / "config.json"
    if not config_file.is_file():
        raise UserError(f"language model directory {path} has no config.json "
                        "(expected an OPT saved with save_pretrained)")
    try:
        kind = json.loads(config_file.read_text()).get("model_type")
    except (OSError, ValueError) as e:
        raise UserError(f"cannot read {config_file}: {e}") from None
    if kind != "opt":
        raise UserError(f"{path} holds a {kind!r} model; the frozen-LM family needs OPT")
    config = OPTConfig.from_pretrained(path)
    config._attn_implementation = "sdpa"  # FLOP counters see F.scaled_dot_product_attention
    if on_meta():  # the profiler's meta pass: the checkpoint's shapes, no weights
        return OPTForCausalLM(config)
    try:
        model, info = OPTForCausalLM.from_pretrained(path, config=config, output_loading_info=True)
    except (OSError, RuntimeError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"cannot load OPT checkpoint {path}: {first}") from None
    missing = sorted(k for k in info["missing_keys"] if k != "lm_head.weight")  # tied
    if missing or info["mismatched_keys"]:
        bad = (missing or sorted(map(str, info["mismatched_keys"])))[0]
        raise UserError(f"OPT checkpoint {path} does not match its config.json (e.g. {bad})")
    return model
