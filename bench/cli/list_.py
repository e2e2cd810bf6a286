"""``fusebench list``: registered strategies, or presets (``list_``: ``list`` is a builtin)."""

from __future__ import annotations

import argparse

from variants.registry import FAMILIES

from .common import emit_rows


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("list", help="registered strategies (or presets with --presets)")
    p.add_argument("--presets", action="store_true", help="list presets instead")
    p.add_argument("--family", choices=FAMILIES, help="only this family's strategies (presets)")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import variants

    if args.presets:
        rows = [{"preset": p.name, "families": ", ".join(p.families),
                 "train recipe": _pairs(p.train),
                 "on the built-in data": _pairs(p.pretrained),
                 "on other data": "the same, pretrained on it"
                 if p.pretrained and p.pretrained_on_any_data else "-",
                 "from raw pixels": _pairs({**p.from_pixels, **p.from_pixels_train}),
                 "description": p.description} for p in variants.list_presets()
                if args.family is None or args.family in p.families]
    else:
        rows = [{"strategy": s.name, "family": s.family, "description": s.description,
                 "paper": s.paper} for s in variants.list_strategies(args.family)]
    emit_rows(rows, args.format)
    return 0


def _pairs(values: dict) -> str:
    """key=value, floats in at most 6 significant digits (1/3 shows as 0.333333)."""
    return ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                     for k, v in values.items()) or "-"
