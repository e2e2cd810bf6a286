"""``fusebench describe STRATEGY``: its config keys with type, default and help."""

from __future__ import annotations

import argparse

from .common import emit_rows


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("describe", help="a strategy's config keys: type, default, help")
    p.add_argument("strategy")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import variants
    from variants.config import describe

    info = variants.get_strategy(args.strategy)
    rows = describe(info.config_cls)
    for row in rows:
        row["choices"] = "|".join(map(str, row["choices"])) if row["choices"] else ""
    if args.format == "table":
        print(f"{info.name} ({info.family}): {info.description}\npaper: {info.paper}\n")
    emit_rows(rows, args.format)
    return 0
