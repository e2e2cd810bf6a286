"""Test evaluation with its control: the same model with every test image swapped.

``blind`` accuracy scores the trained model on the test questions with each question's
image replaced by another test image (a fixed seeded derangement over the split's images:
no image keeps its own place), and ``image_reliance`` = accuracy - blind accuracy, in
points: how much of the accuracy needs the right image. With the frozen-feature cache
the swap only re-indexes the cached feature rows; nothing is recomputed.

The per-question scores of both evaluations are stored beside the run
(``test_scores.json``), so the report can put bootstrap intervals on every accuracy and
compare strategies paired on the same questions.
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import torch

from .atomic_files import atomic_write_json
from .errors import UserError
from .evaluate import predict, question_scores
from .row import BLIND_ACC, IMAGE_RELIANCE, TEST_ACC, TEST_EXACT
from .stats import derangement

SCORES_FILE = "test_scores.json"
BLIND_SEED = 0
SCORE_KEYS = (TEST_ACC, TEST_EXACT, BLIND_ACC)


def swap_images(dataset, seed: int = BLIND_SEED):
    """A view of ``dataset`` whose question i sees image ``perm[image of i]`` (a seeded
    derangement); texts, targets and the stored images are shared, not copied."""
    perm = torch.from_numpy(derangement(len(dataset.image_paths), seed))
    view = copy.copy(dataset)
    view.image_index = perm[dataset.image_index]
    return view


def evaluate_test(model, test_set, *, device="cpu", cache=None, seed: int = BLIND_SEED,
                  **predict_kwargs) -> tuple[dict[str, float], dict[str, list]]:
    """(figures in %, per-question scores in [0, 1]) of the test split and its blind
    control. ``cache``: the split's ``FeatureCache`` when features are cached."""
    def scores(dataset) -> dict[str, list]:
        collate = cache.over(dataset).collate if cache is not None else None
        answers = predict(model, dataset, device=device, collate=collate, **predict_kwargs)
        return question_scores(answers, dataset.examples)

    seen = scores(test_set)
    per_question = {"question_id": seen["question_id"], TEST_ACC: seen["vqa_acc"],
                    TEST_EXACT: seen["exact_match"]}
    figures = {TEST_ACC: 100 * _mean(seen["vqa_acc"]),
               TEST_EXACT: 100 * _mean(seen["exact_match"])}
    if len(test_set.image_paths) >= 2:  # one image cannot be swapped for another
        blind = scores(swap_images(test_set, seed))["vqa_acc"]
        per_question[BLIND_ACC] = blind
        figures[BLIND_ACC] = 100 * _mean(blind)
        figures[IMAGE_RELIANCE] = figures[TEST_ACC] - figures[BLIND_ACC]
    return figures, per_question


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def save_scores(run_dir: str | Path, per_question: dict[str, list]) -> Path:
    path = Path(run_dir) / SCORES_FILE
    atomic_write_json(path, per_question)
    return path


def load_scores(run_dir: str | Path) -> dict[str, list] | None:
    """The stored per-question scores of a run, or None when it has none (older runs)."""
    path = Path(run_dir) / SCORES_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise UserError(f"{path} is unreadable: {e}") from None
    if not isinstance(data, dict) or not isinstance(data.get("question_id"), list):
        raise UserError(f"{path}: expected per-question score lists with question_id")
    n = len(data["question_id"])
    if any(not isinstance(data.get(k, []), list) or len(data.get(k, [])) not in (0, n)
           for k in SCORE_KEYS):
        raise UserError(f"{path}: score lists differ in length from question_id")
    return data
