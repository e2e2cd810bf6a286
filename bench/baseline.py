"""Deterministic figures baseline: what every strategy costs, checked exactly by the tests.

Parameters, trainable %, forward multiply-adds (FlopCounterMode on the meta device, total
and per component) and the output shape of every registered strategy, at its family's
small preset and at the paper presets, are stored in ``bench/baselines/figures.csv``. They
depend only on the code (no weights, no timing), so the default test run compares them
exactly: an unintended change to a strategy fails the tests and says which figure of which
strategy moved by how much. After an intended change, regenerate the table::

    fusebench baseline --update

and commit the CSV with the change that explains it.
"""

from __future__ import annotations

import csv
import io
import shlex
from pathlib import Path
from typing import Any

import variants

from .errors import UserError
from .flops import component_flops, count_flop_counter_mode
from .profiling import build_meta, param_counts
from .spec import ModelSpec

PATH = Path(__file__).resolve().parent / "baselines" / "figures.csv"
# family -> presets checked: its small training preset first, then the papers' settings
PRESETS = {"encoder-fusion": ("tiny", "jar-base"),
           "frozen-lm": ("epalm-tiny", "epalm-opt350m", "epalm-pt-l")}
KEY = ("strategy", "preset")


def presets_for(family: str) -> list[str]:
    """The baseline presets of ``family`` that are registered."""
    registered = {p.name for p in variants.list_presets()}
    return [p for p in PRESETS.get(family, ()) if p in registered]


def figures(strategy: str, preset: str) -> dict[str, Any]:
    """One row: counts from a meta-device model (exact integers; no weights, no timing)."""

    model = build_meta(ModelSpec(strategy, preset))
    row: dict[str, Any] = {"strategy": strategy, "preset": preset,
                           "family": variants.get_strategy(strategy).family}
    row.update(param_counts(model))
    batch = model.dummy_batch(1, "meta")
    count = count_flop_counter_mode(model, batch)
    row["flops"] = count.total  # multiply-adds per example (fvcore convention)
    row["gflops"] = count.total / 1e9
    for role, value in component_flops(count, model.components(), model).items():
        row[f"flops_{role}"] = value
    row["output_shape"] = "x".join(map(str, count.logits_shape))
    return row


def current_rows() -> list[dict[str, Any]]:
    """Figures for every registered strategy at each of its family's baseline presets."""
    return [figures(info.name, preset) for info in variants.list_strategies()
            for preset in presets_for(info.family)]


def _text(value: Any) -> str:
    """CSV cell: ints as ints, floats as repr (round-trips exactly), empty for missing."""
    if value is None:
        return ""
    return repr(value) if isinstance(value, float) else str(value)


def to_csv(rows: list[dict[str, Any]]) -> str:
    columns = list(dict.fromkeys(k for row in rows for k in row))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: _text(row.get(k)) for k in columns} for row in rows)
    return buf.getvalue()


def update_command(path: str | Path = PATH) -> str:
    """The command that (re)writes the table at ``path``: with its ``--path`` unless it is
    the package's own, so that following a hint never rewrites the committed table."""
    if Path(path).resolve() == PATH:
        return "fusebench baseline --update"
    return f"fusebench baseline --update --path {shlex.quote(str(path))}"


def load(path: str | Path = PATH, *, new_ok: bool = False) -> list[dict[str, str]]:
    """The table at ``path``, one dict of CSV text per row. Missing or empty, it is one
    UserError line saying how to create it (``[]`` with ``new_ok``, for ``--update``); so is
    a file that is no figures table (unreadable, ragged, or without the key columns)."""
    path = Path(path)
    rows: list[dict[str, str]] = []
    columns: list[str] = []
    if path.is_file():
        try:
            with open(path, newline="") as f:
                reader = csv.DictReader(f)
                rows, columns = list(reader), list(reader.fieldnames or ())
        except (OSError, UnicodeDecodeError, csv.Error) as e:
            raise UserError(f"cannot read figures baseline {path}: {e}") from None
    if not rows:
        if new_ok:
            return []
        state = " (an empty table)" if path.is_file() else ""
        raise UserError(f"no figures baseline at {path}{state}; create it with "
                        f"`{update_command(path)}`")
    missing = [k for k in KEY if k not in columns]
    if missing:
        raise UserError(f"{path} is not a figures table: no column(s) {', '.join(missing)}")
    ragged = next((n for n, row in enumerate(rows, 1) if None in row or None in row.values()),
                  None)
    if ragged:
        raise UserError(f"{path} row {ragged}: not as many cells as the header has columns")
    return rows


def diff(expected: list[dict[str, str]], actual: list[dict[str, Any]]) -> list[str]:
    """One line per figure that moved, row that appeared or row that disappeared."""
    want = {tuple(r[k] for k in KEY): r for r in expected}
    have = {tuple(r[k] for k in KEY): {k: _text(v) for k, v in r.items()} for r in actual}
    lines = [f"{s} @ {p}: new, not in the baseline" for s, p in have.keys() - want.keys()]
    lines += [f"{s} @ {p}: in the baseline but no longer produced"
              for s, p in want.keys() - have.keys()]
    for key in sorted(want.keys() & have.keys()):
        old, new = want[key], have[key]
        for column in dict.fromkeys([*old, *new]):
            a, b = old.get(column, ""), new.get(column, "")
            if a != b:
                lines.append(f"{key[0]} @ {key[1]}: {column} {a or '(none)'} -> "
                             f"{b or '(none)'}{_change(a, b)}")
    return sorted(lines)


def _change(old: str, new: str) -> str:
    try:
        a, b = float(old), float(new)
    except ValueError:
        return ""
    if a == 0:
        return f" ({b - a:+.6g})"
    return f" ({b - a:+.6g}, {100 * (b - a) / abs(a):+.3f} %)"
