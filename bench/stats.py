"""Bootstrap statistics over test questions: intervals, paired differences, verdicts.

Every resample draws question indices with replacement from one seeded generator, and the
same draws serve every score vector of the same length, so two strategies scored on the
same questions are compared *paired* (the question difficulty cancels). Scores are
per-question accuracies in [0, 1] (or points; the functions are unit-agnostic).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

RESAMPLES = 2000
SEED = 0
LEVEL = 0.95
_CHUNK = 250  # resamples gathered at a time (bounds memory at 250 x n floats)


@dataclass(frozen=True)
class Interval:
    """An estimate with its bootstrap interval ``[lo, hi]``."""

    value: float
    lo: float
    hi: float

    def excludes_zero(self) -> bool:
        return self.lo > 0 or self.hi < 0

    def scaled(self, factor: float) -> Interval:
        return Interval(self.value * factor, self.lo * factor, self.hi * factor)

    def fmt(self, digits: int = 1) -> str:
        """``48.5 [46.7, 50.3]``."""
        return f"{self.value:.{digits}f} [{self.lo:.{digits}f}, {self.hi:.{digits}f}]"


@lru_cache(maxsize=8)
def _indices(n: int, resamples: int, seed: int) -> np.ndarray:
    """[resamples, n] question indices, the same for every vector of length ``n``."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, n, size=(resamples, n), dtype=np.int32)


def resampled_means(scores: Sequence[float] | np.ndarray, resamples: int = RESAMPLES,
                    seed: int = SEED) -> np.ndarray:
    """Mean of ``scores`` under each bootstrap resample, shape [resamples]."""
    x = np.asarray(scores, dtype=np.float64)
    if x.ndim != 1 or x.size == 0:
        raise ValueError("bootstrap needs a non-empty 1-D score vector")
    idx = _indices(x.size, resamples, seed)
    return np.concatenate([x[idx[i:i + _CHUNK]].mean(axis=1)
                           for i in range(0, resamples, _CHUNK)])


def _interval(estimate: float, means: np.ndarray, level: float) -> Interval:
    tail = 100 * (1 - level) / 2
    lo, hi = np.percentile(means, [tail, 100 - tail])
    return Interval(float(estimate), float(lo), float(hi))


def bootstrap_mean(scores, *, resamples: int = RESAMPLES, seed: int = SEED,
                   level: float = LEVEL) -> Interval:
    """Mean score with its percentile bootstrap interval over questions."""
    means = resampled_means(scores, resamples, seed)  # checks the vector first
    return _interval(np.mean(scores), means, level)


def paired_difference(a, b, *, resamples: int = RESAMPLES, seed: int = SEED,
                      level: float = LEVEL) -> Interval:
    """mean(a) - mean(b) on the same questions (``a[i]``, ``b[i]`` score question i),
    with a paired bootstrap interval: both vectors are resampled with the same indices."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired scores need the same questions: {a.shape} vs {b.shape}")
    diff = a - b
    return _interval(diff.mean(), resampled_means(diff, resamples, seed), level)


def verdict(difference: Interval) -> str:
    """For a claim "A beats B" and the interval of mean(A) - mean(B): ``reproduces`` when
    the whole interval is above 0, ``contradicts`` when it is below, else ``cannot tell``."""
    if difference.lo > 0:
        return "reproduces"
    if difference.hi < 0:
        return "contradicts"
    return "cannot tell"


def derangement(n: int, seed: int = SEED) -> np.ndarray:
    """A seeded permutation of ``range(n)`` with no fixed point (one random n-cycle):
    ``perm[i] != i`` for every i when n >= 2."""
    if n < 2:
        raise ValueError("a derangement needs at least 2 items")
    order = np.random.default_rng(seed).permutation(n)
    perm = np.empty(n, dtype=np.int64)
    perm[order] = np.roll(order, -1)
    return perm
