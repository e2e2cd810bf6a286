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

import json
import time
from pathlib import Path

import pandas as pd

from . import stages
from .atomic_files import atomic_write_csv, atomic_write_json, check_writable_dir
from .compare import compare
from .controls import load_scores
from .data.baselines import floors
from .data.loaders import detect_format, load_examples, split_sources
from .data.synthvqa import ensure_data
from .errors import UserError
from .report_answer_types import TYPES_FILE, read_answer_types, store_answer_types
from .report_plans import PLANS, SWEEPS_DIR
from .report_render import render
from .row import POINT_ID, TEST_ACC
from .stats import Interval
from .store import ResultStore
from .sweep import load_spec
from .sweep_run import run_sweeps
from .workers import kept_pools, submit

FLOOR_INTERVAL = ("ci_lo", "ci_hi")  # floors.csv: 95 % bootstrap bounds of test accuracy, %


def build_report(plan: str = "quick", out: str | Path = "reports",
                 runs: str | Path = Path("runs") / "report", data: str | Path | None = None,
                 render_only: bool = False, workers: int = 0, progress: bool = True) -> Path:
    """Run the plan's missing points (unless ``render_only``), then write the page; returns
    its path. Prints one line per stage and, after work, where the time went. ``workers``:
    points at once (``bench.sweep_run.run_sweeps``: the plan's sweeps share one pool; 0 =
    one per core); without ``progress`` the sweeps draw no bar and print no per-point or
    per-epoch line."""
    start = time.perf_counter()
    runs, out = check_writable_dir(runs), check_writable_dir(out)
    specs = [load_spec(_spec_path(name)) for name in PLANS[plan]]
    stages.reset()
    if not render_only:
        with stages.stage("data"):
            data_dir = ensure_data(data)
            detect_format(data_dir)  # data that cannot be read stops here, before any plan
        tables: list = []

        def tables_beside(pool_workers: int) -> None:  # counted, not timed: in the pool
            if not _tables_stored(runs):
                tables.append(submit(_store_tables, data_dir, runs, workers=pool_workers))

        for spec in specs:
            if spec.mode == "train":
                spec.data = str(data_dir)
            print(f"[report] {spec.name}: {len(spec.points)} points", flush=True)
        with kept_pools():  # the sweeps share their worker processes
            stores = run_sweeps([(spec, runs / spec.name) for spec in specs], workers=workers,
                                progress=progress, beside=tables_beside)
            ran = sum(store.ran for store in stores)
            with stages.stage("floors and JAR paper tables"):
                if tables:
                    stages.record_stage("computed in the pool, beside the sweeps",
                                        tables[0].result())
                else:
                    _store_tables(data_dir, runs)
        if ran:  # a rerun that only renders keeps the timing of the run that did the work
            timed = {"stages": stages.records(), "wall_s": time.perf_counter() - start}
            atomic_write_json(runs / "stages.json", timed)

    stored = {spec.name: ResultStore(runs / spec.name) for spec in specs}
    results = {name: _rows(store) for name, store in stored.items()}
    if render_only and all(frame.empty for frame in results.values()):
        raise UserError(f"--render-only: {runs} holds no stored results of the {plan} plan "
                        "(run the report without --render-only, or give --runs the results "
                        "directory of one that ran)")  # an empty page would replace --out's
    unfinished = {name: store.unfinished() for name, store in stored.items()}
    if (runs / "jar_paper.csv").is_file():
        results["jar_paper"] = pd.read_csv(runs / "jar_paper.csv")
    with stages.stage("render"):
        floor_file = runs / "floors.csv"
        floor_frame = pd.read_csv(floor_file) if floor_file.is_file() else None
        floor_values, floor_intervals = _floors(floor_frame)
        answer_types = read_answer_types(runs, floor_frame)
        page = render(results, out, plan=plan, floors=floor_values,
                      floor_intervals=floor_intervals,
                      timing=_read_json(runs / "stages.json"),
                      splits=_read_json(runs / "splits.json"),
                      scores=_point_scores(runs, results),
                      unfinished={k: n for k, n in unfinished.items() if n},
                      answer_types=answer_types)
    if not render_only:
        print("[report] where the time went:\n" + stages.text_table(stages.records()))
    print(f"report written to {page} ({time.perf_counter() - start:.0f} s)")
    return page


