"""Keep the weights of the epoch with the best validation score; test them, not the last.

A short CPU budget often ends past a model's best epoch (small data overfits), and the
question a report answers is what each strategy *can* reach. The best weights live in the
run directory (``best/model.safetensors`` and ``best.json``, written atomically), so a
resumed run keeps the best of the epochs before the interruption.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import torch

from .atomic_files import atomic_write, atomic_write_json
from .checkpoint import load_weights
from .row import BEST_EPOCH, VAL_ACC
from .weights import save_weights

METRIC = VAL_ACC


class BestWeights:
    """``update(model, metrics)`` after each evaluation; ``restore(model)`` before testing."""

    def __init__(self, out: str | Path, metric: str = METRIC, enabled: bool = True):
        self.dir = Path(out) / "best"
        self.record_path = Path(out) / "best.json"
        self.metric = metric
        self.enabled = enabled
        self.evaluations = 0
        self.record: dict = {}
        if self.record_path.is_file():
            try:
                self.record = json.loads(self.record_path.read_text())
                self.evaluations = int(self.record.get("evaluations", 0))
            except (ValueError, TypeError):
                self.record = {}

    @staticmethod
    def clear(out: str | Path) -> None:
        """Forget an earlier run's best (a fresh, not resumed, run in ``out``)."""

        Path(out, "best.json").unlink(missing_ok=True)
        shutil.rmtree(Path(out) / "best", ignore_errors=True)

    @property
    def best(self) -> float:
        return float(self.record.get(self.metric, -math.inf))

    def update(self, model: torch.nn.Module, metrics: dict) -> None:
        self.evaluations += 1
        value = metrics.get(self.metric)
        if not self.enabled or value is None or not value > self.best:
            self._write_record(self.record)
            return
        atomic_write(self.dir / "model.safetensors",
                     lambda tmp: save_weights(model, Path(tmp), self.dir.parent))
        self._write_record({**metrics, "epoch": self.evaluations})

    def _write_record(self, record: dict) -> None:
        self.record = {**record, "evaluations": self.evaluations}
        atomic_write_json(self.record_path, self.record)

    def restore(self, model: torch.nn.Module) -> dict:
        """Load the best weights into ``model``; returns ``{best_epoch, val metrics}`` (the
        best epoch's), or {} when nothing was kept."""
        path = self.dir / "model.safetensors"
        if not self.enabled or not path.is_file():
            return {}

        load_weights(model, path)
        return {BEST_EPOCH: self.record.get("epoch"),
                **{k: v for k, v in self.record.items() if k.startswith("val_")}}
