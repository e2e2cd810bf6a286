"""eP-ALM (Shukor et al. 2023): a frozen OPT given perception by a frozen ViT.

The paper's variants, each ``frozen_lm.FrozenLM`` with its own config defaults (the model,
its input layout and contracts: ``frozen_lm.py``).
"""

from __future__ import annotations

from .frozen_lm import register_frozen_lm

# The paper's variants (Table: OPT-350M + ViT-B/16 unless said).
register_frozen_lm("epalm_lin", "eP-ALM lin: one linear map shared by all injected [CLS]",
                   shared_connector=True, prompt_len=0)
register_frozen_lm("epalm_pt", "eP-ALM pt: shared linear + soft prompt (10 tokens)",
                   shared_connector=True)
register_frozen_lm("epalm", "eP-ALM: one linear per injected [CLS] level + soft prompt")
register_frozen_lm("epalm_ada", "eP-ALM ada: per-level linears + adapters in all OPT blocks "
                   "(no prompt)", prompt_len=0, adapters=True)
register_frozen_lm("epalm_pt_l", "eP-ALM pt-L: ViT-L/16 + OPT-6.7B, shared linear + prompt "
                   "without MLP (prompt lr 1e-3; paper: ~4M trainable, 0.06 %)",
                   shared_connector=True, vision="large", lm="opt-6.7b", prompt_mlp=False,
                   prompt_lr=1e-3)
register_frozen_lm("finetune", "eP-ALM wiring (per-level linears + prompt) with every "
                   "weight trainable", freeze_backbones=False)
