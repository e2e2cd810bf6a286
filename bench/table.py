"""Plain-text and Markdown tables from lists of dicts (no extra dependency)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e5 else f"{value:.3e}"
    return "" if value is None else str(value)


def format_table(rows: list[dict], columns: list[str] | None = None,
                 markdown: bool = False) -> str:
    if not rows:
        return "(no rows)"
    columns = columns or list(dict.fromkeys(k for row in rows for k in row))
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    if markdown:
        lines = ["| " + " | ".join(columns) + " |",
                 "|" + "|".join("---" for _ in columns) + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in cells]
        return "\n".join(lines)
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*columns), fmt.format(*("-" * w for w in widths))]
    lines += [fmt.format(*r) for r in cells]
    return "\n".join(line.rstrip() for line in lines)


def print_table(rows: list[dict], columns: list[str] | None = None) -> None:
    print(format_table(rows, columns))


def _fmt(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 1e4 else f"{value:.4g}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def md_table(frame: pd.DataFrame, columns: list[tuple[str, str]]) -> str:
    """A Markdown table of ``frame``'s ``(column, label)`` columns that it has; missing
    numbers read n/a, large ones with thousands separators."""
    present = [(k, label) for k, label in columns if k in frame.columns]
    rows = [{label: _fmt(r[k]) for k, label in present} for r in frame.to_dict("records")]
    return format_table(rows, [label for _, label in present], markdown=True)
