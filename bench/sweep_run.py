"""Running sweeps: every point a spec lists that is not stored yet, one row each, stored as
it finishes (a killed run resumes where it stopped).

``run_sweep`` runs one spec (``fusebench sweep``). ``run_sweeps`` runs several (a report's
plan) in *one* pool of worker processes: the trained points of every spec are profiled
first, in this process and alone (latency, memory and the matmul peak want a quiet
machine), then every trained point and every counted-only point (``measure: never``: FLOP
counts, which a neighbour does not distort) queue in the same workers, in the specs' order.
No core waits for one sweep's last point before the next sweep starts, and the many short
FLOP counts fill the end, where one worker would otherwise idle beside the last long point.
Timed profile sweeps, training on a GPU and ``workers=1`` run one point after another.
"""

from __future__ import annotations

import contextlib
import functools
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import UserError
from .experiment import (
    as_trained,
    prepare,
    profile_and_train,
    run_experiment,
    timed_profile,
    training_mfu,
)
from .lock import output_lock
from .profiling import over_best_peak
from .row import PEAK_GFLOPS, POINT_ID, PROFILE_S, TRAIN_MFU, TRAIN_WORKERS
from .spec import ModelSpec
from .stages import record_stage, stage
from .store import ResultStore
from .sweep import Point, SweepSpec
from .train import epoch_line_printer
from .train_config import TrainConfig
from .validate import short
from .workers import auto_workers, run_each, threads_per_worker


@dataclass(eq=False)  # one per spec being run: compared by identity
class _Sweep:
    """One spec being run: its directory's store and the points it still lacks."""

    spec: SweepSpec
    store: ResultStore
    todo: list[Point]
    keys: dict[int, str] = field(default_factory=dict)  # id(point) -> its point_id
    stored: int = 0  # rows this run has stored
    worker_s: float = 0.0  # its points' summed time in the workers
    early: dict[int, tuple] = field(default_factory=dict)  # rows done before their turn

    @property
    def name(self) -> str:
        return self.spec.name

    def poolable(self) -> bool:
        """Whether its points may run in worker processes beside others: trained on the
        CPU, or only counted (nothing timed)."""
        if not self.todo:
            return False
        if self.spec.mode == "train":
            return self.spec.recipe(self.todo[0]).get("device", "cpu") == "cpu"
        return self.spec.profile.get("measure") == "never"

    def store_row(self, point: Point, row: dict[str, Any]) -> None:
        row.update(sweep=self.name, mode=self.spec.mode, point_id=self.keys[id(point)],
                   **{f"grid.{k}": v for k, v in point.varied.items()})
        self.store.add(row)
        self.stored += 1

    def in_spec_order(self, point: Point, row: dict[str, Any]) -> list[tuple[Point, dict]]:
        """``point``'s row and the rows that waited for it: those that may be stored now
        for the rows to stay in the spec's order."""
        self.early[next(i for i, p in enumerate(self.todo) if p is point)] = (point, row)
        ready = []
        while self.stored + len(ready) in self.early:
            ready.append(self.early.pop(self.stored + len(ready)))
        return ready


def run_sweep(spec: SweepSpec, out_dir: str | Path, *, progress: bool = True,
              run_point=None, workers: int = 1) -> ResultStore:
    """Run every point not yet in ``out_dir``'s results; return the store. The directory
    is locked meanwhile: a second sweep into it gets one error line naming this one.
    ``workers`` > 1 trains that many points at once in their own processes
    (``bench.workers``; train mode on the CPU only; 0 = one per core, ``auto_workers``);
    each row is stored as it finishes."""
    return run_sweeps([(spec, out_dir)], progress=progress, run_point=run_point,
                      workers=workers)[0]


