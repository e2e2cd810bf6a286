"""The report renders from stored results alone: no training, every section present."""

import pandas as pd
import pytest

from bench.store import ResultStore
from bench.sweep import parse_spec, run_sweep
from tests.helpers import run_cli


@pytest.fixture()
def stored_runs(tmp_path, monkeypatch):
    """A small stored results table: real meta-device profile rows for two sweeps, plus
    accuracy columns as a fixture (the renderer must not care where they came from)."""
    runs = tmp_path / "runs"
    scaling = parse_spec({"name": "flops_scaling", "preset": "tiny",
                          "profile": {"measure": "never"},
                          "grids": [{"strategy": ["concat", "jar"], "image_size": [32, 64]},
                                    {"strategy": ["concat"], "depth": [1, 2]}]})
    run_sweep(scaling, runs / "flops_scaling", progress=False)
    trained = parse_spec({"name": "strategies_quick", "preset": "tiny",
                          "profile": {"measure": "never"},
                          "grid": {"strategy": ["concat", "jar"]}})
    store = run_sweep(trained, runs / "strategies_quick", progress=False)
    for row, acc in zip(store.rows, (48.0, 51.0)):
        store.add({**row, "val_vqa_acc": acc, "test_vqa_acc": acc - 1})
    pd.DataFrame([{"baseline": "majority", "test_vqa_acc": 29.3},
                  {"baseline": "question-only", "test_vqa_acc": 42.8}]
                 ).to_csv(runs / "floors.csv", index=False)

    def no_training(*args, **kwargs):
        raise AssertionError("render-only must not train")

    monkeypatch.setattr("bench.experiment.run_experiment", no_training)
    return runs


def test_render_only_builds_every_section(stored_runs, tmp_path, capsys):
    out = tmp_path / "reports"
    code, stdout, err = run_cli(["report", "--render-only", "--runs", str(stored_runs),
                                 "--out", str(out)], capsys)
    assert code == 0, err
    page = (out / "README.md").read_text()
    for heading in ("## Strategy comparison", "## JAR paper", "## eP-ALM",
                    "## FLOPs scaling", "## Environment"):
        assert heading in page
    assert "majority 29.30 %" in page and "question-only 42.80 %" in page
    assert "| jar |" in page and "SPICE is not computed" in page
    for png in ("accuracy_vs_gflops.png", "flops_vs_image_size.png",
                "flops_vs_fusion_depth.png"):
        assert (out / png).stat().st_size > 5000, png
    comparison = pd.read_csv(out / "comparison.csv")
    assert list(comparison["strategy"]) == ["jar", "concat"]  # best accuracy first


def test_render_is_stable_on_rerun(stored_runs, tmp_path, capsys):
    out = tmp_path / "reports"
    for _ in range(2):
        code, _, _ = run_cli(["report", "--render-only", "--runs", str(stored_runs),
                              "--out", str(out)], capsys)
        assert code == 0
    assert len(ResultStore(stored_runs / "strategies_quick").rows) == 2
