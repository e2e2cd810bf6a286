"""``fusebench baseline [--update]``: check or rewrite the committed figures table
(``bench.baseline``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("baseline", help="check (or --update) the committed figures table: "
                                        "params, FLOPs, trainable %%, output shapes")
    p.add_argument("--update", action="store_true",
                   help="rewrite the table from the current code (after an intended change)")
    p.add_argument("--path", help="table to check or write (default: bench/baselines/figures.csv "
                   "in the installed package)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from bench.atomic_files import atomic_write_text, check_writable_dir
    from bench.baseline import PATH, current_rows, diff, load, to_csv

    path = Path(args.path or PATH)
    if args.update:
        check_writable_dir(path.parent)
        rows = current_rows()
        changes = diff(load(path), rows) if path.is_file() else ["(new table)"]
        atomic_write_text(path, to_csv(rows))
        print("\n".join(changes) if changes else "no figure changed")
        print(f"wrote {len(rows)} rows to {path}")
        return 0
    changes = diff(load(path), current_rows())
    if changes:
        print("\n".join(changes))
        print(f"{len(changes)} figure(s) differ from {path}; if intended, run "
              "`fusebench baseline --update` and commit the table", file=sys.stderr)
        return 1
    print(f"all figures match {path}")
    return 0

