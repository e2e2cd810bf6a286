"""Seeds merged into mean +- std, seed-averaged paired comparisons, and the papers'
orderings matched to the right pair of runs (tiny hand-made rows)."""

import math

import numpy as np
import pandas as pd
import pytest

from bench.report_accuracy import accuracy_frame, merge_seeds, still_improving
from bench.report_orderings import NOT_TRAINED, orderings_frame
from bench.report_render import accuracy_section

N = 200


def row(strategy, seed, acc, sweep="strategies_paper", **cfg):
    return {"sweep": sweep, "strategy": strategy, "family": "encoder-fusion",
            "preset": "tiny", "grid.strategy": strategy, "seed": seed,
            "point_id": f"{sweep}-{strategy}-{seed}-{sorted(cfg.items())}",
            "test_vqa_acc": acc, "blind_vqa_acc": acc / 2,
            **{f"cfg.{k}": v for k, v in cfg.items()},
            **{f"grid.{k}": v for k, v in cfg.items()}}


def vector(right: int, offset: int = 0) -> list[float]:
    """N questions, ``right`` of them right starting at question ``offset``."""
    v = np.zeros(N)
    v[offset:offset + right] = 1
    return v.tolist()


def stored(test: list[float], order=None) -> dict:
    order = list(range(N)) if order is None else order
    return {"question_id": order, "test_vqa_acc": [test[q] for q in order],
            "blind_vqa_acc": [t / 2 for t in (test[q] for q in order)]}


def test_seeds_merge_into_mean_std_and_seed_averaged_scores():
    rows = [row("jar", s, a) for s, a in zip((0, 1, 2), (50.0, 52.0, 54.0))]
    rows.append(row("concat", 0, 40.0))
    reversed_ids = list(range(N))[::-1]  # stored in another question order: aligned by id
    scores = {rows[0]["point_id"]: stored(vector(100)),
              rows[1]["point_id"]: stored(vector(104), reversed_ids),
              rows[2]["point_id"]: stored(vector(108)),
              rows[3]["point_id"]: stored(vector(80))}
    trained = merge_seeds(pd.DataFrame(rows), scores)
    jar = next(t for t in trained if t.strategy == "jar")
    assert jar.seeds == 3 and jar.row["test_vqa_acc"] == 52.0
    assert jar.row["test_vqa_acc_std"] == pytest.approx(2.0)
    assert jar.scores["test_vqa_acc"][:100].tolist() == [1.0] * 100
    assert jar.scores["test_vqa_acc"][100:108].tolist() == pytest.approx([2 / 3] * 4 + [1 / 3] * 4)
    frame = accuracy_frame(trained)
    concat = frame[frame["strategy"] == "concat"].iloc[0]
    assert concat["vs_best"] == pytest.approx(-12.0) and concat["vs_best_hi"] < 0
    assert not concat["tied_with_best"] and math.isnan(concat["test_vqa_acc_std"])
    lines = "\n".join(accuracy_section(frame))
    assert "| jar | encoder-fusion | 3 | 52.0 ± 2.0 | 52.0 [" in lines
    assert "means over seeds" in lines


def test_a_configuration_without_scores_has_no_interval_but_keeps_its_figure():
    rows = [row("jar", 0, 50.0), row("concat", 0, 40.0)]
    trained = merge_seeds(pd.DataFrame(rows), {rows[0]["point_id"]: stored(vector(100))})
    frame = accuracy_frame(trained).set_index("strategy")
    assert frame.loc["concat", "test_vqa_acc"] == 40.0
    assert math.isnan(frame.loc["concat", "test_vqa_acc_lo"])
    assert frame.loc["jar", "best"] and not frame.loc["concat", "tied_with_best"]


def test_each_row_is_held_to_its_family_bar_relative_to_the_question_only_floor():
    """encoder-fusion: floor + 15 and reliance 15; frozen-lm: floor + 8 and reliance 8."""
    from bench.report_accuracy import bar_verdict

    floors = {"majority": 30.0, "question-only": 40.0}
    fusion = {"family": "encoder-fusion", "image_reliance": 20.0}
    assert bar_verdict({**fusion, "test_vqa_acc": 55.0}, floors) == "met"
    assert bar_verdict({**fusion, "test_vqa_acc": 54.9}, floors) == "missed: acc 54.90 < 55.00"
    frozen = {"family": "frozen-lm", "test_vqa_acc": 47.0, "image_reliance": 6.1}
    assert bar_verdict(frozen, floors) == "missed: acc 47.00 < 48.00, reliance 6.10 < 8"
    assert bar_verdict(frozen, {"majority": 30.0}) == ""  # no question-only floor: no verdict
    assert bar_verdict({**frozen, "image_reliance": math.nan}, floors) == ""
    assert bar_verdict({**frozen, "test_vqa_acc": 50.0, "image_reliance": 7.97},
                       floors) == "missed: reliance 7.97 < 8"  # not "8.0 < 8"

    rows = [row("jar", 0, 80.0), row("concat", 0, 40.0)]  # blind = acc / 2
    scores = {r["point_id"]: stored(vector(int(r["test_vqa_acc"] * N / 100))) for r in rows}
    frame = accuracy_frame(merge_seeds(pd.DataFrame(rows), scores), floors=floors)
    assert frame.set_index("strategy")["bar"].to_dict() == {
        "jar": "met", "concat": "missed: acc 40.00 < 55.00"}
    lines = "\n".join(accuracy_section(frame))
    assert "| missed: acc 40.00 < 55.00 |" in lines and "question-only floor + 15" in lines
    assert "not training noise" in lines  # one seed: say what the intervals leave out


