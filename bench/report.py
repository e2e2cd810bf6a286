"""``fusebench report``: the main job. Runs what is missing, then writes ``reports/``.

A report plan is a list of sweep specs (``sweeps/*.yaml``). Each sweep stores its rows
under ``runs/report/<sweep>/`` and skips points already done, so a rerun only renders.
The page is rendered from those rows and the per-question test scores stored beside
each trained point (``--render-only`` never trains), top to bottom: comparison table with
accuracy floors, accuracies with bootstrap intervals, blind control and paired gaps,
accuracy-vs-GFLOPs plot, the JAR and eP-ALM paper tables beside ours, whether our runs
reproduce the papers' accuracy orderings, FLOPs-scaling plots, environment.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd

from . import stages
from .atomic_files import atomic_write_csv, atomic_write_json, check_writable_dir
from .errors import UserError
from .store import ResultStore
from .sweep import load_spec, run_sweep

SWEEPS_DIR = Path(__file__).resolve().parent.parent / "sweeps"
# report plan -> the sweep specs it runs, each rendered in its own section (a model
# preset, ``--preset`` of train/profile, is something else: a config bundle)
PLANS = {
    "quick": ["strategies_quick.yaml", "frozen_lm_quick.yaml", "flops_scaling.yaml",
              "token_scaling.yaml", "epalm_variants.yaml"],
    "paper": ["strategies_paper.yaml", "frozen_lm_paper.yaml", "flops_scaling.yaml",
              "token_scaling.yaml", "jar_table4_train.yaml",
              "epalm_variants.yaml"],
}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="run what is missing and write the comparison report")
    p.add_argument("--plan", "--preset", dest="plan", choices=sorted(PLANS), default="quick",
                   help="the report's plan. quick: every strategy at CPU scale, 1 seed; measured "
                   "32 min wall from a fresh clone on 2 CPU cores (AMD EPYC; the "
                   "environment section of the page breaks it down). paper: the same "
                   "strategies for 3 seeds with 3x (encoder-fusion) and 5x (frozen-LM) the "
                   "epochs, plus the JAR Table 4 ablations trained: roughly 8 h on 2 CPU "
                   "cores (estimated from the quick run's per-point times, not measured); "
                   "tiny models, so no GPU is needed (--device is per sweep spec)")
    p.add_argument("--out", default="reports", help="report directory")
    p.add_argument("--runs", default=str(Path("runs") / "report"), help="results directory")
    p.add_argument("--data", help="dataset directory (default: built-in synthvqa)")
    p.add_argument("--render-only", action="store_true",
                   help="render from stored results; run nothing")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    runs, out = check_writable_dir(args.runs), check_writable_dir(args.out)
    specs = [load_spec(_spec_path(name)) for name in PLANS[args.plan]]
    stages.reset()
    if not args.render_only:
        from .data.synthvqa import ensure_data

        with stages.stage("data"):
            data_dir = ensure_data(args.data)
        ran = 0
        for spec in specs:
            if spec.mode == "train":
                spec.data = str(data_dir)
            print(f"[report] {spec.name}: {len(spec.points)} points", flush=True)
            with stages.stage(f"sweep {spec.name} ({len(spec.points)} points)"):
                ran += run_sweep(spec, runs / spec.name).ran
        with stages.stage("floors and JAR paper tables"):
            _store_floors(data_dir, runs)
            _store_jar_paper(runs)
        if ran:  # a rerun that only renders keeps the timing of the run that did the work
            timed = {"stages": stages.records(), "wall_s": time.perf_counter() - start}
            atomic_write_json(runs / "stages.json", timed)
    from .report_render import render

    results = {spec.name: _rows(runs / spec.name) for spec in specs}
    if (runs / "jar_paper.csv").is_file():
        results["jar_paper"] = pd.read_csv(runs / "jar_paper.csv")
    with stages.stage("render"):
        page = render(results, out, plan=args.plan, floors=_read_floors(runs),
                      timing=_read_json(runs / "stages.json"),
                      scores=_point_scores(runs, results))
    if not args.render_only:
        print("[report] where the time went:\n" + stages.text_table(stages.records()))
    print(f"report written to {page} ({time.perf_counter() - start:.0f} s)")
    return 0


def _read_json(path: Path) -> dict | None:
    import json

    try:
        return json.loads(path.read_text()) if path.is_file() else None
    except ValueError:
        return None


def _spec_path(name: str) -> Path:
    path = SWEEPS_DIR / name
    if not path.is_file():
        raise UserError(f"report spec {path} is missing (the report reads sweeps/ next to the "
                        "installed package; install with pip install -e .)")
    return path


def _rows(directory: Path) -> pd.DataFrame:
    return ResultStore(directory).frame()


def _point_scores(runs: Path, results: dict[str, pd.DataFrame]) -> dict[str, dict]:
    """Per-question test scores of every trained point that stored them, by point_id
    (a sweep keeps each point's run under ``<sweep>/points/<point_id>/``)."""
    from .controls import load_scores

    out = {}
    for name, frame in results.items():
        if "point_id" not in frame.columns or "test_vqa_acc" not in frame.columns:
            continue
        for pid in frame["point_id"].dropna():
            stored = load_scores(runs / name / "points" / str(pid))
            if stored is not None:
                out[str(pid)] = stored
    return out


def _store_floors(data_dir: Path, runs: Path) -> None:
    """Majority-answer and question-only accuracy on the test split (computed once)."""
    path = runs / "floors.csv"
    if path.is_file():
        return
    from .data.baselines import floors

    frame = pd.DataFrame([{"baseline": r["baseline"], "test_vqa_acc": 100 * r["accuracy"]}
                          for r in floors(data_dir) if r["split"] == "test"])
    atomic_write_csv(path, frame)


def _store_jar_paper(runs: Path) -> None:
    """The JAR paper's FLOPs tables at jar-base, ours beside theirs (meta device)."""
    path = runs / "jar_paper.csv"
    if path.is_file():
        return
    from .compare import compare

    atomic_write_csv(path, pd.DataFrame(compare("jar-base")["rows"]))


def _read_floors(runs: Path) -> dict[str, float]:
    path = runs / "floors.csv"
    if not path.is_file():
        return {}
    frame = pd.read_csv(path)
    return dict(zip(frame["baseline"], frame["test_vqa_acc"]))


