"""``fusebench sweep SPEC``: run a declarative sweep, completing what is missing
(``bench.sweep``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.row import (
    BLIND_ACC,
    GFLOPS,
    IMAGE_RELIANCE,
    LATENCY,
    MEM_INFER,
    PARAMS_TOTAL,
    POINT_ID,
    PRESET,
    SEED,
    STRATEGY,
    SWEEP,
    TEST_ACC,
    TRAINABLE_PCT,
    VAL_ACC,
)

from .common import workers_count

SUMMARY = [STRATEGY, PRESET, PARAMS_TOTAL, TRAINABLE_PCT, GFLOPS, MEM_INFER,
           LATENCY, VAL_ACC, TEST_ACC, BLIND_ACC, IMAGE_RELIANCE]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(SWEEP, help="run a YAML sweep (skips points already done)")
    p.add_argument("spec", help="sweep YAML (see sweeps/)")
    p.add_argument("--out", help="results directory (default: runs/sweeps/<name>)")
    p.add_argument("--dry-run", action="store_true", help="validate and list the points")
    p.add_argument("--workers", type=workers_count, default=0,
                   help="train mode: points trained at once, each in its own process on its "
                   "share of the cores (default 0: one per core, at most 4; 1 = one after "
                   "another)")
    p.add_argument("--no-progress", "--quiet", dest="quiet", action="store_true",
                   help="no progress bar: a line per finished point instead (the name "
                        "train and report use; --quiet is the same)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import pandas as pd

    from bench.atomic_files import check_writable_dir
    from bench.store import ResultStore
    from bench.sweep import load_spec
    from bench.sweep_run import run_sweep
    from bench.table import print_table

    spec = load_spec(args.spec)
    out = check_writable_dir(args.out or Path("runs") / "sweeps" / spec.name)
    if args.dry_run:
        print(f"{spec.name}: {len(spec.points)} points ({spec.mode})")
        print_table([{STRATEGY: p.strategy, PRESET: p.preset or "", SEED: p.seed,
                      **p.varied} for p in spec.points])
        return 0
    models = {spec.key(p) for p in spec.points}  # grids that reach one model share it
    before = len(models & ResultStore(out).done())
    store = run_sweep(spec, out, progress=not args.quiet, workers=args.workers)
    planned, stale = store.planned_frame()  # rows of an earlier edit of the spec stay stored
    # each model's first place in the spec (two grids may reach one model)
    order = {spec.key(p): i for i, p in reversed(list(enumerate(spec.points)))}
    rows = sorted(({k: v for k, v in r.items() if not pd.isna(v)}
                   for r in planned.to_dict("records") if r.get(SWEEP) == spec.name),
                  key=lambda r: order.get(r.get(POINT_ID), len(order)))  # the spec's order
    varied = sorted({k for r in rows for k in r if k.startswith("grid.") and k != "grid.strategy"})
    seeds = [SEED] if len({r.get(SEED) for r in rows}) > 1 else []
    print_table(rows, [c for c in [STRATEGY, *varied, *seeds, *SUMMARY[1:]]
                       if any(c in r for r in rows)])
    shared = len(spec.points) - len(models)
    print(f"{spec.name}: {len(spec.points)} points"
          + (f" ({shared} the same model as another grid's: measured once, labelled by "
             "both)" if shared else "") + f", {before} already done, "
          f"results in {out}/results.csv and results.json"
          + (f" ({stale} stored rows of an earlier plan are kept there, not shown)"
             if stale else ""))
    return 0
