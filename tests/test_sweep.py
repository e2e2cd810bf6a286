"""Sweep specs: validation with clear errors, expansion, skip-if-done reruns."""

import json

import pytest
import yaml

from bench.errors import UserError
from bench.sweep import load_spec, parse_spec
from bench.sweep_run import run_sweep
from tests.helpers import run_cli

GOOD = {"name": "t", "preset": "tiny", "profile": {"measure": "never"},
        "grids": [{"strategy": ["concat"], "depth": [1, 2]},
                  {"strategy": ["concat"], "image_size": [32]}]}


def test_grids_expand_to_the_union_of_products():
    spec = parse_spec(GOOD)
    assert [(p.strategy, p.overrides) for p in spec.points] == [
        ("concat", {"depth": 1}), ("concat", {"depth": 2}), ("concat", {"image_size": 32})]
    assert len({spec.key(p) for p in spec.points}) == 3


@pytest.mark.parametrize("raw,needle", [
    ([], "must be a mapping"),
    ({**GOOD, "gird": {}}, "unknown key(s) gird"),
    ({**GOOD, "name": ""}, "'name' must be a non-empty string"),
    ({**GOOD, "mode": "fly"}, "mode='fly': not one of profile, train"),
    ({**GOOD, "grids": []}, "needs 'grid'"),
    ({**GOOD, "grids": [{"strategy": []}]}, "must be a non-empty list"),
    ({**GOOD, "grids": [{"strategy": ["concat"], "depth": [0]}]}, "depth=0: must be >= 1"),
    ({**GOOD, "grids": [{"strategy": ["nope"]}]}, "unknown strategy 'nope'"),
    ({**GOOD, "grids": [{"strategy": ["concat"], "colour": [1]}]}, "unknown config key(s) colour"),
    ({**GOOD, "grids": [{"depth": [1]}]}, "no strategy"),
    ({**GOOD, "profile": {"bach": 1}}, "unknown profile key(s) bach"),
    ({**GOOD, "train": {"epoks": 1}}, "unknown train key(s) epoks"),
    ({**GOOD, "seeds": []}, "'seeds' must be a non-empty list"),
])
def test_bad_specs_raise_one_clear_error(raw, needle):
    with pytest.raises(UserError) as err:
        parse_spec(raw)
    assert needle in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("text,needle", [
    ("name: [unclosed", "not valid YAML"),
    ("name: t\ngrid: {strategy: [concat], depth: [x]}\n", "expected int"),
])
def test_cli_rejects_bad_yaml_with_exit_2(tmp_path, capsys, text, needle):
    path = tmp_path / "s.yaml"
    path.write_text(text)
    code, _, err = run_cli(["sweep", str(path), "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_missing_spec_file(capsys, tmp_path):
    code, _, err = run_cli(["sweep", str(tmp_path / "none.yaml")], capsys)
    assert code == 2 and "sweep spec not found" in err


def test_rerun_of_finished_sweep_does_no_work(tmp_path):
    spec = parse_spec(GOOD)
    calls = []

    def fake_point(spec, point, out):
        calls.append(point.overrides)
        return {"strategy": point.strategy, "gflops": 1.0}

    run_sweep(spec, tmp_path, progress=False, run_point=fake_point)
    assert len(calls) == 3
    run_sweep(spec, tmp_path, progress=False, run_point=fake_point)
    assert len(calls) == 3
    assert len(json.loads((tmp_path / "results.json").read_text())) == 3


def test_a_sequential_sweep_stores_its_timed_rows_over_the_best_peak_measured(
        tmp_path, monkeypatch):
    """Rows timed one after another are stored as they finish, over the peak of the first
    profile; once all ran they are stored again over the best peak measured (a slow
    moment at the first profile once doubled a page's MFUs), with their training MFU."""
    import bench.profiling as profiling
    from bench.row import TRAIN_MFU, TRAIN_WORKERS

    peaks = iter([400e9])  # the measurement after the last point
    monkeypatch.setattr(profiling, "matmul_peak_flops", lambda device, again: next(peaks))
    spec = parse_spec(GOOD)

    def fake_point(spec, point, out):  # profiled at a slow moment: peak 200
        return {"strategy": point.strategy, "device": "cpu", "achieved_gflops_per_s": 50.0,
                "peak_gflops_per_s": 200.0, "mfu_pct": 25.0, TRAIN_WORKERS: 1,
                "train_step_s": 10.0, "train_step_gflops": 1.0, "train_timed_steps": 100,
                TRAIN_MFU: 10.0}

    store = run_sweep(spec, tmp_path, progress=False, run_point=fake_point)
    rows = json.loads((tmp_path / "results.json").read_text())
    assert len(rows) == 3 and store.ran == 3
    assert [r["grid.depth"] for r in rows[:2]] == [1, 2]  # still in the spec's order
    for row in rows:
        assert (row["peak_gflops_per_s"], row["mfu_pct"]) == (400.0, 12.5)
        assert row[TRAIN_MFU] == pytest.approx(100 * 2 * 1e9 * 100 / 10.0 / 400e9)


@pytest.mark.parametrize("tty,progress,point_lines,epoch_lines", [
    (True, True, False, False),    # a terminal: a bar, no lines
    (False, True, True, True),     # a log: a line per point and per training epoch
    (True, False, True, False),    # --no-progress: a line per finished point only
    (False, False, True, False),
])
def test_a_training_sweep_without_a_bar_prints_a_line_per_point(
        tty, progress, point_lines, epoch_lines, tmp_path, monkeypatch, capsys):
    """Without a bar nothing runs for minutes without a line: each finished point prints
    one; per-epoch lines only in a log that asked for progress."""
    import bench.sweep_run as sweep_run

    asked = []

    def fake_point(spec, point, out, epoch_lines=False):
        asked.append(epoch_lines)
        return {"strategy": point.strategy}

    monkeypatch.setattr(sweep_run, "_run_point", fake_point)
    monkeypatch.setattr(sweep_run.sys.stderr, "isatty", lambda: tty)
    spec = parse_spec({**GOOD, "mode": "train", "grids": GOOD["grids"][:1]})
    run_sweep(spec, tmp_path, progress=progress, workers=1)
    out = capsys.readouterr().out
    assert asked == [epoch_lines] * 2
    assert ("[t] 2/2 concat depth=2: 0 s" in out) == point_lines, out


def test_rerun_completes_only_missing_points(tmp_path):
    spec = parse_spec(GOOD)
    spec_small = parse_spec({**GOOD, "grids": GOOD["grids"][:1]})
    calls = []

    def fake_point(spec, point, out):
        calls.append(point.overrides)
        return {"strategy": point.strategy}

    run_sweep(spec_small, tmp_path, progress=False, run_point=fake_point)
    run_sweep(spec, tmp_path, progress=False, run_point=fake_point)
    assert calls == [{"depth": 1}, {"depth": 2}, {"image_size": 32}]


def test_grids_that_reach_one_model_measure_it_once_under_both_labels(tmp_path):
    """jar-base's defaults are 224 px and width 768: the image-size grid's first point is
    the width grid's second. One measurement, and its row in both grids' plots; a row
    stored before (width label only) gains the image-size label without being measured
    again."""
    base = {"name": "s", "preset": "jar-base", "profile": {"measure": "never"}}
    sizes = {"strategy": ["concat"], "image_size": [224, 288]}
    widths = {"strategy": ["concat"], "width": [384, 768]}
    calls = []

    def fake_point(spec, point, out):
        calls.append(point.overrides)
        return {"strategy": point.strategy, "gflops": 1.0}

    run_sweep(parse_spec({**base, "grids": [widths]}), tmp_path, progress=False,
              run_point=fake_point)
    run_sweep(parse_spec({**base, "grids": [sizes, widths]}), tmp_path, progress=False,
              run_point=fake_point)
    assert calls == [{"width": 384}, {"width": 768}, {"image_size": 288}]
    rows = json.loads((tmp_path / "results.json").read_text())
    assert len(rows) == 3
    both = [r for r in rows if r.get("grid.image_size") == 224]
    assert len(both) == 1 and both[0]["grid.width"] == 768
    fresh = tmp_path / "fresh"
    calls.clear()
    run_sweep(parse_spec({**base, "grids": [sizes, widths]}), fresh, progress=False,
              run_point=fake_point)
    assert calls == [{"image_size": 224}, {"image_size": 288}, {"width": 384}]
    rows = json.loads((fresh / "results.json").read_text())
    assert [(r.get("grid.image_size"), r.get("grid.width")) for r in rows] == [
        (224, 768), (288, None), (None, 384)]


def test_profile_sweep_end_to_end(tmp_path, capsys):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({**GOOD, "grids": [{"strategy": ["concat"],
                                                       "depth": [1, 2]}]}))
    code, out, _ = run_cli(["sweep", str(path), "--out", str(tmp_path / "o"), "--quiet"], capsys)
    assert code == 0 and "2 points, 0 already done" in out
    rows = json.loads((tmp_path / "o" / "results.json").read_text())
    assert rows[0]["gflops"] < rows[1]["gflops"]  # deeper fusion costs more
    assert (tmp_path / "o" / "results.csv").read_text().startswith("strategy,")
    assert load_spec(path).name == "t"


def test_point_identity_is_the_resolved_config():
    spec = parse_spec({**GOOD, "preset": None, "grids": [{"strategy": ["concat"]},
                                                         {"strategy": ["concat"], "depth": [12]},
                                                         {"strategy": ["concat"], "depth": [3]}]})
    keys = [spec.key(p) for p in spec.points]
    assert keys[0] == keys[1]  # depth 12 is the default: the same model, the same point
    assert keys[2] != keys[0]


def test_cli_table_shows_the_current_plan_and_counts_the_rows_it_left_out(tmp_path, capsys):
    path, out = tmp_path / "s.yaml", tmp_path / "o"
    path.write_text(yaml.safe_dump({**GOOD, "grids": [{"strategy": ["concat"],
                                                       "depth": [1, 2]}]}))
    assert run_cli(["sweep", str(path), "--out", str(out), "--quiet"], capsys)[0] == 0
    path.write_text(yaml.safe_dump({**GOOD, "grids": [{"strategy": ["concat"], "depth": [3]}]}))
    code, stdout, _ = run_cli(["sweep", str(path), "--out", str(out), "--quiet"], capsys)
    assert code == 0 and "2 stored rows of an earlier plan are kept there, not shown" in stdout
    table = [line.split() for line in stdout.splitlines() if line.startswith("concat")]
    assert [row[1] for row in table] == ["3"]  # the grid.depth column: today's point only
    assert len(json.loads((out / "results.json").read_text())) == 3  # nothing deleted


def test_cli_table_lists_rows_in_the_specs_order_with_their_seed(tmp_path, capsys):
    """Pooled points are stored as they finish; the table shows them in the spec's order,
    and with several seeds a seed column tells a point's rows apart."""
    path, out = tmp_path / "s.yaml", tmp_path / "o"
    path.write_text(yaml.safe_dump({**GOOD, "seeds": [0, 1],
                                    "grids": [{"strategy": ["concat"], "depth": [1, 2]}]}))
    assert run_cli(["sweep", str(path), "--out", str(out), "--quiet"], capsys)[0] == 0
    stored = json.loads((out / "results.json").read_text())
    (out / "results.json").write_text(json.dumps(stored[::-1]))  # as if finished last first
    code, stdout, _ = run_cli(["sweep", str(path), "--out", str(out), "--quiet"], capsys)
    assert code == 0 and "4 already done" in stdout
    header = next(line.split() for line in stdout.splitlines() if line.startswith("strategy"))
    assert header[:3] == ["strategy", "grid.depth", "seed"]
    table = [line.split()[:3] for line in stdout.splitlines() if line.startswith("concat")]
    assert table == [["concat", "1", "0"], ["concat", "1", "1"], ["concat", "2", "0"],
                     ["concat", "2", "1"]]


def test_train_points_are_keyed_by_the_backbones_the_data_gives_them(tmp_path):
    """The preset's pretrained backbones are part of a trained point on the built-in data
    (the same key as spelling them out in `set:`), and absent on other data, where the
    report trains from raw pixels instead of refusing; the frozen-LM preset's are made from
    any data."""
    from bench.sweep import parse_spec

    raw = {"name": "s", "mode": "train", "preset": "tiny", "grid": {"strategy": ["jar"]}}
    spelled = {**raw, "set": {"vision_path": "@pretrained", "freeze_vision": True}}
    builtin, spelled_out = parse_spec(raw), parse_spec(spelled)
    assert builtin.key(builtin.points[0]) == spelled_out.key(spelled_out.points[0])
    assert builtin.preset_backbones(builtin.points[0]) == {"vision_path": "@pretrained",
                                                           "freeze_vision": True}
    other = parse_spec({**raw, "data": str(tmp_path)})  # no synthvqa.json / scenes.json
    assert other.preset_backbones(other.points[0]) == {}
    assert other.key(other.points[0]) != builtin.key(builtin.points[0])
    # the frozen-LM preset's backbones are made from any data's training split
    lm = parse_spec({**raw, "preset": "epalm-tiny", "grid": {"strategy": ["epalm"]},
                     "data": str(tmp_path)})
    assert lm.preset_backbones(lm.points[0]) == {"vision_path": "@pretrained",
                                                 "lm_path": "@pretrained"}


def test_sweep_takes_no_progress_as_train_and_report_do():
    from bench.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["sweep", "x.yaml", "--no-progress"]).quiet is True
    assert parser.parse_args(["sweep", "x.yaml", "--quiet"]).quiet is True
    assert parser.parse_args(["sweep", "x.yaml"]).quiet is False