def _read_json(path: Path) -> dict | None:
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


def _rows(store: ResultStore) -> pd.DataFrame:
    """The sweep's rows of the points its spec listed when it last ran: rows of an earlier
    edit of a preset or spec are not shown (nor merged with today's as other seeds)."""
    frame, left_out = store.planned_frame()
    if left_out:
        print(f"[report] {store.dir.name}: {left_out} stored rows of an earlier plan left "
              "out", flush=True)
    return frame


def _point_scores(runs: Path, results: dict[str, pd.DataFrame]) -> dict[str, dict]:
    """Per-question test scores of every trained point that stored them, by point_id
    (a sweep keeps each point's run under ``<sweep>/points/<point_id>/``)."""

    out = {}
    for name, frame in results.items():
        if POINT_ID not in frame.columns or TEST_ACC not in frame.columns:
            continue
        for pid in frame[POINT_ID].dropna():
            stored = load_scores(runs / name / "points" / str(pid))
            if stored is not None:
                out[str(pid)] = stored
    return out


def _store_tables(data_dir: Path, runs: Path) -> float:
    """The floors and the JAR paper tables (``_store_floors``, ``_store_jar_paper``); the
    seconds they took (in a worker process, beside the FLOPs-only sweeps)."""
    start = time.perf_counter()
    _store_floors(data_dir, runs)
    _store_splits(data_dir, runs)
    store_answer_types(data_dir, runs)
    _store_jar_paper(runs)
    return time.perf_counter() - start


def _store_splits(data_dir: Path, runs: Path) -> None:
    """Each split's size and the file split it reads (``split_sources``): the page says
    what its accuracies were measured on."""
    fmt = detect_format(data_dir)
    atomic_write_json(runs / "splits.json", {
        split: {"from": source.describe(),
                "questions": len(load_examples(data_dir, split, fmt=fmt))}
        for split, source in split_sources(data_dir, fmt).items()})


def _tables_stored(runs: Path) -> bool:
    return _floors_stored(runs) and all((runs / name).is_file()
                                        for name in ("jar_paper.csv", TYPES_FILE))


def _floors_stored(runs: Path) -> bool:
    """floors.csv with its intervals and per-type accuracies (a file from before them is
    written again)."""
    path = runs / "floors.csv"
    if not path.is_file():
        return False
    columns = pd.read_csv(path).columns
    return FLOOR_INTERVAL[0] in columns and any(c.startswith("acc[") for c in columns)


def _store_floors(data_dir: Path, runs: Path) -> None:
    """Majority-answer and question-only accuracy on the test split (computed once)."""
    path = runs / "floors.csv"
    if _floors_stored(runs):
        return

    frame = pd.DataFrame([{"baseline": r["baseline"], TEST_ACC: 100 * r["accuracy"],
                           FLOOR_INTERVAL[0]: 100 * r["ci_lo"],
                           FLOOR_INTERVAL[1]: 100 * r["ci_hi"],
                           **{k: 100 * v for k, v in r.items() if k.startswith("acc[")}}
                          for r in floors(data_dir) if r["split"] == "test"])
    atomic_write_csv(path, frame)


def _store_jar_paper(runs: Path) -> None:
    """The JAR paper's FLOPs tables at jar-base, ours beside theirs (meta device)."""
    path = runs / "jar_paper.csv"
    if path.is_file():
        return

    atomic_write_csv(path, pd.DataFrame(compare("jar-base")["rows"]))


def _floors(frame: pd.DataFrame | None) -> tuple[dict[str, float], dict[str, Interval]]:
    """Floor name -> test accuracy (%), and -> its interval where floors.csv has one."""
    if frame is None:
        return {}, {}
    values = dict(zip(frame["baseline"], frame[TEST_ACC]))
    if not set(FLOOR_INTERVAL) <= set(frame.columns):
        return values, {}
    return values, {r["baseline"]: Interval(r[TEST_ACC], r[FLOOR_INTERVAL[0]],
                                            r[FLOOR_INTERVAL[1]]) for _, r in frame.iterrows()}


