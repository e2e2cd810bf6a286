"""Evaluation: answers from a model, scored with the official VQA metric and exact match.

Encoder-fusion strategies classify over the training answer vocabulary (argmax);
frozen-LM strategies generate text (greedy or beam) which is decoded and scored as is —
strict exact match is eP-ALM's metric, VQA accuracy the official one (with its answer
normalisation). Figures are percentages.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import torch

from .data.loaders import load_examples, read_json
from .errors import UserError
from .metrics.vqa import vqa_report


@torch.inference_mode()
def predict(model, dataset, *, batch_size: int = 64, device: str = "cpu",
            collate: Callable | None = None, max_new_tokens: int = 8,
            num_beams: int = 1) -> dict[int, str]:
    """{question_id: answer text} for every example of ``dataset``."""
    was_training = model.training
    model.eval()
    collate = collate or dataset.collate
    generative = model.family == "frozen-lm"
    answers: dict[int, str] = {}
    for start in range(0, len(dataset), batch_size):
        idx = list(range(start, min(start + batch_size, len(dataset))))
        batch = collate(idx).to(device)
        if generative:
            batch.answer_ids = None
            ids = model.generate(batch, max_new_tokens=max_new_tokens, num_beams=num_beams)
            texts = dataset.tokenizer.batch_decode(ids, skip_special_tokens=True)
        else:
            best = model(batch).logits.argmax(-1).tolist()
            texts = [dataset.vocab[i] for i in best]
        for i, text in zip(idx, texts):
            answers[dataset.examples[i].question_id] = text.strip()
    model.train(was_training)
    return answers


def question_scores(predictions: dict, examples) -> dict[str, list]:
    """Per-question ``vqa_acc`` and ``exact_match`` in [0, 1] (the official metric's rules,
    one question at a time), with the ``question_id`` of each, in the split's order."""
    examples = list(examples)
    reports = [vqa_report(predictions, [ex]) for ex in examples]
    return {"question_id": [ex.question_id for ex in examples],
            "vqa_acc": [r["accuracy"] for r in reports],
            "exact_match": [r["exact_match"] for r in reports]}


def evaluate_vqa(model, dataset, prefix: str = "val", **kwargs) -> dict[str, float]:
    """``{prefix}_vqa_acc`` and ``{prefix}_exact_match`` in %, over the whole split."""
    return vqa_metrics(predict(model, dataset, **kwargs), dataset.examples, prefix)


def vqa_metrics(predictions: dict, examples: Iterable, prefix: str,
                per_type: bool = False) -> dict[str, float]:
    """``{prefix}_vqa_acc`` and ``{prefix}_exact_match`` in %; with ``per_type``, also the
    accuracy on each answer type the data names (``{prefix}_vqa_acc[yes/no]``: the
    official script's perAnswerType)."""
    report = vqa_report(predictions, examples)
    out = {f"{prefix}_vqa_acc": 100 * report["accuracy"],
           f"{prefix}_exact_match": 100 * report["exact_match"]}
    if per_type and set(report["per_answer_type"]) != {"all"}:
        out.update({f"{prefix}_vqa_acc[{kind}]": 100 * acc
                    for kind, acc in report["per_answer_type"].items()})
    return out


def results_file(predictions: dict) -> list[dict]:
    """Answers in the VQA results format the official evaluation reads:
    ``[{"question_id": ..., "answer": ...}]``."""
    return [{"question_id": qid, "answer": answer} for qid, answer in predictions.items()]


def score_results_file(path: str | Path, data_dir: str | Path, split: str = "test"
                       ) -> dict[str, float]:
    """VQA accuracy (overall and per answer type) and exact match of a results file
    against ``split`` of ``data_dir``. As the official script, it must answer every
    question of the split and no other; a bad file is one ``UserError``."""
    examples = load_examples(data_dir, split)
    results = read_json(Path(path))
    if not isinstance(results, list) or not all(_is_result(r) for r in results):
        raise UserError(f"{path}: expected the VQA results format, a list of "
                        "{question_id, answer} objects with string answers")
    answers = {r["question_id"]: r["answer"] for r in results}
    if len(answers) < len(results):
        raise UserError(f"{path}: {len(results) - len(answers)} question ids are answered "
                        "more than once")
    ids = {ex.question_id for ex in examples}
    missing, extra = ids - answers.keys(), answers.keys() - ids
    if missing or extra:
        example = next(iter(missing or extra))
        raise UserError(f"{path}: does not answer {split}'s questions: {len(missing)} of "
                        f"them unanswered, {len(extra)} ids not in the split (e.g. "
                        f"{example!r})")
    return {"questions": len(examples),
            **vqa_metrics(answers, examples, split, per_type=True)}


def _is_result(record) -> bool:
    qid = record.get("question_id") if isinstance(record, dict) else None
    return (isinstance(qid, (int, str)) and not isinstance(qid, bool)
            and isinstance(record.get("answer"), str))
