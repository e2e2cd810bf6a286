"""The report's accuracy by answer type: the official VQA script's per-answer-type figures
(the yes/no, number and other columns of VQA papers' tables) for every trained row, each
with its image reliance on that type, beside the floors of the same type.

Computed from what the report stores anyway: each trained point's per-question test and
blind scores, and the test split's answer type per question (``answer_types.json``,
written with the floors). Data whose annotations name no answer types gets no section.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .atomic_files import atomic_write_json
from .data.loaders import load_examples
from .report_accuracy import Trained
from .row import BLIND_ACC, FAMILY, TEST_ACC
from .table import md_table

TYPES_FILE = "answer_types.json"
FLOOR_ROWS = ("question-only", "oracle")  # the floor the bars use, and the ceiling


@dataclass
class AnswerTypes:
    """The test split's answer type of each question, and each floor's accuracy (%) per
    type (``floors.csv``'s ``acc[TYPE]`` columns)."""

    by_question: dict = field(default_factory=dict)
    floors: dict[str, dict[str, float]] = field(default_factory=dict)

    def counts(self) -> Counter:
        return Counter(self.by_question.values())


def store_answer_types(data_dir: Path, runs: Path) -> None:
    """``runs/answer_types.json``: question ids and answer types of the test split."""
    examples = load_examples(data_dir, "test")
    atomic_write_json(runs / TYPES_FILE, {"question_id": [e.question_id for e in examples],
                                          "answer_type": [e.answer_type for e in examples]})


def read_answer_types(runs: Path, floors: pd.DataFrame | None) -> AnswerTypes | None:
    """What ``store_answer_types`` wrote (None when absent or malformed) with the floors'
    per-type accuracies from ``floors`` (floors.csv)."""
    try:
        stored = json.loads((runs / TYPES_FILE).read_text())
        pairs = dict(zip(stored["question_id"], stored["answer_type"], strict=True))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    floor_types = {}
    if floors is not None:
        columns = [c for c in floors.columns if c.startswith("acc[")]
        floor_types = {row["baseline"]: {c[4:-1]: float(row[c]) for c in columns}
                       for _, row in floors.iterrows()}
    return AnswerTypes(pairs, floor_types)


def answer_type_frame(trained: list[Trained], types: AnswerTypes) -> pd.DataFrame:
    """One row per trained configuration with stored scores: per answer type (most
    common first), test accuracy % and its image reliance in points; then the floors."""
    kinds = [k for k, _ in types.counts().most_common()]
    records = []
    scored = [t for t in trained if t.question_ids is not None and TEST_ACC in t.scores]
    for t in sorted(scored, key=lambda t: (str(t.row.get(FAMILY, "")), -t.row[TEST_ACC])):
        kind_of = np.array([types.by_question.get(q) for q in t.question_ids], dtype=object)
        record = {"strategy": t.strategy, "family": t.row.get(FAMILY, "")}
        for kind in kinds:
            mask = kind_of == kind
            acc = 100 * t.scores[TEST_ACC][mask].mean() if mask.any() else np.nan
            blind = 100 * t.scores[BLIND_ACC][mask].mean() \
                if mask.any() and BLIND_ACC in t.scores else np.nan
            record[kind] = "" if np.isnan(acc) else (
                f"{acc:.1f}" + ("" if np.isnan(blind) else f" ({acc - blind:+.1f})"))
        records.append(record)
    for name in FLOOR_ROWS:
        if name in types.floors:
            records.append({"strategy": f"*{name}*", "family": "floor" if name != "oracle"
                            else "ceiling", **{k: f"{types.floors[name].get(k, np.nan):.1f}"
                                               for k in kinds}})
    return pd.DataFrame(records)


def answer_type_section(trained: list[Trained], types: AnswerTypes | None) -> list[str]:
    """The page's section; nothing for data without answer types or without scores."""
    if types is None or set(types.counts()) <= {""}:
        return []
    frame = answer_type_frame(trained, types)
    if frame.empty or frame["family"].isin(("floor", "ceiling")).all():
        return []
    counts = types.counts()
    cols = [("strategy", "strategy"), ("family", "family")] + [
        (k, f"{k} ({counts[k]:,} q)") for k, _ in counts.most_common()]
    return ["**By answer type** (the official VQA script's per-answer-type accuracy, the "
            "yes/no, number and other columns of VQA papers): test accuracy % on the test "
            "questions of each type, and in brackets the image reliance on them (accuracy "
            "minus blind accuracy, points); the question-only floor and the oracle per type "
            "below. Where a row's accuracy is near the floor of a type, fusion bought "
            "nothing there.\n", md_table(frame, cols), ""]
