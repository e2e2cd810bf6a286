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
