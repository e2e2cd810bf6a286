"""Optuna studies: spec validation, resume by name, pruning, failures with reasons."""

import pytest

from bench.errors import UserError
from bench.study import parse_study_spec
from bench.study_run import run_study
from bench.train import TrainingDiverged
from tests.helpers import run_cli

SPEC = {"name": "s", "strategy": "concat", "preset": "tiny",
        "search_space": {"depth": {"type": "int", "low": 1, "high": 3},
                         "train.lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True}},
        "n_trials": 3, "sampler": {"type": "random", "seed": 0}}


def fake_trial(spec, overrides, train, run_dir, on_eval):
    """Stands in for training: accuracy grows with depth, reported per epoch."""
    acc = 10.0 * overrides["depth"]
    for epoch in range(3):
        on_eval(epoch, {"val_vqa_acc": acc * (epoch + 1) / 3})
    return {"val_vqa_acc": acc, "gflops": 0.01 * overrides["depth"]}


def test_study_resumes_by_name_and_trial_numbers_continue(tmp_path):
    spec = parse_study_spec(SPEC)
    study = run_study(spec, tmp_path, run_trial=fake_trial)
    assert [t.number for t in study.trials] == [0, 1, 2]
    study = run_study(spec, tmp_path, n_trials=5, run_trial=fake_trial)
    assert [t.number for t in study.trials] == [0, 1, 2, 3, 4]
    study = run_study(spec, tmp_path, n_trials=5, run_trial=fake_trial)
    assert len(study.trials) == 5  # nothing left to do
    assert (tmp_path / "trials.csv").read_text().count("\n") == 6
    assert (tmp_path / "history.png").stat().st_size > 1000


def test_multi_objective_writes_pareto_front(tmp_path):
    spec = parse_study_spec({**SPEC, "objectives": [{"metric": "val_vqa_acc"},
                                                    {"metric": "gflops"}]})
    study = run_study(spec, tmp_path, run_trial=fake_trial)
    assert study.best_trials and (tmp_path / "pareto.png").is_file()


def test_cli_prints_the_pareto_front_by_objective_name(tmp_path, capsys, monkeypatch):
    import yaml

    import bench.study_run as study_run

    monkeypatch.setattr(study_run, "_run_trial", fake_trial)
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({**SPEC, "objectives": [
        {"metric": "val_vqa_acc", "direction": "maximize"},
        {"metric": "gflops", "direction": "minimize"}]}))
    code, out, err = run_cli(["study", str(path), "--out", str(tmp_path / "o")], capsys)
    assert code == 0, err
    front = next(line for line in out.splitlines() if line.startswith("Pareto front:"))
    assert "val_vqa_acc=" in front and "gflops=" in front and "'depth':" in front
    assert "0000" not in front  # rounded, not float noise


def test_diverged_trial_fails_with_reason_and_study_goes_on(tmp_path):
    calls = []

    def diverging(spec, overrides, train, run_dir, on_eval):
        calls.append(1)
        if len(calls) == 1:
            raise TrainingDiverged("loss became nan at step 3")
        return fake_trial(spec, overrides, train, run_dir, on_eval)

    study = run_study(parse_study_spec(SPEC), tmp_path, run_trial=diverging)
    failed = [t for t in study.trials if t.state.name == "FAIL"]
    assert len(failed) == 1 and failed[0].user_attrs["fail_reason"].startswith("loss became nan")
    assert sum(t.state.name == "COMPLETE" for t in study.trials) == 3


def test_median_pruner_prunes_weak_trials(tmp_path):
    spec = parse_study_spec({**SPEC, "n_trials": 8,
                             "pruner": {"type": "median", "n_startup_trials": 2,
                                        "n_warmup_steps": 0}})
    study = run_study(spec, tmp_path, run_trial=fake_trial)
    assert any(t.state.name == "PRUNED" for t in study.trials)


