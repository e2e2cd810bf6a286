"""Per-trial seeding for optuna samplers: trial n samples with seed ``seed + n``.

A sampler seeded once per process repeats its sequence in every process: two workers on
one storage, or a study resumed after a crash, would propose the parameters of earlier
trials again. Trial numbers are unique across workers (the storage hands them out), so
seeding by trial number keeps a single-worker study reproducible and makes every worker
and every resume draw fresh parameters.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import optuna
from optuna.samplers import BaseSampler


class TrialSeededSampler(BaseSampler):
    """Delegates each trial to ``make(seed + trial.number)`` (TPE, random, NSGA-II: their
    history lives in the storage, so a fresh instance per trial loses nothing)."""

    def __init__(self, make: Callable[[int], BaseSampler], seed: int):
        self._make, self._seed = make, seed
        self._live: dict[int, BaseSampler] = {}

    def _for(self, trial) -> BaseSampler:
        if trial.number not in self._live:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                self._live[trial.number] = self._make(self._seed + trial.number)
        return self._live[trial.number]

    def infer_relative_search_space(self, study, trial) -> dict[str, Any]:
        return self._for(trial).infer_relative_search_space(study, trial)

    def sample_relative(self, study, trial, search_space) -> dict[str, Any]:
        return self._for(trial).sample_relative(study, trial, search_space)

    def sample_independent(self, study, trial, param_name, param_distribution) -> Any:
        return self._for(trial).sample_independent(study, trial, param_name,
                                                   param_distribution)

    def before_trial(self, study, trial) -> None:
        self._for(trial).before_trial(study, trial)

    def after_trial(self, study, trial, state, values) -> None:
        self._for(trial).after_trial(study, trial, state, values)
        self._live.pop(trial.number, None)

    def reseed_rng(self) -> None:  # seeds come from trial numbers; nothing to reseed
        pass
