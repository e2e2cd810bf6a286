"""``fusebench baseline [--update]``: check or rewrite the committed figures table
(``bench.baseline``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.errors import UserError


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
    from bench.baseline import PATH, current_rows, diff, load, to_csv, update_command

    path = Path(args.path or PATH)
    if path.is_dir():  # before the figures are computed (seconds)
        raise UserError(f"--path {path} is a directory; give a CSV file path")
    if args.update:
        check_writable_dir(path.parent)
        old = load(path, new_ok=True)  # a file that is no figures table is not overwritten
        rows = current_rows()
        changes = diff(old, rows) if old else ["(new table)"]
        atomic_write_text(path, to_csv(rows))
        print("\n".join(changes) if changes else "no figure changed")
        print(f"wrote {len(rows)} rows to {path}")
        return 0
    changes = diff(load(path), current_rows())
    if changes:
        print("\n".join(changes))
        print(f"{len(changes)} figure(s) differ from {path}; if intended, run "
              f"`{update_command(path)}` and commit the table", file=sys.stderr)
        return 1
    print(f"all figures match {path}")
    return 0
