"""Accuracy floors: what a model gets without looking at the image.

- majority: the most common training answer for every question;
- type prior: the most common training answer of the question's type ("how many", "is the");
- question-only: a seeded MLP on bag-of-words + bigram features of the question alone,
  trained with VQA soft targets over the training answer vocabulary;
- oracle: not a floor but the ceiling, the best single answer per question (it looks at the
  human answers). Under the official rules it is below 100 % on a question where fewer than
  4 annotators agree after the script's processing, or where no prediction can match any
  human answer at all (e.g. ten unanimous "Yes"s: predictions are lower-cased, human
  answers are not); its row counts both (``disagreeing``, ``unmatchable``). On synthvqa it
  is 100 %.

All are scored with the official VQA accuracy (``bench.metrics.vqa``), so a model's accuracy
can always be printed next to the floor it has to clear and the ceiling it can reach.
``floors`` caches its rows in ``<data>/baselines.json`` (keyed by seed and the question
files' sizes and mtimes).
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bench.atomic_files import atomic_write_text
from bench.evaluate import question_scores
from bench.metrics.vqa import normalize_answer, oracle_accuracy, vqa_report
from bench.stats import bootstrap_mean

from .dataset import AnswerVocab, soft_scores
from .loaders import Example, _resolve, detect_format, load_examples, split_sources
from .splits import SplitSource

_WORD = re.compile(r"\w+|[^\w\s]")
_NAMES = ("majority", "type-prior", "question-only", "oracle")  # evaluate_floors, per split
_NUMBERS = ("accuracy", "ci_lo", "ci_hi", "exact_match", "n", "seed")  # in every row


def _words(question: str) -> list[str]:
    w = _WORD.findall(question.lower())
    return w + [f"{a}_{b}" for a, b in zip(w, w[1:], strict=False)]


def majority(train: Sequence[Example]) -> str:
    """The most common canonical training answer (normalised)."""
    return Counter(normalize_answer(e.answer) for e in train).most_common(1)[0][0]


def type_prior(train: Sequence[Example]) -> dict[str, str]:
    """Most common canonical answer per question type."""
    per: dict[str, Counter] = defaultdict(Counter)
    for e in train:
        per[e.question_type][normalize_answer(e.answer)] += 1
    return {t: c.most_common(1)[0][0] for t, c in per.items()}


@contextmanager
def _threads(n: int) -> Iterator[None]:
    """Run torch ops on ``n`` threads. This model is small: one thread is as fast on an idle
    machine and many times faster on a busy one (two threads spin-waiting for a core)."""
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


class _BagMLP(nn.Module):
    """Multi-hot features -> hidden -> answers; the first layer as an EmbeddingBag (a sum of
    the present features' rows equals a Linear layer on the multi-hot vector, far cheaper)."""

    def __init__(self, features: int, hidden: int, answers: int):
        super().__init__()
        self.bag = nn.EmbeddingBag(features, hidden, mode="sum")
        self.bias = nn.Parameter(torch.zeros(hidden))
        self.head = nn.Sequential(nn.ReLU(), nn.Dropout(0.2), nn.Linear(hidden, answers))

    def forward(self, ids: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        return self.head(self.bag(ids, offsets) + self.bias)


class QuestionOnly:
    """Bag-of-words (+ bigrams) MLP from question text to an answer (no image)."""

    def __init__(self, train: Sequence[Example], seed: int = 0, epochs: int = 15,
                 hidden: int = 256, top_k: int = 3129, max_features: int = 5000,
                 min_steps: int = 400, batch_size: int = 256):
        counts = Counter(w for e in train for w in set(_words(e.question)))
        feats = sorted(counts, key=lambda w: (-counts[w], w))[:max_features]
        self.features = {w: i for i, w in enumerate(feats)}
        self.vocab = AnswerVocab.build(train, top_k)
        gen = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)
        self.net = _BagMLP(len(self.features), hidden, len(self.vocab))
        x = self._feature_ids([e.question for e in train])
        y = torch.zeros(len(train), len(self.vocab))
        for i, e in enumerate(train):
            for a, s in soft_scores(e.answers).items():
                if a in self.vocab.index:
                    y[i, self.vocab.index[a]] = s
        opt = torch.optim.AdamW(self.net.parameters(), lr=1e-3, weight_decay=1e-4)
        self.net.train()
        per_epoch = -(-len(train) // batch_size)
        with _threads(1):
            for _ in range(max(epochs, -(-min_steps // per_epoch))):  # small data: more epochs
                for idx in torch.randperm(len(train), generator=gen).split(batch_size):
                    loss = nn.functional.binary_cross_entropy_with_logits(
                        self.net(*self._bag(x, idx)), y[idx], reduction="sum") / len(idx)
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
        self.net.eval()

    def _feature_ids(self, questions: Sequence[str]) -> list[torch.Tensor]:
        return [torch.tensor(sorted({self.features[w] for w in _words(q) if w in self.features}),
                             dtype=torch.long) for q in questions]

    @staticmethod
    def _bag(x: list[torch.Tensor], idx) -> tuple[torch.Tensor, torch.Tensor]:
        rows = [x[i] for i in idx.tolist()]
        offsets = torch.tensor([0, *(len(r) for r in rows[:-1])]).cumsum(0)
        return torch.cat(rows), offsets

    @torch.no_grad()
    def predict(self, questions: Sequence[str]) -> list[str]:
        x = self._feature_ids(questions)
        best = self.net(*self._bag(x, torch.arange(len(x)))).argmax(-1)
        return [self.vocab[i] for i in best.tolist()]


def evaluate_floors(train: Sequence[Example], evals: dict[str, Sequence[Example]],
                    seed: int = 0) -> list[dict]:
    """One row per (baseline, split): accuracy, exact match and per answer type in [0, 1]."""
    most = majority(train)
    prior = type_prior(train)
    blind = QuestionOnly(train, seed=seed)
    predictors = {
        "majority": lambda exs: [most] * len(exs),
        "type-prior": lambda exs: [prior.get(e.question_type, most) for e in exs],
        "question-only": lambda exs: blind.predict([e.question for e in exs]),
    }
    rows = []
    for name, predict in predictors.items():
        for split, exs in evals.items():
            preds = dict(zip((e.question_id for e in exs), predict(exs), strict=True))
            rows.append(_row(name, split, vqa_report(preds, exs), seed,
                             question_scores(preds, exs)["vqa_acc"]))
    for split, exs in evals.items():
        rep = oracle_report(exs)
        rows.append({**_row("oracle", split, rep, seed, rep["scores"]),
                     "unmatchable": rep["unmatchable"], "disagreeing": rep["disagreeing"]})
    return rows


def _row(name: str, split: str, rep: dict, seed: int, scores: Sequence[float]) -> dict:
    """One floor's fields; ``ci_lo`` / ``ci_hi``: the 95 % bootstrap interval of its
    accuracy over the split's questions (``bench.stats``, as for every trained row)."""
    interval = bootstrap_mean(scores)
    return {"baseline": name, "split": split, "accuracy": rep["accuracy"],
            "ci_lo": interval.lo, "ci_hi": interval.hi,
            "exact_match": rep["exact_match"], "n": rep["n"],
            **{f"acc[{k}]": v for k, v in rep["per_answer_type"].items()}, "seed": seed}


def oracle_report(examples: Sequence[Example]) -> dict:
    """``vqa_report``'s fields for the best single answer per question, each metric's own
    ceiling: accuracy is ``oracle_accuracy``, exact match 1 (predicting the canonical answer
    matches it). Single-answer examples (GQA) score 1."""
    acc: list[float] = []
    per_type: dict[str, list[float]] = defaultdict(list)
    for e in examples:
        a = oracle_accuracy(e.answers) if len(e.answers) > 1 else 1.0
        acc.append(a)
        per_type[e.answer_type or "all"].append(a)
    if not acc:
        raise ValueError("oracle_report: no examples to score")
    return {"accuracy": sum(acc) / len(acc), "exact_match": 1.0, "n": len(acc), "scores": acc,
            "per_answer_type": {k: sum(v) / len(v) for k, v in sorted(per_type.items())},
            "unmatchable": sum(a == 0.0 for a in acc),
            "disagreeing": sum(0.0 < a < 1.0 for a in acc)}


def _signature(root: Path, splits: Sequence[str]) -> list:
    fmt = detect_format(root)
    sources = split_sources(root, fmt)
    sig = []
    for s in splits:
        source = sources.get(s, SplitSource(s))
        path = _resolve(root, source.name, fmt)[1]
        st = path.stat()
        part = [] if source.part == "all" else [source.part]
        sig.append([str(path.name), st.st_size, int(st.st_mtime), *part])
    return sig


def _well_formed(rows: Any, eval_splits: Sequence[str]) -> bool:
    """Whether cached rows are what ``evaluate_floors`` writes: each floor and the oracle per
    split, in order, with every field the printers read, numbers numeric. A cache edited or
    truncated under a matching key is then a miss, not a KeyError in a printer."""
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        return False
    if [(r.get("baseline"), r.get("split")) for r in rows] != \
            [(name, split) for name in _NAMES for split in eval_splits]:
        return False
    return all(_is_number(r.get(k)) for r in rows for k in (
        *_NUMBERS, *(("unmatchable", "disagreeing") if r["baseline"] == "oracle" else ()),
        *(k for k in r if k.startswith("acc["))))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def floors(root: str | Path, seed: int = 0, train_split: str = "train",
           eval_splits: Sequence[str] = ("val", "test"), cache: bool = True) -> list[dict]:
    """Floors for the dataset at ``root`` (cached in ``root/baselines.json`` when writable)."""
    root = Path(root)
    splits = [train_split, *eval_splits]
    key = json.dumps({"seed": seed, "files": _signature(root, splits), "version": 3})
    path = root / "baselines.json"
    if cache and path.is_file():
        try:
            stored = json.loads(path.read_text())
            if stored.get("key") == key and _well_formed(stored.get("rows"), eval_splits):
                return stored["rows"]
        except (json.JSONDecodeError, OSError, AttributeError, UnicodeDecodeError,
                RecursionError):
            pass  # unreadable or malformed cache: recompute (and rewrite it)
    exs = {s: load_examples(root, s) for s in splits}
    rows = evaluate_floors(exs[train_split], {s: exs[s] for s in eval_splits}, seed)
    if cache:
        try:
            atomic_write_text(path, json.dumps({"key": key, "rows": rows}, indent=1))
        except OSError:
            pass  # read-only data directory: no cache
    return rows