def knob_runs(results: dict[tuple, int]) -> tuple[list, dict]:
    """JAR Table 4 sweep rows: {(iterations, num_tokens, gating): questions right}."""
    rows, scores = [], {}
    for (iters, tokens, gating), right in results.items():
        r = row("jar", 0, 100 * right / N, sweep="jar_table4_train", iterations=iters,
                num_tokens=tokens, gating=gating, resampling="latent",
                combination="weighted", fusion_layers=4)
        rows.append(r)
        scores[r["point_id"]] = stored(vector(right))
    return rows, scores


def test_knob_orderings_pair_runs_that_differ_in_that_knob_only():
    rows, scores = knob_runs({(1, 16, True): 100, (2, 16, True): 120, (4, 16, True): 120,
                              (4, 32, True): 90, (4, 16, False): 119,
                              (2, 8, True): 10})  # (2, 8) must not pair with anything
    verdicts = dict(zip(*orderings_frame(merge_seeds(pd.DataFrame(rows), scores))[
        ["claim", "verdict"]].T.values))
    assert verdicts["iterations=2 > iterations=1"] == "reproduces"
    assert verdicts["iterations=4 > iterations=2"] == "cannot tell"  # identical scores
    assert verdicts["num_tokens=32 > num_tokens=16"] == "contradicts"
    assert verdicts["JAR with gating > JAR w/o gating"] == "cannot tell"  # 1 question
    assert verdicts["iterations=8 > iterations=4"] == NOT_TRAINED
    assert verdicts["JAR > Perceiver"] == NOT_TRAINED


def test_strategy_orderings_use_the_strategy_sweeps_and_show_both_accuracies():
    rows = [row("epalm_ada", 0, 30.0, sweep="frozen_lm_paper"),
            row("epalm", 0, 35.0, sweep="frozen_lm_paper")]
    scores = {rows[0]["point_id"]: stored(vector(60)), rows[1]["point_id"]: stored(vector(70))}
    frame = orderings_frame(merge_seeds(pd.DataFrame(rows), scores)).set_index("claim")
    ada = frame.loc["eP-ALM_ada > eP-ALM"]
    assert ada["verdict"] == "contradicts" and ada["ours"] == "30.0 vs 35.0"
    assert ada["difference"].startswith("-5.0 [")
    assert frame.loc["eP-ALM > eP-ALM_pt", "verdict"] == NOT_TRAINED


def test_rows_of_another_config_are_not_merged_as_seeds():
    rows = [row("jar", 0, 50.0, iterations=2), row("jar", 1, 52.0, iterations=2),
            row("jar", 0, 30.0, iterations=2)]
    rows[2]["cfg.width"] = 128  # a stale row from an edited preset
    rows[2]["point_id"] += "-stale"
    trained = merge_seeds(pd.DataFrame(rows), {})
    assert sorted(t.seeds for t in trained) == [1, 2]


def test_rows_without_pretrained_backbones_say_so():
    """Data the preset cannot pretrain on (``fusebench report --data DIR``): a frozen LM or
    a frozen image encoder at random weights is named in the row's note."""
    from bench.report_accuracy import random_backbones

    lm = {"family": "frozen-lm", "cfg.freeze_backbones": True}
    assert random_backbones({**lm, "cfg.lm_path": "/ckpt/opt", "cfg.vision_path": "/v"}) == ""
    assert random_backbones({**lm, "cfg.lm_path": math.nan, "cfg.vision_path": math.nan}) \
        == "LM and frozen image encoder from random weights (no checkpoint for this data)"
    everything_trains = {**lm, "cfg.freeze_backbones": False, "cfg.vision_path": ""}
    assert random_backbones(everything_trains).startswith("LM from random weights")
    assert random_backbones({"family": "encoder-fusion", "cfg.freeze_vision": False}) == ""
    frozen_random = {"family": "encoder-fusion", "cfg.freeze_vision": True}
    assert random_backbones(frozen_random).startswith("frozen image encoder from random")

    rows = [row("jar", 0, 80.0, freeze_vision=True), row("concat", 0, 40.0)]
    scores = {r["point_id"]: stored(vector(int(r["test_vqa_acc"] * N / 100))) for r in rows}
    notes = accuracy_frame(merge_seeds(pd.DataFrame(rows), scores)).set_index("strategy")
    assert notes["note"].to_dict() == {
        "jar": "frozen image encoder from random weights (no checkpoint for this data)",
        "concat": ""}


