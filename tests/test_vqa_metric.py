"""The official VQA v2 accuracy, checked against examples worked by hand.

Accuracy = mean over the 10 leave-one-out subsets (9 answers each) of min(#matches / 3, 1).
"""

from types import SimpleNamespace

import pytest

from bench.metrics.vqa import exact_match, normalize_answer, vqa_accuracy, vqa_report


def answers(**counts: int) -> list[str]:
    out = [a for a, n in counts.items() for _ in range(n)]
    assert len(out) == 10
    return out


@pytest.mark.parametrize("agree, expected", [
    # 10 agree: every subset of 9 has 9 matches -> 1 each -> 1.0
    (10, 1.0),
    # 4 agree: dropping one of the 4 leaves 3 -> 1; dropping another leaves 4 -> 1 => 1.0
    (4, 1.0),
    # 3 agree: 3 subsets drop a matching answer -> 2/3; 7 keep all 3 -> 1
    #          (3 * 2/3 + 7 * 1) / 10 = 9/10
    (3, 0.9),
    # 2 agree: 2 subsets -> 1/3; 8 subsets -> 2/3 => (2/3 + 16/3) / 10 = 0.6
    (2, 0.6),
    # 1 agrees: its own subset -> 0; 9 subsets -> 1/3 => 3/10
    (1, 0.3),
    (0, 0.0),
])
def test_leave_one_out_counts(agree, expected):
    gts = answers(**{"2": agree, "3": 10 - agree}) if agree < 10 else ["2"] * 10
    assert vqa_accuracy("2", gts) == pytest.approx(expected)


def test_number_words_and_punctuation_are_normalised():
    # not unanimous -> everything normalised: "two" -> "2", "Two." -> "2"
    gts = ["2"] * 5 + ["two"] * 3 + ["Two."] * 2
    assert vqa_accuracy("two", gts) == 1.0
    assert vqa_accuracy("2", gts) == 1.0
    # "yes." and "Yes!" normalise to "yes": 9 matches of 10 -> 1.0
    assert vqa_accuracy("Yes!", ["yes."] * 4 + ["Yes"] * 5 + ["no"]) == 1.0
    # the lone "no": its own subset 0, the other 9 subsets 1/3 each -> 0.3
    assert vqa_accuracy("no", ["yes."] * 4 + ["Yes"] * 5 + ["no"]) == pytest.approx(0.3)


def test_articles_are_removed():
    gts = ["red circle"] * 4 + ["a red circle"] * 3 + ["the red circle"] * 3
    assert vqa_accuracy("A red circle", gts) == 1.0


def test_unanimous_answers_are_not_normalised():
    """Official quirk: with 10 identical answers nothing is normalised, so "two" scores 0
    against ten "2"s (comparison is still case-insensitive)."""
    assert vqa_accuracy("two", ["2"] * 10) == 0.0
    assert vqa_accuracy("Two", ["two"] * 10) == 1.0
    assert vqa_accuracy(" two\n", ["two"] * 10) == 1.0  # whitespace is always stripped


@pytest.mark.parametrize("raw, norm", [
    ("Two.", "2"), ("none", "0"), ("ten.", "10"), ("a red circle", "red circle"),
    ("dont know", "don't know"), ("isnt", "isn't"), ("1,000", "1000"), ("3.5", "3.5"),
    ("red-white", "red white"), ("red - white", "red white"), ("black/white", "black white"),
    ("(circle)", "circle"), ("The End.", "end"), ("  YES  ", "yes"),
])
def test_normalize_answer(raw, norm):
    assert normalize_answer(raw) == norm


def test_exact_match_is_strict():
    assert exact_match(" Yes ", "yes") == 1.0
    assert exact_match("two", "2") == 0.0
    assert exact_match("red circle", "a red circle") == 0.0


def test_report_per_answer_type_and_missing_predictions():
    ex = [SimpleNamespace(question_id=1, answers=["yes"] * 10, answer="yes", answer_type="yes/no"),
          SimpleNamespace(question_id=2, answers=answers(**{"2": 3, "3": 7}), answer="3",
                          answer_type="number"),
          SimpleNamespace(question_id=3, answers=["red"] * 10, answer="red", answer_type="other"),
          SimpleNamespace(question_id=4, answers=("bowl",), answer="bowl", answer_type="")]
    rep = vqa_report({1: "yes", 2: "2", 4: "bowl"}, ex)  # 3 has no prediction -> 0
    # accuracies: 1.0, 0.9, 0.0, and 1.0 (single answer: exact match, GQA's metric)
    assert rep["accuracy"] == pytest.approx((1 + 0.9 + 0 + 1) / 4)
    assert rep["exact_match"] == pytest.approx(2 / 4)  # "2" is not the most common answer "3"
    assert rep["per_answer_type"] == pytest.approx(
        {"yes/no": 1.0, "number": 0.9, "other": 0.0, "all": 1.0})
    assert rep["n"] == 4


def test_empty_inputs_raise():
    with pytest.raises(ValueError):
        vqa_accuracy("yes", [])
    with pytest.raises(ValueError):
        vqa_report({}, [])
