"""What a measurement is of: a model spec, and a run prepared on its data.

``(strategy, preset, overrides)`` is resolved once, into a ``ModelSpec``, and passed on: to
the profiler (``bench.profiling.ProfileSpec.model``), to training (``PreparedRun``, made by
``bench.experiment.prepare``), to sweeps and studies. Torch-free (``variants`` loads
its strategies on first use).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import variants


@dataclass(frozen=True)
class ModelSpec:
    """A strategy, the preset it starts from and the config overrides on top. Once prepared
    on data, ``overrides`` also holds what the data decides (vocabulary sizes, special
    token ids) and the resolved ``@pretrained`` backbone paths."""

    strategy: str
    preset: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)

    def config(self) -> Any:
        """The validated config dataclass (``variants.resolve_config``)."""
        return variants.resolve_config(self.strategy, self.preset, self.overrides)

    def create(self) -> Any:
        """The model (``variants.create``), randomly initialised unless a path says so."""
        return variants.create(self.strategy, self.preset, **self.overrides)

    def with_overrides(self, **values: Any) -> ModelSpec:
        return ModelSpec(self.strategy, self.preset, {**self.overrides, **values})


@dataclass(frozen=True)
class PreparedRun:
    """A model spec completed by its data: what ``bench.experiment.run_experiment`` trains.
    ``data`` is the tensorised ``bench.data.dataset.VQAData`` (splits, tokenizer, vocab)."""

    model: ModelSpec
    data: Any
    data_dir: Path
