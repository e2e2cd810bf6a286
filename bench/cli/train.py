"""``fusebench train STRATEGY``: train and evaluate on a dataset (``bench.experiment``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .common import add_model_args, add_train_args, model_overrides, train_config


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train and evaluate a strategy on a dataset")
    add_model_args(p)
    p.add_argument("--data", help="dataset directory (default: built-in synthvqa, generated "
                                  "on first use)")
    p.add_argument("--out", help="run directory (default: runs/train/<strategy>)")
    p.add_argument("--resume", action="store_true", help="continue from the latest checkpoint")
    p.add_argument("--overwrite", action="store_true",
                   help="start over in a directory that holds a run (deletes its checkpoints "
                        "and results)")
    p.add_argument("--no-cache", action="store_true",
                   help="recompute frozen image features every step")
    add_train_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from bench.atomic_files import check_writable_dir
    from bench.data.synthvqa import DEFAULT_DATA
    from bench.experiment import check_outside_data, prepare, run_experiment, trains_from_pixels
    from bench.spec import ModelSpec
    from bench.table import print_table
    from bench.train import epoch_line_printer

    cfg = train_config(args)  # bad flags fail before any data is made
    out = check_writable_dir(args.out or Path("runs") / "train" / args.strategy)
    check_outside_data(out, args.data or DEFAULT_DATA)  # before the data is loaded
    run_spec = prepare(ModelSpec(args.strategy, args.preset, model_overrides(args)), args.data)
    if trains_from_pixels(run_spec.model):
        cfg = train_config(args, from_pixels=True)
    log = cfg.progress and not sys.stderr.isatty()  # a log gets a line an epoch, no bar
    result = run_experiment(run_spec, cfg, out, resume=args.resume, overwrite=args.overwrite,
                            use_cache=not args.no_cache,
                            on_eval=epoch_line_printer(args.strategy, cfg.epochs) if log else None)
    print_table([{"strategy": args.strategy, **result}])
    print(f"run directory: {out} (metrics.jsonl, checkpoints, result.json)")
    return 0
