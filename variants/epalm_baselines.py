"""eP-ALM's baselines: visual tokens placed only at the LM *input* (same frozen OPT + ViT).

They differ from eP-ALM in where the image enters (prepended to the input embeddings, in
the word-embedding width, through all layers) and in what is trained. The paper
re-implements them on its own backbones (OPT-350M + ViT-B/16); so do we:

- ``promptfuse`` (Liang et al. 2022): soft prompt + linear map of the final [CLS]; the
  prompt is plain prompt tuning (no MLP) as in PromptFuse.
- ``magma`` (Eichenberg et al. 2022): adapters in every block + projected final [CLS].
- ``magma_all``: as ``magma`` but every visual token of the last ViT layer (1 + HW
  tokens) at the input: MAGMA's prefix of visual tokens, and an image's worth of compute.
- ``limber`` (Merullo et al. 2023): only a linear map of the final [CLS] is trained.
"""

from __future__ import annotations

from .frozen_lm import register_frozen_lm

INPUT = dict(inject="input", vision_layers=1, prompt_len=0)

register_frozen_lm("promptfuse", "soft prompt (10) + linear on the last [CLS], at the LM "
                   "input", paper="PromptFuse (Liang et al. 2022), eP-ALM baseline",
                   **{**INPUT, "prompt_len": 10, "prompt_mlp": False})
register_frozen_lm("magma", "adapters + projected last [CLS] at the LM input",
                   paper="MAGMA (Eichenberg et al. 2022), eP-ALM baseline",
                   **INPUT, adapters=True)
register_frozen_lm("magma_all", "adapters + every projected visual token at the LM input",
                   paper="MAGMA (Eichenberg et al. 2022), eP-ALM baseline B_MAGMA*",
                   **INPUT, adapters=True, visual_tokens="all")
register_frozen_lm("limber", "one linear map of the last [CLS] at the LM input (only it "
                   "trains)", paper="LimBeR (Merullo et al. 2023), eP-ALM baseline", **INPUT)
