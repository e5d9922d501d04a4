"""Empirical ε lower bounds (issue 21): zero when nothing leaks, near known values, TF Privacy's numbers."""

import math

import numpy as np
import pytest
from scipy import optimize, stats

from keras_adamixup.audit import epsilon


def gaussian_dp_epsilon(mu, delta):
    """ε(δ) of μ-Gaussian DP (Dong, Roth, Su 2019): the tight value."""
    def gap(eps):
        return (stats.norm.cdf(-eps / mu + mu / 2)
                - math.exp(eps) * stats.norm.cdf(-eps / mu - mu / 2) - delta)
    return optimize.brentq(gap, 0.0, 50.0)


def randomized_response(rng, included, eps):
    """A score that says the truth with probability e^ε / (1 + e^ε): exactly ε-DP."""
    truthful = rng.random(included.size) < math.exp(eps) / (1 + math.exp(eps))
    return np.where(truthful, included, ~included).astype("float64")


def test_nothing_leaks_gives_zero_at_the_stated_confidence():
    found = 0
    for seed in range(40):
        rng = np.random.default_rng(seed)
        included = rng.random(200) < 0.5
        result = epsilon.one_run_epsilon(rng.normal(size=200), included)
        found += result["measurable"]
        assert result["canaries"] == 200 and result["confidence"] == 0.95
    # at 95 % confidence at most ~5 % of independent audits may find ε > 0
    assert found <= 5
    rng = np.random.default_rng(0)
    assert epsilon.roc_epsilon(rng.normal(size=2000), rng.normal(size=2000))["epsilon"] == 0.0


def test_one_run_approaches_a_known_epsilon_from_below():
    rng = np.random.default_rng(1)
    included = rng.random(4000) < 0.5
    for eps in (0.5, 1.0, 2.0):
        scores = randomized_response(rng, included, eps) + rng.normal(0, 1e-6, included.size)
        found = epsilon.one_run_epsilon(scores, included, delta=0.0)["epsilon"]
        assert 0.6 * eps < found <= eps


def test_delta_weakens_the_one_run_bound():
    p0 = epsilon.one_run_p_value(1000, 200, 150, 1.0, delta=0.0)
    p1 = epsilon.one_run_p_value(1000, 200, 150, 1.0, delta=1e-3)
    assert p1 > p0
    assert epsilon.one_run_p_value(1000, 200, 150, 0.5) < epsilon.one_run_p_value(
        1000, 200, 150, 1.5)  # grows with ε
    with pytest.raises(ValueError, match="correct"):
        epsilon.one_run_p_value(10, 5, 6, 1.0)


def test_roc_bound_near_gaussian_dp_and_never_above_it():
    rng = np.random.default_rng(2)
    for mu, delta in ((1.0, 1e-2), (1.0, 1e-3)):
        members, nonmembers = rng.normal(mu, 1, 50_000), rng.normal(0, 1, 50_000)
        found = epsilon.roc_epsilon(members, nonmembers, delta=delta)["epsilon"]
        tight = gaussian_dp_epsilon(mu, delta)
        assert 0.75 * tight < found <= tight
    # a pure ε-DP score (randomized response, δ = 0)
    q = math.exp(1.0) / (1 + math.exp(1.0))
    members = (rng.random(20_000) < q).astype(float)
    nonmembers = (rng.random(20_000) < 1 - q).astype(float)
    found = epsilon.roc_epsilon(members, nonmembers)
    assert 0.9 < found["epsilon"] <= 1.0 and found["threshold"] == 1.0
    split = epsilon.roc_epsilon(members, nonmembers, split=True, seed=0)
    assert 0.8 < split["epsilon"] <= 1.0 and split["split"]


def test_roc_bound_agrees_with_tf_privacy():
    elb = pytest.importorskip(
        "tensorflow_privacy.privacy.privacy_tests.epsilon_lower_bound")
    rng = np.random.default_rng(3)
    for shift, n_m, n_n in ((0.5, 300, 400), (1.5, 1000, 200), (3.0, 50, 5000)):
        members = rng.normal(shift, 1, n_m)
        nonmembers = rng.normal(0, 1, n_n)
        theirs = elb.EpsilonLowerBound(members, nonmembers, alpha=0.05,
                                       two_sided_threshold=False)
        expected = theirs.compute_epsilon_lower_bound(elb.BoundMethod.CLOPPER_PEARSON, k=1)
        ours = epsilon.roc_epsilon(members, nonmembers, delta=0.0, confidence=0.95)
        assert ours["epsilon"] == pytest.approx(max(float(expected[0]), 0.0), abs=1e-9)
    # ties (label-only scores) too
    members = rng.integers(0, 2, 500).astype(float)
    nonmembers = (rng.random(500) < 0.3).astype(float)
    theirs = elb.EpsilonLowerBound(members, nonmembers, alpha=0.05, two_sided_threshold=False)
    expected = theirs.compute_epsilon_lower_bound(elb.BoundMethod.CLOPPER_PEARSON, k=1)
    assert epsilon.roc_epsilon(members, nonmembers)["epsilon"] == pytest.approx(
        float(expected[0]), abs=1e-9)


def test_arguments_are_checked():
    with pytest.raises(ValueError, match="differ in length"):
        epsilon.one_run_epsilon([1.0, 2.0], [True])
    with pytest.raises(ValueError, match="finite"):
        epsilon.one_run_epsilon([np.nan, 1.0], [True, False])
    with pytest.raises(ValueError, match="`delta`"):
        epsilon.one_run_epsilon([1.0, 2.0], [True, False], delta=1.0)
    with pytest.raises(ValueError, match="at least one"):
        epsilon.roc_epsilon([], [1.0])
    assert epsilon.guess_grid(1) == []
    assert (2, 2) in epsilon.guess_grid(10) and (5, 0) in epsilon.guess_grid(10)
