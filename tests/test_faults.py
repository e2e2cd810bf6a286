"""Crash safety: a sweep killed with SIGKILL mid-point and rerun loses nothing, duplicates
nothing, and its result files are valid at every moment."""

import pytest
import yaml

from tests.faults import kill_when, read_rows, run, spawn

# jar-base points profile on the meta device only: ~1 s each, no weights, no timing
SWEEP = {"name": "killme", "preset": "jar-base", "profile": {"measure": "never"},
         "grid": {"strategy": ["concat"], "depth": [1, 2, 3, 4, 5, 6]}}


@pytest.mark.slow
def test_sweep_killed_mid_point_then_rerun(tmp_path):
    spec = tmp_path / "sweep.yaml"
    spec.write_text(yaml.safe_dump(SWEEP))
    out = tmp_path / "out"
    # one point after another: in a pool, rows are stored in spec order, so a slow first
    # point (its worker's first job) can hold back every other row and they land together
    args = ["sweep", str(spec), "--out", str(out), "--quiet", "--workers", "1"]
    seen: list[int] = []

    def two_points_done() -> bool:
        rows = read_rows(out)  # validates both files on every poll
        seen.append(len(rows or []))
        return rows is not None and len(rows) >= 2

    kill_when(spawn(args, tmp_path, tmp_path / "first.log"), two_points_done)
    before = read_rows(out)
    assert 2 <= len(before) < 6 and seen == sorted(seen)

    text = run(args, tmp_path, tmp_path / "second.log")
    assert f"6 points, {len(before)} already done" in text
    after = read_rows(out)
    ids = [r["point_id"] for r in after]
    assert len(after) == 6 and len(set(ids)) == 6
    assert sorted(r["cfg.depth"] for r in after) == [1, 2, 3, 4, 5, 6]
    for row in before:  # finished points are kept as they were, not re-run
        assert row in after


def _study_spec(tmp_path, data, **extra) -> str:
    spec = {"name": "killme", "strategy": "concat", "preset": "tiny", "data": str(data),
            "search_space": {"train.lr": {"type": "float", "low": 1e-4, "high": 1e-2,
                                          "log": True}},
            "train": {"epochs": 2, "batch_size": 16, "warmup_steps": 0},
            "n_trials": 3, "sampler": {"type": "random", "seed": 0},
            "pruner": {"type": "none"}, "heartbeat": {"interval": 1, "grace_period": 2},
            **extra}
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(spec))
    return str(tmp_path / "study.yaml")


def _trials(out):
    import optuna

    study = optuna.load_study(study_name="killme", storage=f"sqlite:///{out / 'study.db'}")
    return study.get_trials(deepcopy=False)


@pytest.mark.slow
def test_study_killed_mid_trial_then_rerun(tmp_path, small_data):
    """SIGKILL while trial 1 trains; the rerun finds it stale by heartbeat, fails it and
    retries its parameters; trial 0's result is kept; exactly n_trials complete."""
    out = tmp_path / "out"
    args = ["study", _study_spec(tmp_path, small_data), "--out", str(out)]
    kill_when(spawn(args, tmp_path, tmp_path / "first.log"),
              lambda: (out / "trials" / "0001" / "run.json").is_file())
    before = {t.number: (t.state.name, t.params, t.values) for t in _trials(out)}
    assert before[0][0] == "COMPLETE" and before[1][0] == "RUNNING"

    run(args, tmp_path, tmp_path / "second.log")
    trials = _trials(out)
    states = [t.state.name for t in trials]
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    assert len(complete) == 3 and "RUNNING" not in states
    assert (trials[0].state.name, trials[0].params, trials[0].values) == before[0]
    assert trials[1].state.name == "FAIL"  # the killed one, failed by the heartbeat
    retry = [t for t in complete if t.system_attrs.get("failed_trial") == 1]
    assert len(retry) == 1 and retry[0].params == before[1][1]
    params = [t.params["train.lr"] for t in complete]
    assert len(set(params)) == len(params)  # no trial completed twice
    table = (out / "trials.csv").read_text().splitlines()
    assert len(table) == 1 + len(trials)


@pytest.mark.slow
def test_diverging_trial_fails_with_reason_and_the_study_goes_on(tmp_path, small_data,
                                                                 capsys):
    """lr 1e30 makes the real training loss NaN: that trial fails with the reason, the
    others complete (the random sampler, seeded per trial from 4, draws 1e30 first)."""
    from bench.study import load_study_spec
    from bench.study_run import run_study

    space = {"train.lr": {"type": "categorical", "choices": [0.001, 0.002, 1.0e30]}}
    path = _study_spec(tmp_path, small_data, search_space=space, n_trials=2,
                       sampler={"type": "random", "seed": 4}, train={
                           "epochs": 1, "batch_size": 32, "warmup_steps": 0})
    study = run_study(load_study_spec(path), tmp_path / "out")
    states = [(t.state.name, t.params["train.lr"]) for t in study.trials]
    assert states == [("FAIL", 1e30), ("COMPLETE", 0.002), ("COMPLETE", 0.001)]
    reason = study.trials[0].user_attrs["fail_reason"]
    assert reason.startswith("loss became nan") or reason.startswith("loss became inf")
    assert f"trial 0 failed: {reason}; the study goes on" in capsys.readouterr().err
