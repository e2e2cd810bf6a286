"""VQA accuracy exactly as the official VQA v2 evaluation script computes it, and strict
exact match (eP-ALM's metric for generated answers).

Reimplemented from GT-Vision-Lab/VQA ``PythonEvaluationTools/vqaEvaluation/vqaEval.py``
(``VQAEval.evaluate``), quirks included so numbers match published ones:

- the *prediction* is always processed, whatever the human answers are: newlines/tabs
  become spaces, it is stripped, punctuation-processed, then digit/article-processed
  (lower-cased, number words to digits, "a"/"an"/"the" dropped, apostrophe-less
  contractions restored). In the script these two calls sit *before* the
  ``if len(set(gtAnswers)) > 1`` test, not inside it;
- the *human answers* are only punctuation-processed, and only when they are not all
  identical (inside that ``if``). They are never stripped, lower-cased or
  digit/article-processed: "Two" scores 0 against ten "Two"s (it becomes "2"), and a
  prediction "two" only ever matches annotators who wrote "2";
- punctuation processing: each of ``; / [ ] " { } ( ) = + \\ _ - > < @ ` , ? !`` is removed
  when it touches a space in the original text or the text has a digit-comma-digit, else it
  becomes a space; then a period not followed by a digit is removed (at most 32 of them:
  the script passes ``re.UNICODE`` where ``re.sub`` expects ``count``);
- comparison is exact, case-sensitive string equality; for each of the leave-one-out subsets
  (every annotator left out once; annotators are distinct even when they wrote the same
  text, as the script's ``answer_id`` makes them) the score is min(#matches / 3, 1), and the
  accuracy is their mean.

This is GT-Vision-Lab's own file (checked at its commits 07aecec and c4e6a0e). Some widely
copied forks differ: they also digit/article-process the human answers and move the
prediction's processing inside the ``if`` (unanimous answers then meet a raw prediction);
numbers computed with those are not the official ones.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache

_PUNCT = [";", r"/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-",
          ">", "<", "@", "`", ",", "?", "!"]
# sic: the official pattern reads "(?!<=\d)", a look-ahead, not the look-behind it meant.
_PERIOD_STRIP = re.compile(r"(?!<=\d)(\.)(?!\d)")
_COMMA_STRIP = re.compile(r"(\d)(,)(\d)")
# The official script passes re.UNICODE (= 32) where re.sub expects ``count``.
_PERIOD_COUNT = 32
_NUMBERS = {"none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4",
            "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10"}
_ARTICLES = {"a", "an", "the"}
# The official contraction table, entries kept as published (including the never-matching
# capitalised keys and "somebody'd" -> "somebodyd"); words are looked up after lower-casing.
_CONTRACTIONS = dict(pair.split(":") for pair in """
aint:ain't arent:aren't cant:can't couldve:could've couldnt:couldn't couldn'tve:couldn't've
couldnt've:couldn't've didnt:didn't doesnt:doesn't dont:don't hadnt:hadn't hadnt've:hadn't've
hadn'tve:hadn't've hasnt:hasn't havent:haven't hed:he'd hed've:he'd've he'dve:he'd've hes:he's
howd:how'd howll:how'll hows:how's Id've:I'd've I'dve:I'd've Im:I'm Ive:I've isnt:isn't itd:it'd
itd've:it'd've it'dve:it'd've itll:it'll let's:let's maam:ma'am mightnt:mightn't
mightnt've:mightn't've mightn'tve:mightn't've mightve:might've mustnt:mustn't mustve:must've
neednt:needn't notve:not've oclock:o'clock oughtnt:oughtn't ow's'at:'ow's'at 'ows'at:'ow's'at
'ow'sat:'ow's'at shant:shan't shed've:she'd've she'dve:she'd've she's:she's shouldve:should've
shouldnt:shouldn't shouldnt've:shouldn't've shouldn'tve:shouldn't've somebody'd:somebodyd
somebodyd've:somebody'd've somebody'dve:somebody'd've somebodyll:somebody'll
somebodys:somebody's someoned:someone'd someoned've:someone'd've someone'dve:someone'd've
someonell:someone'll someones:someone's somethingd:something'd somethingd've:something'd've
something'dve:something'd've somethingll:something'll thats:that's thered:there'd
thered've:there'd've there'dve:there'd've therere:there're theres:there's theyd:they'd
theyd've:they'd've they'dve:they'd've theyll:they'll theyre:they're theyve:they've twas:'twas
wasnt:wasn't wed've:we'd've we'dve:we'd've weve:we've werent:weren't whatll:what'll
whatre:what're whats:what's whatve:what've whens:when's whered:where'd wheres:where's
whereve:where've whod:who'd whod've:who'd've who'dve:who'd've wholl:who'll whos:who's
whove:who've whyll:why'll whyre:why're whys:why's wont:won't wouldve:would've
wouldnt:wouldn't wouldnt've:wouldn't've wouldn'tve:wouldn't've yall:y'all yall'll:y'all'll
y'allll:y'all'll yall'd've:y'all'd've y'alld've:y'all'd've y'all'dve:y'all'd've youd:you'd
youd've:you'd've you'dve:you'd've youll:you'll youre:you're youve:you've
""".split())


@lru_cache(maxsize=1 << 18)  # human answers repeat a lot; part of the hot path of scoring
def process_punctuation(text: str) -> str:
    """The official ``processPunctuation`` ("yes." -> "yes", "red-white" -> "red white")."""
    out = text
    drop = _COMMA_STRIP.search(text) is not None
    for p in _PUNCT:
        if drop or p + " " in text or " " + p in text:
            out = out.replace(p, "")
        else:
            out = out.replace(p, " ")
    return _PERIOD_STRIP.sub("", out, count=_PERIOD_COUNT)


def process_digit_article(text: str) -> str:
    """The official ``processDigitArticle``: lower-case, number words, articles, contractions."""
    words = [_NUMBERS.get(w, w) for w in text.lower().split()]
    words = [_CONTRACTIONS.get(w, w) for w in words if w not in _ARTICLES]
    return " ".join(words)


def _clean(text: str) -> str:
    return text.replace("\n", " ").replace("\t", " ").strip()


@lru_cache(maxsize=1 << 18)  # answers repeat a lot; this is the hot path of scoring
def normalize_answer(text: str) -> str:
    """The official processing of a *prediction* ("Two." -> "2", "a red circle" -> "red circle").
    Human answers are not processed this way (see ``process_answers``)."""
    return process_digit_article(process_punctuation(_clean(text)))


def process_answers(answers: Sequence[str]) -> list[str]:
    """The official processing of the *human answers*: punctuation only, and only when they
    are not all identical; otherwise returned as given (no strip, no lower-casing)."""
    if len(set(answers)) > 1:
        return [process_punctuation(a) for a in answers]
    return list(answers)


def _loo_accuracy(pred: str, gts: Sequence[str]) -> float:
    hits = [a == pred for a in gts]
    total = sum(hits)
    # leave-one-out: the subset without annotator i has (total - hits[i]) matches
    return sum(min(1.0, (total - h) / 3.0) for h in hits) / len(hits)


def vqa_accuracy(prediction: str, answers: Sequence[str]) -> float:
    """Official VQA accuracy in [0, 1] of one predicted answer against the human answers
    (normally 10)."""
    if not answers:
        raise ValueError("vqa_accuracy needs at least one human answer")
    return _loo_accuracy(normalize_answer(prediction), process_answers(answers))


def oracle_accuracy(answers: Sequence[str]) -> float:
    """The best official accuracy any single prediction can reach on these human answers.

    Only a processed human answer can match, and only if some prediction processes to it;
    ``normalize_answer`` is idempotent, so those are the answers that are their own
    normalisation ("Yes" among ten unanimous "Yes"s is unreachable: the oracle scores 0)."""
    if not answers:
        raise ValueError("oracle_accuracy needs at least one human answer")
    gts = process_answers(answers)
    reachable = {g for g in gts if normalize_answer(g) == g}
    return max((_loo_accuracy(g, gts) for g in reachable), default=0.0)


def exact_match(prediction: str, target: str) -> float:
    """Strict exact match (eP-ALM): 1.0 when the generated text equals the target answer after
    stripping surrounding whitespace and lower-casing, else 0.0. No other normalisation."""
    return float(prediction.strip().lower() == target.strip().lower())


def vqa_report(predictions: Mapping[int, str], examples: Iterable) -> dict:
    """Score predictions {question_id: answer} over examples (objects with ``question_id``,
    ``answers``, ``answer`` and ``answer_type``). Returns fractions in [0, 1]:
    ``accuracy`` (official VQA), ``exact_match`` (against the most common answer),
    ``per_answer_type`` accuracy, and ``n`` (questions scored). Missing predictions score 0.
    Single-answer examples (GQA) are scored by exact match, GQA's own metric."""
    acc, em = [], []
    per_type: dict[str, list[float]] = defaultdict(list)
    for ex in examples:
        pred = predictions.get(ex.question_id, "")
        if len(ex.answers) > 1:
            a = vqa_accuracy(pred, ex.answers)
        else:
            a = exact_match(pred, ex.answers[0])
        acc.append(a)
        em.append(exact_match(pred, ex.answer))
        per_type[ex.answer_type or "all"].append(a)
    n = len(acc)
    if n == 0:
        raise ValueError("vqa_report: no examples to score")
    return {"accuracy": sum(acc) / n, "exact_match": sum(em) / n, "n": n,
            "per_answer_type": {k: sum(v) / len(v) for k, v in sorted(per_type.items())}}
