"""The report renders from stored results alone: no training, every section present,
accuracies with intervals, the blind control and the papers' orderings."""

import json

import numpy as np
import pandas as pd
import pytest

from bench.store import ResultStore
from bench.sweep import parse_spec
from bench.sweep_run import run_sweep
from tests.helpers import run_cli

N = 400


def score_vectors() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Hand-made per-question (test, blind) scores: late_fusion 40 %; concat = late_fusion
    plus 32 questions (48 %) but blind it keeps all but 4 (reliance 1 point); jar = concat
    plus 12 more (51 %); cross_attn = jar with 10 right answers and 10 wrong ones swapped
    (a tie with jar on average)."""
    rng = np.random.default_rng(0)
    late = (rng.permutation(N) < 0.4 * N).astype(float)
    wrong = np.flatnonzero(late == 0)
    concat = late.copy()
    concat[wrong[:32]] = 1
    jar = concat.copy()
    jar[wrong[32:44]] = 1
    cross = jar.copy()
    cross[np.flatnonzero(jar == 1)[:10]] = 0
    cross[wrong[44:54]] = 1
    concat_blind = concat.copy()
    concat_blind[np.flatnonzero(concat == 1)[:4]] = 0
    return {"late_fusion": (late, late * 0.5), "concat": (concat, concat_blind),
            "jar": (jar, late), "cross_attn": (cross, late)}


@pytest.fixture()
def stored_runs(tmp_path, monkeypatch):
    """A small stored results table: real meta-device profile rows for two sweeps, plus
    accuracy columns and per-question score files as a fixture (the renderer must not care
    where they came from)."""
    runs = tmp_path / "runs"
    scaling = parse_spec({"name": "flops_scaling", "preset": "tiny",
                          "profile": {"measure": "never"},
                          "grids": [{"strategy": ["concat", "jar"], "image_size": [32, 64]},
                                    {"strategy": ["concat"], "depth": [1, 2]}]})
    run_sweep(scaling, runs / "flops_scaling", progress=False)
    vectors = score_vectors()
    trained = parse_spec({"name": "strategies_quick", "preset": "tiny",
                          "profile": {"measure": "never"},
                          "grid": {"strategy": list(vectors)}})
    store = run_sweep(trained, runs / "strategies_quick", progress=False)
    for row in store.rows:
        test, blind = vectors[row["strategy"]]
        acc, blind_acc = 100 * test.mean(), 100 * blind.mean()
        store.add({**row, "val_vqa_acc": acc + 1, "test_vqa_acc": acc,
                   "test_exact_match": acc, "blind_vqa_acc": blind_acc,
                   "image_reliance": acc - blind_acc})
        point = runs / "strategies_quick" / "points" / row["point_id"]
        point.mkdir(parents=True)
        (point / "test_scores.json").write_text(json.dumps({
            "question_id": list(range(N)), "test_vqa_acc": test.tolist(),
            "test_exact_match": test.tolist(), "blind_vqa_acc": blind.tolist()}))
    pd.DataFrame([{"baseline": "majority", "test_vqa_acc": 29.3},
                  {"baseline": "question-only", "test_vqa_acc": 42.8}]
                 ).to_csv(runs / "floors.csv", index=False)

    def no_training(*args, **kwargs):
        raise AssertionError("render-only must not train")

    monkeypatch.setattr("bench.experiment.run_experiment", no_training)
    return runs


def render(stored_runs, tmp_path, capsys) -> tuple[str, object]:
    out = tmp_path / "reports"
    code, stdout, err = run_cli(["report", "--render-only", "--runs", str(stored_runs),
                                 "--out", str(out)], capsys)
    assert code == 0, err
    return (out / "README.md").read_text(), out


def table_row(page: str, strategy: str, after: str) -> list[str]:
    """The cells of ``strategy``'s row in the first table after the heading ``after``."""
    section = page[page.index(after):]
    line = next(x for x in section.splitlines() if x.startswith(f"| {strategy} |"))
    return [c.strip() for c in line.strip("|").split("|")]


