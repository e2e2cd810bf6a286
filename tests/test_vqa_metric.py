"""The official VQA v2 accuracy (GT-Vision-Lab/VQA vqaEval.py), checked against examples
worked by hand from the script's code, one rule at a time.

Accuracy = mean over the 10 leave-one-out subsets (9 answers each) of min(#matches / 3, 1),
where the prediction is always fully processed and the human answers are only
punctuation-processed, and only when they are not all identical.
"""

from types import SimpleNamespace

import pytest

from bench.metrics.vqa import (
    exact_match,
    normalize_answer,
    oracle_accuracy,
    process_answers,
    process_punctuation,
    vqa_accuracy,
    vqa_report,
)


def answers(**counts: int) -> list[str]:
    out = [a for a, n in counts.items() for _ in range(n)]
    assert len(out) == 10
    return out


# ---- leave-one-out counting ---------------------------------------------------------------

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


# ---- the prediction: always cleaned, punctuation- and digit/article-processed -------------

@pytest.mark.parametrize("pred, gt", [
    ("Two.", "2"),                  # period stripped, lower-cased, number word -> digit
    ("The circle", "circle"),       # article dropped
    (" YES\n", "yes"),              # newline -> space, stripped, lower-cased
    ("yes\tplease", "yes please"),  # tab -> space
    ("dont know", "don't know"),    # contraction restored
    ("none", "0"),
    ("red-white", "red white"),     # hyphen between letters -> space
])
def test_prediction_is_processed_even_against_unanimous_answers(pred, gt):
    """The script processes the prediction before (outside) its ``len(set(gts)) > 1`` test."""
    assert vqa_accuracy(pred, [gt] * 10) == 1.0


# ---- the human answers: untouched when unanimous ------------------------------------------

@pytest.mark.parametrize("pred, gt", [
    ("Two", "Two"),    # prediction becomes "2"; the ten "Two"s stay "Two"
    ("two", "two"),    # likewise: unanimous number words are unreachable
    ("yes", "Yes"),    # human answers are never lower-cased
    ("Yes", "Yes"),
    ("yes", "yes."),   # ... nor punctuation-processed when unanimous
    ("circle", "a circle"),
    ("a circle", "a circle"),  # articles are never dropped from human answers
    ("yes", " yes"),   # ... nor stripped
])
def test_unanimous_answers_are_compared_as_given(pred, gt):
    assert vqa_accuracy(pred, [gt] * 10) == 0.0


# ---- the human answers: punctuation only, when they differ --------------------------------

@pytest.mark.parametrize("pred, gts, expected", [
    ("yes", answers(**{"yes.": 5, "yes": 5}), 1.0),   # "yes." -> "yes": 10 matches
    ("Yes", answers(Yes=5, yes=5), 1.0),             # the 5 "yes" match the processed "yes"
    ("Yes", answers(Yes=7, yes=3), 0.9),             # "Yes" is never lower-cased: 3 matches
    ("two", answers(two=9, **{"2": 1}), 0.3),        # "two" stays "two": only the "2" matches
    ("Two.", answers(**{"Two.": 8, "2": 2}), 0.6),   # "Two." -> "Two", not "2"
    ("a circle", answers(**{"a circle": 8, "circle": 2}), 0.6),  # articles stay
    ("red white", answers(**{"red-white": 5, "red white": 5}), 1.0),
    ("yes", answers(**{"yes!": 7, "yes": 3}), 0.9),  # "yes!" -> "yes " (a space, no strip)
    ("yes", answers(**{"yes ?": 8, "yes": 2}), 0.6),  # " ?" removed, the space stays
    ("1000", answers(**{"1,000": 5, "1000": 5}), 1.0),  # digit-comma-digit: comma removed
    ("yes", answers(**{"yes ": 8, "yes": 2}), 0.6),   # human answers are not stripped
])
def test_mixed_answers_are_punctuation_processed_only(pred, gts, expected):
    assert vqa_accuracy(pred, gts) == pytest.approx(expected)


def test_process_answers_only_touches_mixed_answers():
    assert process_answers(["Yes."] * 10) == ["Yes."] * 10
    assert process_answers(["Yes.", "two", "a circle!"]) == ["Yes", "two", "a circle "]


def test_comparison_is_exact_and_case_sensitive():
    gts = answers(Red=6, red=4)
    assert vqa_accuracy("RED", gts) == 1.0  # "red": 4 matches
    assert vqa_accuracy("Red", gts) == 1.0  # also "red" after processing, not "Red"
    assert vqa_accuracy("red", answers(Red=8, red=2)) == pytest.approx(0.6)


# ---- the processing functions themselves ---------------------------------------------------

@pytest.mark.parametrize("raw, out", [
    ("yes.", "yes"), ("3.5", "3.5"), ("red-white", "red white"),
    ("red - white", "red  white"),  # touches a space: removed, both spaces stay
    ("(circle)", " circle "), ("1,000", "1000"), ("a,b", "a b"), ("a, b", "a b"),
    ("yes!", "yes "), ("Mr. T", "Mr T"), ("black/white", "black white"), ("what?", "what "),
    ("e.g. 2.5.", "eg 2.5"),
    ("." * 40, "." * 8),  # the script passes re.UNICODE (32) as re.sub's count
])
def test_process_punctuation(raw, out):
    assert process_punctuation(raw) == out


@pytest.mark.parametrize("raw, norm", [
    ("Two.", "2"), ("none", "0"), ("zero", "0"), ("ten.", "10"), ("eleven", "eleven"),
    ("a red circle", "red circle"), ("A  red circle", "red circle"), ("an apple", "apple"),
    ("dont know", "don't know"), ("isnt", "isn't"), ("1,000", "1000"), ("3.5", "3.5"),
    ("red-white", "red white"), ("red - white", "red white"), ("black/white", "black white"),
    ("(circle)", "circle"), ("The End.", "end"), ("  YES  ", "yes"),
    ("Im", "im"),  # the table's capitalised keys never match after lower-casing
    ("somebody'd", "somebodyd"),  # sic, as published
    ("twas", "'twas"),
])
def test_normalize_answer(raw, norm):
    assert normalize_answer(raw) == norm


# ---- oracle: the best single answer -------------------------------------------------------

@pytest.mark.parametrize("gts, expected", [
    (["yes"] * 10, 1.0),
    (answers(**{"yes.": 6, "yes": 2, "no": 2}), 1.0),  # "yes" matches 8
    (answers(**{"2": 3, "3": 3, "4": 4}), 1.0),
    (answers(**{"2": 3, "3": 3, "4": 3, "5": 1}), 0.9),
    (["Yes"] * 10, 0.0),  # no prediction processes to "Yes"
    (["two"] * 10, 0.0),  # ... or to "two"
    (answers(Yes=7, yes=3), 0.9),
])
def test_oracle_accuracy(gts, expected):
    assert oracle_accuracy(gts) == pytest.approx(expected)


# ---- exact match and reports ----------------------------------------------------------------

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
        oracle_accuracy([])
    with pytest.raises(ValueError):
        vqa_report({}, [])
