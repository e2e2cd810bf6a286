"""Bootstrap intervals behave as they must on hand-made score vectors."""

import numpy as np
import pytest

from bench.stats import (
    Interval,
    bootstrap_mean,
    derangement,
    paired_difference,
    resampled_means,
    verdict,
)


def test_constant_scores_have_a_zero_width_interval():
    ci = bootstrap_mean([1.0] * 50)
    assert (ci.value, ci.lo, ci.hi) == (1.0, 1.0, 1.0)


def test_interval_contains_the_mean_and_shrinks_with_more_questions():
    rng = np.random.default_rng(3)
    small = bootstrap_mean(rng.integers(0, 2, 100).astype(float))
    large = bootstrap_mean(rng.integers(0, 2, 3000).astype(float))
    assert small.lo < small.value < small.hi and large.lo < large.value < large.hi
    assert large.hi - large.lo < 0.5 * (small.hi - small.lo)
    # a fair coin over 3000 questions: about +-1.8 points
    assert 0.025 < large.hi - large.lo < 0.045


def test_identical_vectors_differ_by_exactly_zero():
    scores = np.random.default_rng(0).random(200)
    diff = paired_difference(scores, scores)
    assert (diff.value, diff.lo, diff.hi) == (0.0, 0.0, 0.0)
    assert verdict(diff) == "cannot tell" and not diff.excludes_zero()


def test_clearly_different_vectors_exclude_zero_in_the_right_direction():
    a = np.r_[np.ones(150), np.zeros(50)]           # 75 %
    b = np.r_[np.ones(100), np.zeros(100)]          # 50 %, wrong where a is wrong too
    diff = paired_difference(a, b)
    assert diff.value == pytest.approx(0.25) and diff.lo > 0.15
    assert verdict(diff) == "reproduces" and verdict(paired_difference(b, a)) == "contradicts"


def test_pairing_sees_a_small_consistent_gain_an_unpaired_view_would_miss():
    """b = a plus 1 question in 50 right: unpaired intervals overlap, the paired one is > 0."""
    rng = np.random.default_rng(1)
    a = rng.integers(0, 2, 2000).astype(float)
    b = a.copy()
    b[np.flatnonzero(a == 0)[:40]] = 1.0
    ia, ib = bootstrap_mean(a), bootstrap_mean(b)
    assert ib.lo < ia.hi  # the two marginal intervals overlap
    assert paired_difference(b, a).lo > 0


def test_resamples_are_seeded_and_shared_between_vectors():
    x = np.random.default_rng(2).random(300)
    assert np.array_equal(resampled_means(x), resampled_means(x.copy()))
    assert not np.array_equal(resampled_means(x, seed=1), resampled_means(x, seed=0))


def test_mismatched_questions_are_refused():
    with pytest.raises(ValueError, match="same questions"):
        paired_difference([1.0, 0.0], [1.0])
    with pytest.raises(ValueError, match="non-empty"):
        bootstrap_mean([])


def test_interval_formatting_and_scaling():
    assert Interval(0.485, 0.467, 0.503).scaled(100).fmt() == "48.5 [46.7, 50.3]"


@pytest.mark.parametrize("n", [2, 3, 10, 1000])
def test_derangement_moves_every_item_and_is_seeded(n):
    perm = derangement(n, seed=5)
    assert sorted(perm.tolist()) == list(range(n))
    assert (perm != np.arange(n)).all()
    assert np.array_equal(perm, derangement(n, seed=5))
