"""The report's accuracy figures: seeds merged, bootstrap intervals, paired comparisons.

Trained rows of one configuration that differ only in their seed are merged: figures are
the mean over seeds (with the standard deviation of the test accuracy), and the
per-question scores (``test_scores.json`` of each run) are averaged over seeds, question
by question, before any bootstrap. Every comparison between two configurations is paired
on the same test questions (``bench.stats``). Accuracies are in %, differences in points.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .reference import SHIPPED
from .row import (
    BLIND_ACC,
    FAMILY,
    IMAGE_RELIANCE,
    POINT_ID,
    PRESET,
    STRATEGY,
    SWEEP,
    TEST_ACC,
    TEST_EXACT,
    TRAIN_TIME,
    VAL_ACC,
    VAL_EXACT,
    VAL_LAST_GAIN,
)
from .stats import Interval, bootstrap_mean, paired_difference

BASELINE = "late_fusion"  # the bar every fusion strategy is compared against
RELIANCE_FLAG = 5.0  # points: below this a model "does not use the image"
NO_IMAGE = "does not use the image"
# What a trained row of each family is held to, in points: (margin of its test accuracy over
# the question-only floor, image reliance). Relative to the floor, so they carry to any data.
BARS = {"encoder-fusion": (15.0, 15.0), "frozen-lm": (8.0, 8.0)}
BAR_FLOOR = "question-only"
SCORE_KEYS = (TEST_ACC, TEST_EXACT, BLIND_ACC)
MEAN_KEYS = SCORE_KEYS + (VAL_ACC, VAL_EXACT, VAL_LAST_GAIN, IMAGE_RELIANCE, TRAIN_TIME)
# points: a row whose last epoch beat its best earlier validation accuracy by this much (or
# by one standard error of that accuracy, if larger: a small validation split is noisy) was
# still learning when its epochs ran out (a rank between such rows is a rank at this budget)
STILL_IMPROVING = 1.0


@dataclass
class Trained:
    """One trained configuration with its seeds merged."""

    sweep: str
    row: dict[str, Any]  # the first seed's row, figures replaced by the mean over seeds
    seeds: int
    question_ids: list | None = None
    scores: dict[str, np.ndarray] = field(default_factory=dict)  # seed-mean, in [0, 1]

    @property
    def strategy(self) -> str:
        return str(self.row[STRATEGY])


def group_columns(frame: pd.DataFrame) -> list[str]:
    """What identifies a configuration across seeds: sweep, strategy, preset, grid values
    and the resolved config (so a stale row of an edited preset is not taken for a seed)."""
    keys = sorted(c for c in frame.columns
                  if c.startswith(("grid.", "cfg.")) and c != "grid.seed")
    return [c for c in (SWEEP, STRATEGY, PRESET) if c in frame.columns] + keys


def merge_seeds(frame: pd.DataFrame, scores: dict[str, dict[str, list]]) -> list[Trained]:
    """One ``Trained`` per configuration of ``frame`` (rows of trained sweeps); ``scores``
    maps a row's ``point_id`` to its stored per-question scores."""
    if frame.empty:
        return []
    out = []
    for _, group in frame.groupby(group_columns(frame), dropna=False, sort=False):
        rows = group.to_dict("records")
        row = dict(rows[0])
        for key in MEAN_KEYS:
            values = [r[key] for r in rows if _finite(r.get(key))]
            row[key] = float(np.mean(values)) if values else math.nan
        accs = [r[TEST_ACC] for r in rows if _finite(r.get(TEST_ACC))]
        row["test_vqa_acc_std"] = float(np.std(accs, ddof=1)) if len(accs) > 1 else math.nan
        trained = Trained(str(row.get(SWEEP, "")), row, len(rows))
        stored = [scores[r[POINT_ID]] for r in rows if r.get(POINT_ID) in scores]
        if stored:
            trained.question_ids = list(stored[0]["question_id"])
            for key in SCORE_KEYS:
                vectors = [_aligned(s, key, trained.question_ids) for s in stored]
                vectors = [v for v in vectors if v is not None]
                if vectors:
                    trained.scores[key] = np.mean(vectors, axis=0)
        out.append(trained)
    return out


