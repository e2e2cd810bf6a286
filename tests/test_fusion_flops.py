"""FLOPs of the encoder-fusion strategies move the way the JAR paper reports (meta device)."""

import json

import pytest
import torch

import variants
from bench.compare import compare
from bench.flops import count_flop_counter_mode
from bench.paper_numbers import JAR_TABLES
from tests.helpers import run_cli
from tests.test_flops import block_macs


def gflops(name: str, preset: str = "tiny", **overrides) -> float:
    with torch.device("meta"):
        model = variants.create(name, preset=preset, **overrides)
    return count_flop_counter_mode(model, model.dummy_batch(1, "meta")).total / 1e9


@pytest.mark.parametrize("name,knob,values,fixed", [
    ("jar", "iterations", (1, 2, 4), {"fusion_layers": 4}),
    ("jar", "num_tokens", (4, 8, 16), {}),
    ("jar", "fusion_layers", (2, 4, 8), {}),
    ("perceiver", "iterations", (1, 2, 4), {}),
    ("perceiver", "num_tokens", (4, 8, 16), {}),
    ("perceiver", "self_per_cross", (0, 1, 2), {}),
    ("cotok", "iterations", (1, 2), {"fusion_layers": 2}),
    ("cotok", "num_tokens", (4, 8, 16), {}),
    ("cotok", "fusion_layers", (2, 4), {}),
    ("flamingo", "num_tokens", (4, 8, 16), {}),
    ("flamingo", "depth", (1, 2, 4), {}),
    ("cross_attn", "depth", (1, 2, 4), {}),
    ("concat", "depth", (1, 2, 4), {}),
])
def test_more_iterations_tokens_or_layers_cost_more(name, knob, values, fixed):
    counts = [gflops(name, **fixed, **{knob: v}) for v in values]
    assert counts == sorted(counts) and len(set(counts)) == len(counts), counts


def test_jar_fusion_flops_match_the_hand_formula():
    """W1 + two one-time resamplings + (iterations + fusion_layers) layer-sized steps."""
    with torch.device("meta"):
        model = variants.create("jar", preset="jar-base")
    count = count_flop_counter_mode(model, model.dummy_batch(1, "meta"))
    cfg = model.cfg
    m, length, n, d = 1 + (cfg.image_size // cfg.patch_size) ** 2, cfg.text_len, 64, 768

    def resample(s: int) -> int:  # q and out over N latents, k and v over s inputs, attention
        return 2 * n * d * d + 2 * s * d * d + 2 * n * s * d

    # a gated cross-attention step over N latents reading N latents costs one block's MACs
    steps = (cfg.iterations + cfg.fusion_layers) * block_macs(1, n, d)
    assert count.by_module["fusion"] == m * d * d + resample(m) + resample(length) + steps


@pytest.mark.slow  # ~15 meta-device models, seconds each on 2 cores
def test_jar_base_knobs_move_flops_in_the_papers_direction():
    """Table 4 (a)(b)(c)(e) and Table 3 at the Base setting: same order as the paper."""
    rows = compare("jar-base", tables=["3", "4a", "4b", "4c", "4e"])["rows"]
    for table in ("4a", "4b", "4c", "4e"):
        part = [r for r in rows if r["table"] == table]
        ours = sorted(part, key=lambda r: r["ours_gf"])
        paper = sorted(part, key=lambda r: r["paper_gf"])
        assert [r["paper_row"] for r in ours] == [r["paper_row"] for r in paper], table
    by_row = {(r["table"], r["paper_row"]): r for r in rows}
    assert by_row[("3", "Concat")]["ours_vs_jar"] > 1  # paper: 1.5x fewer FLOPs than concat
    assert by_row[("3", "Ours w/o gating")]["ours_gf"] == by_row[("3", "Ours")]["ours_gf"]


@pytest.mark.slow  # ~15 meta-device models, seconds each on 2 cores
def test_concat_grows_faster_than_jar_with_image_size():
    """JAR paper Fig. 2: same ViT-B/16 + BERT-base backbones, 224 -> 448 px."""
    sizes = (224, 336, 448)
    concat = [gflops("concat", "jar-base", image_size=s) for s in sizes]
    jar = [gflops("jar", "jar-base", image_size=s) for s in sizes]
    for i in range(1, len(sizes)):
        assert concat[i] - concat[i - 1] > 2 * (jar[i] - jar[i - 1]), (concat, jar)
    assert concat[-1] / concat[0] > jar[-1] / jar[0]


@pytest.mark.slow  # ~15 meta-device models, seconds each on 2 cores
def test_compare_rows_cover_tables_2_3_and_4_with_paper_numbers(capsys):
    args = ["compare", "--preset", "tiny", "--set", "fusion_layers=8", "--format", "json"]
    code, out, err = run_cli(args, capsys)
    assert code == 0, err
    result = json.loads(out)
    expected = {(t, r) for t in ("2", "3", "4a", "4b", "4c", "4d", "4e") for r in JAR_TABLES[t]}
    assert {(r["table"], r["paper_row"]) for r in result["rows"]} == expected
    for row in result["rows"]:
        assert row["paper_gf"] == JAR_TABLES[row["table"]][row["paper_row"]]["gf"]
        assert row["ours_gf"] > 0
        assert row["ours_vs_jar"] == pytest.approx(row["ours_gf"] / result["ours_jar_gf"])


def test_compare_says_which_rows_a_preset_cannot_build(capsys):
    """tiny has fusion_layers=2, so Table 4(a)'s iterations=4 and 8 rows are invalid."""
    result = compare("tiny", tables=["4a"])
    notes = {r["paper_row"]: r.get("note", "") for r in result["rows"]}
    assert notes["iterations=1"] == "" and notes["iterations=2"] == ""
    for row in ("iterations=4", "iterations=8"):
        assert notes[row].startswith("not measured: fusion_layers=2 must be a multiple")
    assert all(r["ours_gf"] is None for r in result["rows"] if r.get("note"))


@pytest.mark.parametrize("fmt,marker", [("table", "Table 4(c)"), ("markdown", "| paper_row"),
                                        ("csv", "table,paper_row,strategy")])
def test_compare_formats(capsys, fmt, marker):
    code, out, err = run_cli(["compare", "--preset", "tiny", "--tables", "4c",
                              "--format", fmt], capsys)
    assert code == 0, err
    assert marker in out and "resampling=spatial" in out


@pytest.mark.parametrize("args,message", [
    (["--set", "nope=1"], "unknown config key(s) nope"),
    (["--set", "iterations=3"], "fusion_layers=2 must be a multiple of iterations=3"),
    (["--preset", "nope"], "unknown preset 'nope'"),
])
def test_compare_rejects_bad_input_with_exit_2(capsys, args, message):
    code, out, err = run_cli(["compare", "--preset", "tiny", "--tables", "4c", *args], capsys)
    assert code == 2 and message in err and "Traceback" not in err
