"""Evaluation: answers from a model, scored with the official VQA metric and exact match.

Encoder-fusion strategies classify over the training answer vocabulary (argmax);
frozen-LM strategies generate text (greedy or beam) which is decoded and scored as is —
strict exact match is eP-ALM's metric, VQA accuracy the official one (with its answer
normalisation). Figures are percentages.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

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
    report = vqa_report(predict(model, dataset, **kwargs), dataset.examples)
    return {f"{prefix}_vqa_acc": 100 * report["accuracy"],
            f"{prefix}_exact_match": 100 * report["exact_match"]}