def test_render_only_builds_every_section(stored_runs, tmp_path, capsys):
    page, out = render(stored_runs, tmp_path, capsys)
    for heading in ("## Strategy comparison", "## JAR paper", "## eP-ALM",
                    "## The papers' accuracy orderings", "## FLOPs scaling", "## Environment"):
        assert heading in page
    assert "majority 29.30 %" in page and "question-only 42.80 %" in page
    assert "| jar |" in page and "SPICE is not computed" in page
    for png in ("accuracy_vs_gflops.png", "flops_vs_image_size.png",
                "flops_vs_fusion_depth.png"):
        assert (out / png).stat().st_size > 5000, png
    comparison = pd.read_csv(out / "comparison.csv")
    # best accuracy first (cross_attn ties jar's mean exactly; the stable sort keeps jar first)
    assert list(comparison["strategy"])[-2:] == ["concat", "late_fusion"]
    for column in ("test_vqa_acc_lo", "test_vqa_acc_hi", "blind_vqa_acc", "image_reliance_lo",
                   "vs_best", "gap_to_late_fusion_lo", "tied_with_best", "note"):
        assert column in comparison.columns, column


def test_floors_are_printed_with_their_intervals_when_floors_csv_has_them(
        stored_runs, tmp_path, capsys):
    page, _ = render(stored_runs, tmp_path, capsys)
    assert "majority 29.30 %," in page and "predates them" in page  # an older floors.csv
    pd.DataFrame([{"baseline": "majority", "test_vqa_acc": 29.3, "ci_lo": 27.66,
                   "ci_hi": 30.94}]).to_csv(stored_runs / "floors.csv", index=False)
    page, _ = render(stored_runs, tmp_path, capsys)
    assert "majority 29.30 % [27.7, 30.9]" in page and "predates them" not in page


def test_the_page_says_which_split_each_accuracy_is_on(stored_runs, tmp_path, capsys):
    page, _ = render(stored_runs, tmp_path, capsys)
    assert "Data:" not in page  # runs stored before splits.json: no line, nothing invented
    (stored_runs / "splits.json").write_text(json.dumps({
        "train": {"from": "train2014 less its held-out images", "questions": 6455},
        "val": {"from": "10% of train2014's images, held out", "questions": 674},
        "test": {"from": "val2014", "questions": 1421}}))
    page, _ = render(stored_runs, tmp_path, capsys)
    assert ("Data: train 6,455 questions (train2014 less its held-out images), val 674 "
            "questions (10% of train2014's images, held out), test 1,421 questions (val2014)"
            in page)


def test_accuracies_carry_intervals_gaps_and_the_blind_flag(stored_runs, tmp_path, capsys):
    page, out = render(stored_runs, tmp_path, capsys)
    header = table_row(page, "strategy", "**Accuracy, with")
    cells = {s: dict(zip(header, table_row(page, s, "**Accuracy, with")))
             for s in score_vectors()}
    jar, concat, cross, late = (cells[s] for s in ("jar", "concat", "cross_attn",
                                                   "late_fusion"))
    assert jar["test VQA acc % [95 % CI]"].startswith("51.0 [")
    assert jar["vs best (points)"] == "best"
    assert cross["vs best (points)"].startswith("≈ best +0.0 [")  # a paired tie
    assert not concat["vs best (points)"].startswith("≈")  # 3 points worse on every resample
    assert concat["vs late_fusion (points)"].startswith("+8.0 [")
    assert late["vs late_fusion (points)"] == "n/a"
    assert concat["image reliance (points)"].startswith("+1.0 [")
    assert concat["note"] == "does not use the image" and jar["note"] == ""
    assert late["blind acc %"].startswith("20.0 [")


def test_orderings_table_states_a_verdict_or_says_not_trained(stored_runs, tmp_path, capsys):
    page, out = render(stored_runs, tmp_path, capsys)
    orderings = pd.read_csv(out / "paper_orderings.csv")
    by_claim = dict(zip(orderings["claim"], orderings["verdict"]))
    assert by_claim["JAR > Concat"] == "reproduces"  # jar = concat + 12 questions
    assert by_claim["JAR > Perceiver"] == "not trained in this preset"
    assert by_claim["iterations=2 > iterations=1"] == "not trained in this preset"
    assert by_claim["eP-ALM_ada > eP-ALM"] == "not trained in this preset"
    assert "| JAR Table 3 | JAR > Concat |" in page
    assert "Unfinished" not in page  # every planned point ran


