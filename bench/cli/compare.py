"""``fusebench compare``: the JAR paper's FLOPs tables beside ours (``bench.compare``)."""

from __future__ import annotations

import argparse
import csv
import json
import sys

from bench.paper_numbers import JAR_COMPARED_TABLES

from .common import model_overrides


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compare", help="JAR paper's FLOPs tables beside our models' FLOPs")
    p.add_argument("--preset", default="jar-base",
                   help="config bundle every row starts from (default jar-base)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", default=[],
                   help="override a config key in every row that has it (repeatable)")
    p.add_argument("--image-size", type=int, help="shortcut for --set image_size=N")
    p.add_argument("--tables", nargs="+", choices=JAR_COMPARED_TABLES,
                   default=list(JAR_COMPARED_TABLES), help="which tables to print (default all)")
    p.add_argument("--format", choices=("table", "markdown", "json", "csv"), default="table")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from bench.compare import compare, render_text

    overrides = model_overrides(args)
    result = compare(args.preset, overrides, args.tables)
    if args.format == "json":
        print(json.dumps(result, indent=2))
    elif args.format == "csv":
        rows = result["rows"]
        writer = csv.DictWriter(sys.stdout, fieldnames=list(dict.fromkeys(k for r in rows
                                                                          for k in r)))
        writer.writeheader()
        writer.writerows(rows)
    else:
        print(render_text(result, args.tables, args.format == "markdown", overrides))
    return 0
