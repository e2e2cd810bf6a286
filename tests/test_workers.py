"""Sweep points trained side by side (``bench.workers``): the same figures as one after
another, profiled alone, and a failing point surfaces as its own error."""

import pytest
import torch

from bench import stages
from bench.errors import UserError
from bench.sweep import parse_spec
from bench.sweep_run import run_sweep, run_sweeps
from bench.workers import auto_workers, kept_pools, run_each, submit

ACCURACY = ["val_vqa_acc", "test_vqa_acc", "blind_vqa_acc", "train_steps"]


def _spec_mapping(small_data) -> dict:
    return {"name": "pair", "mode": "train", "preset": "tiny", "data": str(small_data),
            "grid": {"strategy": ["concat", "late_fusion"]},
            "train": {"epochs": 1, "batch_size": 32}, "profile": {"measure": "never"}}


def _spec(small_data):
    return parse_spec(_spec_mapping(small_data))


def test_parallel_points_train_exactly_as_serial_ones_on_as_many_threads(small_data, tmp_path,
                                                                         monkeypatch):
    """Bit for bit only at equal thread counts: 1 and 2 threads round reductions
    differently (cross_attn tiny: losses differ in the 7th digit by step 170), which over a
    10-epoch run moves accuracies like another seed would (README)."""
    spec = _spec(small_data)
    monkeypatch.setattr("bench.workers.available_cores", lambda: 2)  # 2 workers x 1 thread
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        serial = run_sweep(spec, tmp_path / "serial", progress=False, workers=1)
    finally:
        torch.set_num_threads(threads)
    parallel = run_sweep(spec, tmp_path / "parallel", progress=False, workers=2)
    by_strategy = {r["strategy"]: r for r in serial.rows}
    assert {r["strategy"] for r in parallel.rows} == set(by_strategy)
    for row in parallel.rows:
        assert row["train_workers"] == 2
        assert row["point_s"] >= row["profile_s"]
        for key in ACCURACY:  # 1 thread or 2, the same weights and scores
            assert row[key] == pytest.approx(by_strategy[row["strategy"]][key], abs=1e-9), key
    assert "train_workers" not in serial.rows[0]
    # a rerun finds every point done and starts no worker
    assert run_sweep(spec, tmp_path / "parallel", progress=False, workers=2).ran == 0


def test_in_a_log_each_point_prints_a_line_per_epoch(small_data, tmp_path, capsys):
    """No bar shows where stderr is not a terminal: a point still says how far it is after
    every epoch (with what is left), and nothing writes carriage returns."""
    spec = parse_spec({**_spec_mapping(small_data), "train": {"epochs": 2, "batch_size": 32}})
    run_sweep(spec, tmp_path, progress=True, workers=1)
    out, err = capsys.readouterr()
    for strategy in ("concat", "late_fusion"):
        assert f"[pair] {strategy}: epoch 1/2, val " in out
        assert f"[pair] {strategy}: epoch 2/2, val " in out and " s left" in out
    assert "\r" not in out + err


def _half(x: int) -> float:
    if x == 3:
        raise ValueError("three is odd here")
    return x / 2


def test_a_failing_job_raises_after_the_others_finish():
    with pytest.raises(ValueError, match="three is odd"):
        list(run_each(_half, [(1,), (3,)], workers=2))
    assert sorted(r for _, r in run_each(_half, [(1,), (2,), (4,)], workers=2)) == [0.5, 1, 2]


def _pid(_: int) -> int:
    import os

    return os.getpid()


def test_kept_pools_reuse_their_processes_until_the_block_ends():
    def pids():
        return {pid for _, pid in run_each(_pid, [(i,) for i in range(4)], workers=2)}

    with kept_pools():
        first = pids() | pids() | pids()
        assert len(first) <= 2  # three calls, one pool of two processes (not 3 spawns)
        with pytest.raises(ValueError, match="three is odd"):
            list(run_each(_half, [(3,)], workers=2))
        assert pids().isdisjoint(first)  # a failed call's pool is not reused
    assert pids().isdisjoint(first)  # outside the block every call spawns its own


def _features_folder(_: int) -> str:
    from bench import cache

    return str(cache._THROUGH)


def test_a_pools_workers_share_one_features_folder_deleted_with_the_pool():
    """``bench.cache.share_through``: the workers of one pool read each other's frozen
    features from one temporary folder, which goes when the pool does."""
    from pathlib import Path

    with kept_pools():
        folders = {f for _, f in run_each(_features_folder, [(i,) for i in range(4)], 2)}
        assert len(folders) == 1 and Path(next(iter(folders))).is_dir()
    assert not Path(next(iter(folders))).exists()
    once = {f for _, f in run_each(_features_folder, [(0,), (1,)], workers=2)}
    assert once.isdisjoint(folders) and not Path(next(iter(once))).exists()


def _say(line: str) -> tuple[str, bool]:
    from bench import notes

    return str(notes._THROUGH), notes.say_once(line)


def test_a_note_is_said_once_by_a_pools_workers_and_once_by_a_process(capfd, tmp_path,
                                                                       monkeypatch):
    """Each worker loads the data and would say what it notes about it (questions read cut
    short): the workers of a pool say a line once between them (through a folder beside
    their shared features), and a process once."""
    from bench import notes

    results = [r for _, r in run_each(_say, [("note: the same",)] * 4, workers=2)]
    assert len({folder for folder, _ in results}) == 1
    assert sorted(said for _, said in results) == [False, False, False, True]
    assert capfd.readouterr().out.count("note: the same\n") == 1
    for folder, said_here in ((tmp_path / "a", True), (tmp_path / "a", False),
                              (tmp_path / "b", True), (None, True)):
        monkeypatch.setattr(notes, "_SAID", set())  # as another process would start
        notes.share_through(folder)
        assert notes.say_once("note: here") is said_here
        monkeypatch.setattr(notes, "_THROUGH", None)
    assert [notes.say_once("note: again") for _ in range(2)] == [True, False]


