"""Named config bundles (``--preset NAME``). Keys a strategy lacks are skipped."""

from __future__ import annotations

from .registry import Preset, register_preset

register_preset(Preset(
    name="tiny",
    description="trains on 2 CPU cores in minutes on the built-in data: 64 px, patch 8, "
                "micro ViT and BERT (width 64, 2 layers), fusion width 64",
    overrides=dict(image_size=64, patch_size=8, vision="micro", text="micro", width=64,
                   heads=2, depth=2, text_len=16),
    families=("encoder-fusion",),
))

# Frozen-LM family (eP-ALM). Keys: frozen_lm.FrozenLMConfig; OPT sizes: variants/opt.py.
_FROZEN = ("frozen-lm",)
register_preset(Preset(
    name="epalm-tiny",
    description="CPU training: 64 px, patch 8, micro ViT (64 wide, 2 layers) + micro OPT "
                "(64 wide, 6 layers); [CLS] of both ViT layers into the last 4 LM layers",
    overrides=dict(image_size=64, patch_size=8, vision="micro", lm="micro", vision_layers=2,
                   text_len=16),
    families=_FROZEN,
    # the input-placement baselines keep their single, final [CLS]
    per_strategy={name: {"vision_layers": 1} for name in ("promptfuse", "magma", "limber")},
))
register_preset(Preset(
    name="epalm-opt350m",
    description="the eP-ALM paper's main setting: ViT-B/16 at 224 px + OPT-350M",
    overrides=dict(image_size=224, patch_size=16, vision="base", lm="opt-350m"),
    families=_FROZEN,
))
for _size in ("opt-1.3b", "opt-2.7b", "opt-6.7b"):
    register_preset(Preset(
        name=f"epalm-{_size.replace('-', '')}",
        description=f"ViT-B/16 at 224 px + {_size} (eP-ALM's LM-size ablation)",
        overrides=dict(image_size=224, patch_size=16, vision="base", lm=_size),
        families=_FROZEN,
    ))
register_preset(Preset(
    name="epalm-pt-l",
    description="eP-ALM pt-L: ViT-L/16 + OPT-6.7B, prompt without MLP at lr 1e-3 (model lr "
                "2e-4, batch 16 in the paper); ~4.24M trainable with epalm_pt",
    overrides=dict(image_size=224, patch_size=16, vision="large", lm="opt-6.7b",
                   prompt_mlp=False, prompt_lr=1e-3),
    families=_FROZEN,
))