def random_backbones(row: dict) -> str:
    """A note naming the pretrained backbones a row went without (no checkpoint for its
    data: ``bench.experiment.with_preset_backbones``), "" when it had them: a frozen-LM
    row's LM, and an image encoder that stayed frozen at its random init."""
    def missing(key: str) -> bool:
        value = row.get(key)
        return not (isinstance(value, str) and value.strip())

    frozen_lm = row.get(FAMILY) == "frozen-lm"
    # the frozen-LM family freezes both backbones unless freeze_backbones is off (finetune)
    frozen = row.get("cfg.freeze_backbones", True) if frozen_lm else row.get("cfg.freeze_vision")
    absent = {"LM": frozen_lm and missing("cfg.lm_path"),
              "frozen image encoder": str(frozen) == "True" and missing("cfg.vision_path")}
    parts = [name for name, is_absent in absent.items() if is_absent]
    return f"{' and '.join(parts)} from random weights (no checkpoint for this data)" \
        if parts else ""


def backbones_text(frame: pd.DataFrame) -> str:
    """What each family's trained rows start from, read off their configs: an image
    encoder trained from raw pixels, or the checkpoints by name and where they come from
    (shipped with fusebench for the built-in data, pretrained on this data's training
    split in ``runs/pretrained``, or a local path). "" for rows without configs."""
    parts = []
    for family, rows in frame.groupby(FAMILY, sort=False):
        vision = _checkpoints(rows, "cfg.vision_path")
        if family == "frozen-lm":
            lm = _checkpoints(rows, "cfg.lm_path")
            trained = sorted(rows.loc[rows.get("cfg.freeze_backbones", pd.Series(
                True, index=rows.index)).astype(str) == "False", STRATEGY])
            if vision and lm:
                parts.append(f"{family} rows: ViT {vision} and OPT {lm}, frozen"
                             + (f" (trained in {', '.join(trained)})" if trained else ""))
        elif vision is not None:
            frozen = set(rows.get("cfg.freeze_vision", pd.Series(dtype=object)).astype(str))
            if not vision:
                how = "frozen at its random init" if frozen == {"True"} else \
                    "trained from raw pixels (no checkpoint)"
                parts.append(f"{family} rows: the image encoder {how}")
            else:
                how = "frozen" if frozen == {"True"} else "fine-tuned" if "True" not in \
                    frozen else "frozen in some rows, fine-tuned in others"
                parts.append(f"{family} rows: image encoder {vision}, {how}")
    return ("Backbones: " + "; ".join(parts) + ". ") if parts else ""


def _checkpoints(rows: pd.DataFrame, key: str) -> str | None:
    """The distinct checkpoints of ``rows`` under config ``key``, named with their origin;
    "" when none has one, None without the column."""
    if key not in rows.columns:
        return None
    paths = sorted({str(p) for p in rows[key] if isinstance(p, str) and p.strip()})
    names = []
    for path in paths:
        entry = Path(path).parent if Path(path).suffix else Path(path)
        origin = ("shipped, pretrained on the built-in data" if (SHIPPED / entry.name).is_dir()
                  else "pretrained on this data's training split"
                  if entry.parent.name == "pretrained" else "a local checkpoint")
        names.append(f"`{entry.name}` ({origin})")
    return ", ".join(names)


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _aligned(stored: dict[str, list], key: str, order: list) -> np.ndarray | None:
    """``stored[key]`` in the question order ``order`` (None if absent or other questions)."""
    values = stored.get(key)
    if not values:
        return None
    if list(stored["question_id"]) == order:
        return np.asarray(values, dtype=np.float64)
    by_id = dict(zip(stored["question_id"], values))
    if set(by_id) != set(order):
        return None
    return np.asarray([by_id[q] for q in order], dtype=np.float64)


def interval(t: Trained, key: str = TEST_ACC) -> Interval | None:
    """Bootstrap interval (in %) of one accuracy of ``t``."""
    if key not in t.scores:
        return None
    return bootstrap_mean(t.scores[key]).scaled(100)


