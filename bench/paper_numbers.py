"""Published numbers the harness compares against, kept as data in one place.

JAR: Piergiovanni & Angelova 2023, "Joint Adaptive Representations for Image-Language
Learning", arXiv 2305.19924 (as summarised in shared/papers.md, part A). ``gf`` is
GFLOPs per example (one multiply-add = one FLOP, fvcore's convention); ``gqa``,
``snli_ve`` and ``vqa2`` are accuracies in %; ``params_m`` millions of parameters,
``train_examples_m`` millions of pre-training examples.

Table 4 rows are labelled ``key=value`` with the ``jar`` config key the row varies, so a
label is also the override that reproduces the row from the Base setting.
"""

from __future__ import annotations

JAR_SOURCE = ("Piergiovanni & Angelova 2023, Joint Adaptive Representations for "
              "Image-Language Learning, arXiv 2305.19924")

JAR_TABLES: dict[str, dict[str, dict[str, float]]] = {
    "1": {  # against other models; "Ours" is a larger model whose setting is not stated
        "Ours-Base": {"gf": 38.9, "params_m": 350, "train_examples_m": 40, "gqa": 81.9,
                      "snli_ve": 82.1, "vqa2": 79.20},
        "Ours": {"gf": 54.5, "gqa": 83.1, "snli_ve": 84.2, "vqa2": 80.15},
    },
    "2": {  # the authors' reimplementations at Base size
        "Perceiver": {"gf": 40.3, "gqa": 78.2, "snli_ve": 77.4},
        "Iterative Co-tokenization": {"gf": 43.8, "gqa": 78.5, "snli_ve": 77.5},
        "Ours": {"gf": 38.9, "gqa": 79.1, "snli_ve": 77.9},
    },
    "3": {
        "Concat": {"gf": 58.4, "gqa": 78.9, "snli_ve": 77.4},
        "Ours w/o gating": {"gf": 38.9, "gqa": 78.5, "snli_ve": 77.2},
        "Ours": {"gf": 38.9, "gqa": 79.1, "snli_ve": 77.9},
    },
    "4a": {
        "iterations=1": {"gf": 34.2, "gqa": 78.3, "snli_ve": 77.1},
        "iterations=2": {"gf": 35.5, "gqa": 78.8, "snli_ve": 77.6},
        "iterations=4": {"gf": 38.9, "gqa": 79.1, "snli_ve": 77.9},
        "iterations=8": {"gf": 42.5, "gqa": 79.2, "snli_ve": 77.6},
    },
    "4b": {
        "num_tokens=16": {"gf": 18.5, "gqa": 76.5, "snli_ve": 75.8},
        "num_tokens=32": {"gf": 28.4, "gqa": 78.3, "snli_ve": 76.8},
        "num_tokens=64": {"gf": 38.9, "gqa": 79.1, "snli_ve": 77.9},
        "num_tokens=128": {"gf": 72.9, "gqa": 79.2, "snli_ve": 78.1},
    },
    "4c": {
        "resampling=spatial": {"gf": 42.5, "gqa": 78.9, "snli_ve": 77.4},
        "resampling=latent": {"gf": 38.9, "gqa": 79.1, "snli_ve": 77.9},
    },
    "4d": {
        "combination=none": {"gf": 38.9, "gqa": 78.1, "snli_ve": 76.5},
        "combination=residual": {"gf": 38.9, "gqa": 78.7, "snli_ve": 77.6},
        "combination=weighted": {"gf": 38.9, "gqa": 79.1, "snli_ve": 77.9},
    },
    "4e": {
        "fusion_layers=8": {"gf": 22.4, "gqa": 76.7, "snli_ve": 74.2},
        "fusion_layers=16": {"gf": 30.5, "gqa": 78.3, "snli_ve": 75.4},
        "fusion_layers=32": {"gf": 38.9, "gqa": 79.1, "snli_ve": 77.9},
    },
}

JAR_TABLE_TITLES = {
    "1": "Table 1: comparison with other models",
    "2": "Table 2: fusion methods at Base size",
    "3": "Table 3: concatenation baseline and gating",
    "4a": "Table 4(a): fusion iterations",
    "4b": "Table 4(b): latent tokens",
    "4c": "Table 4(c): resampling",
    "4d": "Table 4(d): combination after each iteration",
    "4e": "Table 4(e): fusion layers",
}

# The row every "ratio to JAR" is taken against (the Base model, 38.9 GF).
JAR_REFERENCE = ("2", "Ours")
# the FLOPs tables `fusebench compare` rebuilds (Table 1 lists backbone sizes, no FLOPs)
JAR_COMPARED_TABLES = ("2", "3", "4a", "4b", "4c", "4d", "4e")

# eP-ALM: Shukor, Dancette, Cord 2023 (arXiv 2303.11403), VQAv2 accuracy (%) with
# OPT-350M + ViT-B/16 unless noted; keyed by our strategy names.
EPALM_SOURCE = "Shukor, Dancette & Cord 2023, eP-ALM, arXiv 2303.11403"
EPALM_VQA2 = {
    "epalm_lin": 30.72, "epalm_pt": 31.27, "epalm": 33.08, "epalm_ada": 34.34,
    "epalm_pt_l": 43.6,  # OPT-6.7B + ViT-L, ~4M trainable params (0.06 %)
    "finetune": 31.79, "promptfuse": 18.82, "magma": 23.3, "limber": 10.75,
}
EPALM_PT_L_TRAINABLE = {"params_trainable": 4.24e6, "trainable_pct": 0.061}