@pytest.mark.parametrize("patch,needle", [
    ({"search_space": {}}, "'search_space' must be a non-empty mapping"),
    ({"search_space": {"depth": {"type": "gauss"}}}, "type must be one of"),
    ({"search_space": {"depth": {"type": "int", "low": 3, "high": 1}}}, "low <= high"),
    ({"search_space": {"depth": {"type": "categorical", "choices": [0]}}}, "depth=0"),
    ({"search_space": {"train.lrr": {"type": "float", "low": 0.1, "high": 1}}}, "train keys"),
    ({"objectives": [{"metric": "speed"}]}, "objective metric 'speed'"),
    ({"n_trials": 0}, "n_trials must be a positive integer"),
    ({"budget": 3}, "unknown key(s) budget"),
    ({"strategy": "nope"}, "unknown strategy 'nope'"),
    ({"search_space": {"depth": {"type": "float", "low": 1, "high": 3}}},
     "search key 'depth': a float range draws fractions but depth takes int"),
    ({"search_space": {"depth": {"type": "categorical", "choices": [1, 2.5]}}},
     "search key 'depth': depth=2.5: expected int"),
    ({"search_space": {"train.epochs": {"type": "float", "low": 1, "high": 3}}},
     "epochs takes int"),
    ({"search_space": {"depth": {"type": "int", "low": 1, "high": 4, "step": 2, "log": True}}},
     "search space: Samplers and other components"),
])
def test_bad_study_specs(patch, needle):
    with pytest.raises(UserError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        parse_study_spec({**SPEC, **patch})


def test_bad_storage_url_exits_2(tmp_path, capsys):
    import yaml

    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(SPEC))
    code, _, err = run_cli(["study", str(path), "--storage", "nosuchdb://x",
                            "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "cannot open storage" in err and len(err.strip().splitlines()) == 1


def test_a_float_range_for_an_integer_key_is_one_line_before_the_storage_exists(tmp_path,
                                                                                capsys):
    import yaml

    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({**SPEC, "search_space": {
        "width": {"type": "float", "low": 8, "high": 16}}}))  # its low end passes as 8
    code, _, err = run_cli(["study", str(path), "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "a float range draws fractions but width takes int" in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "o").exists()


@pytest.mark.parametrize("before,after", [
    ({"type": "categorical", "choices": [1, 2]}, {"type": "categorical", "choices": [2, 3]}),
    ({"type": "int", "low": 1, "high": 3}, {"type": "int", "low": 1, "high": 3, "log": True}),
    ({"type": "int", "low": 1, "high": 3}, {"type": "categorical", "choices": [1, 2, 3]}),
])
def test_a_changed_search_space_is_one_line_before_any_trial(tmp_path, capsys, before, after):
    import optuna
    import yaml

    out = tmp_path / "o"
    run_study(parse_study_spec({**SPEC, "search_space": {"depth": before}}), out,
              run_trial=fake_trial)
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({**SPEC, "search_space": {"depth": after}}))
    code, _, err = run_cli(["study", str(path), "--out", str(out), "--n-trials", "5"], capsys)
    assert code == 2 and "was run with another search space (depth: " in err
    assert f"give the spec a new name, or delete {out / 'study.db'}" in err
    assert len(err.strip().splitlines()) == 1
    study = optuna.load_study(study_name="s", storage=f"sqlite:///{out / 'study.db'}")
    assert len(study.trials) == 3 and "FAIL" not in [t.state.name for t in study.trials]


def test_a_resumed_study_may_move_a_ranges_bounds_and_drop_a_key(tmp_path):
    run_study(parse_study_spec(SPEC), tmp_path, run_trial=fake_trial)
    wider = {**SPEC, "search_space": {"depth": {"type": "int", "low": 1, "high": 5}}}
    study = run_study(parse_study_spec(wider), tmp_path, n_trials=5, run_trial=fake_trial)
    assert len(study.trials) == 5 and "FAIL" not in [t.state.name for t in study.trials]
