"""``fusebench profile STRATEGY``: every cost figure of one config, with units
(``bench.profiling``)."""

from __future__ import annotations

import argparse
import csv
import json
import sys

from .common import add_model_args, model_overrides


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("profile", help="params, GFLOPs (2 counters), memory, latency, MFU")
    add_model_args(p)
    p.add_argument("--batch-size", type=int, default=8, help="batch for latency and memory")
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    p.add_argument("--repeats", type=int, default=10,
                   help="timed forward passes; latency is their median (default 10)")
    p.add_argument("--warmup", type=int, default=2,
                   help="untimed forward passes before them (default 2)")
    p.add_argument("--measure", choices=("auto", "always", "never"), default="auto",
                   help="run the real model (auto: only when params <= --max-params)")
    p.add_argument("--max-params", type=float, default=400e6,
                   help="--measure auto runs models up to this many parameters (default 4e8); "
                   "larger ones are counted on the meta device only")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the random weights and inputs (default 0)")
    p.add_argument("--data", help="profile the model as trained on this dataset directory "
                   "(data/synthvqa: the built-in one): its vocabulary and answer counts and "
                   "the preset's backbones for it, as `train` and the report build it. "
                   "Without it, the config's own sizes (a BERT or OPT vocabulary, 3129 "
                   "answers)")
    p.add_argument("--format", choices=("table", "json", "csv"), default="table")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from bench.profiling import ProfileSpec, profile, render_text
    from bench.spec import ModelSpec

    model = ModelSpec(args.strategy, args.preset, model_overrides(args))
    if args.data:
        from bench.experiment import as_trained

        model = as_trained(model, args.data)
    spec = ProfileSpec(model, args.batch_size,
                       args.device, args.warmup, args.repeats, args.measure, args.max_params,
                       args.seed)
    row = profile(spec)
    if args.format == "json":
        print(json.dumps(row, indent=2, default=str))
    elif args.format == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=list(row))
        writer.writeheader()
        writer.writerow(row)
    else:
        print(render_text(row))
        if not args.data:
            print("  (the config's own vocabulary and answer sizes; --data DIR profiles the "
                  "model as trained on DIR, as the report does)")
    return 0