def run_sweeps(sweeps: list[tuple[SweepSpec, str | Path]], *, progress: bool = True,
               run_point=None, workers: int = 1,
               beside: Callable[[int], None] | None = None) -> list[ResultStore]:
    """``run_sweep`` for each ``(spec, out_dir)``, their poolable points in one pool of
    ``workers`` processes (module docstring); returns the stores in the same order.
    ``beside(workers)`` is called once the pool's trained points are profiled, before its
    jobs queue: work it submits to the kept pool (``bench.workers.submit``) runs first,
    beside them. Without a pool it is not called."""
    if workers < 0:
        raise UserError(f"workers must be 0 (one per core) or more, not {workers}")
    with contextlib.ExitStack() as locks:
        opened = [_open(locks, spec, Path(out)) for spec, out in sweeps]
        workers = workers or auto_workers(sum(len(s.todo) for s in opened))
        pooled = [s for s in opened if run_point is None and s.poolable()]
        if workers < 2 or sum(len(s.todo) for s in pooled) < 2:
            pooled = []
        # no bar (a log, or --no-progress): a line per finished point; a log also gets a
        # line per training epoch, so no point runs for minutes without a line
        lines = not (progress and sys.stderr.isatty())
        epoch_lines = progress and not sys.stderr.isatty()
        if pooled:
            names = ", ".join(s.name for s in pooled)
            n = sum(len(s.todo) for s in pooled)
            with stage(f"sweeps {names} in one pool ({n} points)"):
                _run_pooled(pooled, workers, progress, lines, epoch_lines, beside)
        for s in opened:
            if s not in pooled and s.todo:
                with stage(f"sweep {s.name} ({len(s.todo)} points)"):
                    _run_serial(s, run_point or functools.partial(_run_point,
                                                                  epoch_lines=epoch_lines),
                                progress, lines)
        for s in opened:
            s.store.ran = len(s.todo)
        return [s.store for s in opened]


def _open(locks: contextlib.ExitStack, spec: SweepSpec, out_dir: Path) -> _Sweep:
    """Lock ``out_dir`` (until ``locks`` closes), record today's plan, find what is left."""
    locks.enter_context(output_lock(out_dir, "sweep directory"))
    store = ResultStore(out_dir)
    points, keys = _distinct_points(spec)
    store.record_plan(list(keys.values()))  # first: a run killed midway names today's points
    _label_stored_rows(store, points, keys)
    done = store.done()
    todo = [p for p in points if keys[id(p)] not in done]
    return _Sweep(spec, store, todo, keys)


def _distinct_points(spec: SweepSpec) -> tuple[list[Point], dict[int, str]]:
    """The spec's points, one per model: two grids that reach the same resolved config (the
    scaling sweep's 224-pixel point of the image-size grid is the width grid's 768) are
    measured once, and the row carries both grids' labels, so each grid's plot has it.
    Also each kept point's ``point_id`` by ``id(point)``."""
    first: dict[str, Point] = {}
    for point in spec.points:
        kept = first.setdefault(spec.key(point), point)
        if kept is not point:
            kept.varied = {**kept.varied, **{k: v for k, v in point.varied.items()
                                             if k not in kept.varied}}
    return list(first.values()), {id(p): key for key, p in first.items()}


def _label_stored_rows(store: ResultStore, points: list[Point], keys: dict[int, str]) -> None:
    """Give a finished point's stored row the grid labels its point has now (a row stored
    before its duplicate was merged in lacked the other grid's)."""
    rows = {row.get(POINT_ID): row for row in store.rows}
    for point in points:
        row = rows.get(keys[id(point)])
        labels = {f"grid.{k}": v for k, v in point.varied.items()}
        if row is not None and any(row.get(k) != v for k, v in labels.items()):
            store.add({**row, **labels})


