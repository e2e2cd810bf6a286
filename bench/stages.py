"""Where a long command's time goes: named stages, timed as they run.

``with stage("data"):`` records the wall time of one stage of this process; the report
prints the table at its end and stores it beside the results (``stages.json``), so the
page's environment section shows it even when rendered again later. Stages may nest (a
pretraining inside the first sweep that needs it): each line is its own wall time, and
``depth`` says what it is part of.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

_RECORDS: list[dict] = []
_DEPTH = [0]


@contextmanager
def stage(name: str) -> Iterator[None]:
    """Time the block as stage ``name`` (recorded when it ends, also on an error)."""
    start = time.perf_counter()
    record = {"stage": name, "depth": _DEPTH[0], "seconds": None}
    _RECORDS.append(record)
    _DEPTH[0] += 1
    try:
        yield
    finally:
        _DEPTH[0] -= 1
        record["seconds"] = round(time.perf_counter() - start, 1)


def record_stage(name: str, seconds: float) -> None:
    """Record a stage timed elsewhere (a sweep point trained in a worker process), as part
    of the stage running now."""
    _RECORDS.append({"stage": name, "depth": _DEPTH[0], "seconds": round(seconds, 1)})


def records() -> list[dict]:
    """The stages timed so far in this process, in the order they started."""
    return [dict(r) for r in _RECORDS if r["seconds"] is not None]


def reset() -> None:
    _RECORDS.clear()
    _DEPTH[0] = 0


def table(rows: list[dict]) -> list[str]:
    """Markdown lines: one row per stage, nested stages indented under their parent."""
    lines = ["| stage | wall s |", "|---|---|"]
    for r in rows:
        indent = "&nbsp;&nbsp;" * r.get("depth", 0)
        lines.append(f"| {indent}{r['stage']} | {r['seconds']:.1f} |")
    return lines


def text_table(rows: list[dict]) -> str:
    """The same for a terminal."""
    width = max((len(r["stage"]) + 2 * r.get("depth", 0) for r in rows), default=5)
    out = [f"{'stage':<{width}}  wall s"]
    out += [f"{'  ' * r.get('depth', 0) + r['stage']:<{width}}  {r['seconds']:8.1f}"
            for r in rows]
    return "\n".join(out)
