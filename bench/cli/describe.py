"""``fusebench describe STRATEGY``: its config keys with type, default and help; with
``--preset``, the value each key takes under that preset."""

from __future__ import annotations

import argparse

from .common import emit_rows


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("describe", help="a strategy's config keys: type, default, help")
    p.add_argument("strategy")
    p.add_argument("--preset", help="also show each key's value under this model preset "
                   "(`fusebench list --presets`)")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    import variants
    from variants.config import describe

    info = variants.get_strategy(args.strategy)
    preset = asdict(variants.resolve_config(info.name, args.preset)) if args.preset else None
    rows = [{**row, "choices": "|".join(map(str, row["choices"])) if row["choices"] else ""}
            for row in describe(info.config_cls)]
    if preset is not None:  # beside the default, so the two read together
        rows = [_with_preset_value(row, args.preset, preset[row["key"]]) for row in rows]
    if args.format == "table":
        print(f"{info.name} ({info.family}): {info.description}\npaper: {info.paper}\n")
        if preset is not None:
            print(f"{args.preset}: the preset's values; the backbones and training recipe it "
                  "adds on top are in `fusebench list --presets`\n")
    emit_rows(rows, args.format)
    return 0


def _with_preset_value(row: dict, preset: str, value) -> dict:
    """``row`` with a ``preset`` column right after its ``default``."""
    items, at = list(row.items()), list(row).index("default") + 1
    return dict(items[:at] + [(preset, value)] + items[at:])