def test_a_stopped_run_renders_as_unfinished_not_as_outside_the_preset(stored_runs, tmp_path,
                                                                        capsys):
    ResultStore(stored_runs / "frozen_lm_quick").record_plan(["p1", "p2"])  # none ran
    page, out = render(stored_runs, tmp_path, capsys)
    assert "**Unfinished:** 2 planned points have not run yet (frozen_lm_quick: 2)" in page
    by_claim = dict(zip(*pd.read_csv(out / "paper_orderings.csv")[["claim", "verdict"]]
                        .T.values))
    assert by_claim["eP-ALM_ada > eP-ALM"] == "not trained yet (its sweep is unfinished)"
    assert by_claim["JAR > Concat"] == "reproduces"
    assert by_claim["iterations=2 > iterations=1"] == "not trained in this preset"


def test_rows_without_stored_scores_render_without_intervals(stored_runs, tmp_path, capsys):
    for path in (stored_runs / "strategies_quick" / "points").glob("*/test_scores.json"):
        path.unlink()
    page, out = render(stored_runs, tmp_path, capsys)
    cells = table_row(page, "jar", "**Accuracy, with")
    assert "51" in cells[2] and "[" not in cells[2]


def test_render_is_stable_on_rerun(stored_runs, tmp_path, capsys):
    out = tmp_path / "reports"
    for _ in range(2):
        code, _, _ = run_cli(["report", "--render-only", "--runs", str(stored_runs),
                              "--out", str(out)], capsys)
        assert code == 0
    assert len(ResultStore(stored_runs / "strategies_quick").rows) == 4


def test_rows_of_an_earlier_plan_are_left_out_not_merged_as_seeds(stored_runs, tmp_path,
                                                                  capsys):
    """An edited preset gives new point ids; the old rows stay stored but the page shows the
    points the sweep last planned (plan.json, written by run_sweep), never the two averaged
    as seeds."""
    store = ResultStore(stored_runs / "strategies_quick")
    current = [r["point_id"] for r in store.rows]
    assert json.loads(store.plan_path.read_text()) == {"point_ids": current}
    jar = next(r for r in store.rows if r["strategy"] == "jar")
    store.add({**jar, "point_id": "0123456789ab", "test_vqa_acc": 10.0})
    code, stdout, err = run_cli(["report", "--render-only", "--runs", str(stored_runs),
                                 "--out", str(tmp_path / "reports")], capsys)
    assert code == 0, err
    assert "strategies_quick: 1 stored rows of an earlier plan left out" in stdout
    page = (tmp_path / "reports" / "README.md").read_text()
    assert "± std" not in page and f"| jar | encoder-fusion | {jar['test_vqa_acc']:.1f} [" in page
    store.plan_path.unlink()  # runs from before plan files: every stored row is shown
    page, _ = render(stored_runs, tmp_path, capsys)
    assert "| jar | encoder-fusion | 2 |" in page
    store.plan_path.write_text('{"point_ids": ')  # cut short: one line, exit 2
    code, _, err = run_cli(["report", "--render-only", "--runs", str(stored_runs),
                            "--out", str(tmp_path / "reports")], capsys)
    assert code == 2 and "plan file" in err and len(err.strip().splitlines()) == 1
    assert (tmp_path / "reports" / "README.md").read_text() == page  # the page is kept


def test_presets_train_late_fusion_and_the_paper_preset_runs_three_seeds():
    from bench.report import _spec_path
    from bench.report_plans import PLANS
    from bench.sweep import load_spec

    for preset, seeds in (("quick", {0}), ("paper", {0, 1, 2})):
        specs = [load_spec(_spec_path(name)) for name in PLANS[preset]]
        trained = [s for s in specs if s.mode == "train"]
        assert trained and all({p.seed for p in s.points} == seeds for s in trained), preset
        strategies = {p.strategy for s in trained if s.name.startswith("strategies")
                      for p in s.points}
        assert "late_fusion" in strategies, preset


def test_environment_shows_where_the_last_run_spent_its_time(stored_runs, tmp_path, capsys):
    """The stage table a run stored (stages.json) is rendered, nested stages indented."""
    (stored_runs / "stages.json").write_text(json.dumps({"wall_s": 321.0, "stages": [
        {"stage": "data", "depth": 0, "seconds": 9.5},
        {"stage": "sweep strategies_quick (7 points)", "depth": 0, "seconds": 300.0},
        {"stage": "pretrain vision ViT-micro", "depth": 1, "seconds": 36.0}]}))
    page, _ = render(stored_runs, tmp_path, capsys)
    env = page[page.index("## Environment"):]
    assert "report wall time (last run that trained or profiled): 321 s" in env
    assert "| data | 9.5 |" in env and "| sweep strategies_quick (7 points) | 300.0 |" in env
    assert "| &nbsp;&nbsp;pretrain vision ViT-micro | 36.0 |" in env


