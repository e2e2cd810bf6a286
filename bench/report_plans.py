"""What each report plan runs: the sweep specs (``sweeps/*.yaml``), in page order.

A plan is the report's word for its run list (a model *preset* is a config bundle; a
*baseline* is the committed figures table). Torch-free, so the command line can list them.
"""

from __future__ import annotations

from pathlib import Path

SWEEPS_DIR = Path(__file__).resolve().parent.parent / "sweeps"
# report plan -> the sweep specs it runs, each rendered in its own section (a model
# preset, ``--preset`` of train/profile, is something else: a config bundle)
PLANS = {
    "quick": ["strategies_quick.yaml", "frozen_lm_quick.yaml", "flops_scaling.yaml",
              "token_scaling.yaml", "epalm_variants.yaml"],
    "paper": ["strategies_paper.yaml", "frozen_lm_paper.yaml", "flops_scaling.yaml",
              "token_scaling.yaml", "jar_table4_train.yaml",
              "epalm_variants.yaml"],
}
# The page's sections and the sweeps each renders (by sweep name). "orderings" reads every
# trained sweep of the plan; the JAR FLOPs tables come from `compare` (no sweep).
SECTIONS = {
    "comparison": {"quick": ("strategies_quick", "frozen_lm_quick"),
                   "paper": ("strategies_paper", "frozen_lm_paper")},
    "epalm_variants": {"quick": ("epalm_variants",), "paper": ("epalm_variants",)},
    "flops_scaling": {"quick": ("flops_scaling",), "paper": ("flops_scaling",)},
    "token_scaling": {"quick": ("token_scaling",), "paper": ("token_scaling",)},
}
