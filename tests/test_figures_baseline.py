"""The committed figures table (bench/baselines/figures.csv) matches the code exactly."""

import pytest

import variants
from bench import baseline
from tests.helpers import run_cli


def test_figures_match_the_committed_baseline():
    changes = baseline.diff(baseline.load(), baseline.current_rows())
    assert not changes, (
        "figures moved (if intended: `fusebench baseline --update`, commit the CSV):\n"
        + "\n".join(changes))


def test_every_strategy_has_its_small_and_paper_presets():
    rows = {(r["strategy"], r["preset"]) for r in baseline.load()}
    for info in variants.list_strategies():
        presets = baseline.presets_for(info.family)
        assert len(presets) >= 2, (info.family, presets)
        for preset in presets:
            assert (info.name, preset) in rows, (info.name, preset)


def test_a_moved_figure_is_named_with_its_change():
    expected = baseline.load()
    row = next(r for r in expected if r["strategy"] == "jar" and r["preset"] == "tiny")
    actual = [dict(row, flops=int(row["flops"]) + 1000, output_shape="1x7")]
    lines = baseline.diff([row], actual)
    assert any(line.startswith(f"jar @ tiny: flops {row['flops']} -> "
                               f"{int(row['flops']) + 1000} (+1000,") for line in lines)
    assert "jar @ tiny: output_shape 1x3129 -> 1x7" in lines
    assert baseline.diff([row], []) == ["jar @ tiny: in the baseline but no longer produced"]


def test_cli_check_fails_on_a_stale_table_and_update_rewrites_it(tmp_path, capsys,
                                                                  monkeypatch):
    rows = [baseline.figures("concat", "tiny")]
    monkeypatch.setattr(baseline, "current_rows", lambda: rows)
    path = tmp_path / "figures.csv"
    stale = dict(rows[0], params_total=rows[0]["params_total"] - 1)
    path.write_text(baseline.to_csv([stale]))
    code, out, err = run_cli(["baseline", "--path", str(path)], capsys)
    assert code == 1 and "concat @ tiny: params_total" in out
    assert f"`fusebench baseline --update --path {path}`" in err  # not the package's table
    code, out, _ = run_cli(["baseline", "--update", "--path", str(path)], capsys)
    assert code == 0 and "wrote 1 rows" in out
    code, out, _ = run_cli(["baseline", "--path", str(path)], capsys)
    assert code == 0 and "all figures match" in out


@pytest.mark.parametrize("name", ["missing.csv"])
def test_missing_table_is_a_user_error(tmp_path, capsys, name):
    path = tmp_path / name
    code, _, err = run_cli(["baseline", "--path", str(path)], capsys)
    assert code == 2 and "no figures baseline" in err
    assert f"`fusebench baseline --update --path {path}`" in err  # its hint keeps --path


@pytest.mark.parametrize("text,needle", [
    ("", "(an empty table); create it with `fusebench baseline --update --path"),
    ("strategy,preset\n", "(an empty table)"),
    ("a,b\n1,2\n", "is not a figures table: no column(s) strategy, preset"),
    ("strategy,flops\nconcat,1\n", "no column(s) preset"),
    ("strategy,preset\nconcat,tiny,1\n", "row 1: not as many cells"),
    ("strategy,preset,flops\nconcat,tiny\n", "row 1: not as many cells"),
    (b"\x89PNG\x00\xff", "cannot read figures baseline"),
])
def test_a_table_that_is_empty_or_not_a_figures_table_is_one_line(tmp_path, capsys,
                                                                  monkeypatch, text, needle):
    monkeypatch.setattr(baseline, "current_rows", lambda: [])  # never reached
    path = tmp_path / "figures.csv"
    (path.write_bytes if isinstance(text, bytes) else path.write_text)(text)
    code, _, err = run_cli(["baseline", "--path", str(path)], capsys)
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1


def test_update_refuses_a_file_that_is_not_a_figures_table_and_fills_an_empty_one(
        tmp_path, capsys, monkeypatch):
    rows = [baseline.figures("concat", "tiny")]
    monkeypatch.setattr(baseline, "current_rows", lambda: rows)
    other = tmp_path / "other.csv"
    other.write_text("a,b\n1,2\n")
    code, _, err = run_cli(["baseline", "--update", "--path", str(other)], capsys)
    assert code == 2 and "no column(s) strategy, preset" in err
    assert len(err.strip().splitlines()) == 1 and other.read_text() == "a,b\n1,2\n"
    empty = tmp_path / "empty.csv"
    empty.touch()
    code, out, _ = run_cli(["baseline", "--update", "--path", str(empty)], capsys)
    assert code == 0 and "(new table)" in out and baseline.load(empty)


@pytest.mark.parametrize("update", [[], ["--update"]])
def test_a_directory_path_is_one_line(tmp_path, capsys, monkeypatch, update):
    monkeypatch.setattr(baseline, "current_rows", lambda: [])  # refused before the figures
    code, _, err = run_cli(["baseline", *update, "--path", str(tmp_path)], capsys)
    assert code == 2 and f"--path {tmp_path} is a directory; give a CSV file path" in err
    assert len(err.strip().splitlines()) == 1 and not list(tmp_path.iterdir())