def test_environment_names_the_matmul_peak_the_times_were_measured_at():
    from bench.report_render import _environment

    rows = pd.DataFrame([{"device_name": "AMD EPYC", "threads": 2, "peak_gflops_per_s": 203.4}])
    lines = _environment({"strategies_quick": rows}, {"wall_s": 649.0, "stages": []})
    assert "- measured fp32 matmul peak: 203 GFLOP/s (2 threads): the wall time below " \
        "moves with it" in lines
    unmeasured = rows.assign(peak_gflops_per_s=float("nan"))  # FLOPs-only rows time nothing
    assert not any("matmul peak" in line for line in _environment({"s": unmeasured}, None))


def test_stage_records_nest_and_time_each_block():
    from bench import stages

    stages.reset()
    with stages.stage("outer"):
        with stages.stage("inner"):
            pass
    rows = stages.records()
    assert [(r["stage"], r["depth"]) for r in rows] == [("outer", 0), ("inner", 1)]
    assert rows[0]["seconds"] >= rows[1]["seconds"] >= 0
    assert "inner" in stages.text_table(rows).splitlines()[2]
    stages.reset()


def test_ablation_rows_are_labelled_by_the_knob_they_set():
    from bench.report_render import _varied_label

    nan = float("nan")
    base = {"strategy": "epalm", "grid.strategy": "epalm", "grid.preset": "epalm-opt350m"}
    assert _varied_label({**base, "grid.inject": nan, "grid.vision_layers": nan}) == "epalm"
    assert _varied_label({**base, "grid.inject": "all", "grid.vision_layers": nan}) == \
        "epalm (inject=all)"
    assert _varied_label({**base, "grid.inject": nan, "grid.vision_layers": 1.0}) == \
        "epalm (vision_layers=1)"


def test_no_progress_reaches_the_sweeps(monkeypatch, capsys):
    """`report --no-progress` reaches the sweeps: no bars, no epoch lines (a line per point)."""
    seen = {}

    def fake_build_report(*args, **kwargs):
        seen.update(kwargs)

    monkeypatch.setattr("bench.report.build_report", fake_build_report)
    assert run_cli(["report", "--render-only", "--no-progress"], capsys)[0] == 0
    assert seen["progress"] is False
    assert run_cli(["report", "--render-only"], capsys)[0] == 0
    assert seen["progress"] is True


def test_accuracy_by_answer_type_with_reliance_and_floors(stored_runs, tmp_path, capsys):
    """The VQA papers' yes/no / number / other columns, from the stored per-question
    scores and the test split's answer types (written with the floors)."""
    kinds = ["yes/no"] * 200 + ["number"] * 120 + ["other"] * 80
    (stored_runs / "answer_types.json").write_text(json.dumps(
        {"question_id": list(range(N)), "answer_type": kinds}))
    floors = pd.read_csv(stored_runs / "floors.csv")
    floors["acc[yes/no]"], floors["acc[number]"], floors["acc[other]"] = 50.0, 30.0, 20.0
    floors.to_csv(stored_runs / "floors.csv", index=False)
    page, _ = render(stored_runs, tmp_path, capsys)
    assert "| strategy | family | yes/no (200 q) | number (120 q) | other (80 q) |" in page
    late, blind = score_vectors()["late_fusion"]
    cells = table_row(page, "late_fusion", "**By answer type**")
    for cell, part in zip(cells[2:], (slice(0, 200), slice(200, 320), slice(320, N))):
        acc, reliance = 100 * late[part].mean(), 100 * (late[part] - blind[part]).mean()
        assert cell == f"{acc:.1f} ({reliance:+.1f})"
    assert table_row(page, "*question-only*", "**By answer type**")[2:] == [
        "50.0", "30.0", "20.0"]


def test_data_without_answer_types_gets_no_by_type_section(stored_runs, tmp_path, capsys):
    (stored_runs / "answer_types.json").write_text(json.dumps(
        {"question_id": list(range(N)), "answer_type": [""] * N}))
    page, _ = render(stored_runs, tmp_path, capsys)
    assert "By answer type" not in page


