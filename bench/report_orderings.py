"""The papers' published accuracy orderings, checked against our trained runs.

Each ordering is a claim "A beats B" taken from the papers' tables (``paper_numbers``):
JAR Tables 2-4 (GQA accuracy; SNLI-VE shown beside it) and eP-ALM's VQAv2 results
(ada >= eP-ALM >= pt >= lin; injection into the LM beats the input-level baselines). For
each claim whose two sides the report trained, the paired bootstrap interval of our
accuracy difference says whether the run *reproduces* it (interval above 0), *contradicts*
it (below 0) or *cannot tell* (contains 0); the other claims are "not trained in this
preset", or "not trained yet" while a sweep that may hold a side has points to run. The
claim's caveat says when a side ran one seed, and names a side whose validation accuracy
still rose in its last epoch (``report_accuracy.still_improving``).
A side is a strategy of the strategy sweeps, or a JAR knob value of the Table 4 sweep
paired with the run that differs from it in that knob only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from .paper_numbers import EPALM_VQA2, JAR_TABLES
from .report_accuracy import Trained, paired, still_improving
from .stats import verdict

NOT_TRAINED = "not trained in this preset"
NOT_YET = "not trained yet (its sweep is unfinished)"
JAR_STRATEGIES = {"Ours": "jar", "Perceiver": "perceiver",
                  "Iterative Co-tokenization": "cotok", "Concat": "concat"}
KNOB_SWEEP = "jar_table4_train"
# the JAR knobs Table 4 varies; a knob pair must agree on all the others
ABLATION_KNOBS = ("iterations", "num_tokens", "resampling", "combination", "gating",
                  "fusion_layers")
EPALM_NAMES = {"epalm_ada": "eP-ALM_ada", "epalm": "eP-ALM", "epalm_pt": "eP-ALM_pt",
               "epalm_lin": "eP-ALM_lin", "promptfuse": "PromptFuse", "magma": "MAGMA",
               "limber": "LimBeR"}


@dataclass(frozen=True)
class Side:
    """One side of a claim: a strategy (``knob`` None) or ``knob=value`` of JAR."""

    label: str
    strategy: str
    knob: str | None = None
    value: Any = None


@dataclass(frozen=True)
class Ordering:
    source: str
    better: Side
    worse: Side
    paper: str  # the published figures behind the claim


def _jar_side(label: str) -> Side | None:
    if label in JAR_STRATEGIES:
        return Side("JAR" if label == "Ours" else label, JAR_STRATEGIES[label])
    if label == "Ours w/o gating":
        return Side("JAR w/o gating", "jar", "gating", False)
    if "=" in label:
        knob, raw = label.split("=", 1)
        value: Any = int(raw) if raw.isdigit() else raw
        return Side(label, "jar", knob, value)
    return None


def _paper(a: dict, b: dict) -> str:
    parts = [f"{name} {a[key]} vs {b[key]}" for key, name in (("gqa", "GQA"),
             ("snli_ve", "SNLI-VE")) if key in a and key in b]
    return "; ".join(parts)


def jar_orderings() -> list[Ordering]:
    """Table 2-3: JAR against each other row; Table 4: neighbouring settings of each knob.
    The better side is the one with the higher GQA accuracy (the VQA-like task)."""
    out = []
    for table in ("2", "3", "4a", "4b", "4c", "4d", "4e"):
        rows = JAR_TABLES[table]
        if table in ("2", "3"):
            pairs = [("Ours", other) for other in rows if other != "Ours"]
        else:
            labels = list(rows)
            pairs = list(zip(labels[1:], labels[:-1]))
        for a, b in pairs:
            if rows[a]["gqa"] < rows[b]["gqa"]:
                a, b = b, a
            if rows[a]["gqa"] == rows[b]["gqa"]:
                continue  # the paper publishes no order between them
            if table == "3" and b == "Ours w/o gating":
                better = Side("JAR with gating", "jar", "gating", True)
            else:
                better = _jar_side(a)
            out.append(Ordering(f"JAR Table {table}", better, _jar_side(b),
                                _paper(rows[a], rows[b])))
    return out


def epalm_orderings() -> list[Ordering]:
    """ada >= eP-ALM >= pt >= lin, and eP-ALM (injection) beats each input-level baseline."""
    def side(name: str) -> Side:
        return Side(EPALM_NAMES[name], name)

    def paper(a: str, b: str) -> str:
        return f"VQAv2 {EPALM_VQA2[a]} vs {EPALM_VQA2[b]}"

    chain = ["epalm_ada", "epalm", "epalm_pt", "epalm_lin"]
    out = [Ordering("eP-ALM", side(a), side(b), paper(a, b)) for a, b in zip(chain, chain[1:])]
    out += [Ordering("eP-ALM (injection vs input)", side("epalm"), side(b), paper("epalm", b))
            for b in ("promptfuse", "magma", "limber")]
    return out


def _holds(sweep: str, side: Side) -> bool:
    """Whether runs of ``sweep`` can be a side: the strategy sweeps for a strategy, the
    Table 4 sweep for a JAR knob setting."""
    if side.knob is None:
        return sweep.startswith(("strategies", "frozen_lm"))
    return sweep == KNOB_SWEEP


def _match(side: Side, trained: list[Trained]) -> list[Trained]:
    return [t for t in trained if _holds(t.sweep, side) and t.strategy == side.strategy
            and (side.knob is None or t.row.get(f"cfg.{side.knob}") == side.value)]


def _others_equal(a: Trained, b: Trained, knob: str) -> bool:
    keys = [f"cfg.{k}" for k in ABLATION_KNOBS if k != knob]
    return all(_same(a.row.get(k), b.row.get(k)) for k in keys)


def _same(x: Any, y: Any) -> bool:
    return x == y or (pd.isna(x) and pd.isna(y))


def find_pair(order: Ordering, trained: list[Trained]) -> tuple[Trained, Trained] | None:
    """The trained runs for both sides (for a knob claim: differing in that knob only)."""
    better, worse = _match(order.better, trained), _match(order.worse, trained)
    for a in better:
        for b in worse:
            if order.better.knob is None or _others_equal(a, b, order.better.knob):
                return a, b
    return None


def caveat(order: Ordering, pair: tuple[Trained, Trained]) -> str:
    """What the verdict does not cover: a side trained with one seed (its interval holds the
    sampling of test questions, not of training: another seed can reverse it), and the
    sides still improving at their last epoch."""
    notes = ["one seed"] if min(t.seeds for t in pair) < 2 else []
    rising = [side.label for side, t in zip((order.better, order.worse), pair)
              if still_improving(t.row)]
    if rising:
        notes.append(f"{' and '.join(rising)} still improving")
    return "; ".join(notes)


def orderings_frame(trained: list[Trained], unfinished: set[str] = frozenset()
                    ) -> pd.DataFrame:
    """One row per published ordering: the claim, the paper's figures, ours, the paired
    difference with its interval, and the verdict. ``unfinished``: sweeps of the plan
    with points still to run (a claim they may answer is "not trained yet")."""
    records = []
    for order in jar_orderings() + epalm_orderings():
        pending = any(_holds(sweep, side) for sweep in unfinished
                      for side in (order.better, order.worse))
        record = {"source": order.source,
                  "claim": f"{order.better.label} > {order.worse.label}",
                  "paper": order.paper, "ours": "", "difference": "",
                  "verdict": NOT_YET if pending else NOT_TRAINED, "caveat": ""}
        pair = find_pair(order, trained)
        if pair:
            record["caveat"] = caveat(order, pair)
        diff = paired(*pair) if pair else None
        if pair and diff is not None:
            a, b = pair
            record["ours"] = f"{a.row['test_vqa_acc']:.1f} vs {b.row['test_vqa_acc']:.1f}"
            record["difference"] = f"{diff.value:+.1f} [{diff.lo:+.1f}, {diff.hi:+.1f}]"
            record["verdict"] = verdict(diff)
        elif pair:
            record["verdict"] = "cannot tell (no per-question scores stored)"
        records.append(record)
    return pd.DataFrame(records)
