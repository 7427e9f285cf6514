"""verification.many_seeds.statistics against hand-worked values."""

import math

import numpy as np
import pytest

from verification.many_seeds import statistics

ONE_TO_TWENTY = np.arange(1.0, 21.0)
"""x₍ᵢ₎ = i for i = 1..20: every statistic below is worked out by hand on it."""


def test_summary_estimates_on_one_to_twenty():
    summary = statistics.summarize(ONE_TO_TWENTY, resamples=50)
    # Type-7 quantile at p: position h = (n - 1)·p between 0-based order statistics.
    # p = 0.025: h = 0.475 → 1 + 0.475; p = 0.975: h = 18.525 → 19 + 0.525.
    assert summary["p2_5"] == pytest.approx(1.475), "p2_5 of 1..20"
    assert summary["p97_5"] == pytest.approx(19.525), "p97_5 of 1..20"
    assert summary["median"] == 10.5, "median of 1..20"
    assert summary["mean"] == 10.5, "mean of 1..20"
    # Σ(i - 10.5)² = n(n² - 1)/12 = 665, divided by n - 1 = 19 gives 35.
    assert summary["std"] == pytest.approx(math.sqrt(35)), "std (ddof=1) of 1..20"
    assert summary["n"] == 20


def test_quantile_intervals_on_one_to_twenty():
    summary = statistics.summarize(ONE_TO_TWENTY, resamples=50)
    # Median, K ~ Bin(20, 1/2): P(K ≤ 5) = 0.0207 ≤ 0.025 < P(K ≤ 6) = 0.0577, so l = 6;
    # P(K ≤ 14) = 0.9793 ≥ 0.975 > P(K ≤ 13), so u = 15: [x₍₆₎, x₍₁₅₎].
    assert summary["ci"]["median"] == [6.0, 15.0], "order-statistic interval of the median"
    # p = 0.025, K ~ Bin(20, 0.025): P(K = 0) = 0.603 > 0.025, so no lower end exists;
    # P(K ≤ 2) = 0.987 ≥ 0.975 > P(K ≤ 1) = 0.912, so u = 3. p = 0.975 mirrors it.
    assert summary["ci"]["p2_5"] == [None, 3.0], "interval of the 2.5 % quantile, n = 20"
    assert summary["ci"]["p97_5"] == [18.0, None], "interval of the 97.5 % quantile, n = 20"


def test_bootstrap_of_a_constant_sample_is_the_constant():
    low, high = statistics.bootstrap_interval([0.5] * 10, np.mean, resamples=20, seed=3)
    assert low == high == 0.5, "every resample of a constant sample has the same mean"


def test_bootstrap_seed_is_used():
    sample = [0.0, 1.0, 2.0, 4.0, 8.0]
    first = statistics.bootstrap_interval(sample, np.mean, resamples=30, seed=1)
    again = statistics.bootstrap_interval(sample, np.mean, resamples=30, seed=1)
    other = statistics.bootstrap_interval(sample, np.mean, resamples=30, seed=2)
    assert first == again, "the same seed must give the same interval"
    assert first != other, "a different seed must give a different interval"


def test_bootstrap_interval_lies_within_the_sample_range():
    low, high = statistics.bootstrap_interval([0.0, 1.0, 2.0, 4.0, 8.0], np.mean,
                                              resamples=40, seed=0)
    assert 0.0 <= low <= 3.0 <= high <= 8.0, "interval of the mean 3.0 within [min, max]"


@pytest.mark.parametrize(("value", "expected"), [
    (0.0, 0.0), (2.0, 0.375), (2.5, 0.5), (5.0, 1.0),
])
def test_percentile_of(value, expected):
    # (#{x < v} + #{x = v}/2) / n on [1, 2, 3, 4]: v = 2 gives (1 + 0.5) / 4.
    assert statistics.percentile_of([1, 2, 3, 4], value) == expected, f"percentile of {value}"


@pytest.mark.parametrize(("value", "expected"), [
    (0.0, 0.4),   # below all: 2·(0 + 1)/5
    (5.0, 0.4),   # above all: 2·(0 + 1)/5
    (1.0, 0.8),   # ties count on both sides: 2·(1 + 1)/5
    (2.5, 1.0),   # in the middle: 2·(2 + 1)/5 capped at 1
])
def test_rank_p_value(value, expected):
    assert statistics.rank_p_value([1, 2, 3, 4], value) == pytest.approx(expected), (
        f"two-sided rank p-value of {value} in [1, 2, 3, 4]")


def test_rank_p_value_smallest_attainable():
    sample = np.arange(999.0)
    assert statistics.rank_p_value(sample, -1.0) == pytest.approx(2 / 1000), (
        "a value below all 999 draws has p = 2/(n + 1)")


@pytest.mark.parametrize(("p_values", "expected"), [
    ([0.01, 0.04, 0.03], [0.03, 0.06, 0.06]),  # 3·0.01; 2·0.03; max(0.06, 1·0.04)
    ([0.5, 0.9], [1.0, 1.0]),                  # 2·0.5 = 1 carries over to 0.9
    ([0.2], [0.2]),
])
def test_holm(p_values, expected):
    assert statistics.holm(p_values) == pytest.approx(expected), f"Holm of {p_values}"


@pytest.mark.parametrize(("rate", "n", "expected"), [
    (0.025, 1000, math.sqrt(0.025 * 0.975 / 1000)),  # 0.0049371
    (0.5, 100, 0.05),
    (0.0, 10, 0.0),
])
def test_binomial_standard_error(rate, n, expected):
    assert statistics.binomial_standard_error(rate, n) == pytest.approx(expected), (
        f"binomial standard error of {rate} on {n} points")


@pytest.mark.parametrize("sample", [[1.0], [[1.0, 2.0]], [1.0, float("nan")]])
def test_summarize_refuses_bad_samples(sample):
    with pytest.raises(ValueError, match="expected"):
        statistics.summarize(sample, resamples=10)


def test_binomial_standard_error_refuses_bad_rate():
    with pytest.raises(ValueError, match="rate"):
        statistics.binomial_standard_error(1.5, 10)
