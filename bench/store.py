"""Results store: one Row per finished point, kept as results.json + results.csv.

Every ``add`` rewrites both files atomically (temp file + rename), so a killed sweep leaves
either the old or the new complete file, never a half-written one, and a rerun finds
every finished point by its ``point_id``. ``add`` merges: under a short file lock it
re-reads the rows on disk and replaces only its own point's, so two writers of one
directory both keep their rows (no last-writer-wins).
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from .atomic_files import atomic_write, atomic_write_json
from .errors import UserError
from .lock import file_lock
from .row import POINT_ID


def point_id(spec: dict[str, Any]) -> str:
    """Stable short hash of a point's defining fields (canonical JSON)."""
    blob = json.dumps(spec, sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:12]


def _clean(value: Any) -> Any:
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None  # JSON has no NaN; "not measured" reads as null
    return value


class ResultStore:
    def __init__(self, directory: str | Path):
        self.dir = Path(directory)
        self.json_path = self.dir / "results.json"
        self.csv_path = self.dir / "results.csv"
        self.lock_path = self.dir / ".results.lock"
        self.plan_path = self.dir / "plan.json"  # the point ids the spec listed last run
        self.ran = 0  # points the run_sweep call that returned this store ran
        self._rows: list[dict[str, Any]] = self._read()

    def _read(self) -> list[dict[str, Any]]:
        if not self.json_path.is_file():
            return []
        try:
            rows = json.loads(self.json_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
            raise UserError(f"results file {self.json_path} is not valid JSON: "
                            f"{str(e)[:120]}") from None
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise UserError(f"results file {self.json_path} must hold a list of rows")
        return rows

    @property
    def rows(self) -> list[dict[str, Any]]:
        return list(self._rows)

    def done(self) -> set[str]:
        return {row.get(POINT_ID) for row in self._rows}

    def add(self, row: dict[str, Any]) -> None:
        row = {k: _clean(v) for k, v in row.items()}
        self.dir.mkdir(parents=True, exist_ok=True)
        with file_lock(self.lock_path):  # read-merge-write: other writers' rows survive
            rows = self._read()
            self._rows = [r for r in rows if r.get(POINT_ID) != row.get(POINT_ID)]
            self._rows.append(row)
            self.flush()

    def flush(self) -> None:
        atomic_write_json(self.json_path, self._rows)
        frame = self.frame()
        atomic_write(self.csv_path, lambda tmp: frame.to_csv(tmp, index=False))

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self._rows)

    def record_plan(self, point_ids: list[str]) -> None:
        """The point ids the sweep's spec lists now: rows of an earlier edit of the spec or
        a preset stay stored, but ``planned_frame`` leaves them out."""
        self.dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.plan_path, {"point_ids": point_ids})

    def planned_frame(self) -> tuple[pd.DataFrame, int]:
        """The rows of the last recorded plan (every row where none was recorded) and how
        many stored rows that left out."""
        frame, planned = self.frame(), self._planned_ids()
        if planned is None or POINT_ID not in frame.columns:
            return frame, 0
        current = frame[POINT_ID].isin(planned)
        return frame[current].reset_index(drop=True), int((~current).sum())

    def unfinished(self) -> int:
        """How many points of the last recorded plan have no row yet (a run stopped
        before it finished them; the next run of the sweep does)."""
        planned = self._planned_ids()
        if not planned:
            return 0
        frame = self.frame()
        done = set(frame[POINT_ID]) if POINT_ID in frame.columns else set()
        return len(set(planned) - done)

    def _planned_ids(self) -> list[str] | None:
        if not self.plan_path.is_file():
            return None
        try:
            return list(json.loads(self.plan_path.read_text())["point_ids"])
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            raise UserError(f"plan file {self.plan_path} is not a JSON object with a "
                            "point_ids list (delete it to show every stored row)") from None