def paired(a: Trained, b: Trained, key: str = TEST_ACC,
           key_b: str | None = None) -> Interval | None:
    """mean(a) - mean(b) in points with its paired bootstrap interval, on the questions
    both were scored on (None when either has no stored scores or they differ)."""
    key_b = key_b or key
    if key not in a.scores or key_b not in b.scores or a.question_ids is None:
        return None
    other = _aligned({"question_id": b.question_ids, key_b: list(b.scores[key_b])}, key_b,
                     a.question_ids)
    if other is None:
        return None
    return paired_difference(a.scores[key], other).scaled(100)


def _put(record: dict, name: str, ci: Interval | None) -> None:
    record[name] = ci.value if ci else math.nan
    record[f"{name}_lo"] = ci.lo if ci else math.nan
    record[f"{name}_hi"] = ci.hi if ci else math.nan


def still_improving(row: dict) -> bool:
    """True when the row's last epoch gained ``STILL_IMPROVING`` points or more of
    validation accuracy on its best earlier epoch, and at least the binomial standard
    error of that accuracy over its ``val_examples`` questions (1.3 points at 60 % on
    1500 questions, 2.8 on 300): a smaller gain may be the split's sampling noise."""
    gain, acc, n = row.get(VAL_LAST_GAIN), row.get(VAL_ACC), row.get("val_examples")
    if not _finite(gain):
        return False
    noise = 0.0
    if _finite(acc) and _finite(n) and n > 0:
        p = min(max(acc / 100, 0.0), 1.0)
        noise = 100 * math.sqrt(p * (1 - p) / n)
    return gain >= max(STILL_IMPROVING, noise)


def bar_verdict(record: dict, floors: dict[str, float]) -> str:
    """``met`` or what falls short of the row's family bar (``BARS``), e.g. ``missed:
    reliance 6.10 < 8``; empty where the family has no bar or the figures are missing."""
    bar, floor = BARS.get(str(record.get(FAMILY))), floors.get(BAR_FLOOR)
    acc, reliance = record.get(TEST_ACC), record.get(IMAGE_RELIANCE)
    if bar is None or floor is None or not (_finite(acc) and _finite(reliance)):
        return ""
    # two decimals: one would print a reliance of 7.97 as "8.0 < 8"
    short = [f"acc {acc:.2f} < {floor + bar[0]:.2f}"] if acc < floor + bar[0] else []
    short += [f"reliance {reliance:.2f} < {bar[1]:g}"] if reliance < bar[1] else []
    return "missed: " + ", ".join(short) if short else "met"


def accuracy_frame(trained: list[Trained], baseline: str = BASELINE,
                   floors: dict[str, float] | None = None) -> pd.DataFrame:
    """The comparison's figures, one row per configuration: each accuracy with its
    interval, the paired difference to the best configuration and to ``baseline``, the
    blind control and image reliance, the "does not use the image" flag and, given the
    floors, the verdict on the family's bar."""
    scored = [t for t in trained if TEST_ACC in t.scores]
    best = max(scored, key=lambda t: t.row[TEST_ACC], default=None)
    base = next((t for t in scored if t.strategy == baseline), None)
    records = []
    for t in trained:
        record = dict(t.row)
        record["seeds"] = t.seeds
        for key in SCORE_KEYS:
            ci = interval(t, key)
            if ci is not None:
                _put(record, key, ci)
        reliance = paired(t, t, TEST_ACC, BLIND_ACC)
        if reliance is not None:
            _put(record, IMAGE_RELIANCE, reliance)
        vs_best = paired(t, best) if best is not None else None
        _put(record, "vs_best", vs_best)
        record["best"] = t is best
        record["tied_with_best"] = t is best or bool(vs_best and not vs_best.excludes_zero())
        _put(record, f"gap_to_{baseline}", paired(t, base) if base and t is not base else None)
        low = _finite(record.get(IMAGE_RELIANCE)) and record[IMAGE_RELIANCE] < RELIANCE_FLAG
        record["note"] = "; ".join(n for n in (NO_IMAGE if low else "",
                                               random_backbones(record)) if n)
        record["bar"] = bar_verdict(record, floors or {})
        records.append(record)
    return pd.DataFrame(records)