def _bar(total: int, desc: str, progress: bool):
    """A bar on a terminal; nothing where stderr is not one (a log gets lines instead)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="point", disable=None if progress else True,
                leave=False)


def _run_serial(sweep: _Sweep, run_point, progress: bool, lines: bool) -> None:
    spec, out_dir = sweep.spec, sweep.store.dir
    bar, rows = _bar(len(sweep.todo), spec.name, progress), {}
    for point in sweep.todo:
        timed = stage(_label(point)) if spec.mode == "train" else contextlib.nullcontext()
        with timed:
            rows[id(point)] = _timed_point(spec, point, out_dir, run_point)
        sweep.store_row(point, rows[id(point)])
        _advance(bar, sweep, point, rows[id(point)], lines)
    bar.close()
    _restore_over_best_peak(sweep, rows)
    if lines and spec.mode != "train":
        print(f"[{spec.name}] {len(sweep.todo)} points profiled", flush=True)


def _restore_over_best_peak(sweep: _Sweep, rows: dict[int, dict]) -> None:
    """Store again, over the best matmul peak measured (``over_best_peak``), the rows this
    run timed one after another: each was stored as it finished (a killed run keeps it),
    over the peak measured at the first profile, which one slow moment can set too low."""
    rebased = over_best_peak(rows)
    for point in sweep.todo:
        row = rebased[id(point)]
        if row is rows[id(point)] or row[PEAK_GFLOPS] == rows[id(point)].get(PEAK_GFLOPS):
            continue  # nothing measured, or the same peak
        if TRAIN_MFU in row:
            row[TRAIN_MFU] = training_mfu(row, row.get(TRAIN_WORKERS, 1))
        sweep.store.add(row)  # replaces its first row (labelled by store_row, kept here)


def _advance(bar, sweep: _Sweep, point: Point, row: dict, lines: bool) -> None:
    bar.update(1)
    bar.set_postfix_str(f"{sweep.name}: {_label(point)}")
    if lines and sweep.spec.mode == "train":
        print(f"[{sweep.name}] {sweep.stored}/{len(sweep.todo)} {_label(point)}: "
              f"{row['point_s']:.0f} s", flush=True)


def _run_pooled(sweeps: list[_Sweep], workers: int, progress: bool, lines: bool,
                epoch_lines: bool, beside: Callable[[int], None] | None) -> None:
    """Profile the trained points here, alone (which also pretrains any missing backbone
    once, before the workers need it); then all points in the workers. Trained rows are
    stored as they finish, counted ones in their spec's order."""
    trained = [s for s in sweeps if s.spec.mode == "train"]
    profiled = _profile_alone(trained, progress, lines)
    who = sweeps[0].name if len(sweeps) == 1 else "sweeps"
    counted = sum(len(s.todo) for s in sweeps) - len(profiled)
    print(f"[{who}] {len(profiled)} trained and {counted} counted points, {workers} at a "
          f"time, one process each, {threads_per_worker(workers)} torch thread(s) apiece",
          flush=True)
    if beside is not None:
        beside(workers)
    train = functools.partial(_train_point, epoch_lines=epoch_lines)
    owner = {id(s.spec): s for s in sweeps}
    jobs = [(s.spec, point, s.store.dir, train if s in trained else _run_point)
            for s in sweeps for point in s.todo]
    start, bar = time.perf_counter(), _bar(len(jobs), who, progress)
    for (spec, point, _, _), result in run_each(_timed_point, jobs, workers):
        sweep = owner[id(spec)]
        sweep.worker_s += result["point_s"]
        if sweep in trained:  # stored as they finish
            row = _trained_row(profiled[id(point)], result, workers)
            record_stage(f"{sweep.name}: {_label(point)} ({workers} at a time)",
                         row["point_s"])
            ready = [(point, row)]
        else:
            ready = sweep.in_spec_order(point, result)
        for point, row in ready:
            sweep.store_row(point, row)
            _advance(bar, sweep, point, row, lines)
        if ready and sweep.stored == len(sweep.todo):
            _sweep_done(sweep, time.perf_counter() - start, lines)
    bar.close()


