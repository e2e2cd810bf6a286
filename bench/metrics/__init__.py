"""Accuracy metrics: official VQA v2 accuracy and exact match (``vqa``), captioning
BLEU/METEOR/ROUGE-L/CIDEr through pycocoevalcap (``captions``)."""

from .vqa import (
    exact_match,
    normalize_answer,
    oracle_accuracy,
    process_answers,
    vqa_accuracy,
    vqa_report,
)

__all__ = ["exact_match", "normalize_answer", "oracle_accuracy", "process_answers", "vqa_accuracy",
           "vqa_report"]
