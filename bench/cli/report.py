"""``fusebench report``: the main job (``bench.report.build_report``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.report_plans import PLANS

from .common import workers_count

# `fusebench report` from a fresh clone (minus the install), wall time as /usr/bin/time saw it
QUICK_MEASURED = ("9-15 min wall from a fresh clone, depending on the machine's speed: "
                  "521 s and 529 s on 2 Intel Xeon cores (matmul peak measured 384-454 "
                  "GFLOP/s), 604 s (peak 390, before two speed-ups) and 647 s (peak 347) "
                  "on other days of the same VM and 762 s on a slow one (peak 246-263); "
                  "before finetune's batches were grouped by image (~45 s more): 582 s on "
                  "another Intel Xeon VM (peak 417), 597-682 s on 2 AMD EPYC cores (twelve "
                  "runs, peak 193-219), 905 s on 2 Intel Xeon cores of a slower VM (peak 227)")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="run what is missing and write the comparison report")
    p.add_argument("--plan", "--preset", dest="plan", choices=sorted(PLANS), default="quick",
                   help="the report's plan. quick: every strategy at CPU scale, 1 seed; measured "
                   f"{QUICK_MEASURED}, points trained 2 at a time (the environment section "
                   "of the page breaks it down). paper: the same strategies for 3 seeds, 18 "
                   "epochs (encoder-fusion) and 10 (frozen-LM), plus the JAR Table 4 "
                   "ablations trained (39 points, 12 epochs): 87 trained points, roughly "
                   "3-4 h on 2 CPU cores with points 2 at a time (estimated from the quick "
                   "run's per-epoch times; its encoder-fusion sweep alone, 21 of those "
                   "points, measured 41 min); tiny models, so no GPU is needed "
                   "(--device is per sweep spec)")
    p.add_argument("--out", default="reports", help="report directory (default: reports)")
    p.add_argument("--runs", default=str(Path("runs") / "report"),
                   help="results directory: each sweep's rows and runs (default: runs/report)")
    p.add_argument("--data", help="dataset directory (default: built-in synthvqa). On other "
                   "data the encoder-fusion rows train their encoder from raw pixels (tiny's "
                   "from-pixels recipe) and the frozen-LM rows' backbones are pretrained on it "
                   "first: measured from a fresh clone on 2 cores, 967 s for a 1500-image VQA "
                   "v2-style set with 7129 training questions; 1789-2482 s for a "
                   "3000-image one with 12,000 (about twice the questions; on two slower "
                   "VMs)")
    p.add_argument("--workers", type=workers_count, default=0,
                   help="sweep points trained at once, each in its own process on its share "
                   "of the cores (default 0: one per core, at most 4; 1 = one after another)")
    p.add_argument("--render-only", action="store_true",
                   help="render from stored results; run nothing")
    p.add_argument("--no-progress", dest="progress", action="store_false",
                   help="no bars and no per-epoch lines: one line per stage and per "
                        "finished point")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from bench.report import build_report

    build_report(args.plan, args.out, args.runs, args.data, args.render_only,
                 workers=args.workers, progress=args.progress)
    return 0