def _profile_alone(trained: list[_Sweep], progress: bool, lines: bool) -> dict[int, dict]:
    """Profile rows of the trained points, by ``id(point)``: one after another in this
    process, with a bar on a terminal and a line per point in a log; their MFU over the
    better of the matmul peaks measured at the first profile and after the last."""
    points = [(s, point) for s in trained for point in s.todo]
    if not points:
        return {}
    profiled, bar = {}, _bar(len(points), "profiling", progress)
    with stage(f"profiling the {len(points)} trained points alone"):
        spent = 0.0  # in the profiles themselves: loading data or backbones is done once
        for i, (s, point) in enumerate(points, 1):
            model, settings, _ = _point_job(s.spec, point)
            profiled[id(point)] = timed_profile(as_trained(model, s.spec.data), settings)
            spent += profiled[id(point)][PROFILE_S]
            bar.update(1)
            if lines:
                print(f"[{s.name}] profiled {_label(point)} alone ({i}/{len(points)}, "
                      f"~{spent / i * (len(points) - i):.0f} s left)", flush=True)
        profiled = over_best_peak(profiled)
    bar.close()
    return profiled


def _trained_row(profile_row: dict, result: dict, workers: int) -> dict[str, Any]:
    row = {**profile_row, **result, TRAIN_WORKERS: workers,
           "point_s": profile_row[PROFILE_S] + result["point_s"]}
    row[TRAIN_MFU] = training_mfu(row, workers)
    return row


def _sweep_done(sweep: _Sweep, seconds: float, lines: bool) -> None:
    """One stage line per pooled sweep: its points' summed time in the workers, and how far
    into the pool its last point finished."""
    if lines and sweep.spec.mode != "train":
        print(f"[{sweep.name}] {len(sweep.todo)} points profiled", flush=True)
    record_stage(f"sweep {sweep.name} ({len(sweep.todo)} points, {sweep.worker_s:.0f} s "
                 "of worker time): complete, s into the pool", seconds)


def _label(point: Point) -> str:
    """``strategy key=value ...`` for a log line or a stage, with the seed unless 0."""
    varied = [f"{k}={v if isinstance(v, str) else short(v)}"
              for k, v in point.varied.items() if k != "strategy"]
    return " ".join([point.strategy, *varied, *([f"seed={point.seed}"] if point.seed else [])])


def _timed_point(spec: SweepSpec, point: Point, out_dir: Path, run_point) -> dict:
    start = time.perf_counter()
    row = run_point(spec, point, out_dir)
    return {**row, "point_s": time.perf_counter() - start}


def _point_job(spec: SweepSpec, point: Point) -> tuple[ModelSpec, dict, TrainConfig]:
    """The point's model, profile settings and training recipe."""
    settings = {"batch_size": 1, "repeats": 5, "warmup": 1, **spec.profile, "seed": point.seed}
    cfg = TrainConfig.from_mapping({"progress": False, **spec.recipe(point), "seed": point.seed})
    return ModelSpec(point.strategy, point.preset, point.overrides), settings, cfg


def _epoch_line_printer(spec: SweepSpec, point: Point, epochs: int, enabled: bool):
    """An ``on_eval`` callback printing one line per validated epoch, with what is left
    (``None`` when not ``enabled``)."""
    return epoch_line_printer(f"[{spec.name}] {_label(point)}", epochs) if enabled else None


def _train_point(spec: SweepSpec, point: Point, out_dir: Path,
                 epoch_lines: bool = False) -> dict[str, Any]:
    """Train and evaluate one point (in a worker process): its row's training figures."""
    model, _, cfg = _point_job(spec, point)
    on_eval = _epoch_line_printer(spec, point, cfg.epochs, epoch_lines)
    # the sweep's own process said it, if anything, when it profiled the point
    return run_experiment(prepare(model, spec.data, announce=False), cfg,
                          out_dir / "points" / spec.key(point),
                          overwrite=True, on_eval=on_eval)


def _run_point(spec: SweepSpec, point: Point, out_dir: Path,
               epoch_lines: bool = False) -> dict[str, Any]:
    """Profile the point; in train mode, as trained on the data, then train and evaluate
    it (``bench.experiment.profile_and_train``, as a study trial does)."""
    model, settings, cfg = _point_job(spec, point)
    if spec.mode != "train":
        return timed_profile(model, settings)
    on_eval = _epoch_line_printer(spec, point, cfg.epochs, epoch_lines)
    return profile_and_train(prepare(model, spec.data), cfg,
                             out_dir / "points" / spec.key(point), settings, on_eval=on_eval)
