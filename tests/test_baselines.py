"""Accuracy floors (majority, type prior, question-only) and the oracle ceiling on a small
synthvqa dataset."""

import json
from collections import Counter
from types import SimpleNamespace

import pytest

from bench.cli import main
from bench.data.baselines import QuestionOnly, floors, oracle_report
from bench.data.loaders import load_examples
from bench.data.synthvqa import make
from bench.metrics.vqa import normalize_answer, vqa_accuracy
from bench.stats import bootstrap_mean
from tests.helpers import run_cli


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    make(out, seed=2, images=150, workers=1)
    return out


def test_floor_rows_and_majority_by_hand(root):
    rows = floors(root, seed=0, cache=False)
    assert [(r["baseline"], r["split"]) for r in rows] == [
        (b, s) for b in ("majority", "type-prior", "question-only", "oracle")
        for s in ("val", "test")]
    train, val = load_examples(root, "train"), load_examples(root, "val")
    most = Counter(normalize_answer(e.answer) for e in train).most_common(1)[0][0]
    expected = sum(vqa_accuracy(most, e.answers) for e in val) / len(val)
    majority_val = rows[0]
    assert majority_val["accuracy"] == pytest.approx(expected)
    assert majority_val["n"] == len(val)
    for r in rows:
        assert 0.0 <= r["accuracy"] <= 1.0 and 0.0 <= r["exact_match"] <= 1.0


def test_each_floor_carries_the_bootstrap_interval_of_its_per_question_scores(root):
    rows = floors(root, seed=0, cache=False)
    val = load_examples(root, "val")
    most = rows[0]  # majority, val: one answer for every question
    answer = Counter(normalize_answer(e.answer) for e in load_examples(root, "train")
                     ).most_common(1)[0][0]
    expected = bootstrap_mean([vqa_accuracy(answer, e.answers) for e in val])
    assert (most["ci_lo"], most["ci_hi"]) == pytest.approx((expected.lo, expected.hi))
    assert most["ci_hi"] - most["ci_lo"] > 0.01  # 150 images' questions: a real spread
    for r in rows:
        assert r["ci_lo"] <= r["accuracy"] <= r["ci_hi"], r["baseline"]
        if r["baseline"] == "oracle":  # every question scores 1: no spread at all
            assert r["ci_lo"] == r["ci_hi"] == 1.0


def test_oracle_is_the_ceiling_and_100_percent_on_synthvqa(root):
    rows = floors(root, seed=0, cache=False)
    oracle = {r["split"]: r for r in rows if r["baseline"] == "oracle"}
    for split, r in oracle.items():
        assert r["accuracy"] == 1.0 and r["unmatchable"] == r["disagreeing"] == 0, split
        assert all(v == 1.0 for k, v in r.items() if k.startswith("acc["))
        assert r["n"] == len(load_examples(root, split))
    for r in rows:
        assert r["accuracy"] <= oracle[r["split"]]["accuracy"]


def test_oracle_report_counts_what_keeps_it_below_100():
    ex = [SimpleNamespace(answers=("yes",) * 10, answer_type="yes/no"),
          SimpleNamespace(answers=("Yes",) * 10, answer_type="yes/no"),   # unmatchable
          SimpleNamespace(answers=("2", "2", "2", "3", "3", "3", "4", "4", "5", "6"),
                          answer_type="number"),                          # 3 agree: 0.9
          SimpleNamespace(answers=("bowl",), answer_type="")]             # GQA: exact match
    rep = oracle_report(ex)
    assert rep["accuracy"] == pytest.approx((1 + 0 + 0.9 + 1) / 4)
    assert (rep["unmatchable"], rep["disagreeing"], rep["n"]) == (1, 1, 4)
    assert rep["per_answer_type"] == pytest.approx({"yes/no": 0.5, "number": 0.9, "all": 1.0})


def test_question_only_is_seeded_and_learns_the_text(root):
    train = load_examples(root, "train")
    qs = [e.question for e in train]
    a, b = QuestionOnly(train, seed=0, epochs=3), QuestionOnly(train, seed=0, epochs=3)
    assert a.predict(qs) == b.predict(qs)
    preds = QuestionOnly(train, seed=0).predict(qs)
    # it learns question-type priors: "How many ..." gets numbers, "What color ..." colours
    for q, p in zip(qs, preds, strict=True):
        if q.startswith("How many"):
            assert p.isdigit()
        if q.startswith(("Is there", "Are there", "Is the", "Are the")):
            assert p in ("yes", "no")


def test_cache_and_cli(root, capsys):
    first = floors(root, seed=0)
    assert (root / "baselines.json").is_file()
    assert floors(root, seed=0) == first  # served from the cache
    assert main(["data", "baselines", "--data", str(root), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == first
    assert main(["data", "baselines", "--data", str(root)]) == 0
    out = capsys.readouterr().out
    assert "question-only" in out and "VQA acc %" in out and "oracle" in out
    assert "oracle below 100 %" not in out
    assert main(["data", "info", "--data", str(root)]) == 0
    out = capsys.readouterr().out
    assert "max question tokens" in out and "train" in out


@pytest.mark.parametrize("rows", [[{"bogus": 1}], "oops", None, [],
                                  "first row without accuracy", "majority on val twice"])
def test_a_malformed_cache_under_a_matching_key_is_recomputed_and_rewritten(root, capsys,
                                                                           rows):
    first = floors(root, seed=0)
    path = root / "baselines.json"
    stored = json.loads(path.read_text())
    if rows == "first row without accuracy":
        rows = [{k: v for k, v in first[0].items() if k != "accuracy"}, *first[1:]]
    elif rows == "majority on val twice":
        rows = [first[0], *first[:-1]]
    path.write_text(json.dumps({"key": stored["key"], "rows": rows}))
    code, out, err = run_cli(["data", "baselines", "--data", str(root), "--format", "json"],
                             capsys)
    assert code == 0 and json.loads(out) == first and not err  # was a traceback
    assert json.loads(path.read_text()) == stored  # the cache is whole again
