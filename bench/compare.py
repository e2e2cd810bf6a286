"""``fusebench compare``: the JAR paper's FLOPs tables, recomputed from our models.

Every row of Tables 2, 3 and 4 (a)-(e) is built from ``--preset`` (default ``jar-base``)
plus the row's setting, on the meta device (no memory, no weights), and counted with
``FlopCounterMode`` (forward, one example, one multiply-add = one FLOP). Printed beside
the paper's GF, with both ratios to the respective JAR Base row, so shape agreement can be
judged apart from the absolute level. docs/jar_flops.md explains where and why our ratios
differ from the paper's.
"""

from __future__ import annotations

from typing import Any

import torch

import variants
from variants.config import apply_overrides, coerce

from .errors import UserError
from .flops import component_flops, count_flop_counter_mode
from .paper_numbers import (
    JAR_COMPARED_TABLES,
    JAR_REFERENCE,
    JAR_SOURCE,
    JAR_TABLE_TITLES,
    JAR_TABLES,
)
from .table import format_table

# Tables 2 and 3: paper row -> (strategy, overrides on top of the preset). Table 4 rows are
# labelled "key=value" and map to ("jar", {key: value}).
NAMED_ROWS: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {
    ("2", "Perceiver"): ("perceiver", {}),
    ("2", "Iterative Co-tokenization"): ("cotok", {}),
    ("2", "Ours"): ("jar", {}),
    ("3", "Concat"): ("concat", {}),
    ("3", "Ours w/o gating"): ("jar", {"gating": False}),
    ("3", "Ours"): ("jar", {}),
}


def row_setting(table: str, row: str) -> tuple[str, dict[str, Any]]:
    if (table, row) in NAMED_ROWS:
        return NAMED_ROWS[(table, row)]
    key, _, value = row.partition("=")
    return "jar", {key: value}


def measure(strategy: str, cfg: Any) -> dict[str, float]:
    """Forward GFLOPs of one example: total and fusion + head (everything past the encoders)."""
    with torch.device("meta"):
        model = variants.build(strategy, cfg)
    count = count_flop_counter_mode(model, model.dummy_batch(1, "meta"))
    parts = component_flops(count, model.components(), model)
    return {"gf": count.total / 1e9, "fusion_gf": (parts["fusion"] + parts["head"]) / 1e9,
            "encoders_gf": (parts["image_encoder"] + parts["text_encoder"]) / 1e9}


def _check_keys(overrides: dict[str, Any], strategies: set[str]) -> None:
    """--set keys a row's strategy lacks are skipped, but a key no strategy has is a typo."""
    known = set().union(*(variants.get_strategy(s).config_cls.__dataclass_fields__
                          for s in strategies))
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise UserError(f"unknown config key(s) {', '.join(unknown)} for "
                        f"{', '.join(sorted(strategies))}; see `fusebench describe jar`")


def compare(preset: str = "jar-base", overrides: dict[str, Any] | None = None,
            tables: tuple[str, ...] | list[str] = JAR_COMPARED_TABLES) -> dict[str, Any]:
    """Rows of (table, paper row, our GF, paper GF, both ratios to JAR Base)."""
    overrides = overrides or {}
    settings = {(t, r): row_setting(t, r) for t in tables for r in JAR_TABLES[t]}
    settings[JAR_REFERENCE] = row_setting(*JAR_REFERENCE)
    _check_keys(overrides, {s for s, _ in settings.values()})
    cache: dict[tuple, dict[str, float]] = {}

    def gflops(strategy: str, row_overrides: dict[str, Any]) -> dict[str, float]:
        cfg = variants.resolve_config(strategy, preset)
        cfg = apply_overrides(cfg, overrides, strict=False)
        cfg = apply_overrides(cfg, row_overrides, strict=True)
        key = (strategy, repr(cfg))
        if key not in cache:
            cache[key] = measure(strategy, cfg)
        return cache[key]

    ours_ref = gflops(*settings[JAR_REFERENCE])["gf"]
    paper_ref = JAR_TABLES[JAR_REFERENCE[0]][JAR_REFERENCE[1]]["gf"]
    rows = []
    for table in tables:
        for row, paper in JAR_TABLES[table].items():
            strategy, row_overrides = settings[(table, row)]
            shown = {k: coerce(variants.get_strategy(strategy).config_cls, k, v)
                     for k, v in row_overrides.items()}
            out = {"table": table, "paper_row": row, "strategy": strategy,
                   "setting": ", ".join(f"{k}={v}" for k, v in shown.items()) or "base",
                   "ours_gf": None, "paper_gf": paper["gf"], "ours_vs_jar": None,
                   "paper_vs_jar": paper["gf"] / paper_ref}
            try:
                ours = gflops(strategy, row_overrides)
            except UserError as e:  # e.g. iterations=8 with a preset's fusion_layers=2
                out["note"] = f"not measured: {e}"
            else:
                out.update(ours_gf=ours["gf"], ours_vs_jar=ours["gf"] / ours_ref,
                           ours_fusion_gf=ours["fusion_gf"],
                           ours_encoders_gf=ours["encoders_gf"])
            rows.append(out)
    return {"source": JAR_SOURCE, "preset": preset, "overrides": overrides,
            "counter": "flop_counter_mode (meta device), 1 example, multiply-add = 1",
            "ours_jar_gf": ours_ref, "paper_jar_gf": paper_ref,
            "models_measured": len(cache), "rows": rows}


def render_text(result: dict[str, Any], tables: list[str], markdown: bool = False,
                overrides: dict[str, Any] | None = None) -> str:
    """``compare``'s result as text (or Markdown): sources, then one table per paper table."""
    md = markdown
    out = [f"{'## ' if md else ''}JAR paper FLOPs vs ours (preset {result['preset']}"
           f"{', ' + str(overrides) if overrides else ''})\n",
           f"paper: {result['source']}\nours: {result['counter']}; ratios are to each "
           f"side's JAR Base ({result['ours_jar_gf']:.2f} GF ours, "
           f"{result['paper_jar_gf']} GF paper); see docs/jar_flops.md\n"]
    for table in tables:
        out.append(f"{'### ' if md else ''}{JAR_TABLE_TITLES[table]}\n")
        part = [{k: v for k, v in r.items() if k != "table"} for r in result["rows"]
                if r["table"] == table]
        out.append(format_table(part, markdown=md) + "\n")
    return "\n".join(out)