def test_worker_count_is_bounded_by_points_and_cores(monkeypatch):
    monkeypatch.setattr("bench.workers.available_cores", lambda: 2)
    assert auto_workers(7) == 2
    assert auto_workers(1) == 1
    monkeypatch.setattr("bench.workers.available_cores", lambda: 64)
    assert auto_workers(50) == 4


def test_negative_workers_is_a_user_error(small_data, tmp_path):
    with pytest.raises(UserError, match="workers"):
        run_sweep(_spec(small_data), tmp_path, progress=False, workers=-1)


@pytest.mark.parametrize("command", ["sweep", "report"])
@pytest.mark.parametrize("value", ["-1", "two"])
def test_bad_workers_flag_is_one_line_before_any_work(command, value, tmp_path, capsys):
    from tests.helpers import run_cli

    args = ["sweep", "sweeps/strategies_quick.yaml"] if command == "sweep" else \
        ["report", "--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "out")]
    code, _, err = run_cli([*args, "--workers", value], capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "--workers" in err
    assert not (tmp_path / "runs").exists()


def test_counted_only_points_are_counted_side_by_side_and_stored_in_spec_order(tmp_path,
                                                                              monkeypatch):
    """A profile sweep that times nothing (measure: never) runs its points in worker
    processes; rows land in the spec's order with the same FLOP counts as one at a time."""
    spec = parse_spec({"name": "counted", "mode": "profile", "preset": "tiny",
                       "grid": {"strategy": ["concat", "late_fusion", "cross_attn"],
                                "image_size": [32, 64]},
                       "profile": {"measure": "never"}})
    serial = run_sweep(spec, tmp_path / "serial", progress=False, workers=1)
    parallel = run_sweep(spec, tmp_path / "parallel", progress=False, workers=2)
    assert [r["point_id"] for r in parallel.rows] == [spec.key(p) for p in spec.points]
    assert [r["gflops"] for r in parallel.rows] == [r["gflops"] for r in serial.rows]
    timed = parse_spec({"name": "timed", "mode": "profile", "preset": "tiny",
                        "grid": {"strategy": ["concat", "late_fusion"]},
                        "profile": {"measure": "always", "repeats": 1, "warmup": 0}})

    def side_by_side(*args):
        raise AssertionError("a timed profile ran beside another process")

    monkeypatch.setattr("bench.sweep_run._run_pooled", side_by_side)
    assert run_sweep(timed, tmp_path / "timed", progress=False, workers=2).ran == 2


def test_a_plans_sweeps_share_one_pool_and_each_stores_its_own_rows(small_data, tmp_path,
                                                                    monkeypatch, capsys):
    """The report's way (``run_sweeps``): trained and counted points of several specs in
    one pool of workers, the trained ones profiled first; work handed to ``beside`` runs in
    the same processes; a timed profile sweep still runs alone; a rerun runs nothing."""
    import os

    monkeypatch.setattr("bench.workers.available_cores", lambda: 2)
    counted = parse_spec({"name": "counted", "mode": "profile", "preset": "tiny",
                          "grid": {"strategy": ["concat", "late_fusion", "cross_attn"]},
                          "profile": {"measure": "never"}})
    timed = parse_spec({"name": "timed", "mode": "profile", "preset": "tiny",
                        "grid": {"strategy": ["late_fusion"]},
                        "profile": {"measure": "always", "repeats": 1, "warmup": 0}})
    plan = [(_spec(small_data), tmp_path / "trained"), (counted, tmp_path / "counted"),
            (timed, tmp_path / "timed")]
    beside = []
    stages.reset()
    with kept_pools():
        stores = run_sweeps(plan, progress=True, workers=0,
                            beside=lambda w: beside.append(submit(_pid, 0, workers=w)))
        assert beside[0].result() != os.getpid()  # ran in a worker of the pool
    out, err = capsys.readouterr()  # a log, not a terminal: a line per step, no bar
    assert "[pair] profiled concat alone (1/2, ~" in out and "s left)" in out
    assert "[counted] 3 points profiled" in out and "\r" not in out + err
    trained_rows, counted_rows, timed_rows = (s.rows for s in stores)
    assert sorted(r["strategy"] for r in trained_rows) == ["concat", "late_fusion"]
    assert all(r["train_workers"] == 2 and r["point_s"] >= r["profile_s"] for r in trained_rows)
    assert [r["point_id"] for r in counted_rows] == [counted.key(p) for p in counted.points]
    assert len(timed_rows) == 1 and timed_rows[0]["latency_ms"] > 0
    names = [r["stage"] for r in stages.records()]
    assert "sweeps pair, counted in one pool (5 points)" in names
    assert "profiling the 2 trained points alone" in names
    assert "sweep timed (1 points)" in names  # not in the pool: timed alone, after it
    assert any(n.startswith("sweep counted (3 points, ") for n in names)
    stages.reset()
    beside.clear()
    assert [s.ran for s in run_sweeps(plan, progress=False, workers=0,
                                      beside=beside.append)] == [0, 0, 0]
    assert beside == [] and stages.records() == []
