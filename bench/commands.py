"""``fusebench list`` and ``fusebench describe``: what is registered and how to configure it."""

from __future__ import annotations

import argparse
import json

import variants
from variants.config import describe as describe_config

from .table import print_table


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("list", help="registered strategies (or presets with --presets)")
    p.add_argument("--presets", action="store_true", help="list presets instead")
    p.add_argument("--family", choices=variants.registry.FAMILIES)
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.set_defaults(func=run_list)

    p = sub.add_parser("describe", help="a strategy's config keys: type, default, help")
    p.add_argument("strategy")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.set_defaults(func=run_describe)


def run_list(args: argparse.Namespace) -> int:
    if args.presets:
        rows = [{"preset": p.name, "families": ", ".join(p.families),
                 "description": p.description} for p in variants.list_presets()
                if args.family is None or args.family in p.families]
    else:
        rows = [{"strategy": s.name, "family": s.family, "description": s.description,
                 "paper": s.paper} for s in variants.list_strategies(args.family)]
    _emit(rows, args.format)
    return 0


def run_describe(args: argparse.Namespace) -> int:
    info = variants.get_strategy(args.strategy)
    rows = describe_config(info.config_cls)
    for row in rows:
        row["choices"] = "|".join(map(str, row["choices"])) if row["choices"] else ""
    if args.format == "table":
        print(f"{info.name} ({info.family}): {info.description}\npaper: {info.paper}\n")
    _emit(rows, args.format)
    return 0


def _emit(rows: list[dict], fmt: str) -> None:
    if fmt == "json":
        print(json.dumps(rows, indent=2, default=str))
    else:
        print_table(rows)
