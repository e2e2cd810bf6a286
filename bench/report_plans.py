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
