"""The cost of locking on a sweep: ``run_sweep`` over 50 points whose work is stubbed
out, so only the harness's bookkeeping is timed, with the locks and merge-on-write
(the directory's flock for the sweep; per point a short flock, a re-read of results.json
and the merge) against the same sweep with the old last-writer-wins store (no locks, no
re-read). The difference per point is the price of not losing rows; a real point
profiles or trains for seconds to hours."""

from contextlib import nullcontext

import pytest

import bench.store
import bench.sweep_run
from bench.store import ResultStore, _clean
from bench.sweep import parse_spec
from bench.sweep_run import run_sweep

POINTS = 50
SPEC = parse_spec({"name": "locks", "preset": "tiny", "profile": {"measure": "never"},
                   "grid": {"strategy": ["concat"], "depth": list(range(1, POINTS + 1))}})


def _stub_point(spec, point, out_dir):
    return {"strategy": point.strategy, "gflops": 1.0, "params_total": 1000}


def _unlocked_add(self, row):  # the store before issue 16: rewrite the in-memory copy
    row = {k: _clean(v) for k, v in row.items()}
    self._rows = [r for r in self._rows if r.get("point_id") != row.get("point_id")]
    self._rows.append(row)
    self.flush()


def _rounds(benchmark, tmp_path):
    counter = iter(range(10**6))

    def setup():
        return (SPEC, tmp_path / f"out{next(counter)}"), {"progress": False,
                                                         "run_point": _stub_point}

    benchmark.pedantic(run_sweep, setup=setup, rounds=7, iterations=1, warmup_rounds=1)
    assert len(ResultStore(tmp_path / "out0").rows) == POINTS


@pytest.mark.benchmark(group="sweep-locking")
def test_sweep_50_points_with_locks(benchmark, tmp_path):
    _rounds(benchmark, tmp_path)


@pytest.mark.benchmark(group="sweep-locking")
def test_sweep_50_points_without_locks(benchmark, tmp_path, monkeypatch):
    monkeypatch.setattr(bench.sweep_run, "output_lock", lambda *a, **k: nullcontext())
    monkeypatch.setattr(bench.store, "file_lock", lambda *a, **k: nullcontext())
    monkeypatch.setattr(ResultStore, "add", _unlocked_add)
    _rounds(benchmark, tmp_path)