def test_rows_still_learning_at_their_last_epoch_are_named_with_their_orderings():
    """A last-epoch validation gain of 1 point or more marks a row stopped by its budget:
    the accuracy table shows the gain, the text names the rows, the orderings a caveat."""
    rows = [{**row("jar", 0, 60.0, sweep="strategies_quick"), "val_last_gain": 2.8},
            {**row("perceiver", 0, 65.0, sweep="strategies_quick"), "val_last_gain": 0.4},
            {**row("cotok", 0, 64.0, sweep="strategies_quick"), "val_last_gain": -0.5}]
    scores = {r["point_id"]: stored(vector(int(r["test_vqa_acc"] * N / 100))) for r in rows}
    trained = merge_seeds(pd.DataFrame(rows), scores)
    lines = "\n".join(accuracy_section(accuracy_frame(trained)))
    assert "last epoch's val gain (points)" in lines and "| +2.8 |" in lines
    assert "| -0.5 |" in lines
    assert ("1 of 3 rows gained 1 point or more in their last epoch, and at least one "
            "standard error of their validation accuracy (jar)") in lines
    frame = orderings_frame(trained).set_index("claim")
    assert frame.loc["JAR > Perceiver", "caveat"] == "one seed; JAR still improving"
    assert frame.loc["JAR > Iterative Co-tokenization", "caveat"] == \
        "one seed; JAR still improving"
    assert frame.loc["JAR > Concat", "caveat"] == ""  # not trained: nothing to qualify
    seeded = [{**r, "seed": seed, "point_id": f"{r['point_id']}-{seed}"}
              for r in rows for seed in (0, 1)]
    frame = orderings_frame(merge_seeds(pd.DataFrame(seeded), {
        r["point_id"]: scores[r["point_id"].rsplit("-", 1)[0]] for r in seeded})
    ).set_index("claim")
    assert frame.loc["JAR > Perceiver", "caveat"] == "JAR still improving"  # 2 seeds each
    settled = [{**r, "val_last_gain": 0.2} for r in rows]
    lines = "\n".join(accuracy_section(accuracy_frame(merge_seeds(pd.DataFrame(settled),
                                                                  scores))))
    assert "No row gained 1 point or more in its last epoch." in lines
    # on 100 validation questions at 60 %, one standard error is 4.9 points: 2.8 is noise
    assert still_improving({"val_last_gain": 2.8, "val_vqa_acc": 60.0, "val_examples": 3000})
    assert not still_improving({"val_last_gain": 2.8, "val_vqa_acc": 60.0, "val_examples": 100})
    assert not still_improving({"val_last_gain": 0.9, "val_vqa_acc": 99.9, "val_examples": 10**6})
    old = [{k: v for k, v in r.items() if k != "val_last_gain"} for r in rows]  # older runs
    lines = "\n".join(accuracy_section(accuracy_frame(merge_seeds(pd.DataFrame(old), scores))))
    assert "| n/a |" in lines and "in their last epoch" not in lines


def test_the_page_says_what_each_familys_backbones_start_from(tmp_path):
    """Read off the rows' configs: the shipped checkpoints by name on the built-in data,
    ones pretrained on other data (runs/pretrained), an encoder trained from raw pixels,
    a frozen random one, and which frozen-LM rows train their backbones."""
    import pandas as pd

    from bench.reference import SHIPPED
    from bench.report_accuracy import backbones_text

    shipped_vit = sorted(p.name for p in SHIPPED.iterdir() if p.name.startswith("vit-"))[0]
    made = str(tmp_path / "runs" / "pretrained" / "opt-micro-abc")
    frame = pd.DataFrame([
        {"strategy": "jar", "family": "encoder-fusion", "cfg.freeze_vision": True,
         "cfg.vision_path": f"runs/pretrained/{shipped_vit}/model.safetensors"},
        {"strategy": "epalm", "family": "frozen-lm", "cfg.freeze_backbones": True,
         "cfg.vision_path": "/elsewhere/vit/model.safetensors", "cfg.lm_path": made},
        {"strategy": "finetune", "family": "frozen-lm", "cfg.freeze_backbones": False,
         "cfg.vision_path": "/elsewhere/vit/model.safetensors", "cfg.lm_path": made}])
    text = backbones_text(frame)
    assert f"image encoder `{shipped_vit}` (shipped, pretrained on the built-in data), " \
           "frozen" in text
    assert "ViT `vit` (a local checkpoint) and OPT `opt-micro-abc` (pretrained on this " \
           "data's training split), frozen (trained in finetune)" in text
    pixels = pd.DataFrame([{"strategy": "jar", "family": "encoder-fusion",
                            "cfg.freeze_vision": False, "cfg.vision_path": math.nan}])
    assert "image encoder trained from raw pixels" in backbones_text(pixels)
    assert "frozen at its random init" in backbones_text(pixels.assign(
        **{"cfg.freeze_vision": True}))
    assert backbones_text(pd.DataFrame([{"strategy": "jar", "family": "encoder-fusion"}])) == ""