def test_render_only_without_stored_results_keeps_the_page_it_would_replace(tmp_path, capsys):
    out = tmp_path / "reports"
    out.mkdir()
    (out / "README.md").write_text("the committed page")
    code, _, err = run_cli(["report", "--render-only", "--runs", str(tmp_path / "none"),
                            "--out", str(out)], capsys)
    assert code == 2 and "holds no stored results" in err and err.count("\n") == 1
    assert (out / "README.md").read_text() == "the committed page"
    assert sorted(p.name for p in out.iterdir()) == ["README.md"]


def test_a_report_on_a_directory_without_data_stops_before_its_plan(tmp_path, capsys):
    code, out, err = run_cli(["report", "--data", str(tmp_path), "--out", str(tmp_path / "o"),
                              "--runs", str(tmp_path / "r"), "--no-progress"], capsys)
    assert code == 2 and "holds no VQA v2 or GQA question files" in err
    assert out == "" and err.count("\n") == 1
    assert not (tmp_path / "o" / "report.md").exists()


@pytest.mark.parametrize("workers", [0, 1])
def test_report_runs_a_plan_in_one_pool_then_a_rerun_only_renders(workers, small_data,
                                                                  tmp_path, monkeypatch, capsys):
    """``build_report`` end to end on a miniature quick plan (two trained points, two
    counted ones): the floors and JAR tables are computed in the sweeps' pool (with
    ``--workers 1``, one sweep after another and the tables here), the stage table is
    stored and shown, and a rerun trains nothing and keeps that table."""
    import yaml

    from bench import report

    specs = {"strategies_quick.yaml": {
        "name": "strategies_quick", "mode": "train", "preset": "tiny",
        "grid": {"strategy": ["concat", "late_fusion"]},
        "train": {"epochs": 1, "batch_size": 32},
        "profile": {"batch_size": 2, "repeats": 1, "warmup": 0, "measure": "always"}},
        "flops_scaling.yaml": {"name": "flops_scaling", "mode": "profile", "preset": "tiny",
                               "grid": {"strategy": ["concat", "jar"]},
                               "profile": {"measure": "never"}}}
    for name, spec in specs.items():
        (tmp_path / name).write_text(yaml.safe_dump(spec))
    monkeypatch.setattr(report, "SWEEPS_DIR", tmp_path)
    monkeypatch.setitem(report.PLANS, "quick", list(specs))
    monkeypatch.setattr("bench.workers.available_cores", lambda: 2)
    runs, out = tmp_path / "runs", tmp_path / "out"
    page = report.build_report(runs=runs, out=out, data=small_data, progress=False,
                               workers=workers)
    timing = json.loads((runs / "stages.json").read_text())
    names = [r["stage"] for r in timing["stages"]]
    if workers == 0:
        assert "sweeps strategies_quick, flops_scaling in one pool (4 points)" in names
        assert "computed in the pool, beside the sweeps" in names
    else:
        assert names[1:3] == ["sweep strategies_quick (2 points)", "concat"]
        assert "sweep flops_scaling (2 points)" in names
    assert (runs / "floors.csv").is_file() and (runs / "jar_paper.csv").is_file()
    assert len(ResultStore(runs / "strategies_quick").rows) == 2
    assert "| data |" in page.read_text()  # the stage table, in the environment section
    assert "[strategies_quick] 2/2 " in capsys.readouterr().out  # a line per point, no bar
    report.build_report(runs=runs, out=out, data=small_data, progress=False, workers=workers)
    assert "in one pool" not in capsys.readouterr().out  # nothing ran: no sweep stage
    assert json.loads((runs / "stages.json").read_text()) == timing


def test_the_page_says_what_a_generated_answer_token_adds_to_the_gflops():
    """A frozen-LM row's GFLOPs are its prompt's; the page says what each answer token
    adds, from the rows' own counts."""
    import pandas as pd

    from bench.report_render import _generation_note

    frame = pd.DataFrame({"gflops": [0.04, 0.05, 0.03], "gflops_per_token": [0.0004, 0.001,
                                                                              float("nan")]})
    assert "each answer token they generate adds 1.0-2.0 % of that" in _generation_note(frame)
    assert _generation_note(frame.drop(columns="gflops_per_token")) == ""
    assert _generation_note(frame.assign(gflops_per_token=float("nan"))) == ""
