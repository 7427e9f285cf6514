"""Statistics of a sample of per-seed error rates: pure functions over one-dimensional arrays.

A *sample* is a 1-D array of n floats, one per seed (for instance the n test errors of one
configuration of the many-seed reproduction, as fractions). Nothing here draws a random
number except ``bootstrap_interval``, whose resampling takes an explicit seed.

- ``summarize``: median, mean, standard deviation and the 2.5 % and 97.5 % percentiles, each
  with a confidence interval. Quantiles (median and percentiles) get distribution-free
  order-statistic intervals (``quantile_interval``, exact binomial, no resampling); the mean
  and standard deviation get percentile-bootstrap intervals (``bootstrap_interval``).
- ``percentile_of``: where a value (the report's 0.025 or 0.019) lies in a sample.
- ``rank_p_value``: a two-sided test that a single value is a draw from the sample's
  distribution; ``holm`` adjusts several such p-values for multiplicity.
- ``binomial_standard_error``: the sampling noise of an error rate measured on n points.
"""

import math

import numpy as np
from scipy import stats

__all__ = [
    "CONFIDENCE", "BOOTSTRAP_RESAMPLES", "QUANTILES", "CI_METHODS", "summarize",
    "quantile_interval", "bootstrap_interval", "percentile_of", "rank_p_value", "holm",
    "binomial_standard_error",
]

CONFIDENCE = 0.95
"""Confidence level of every interval."""
BOOTSTRAP_RESAMPLES = 2000
"""Bootstrap resamples for the mean and standard deviation intervals."""
QUANTILES = {"median": 0.5, "p2_5": 0.025, "p97_5": 0.975}
"""The quantiles that ``summarize`` reports, by key."""
CI_METHODS = {
    "median": "order statistics (exact binomial, scipy.stats.quantile_test)",
    "p2_5": "order statistics (exact binomial, scipy.stats.quantile_test)",
    "p97_5": "order statistics (exact binomial, scipy.stats.quantile_test)",
    "mean": "percentile bootstrap (scipy.stats.bootstrap, seeded numpy Generator)",
    "std": "percentile bootstrap (scipy.stats.bootstrap, seeded numpy Generator)",
}
"""How each interval of ``summarize`` is computed."""


def _as_sample(sample, minimum=1):
    """The sample as a 1-D float64 array of at least ``minimum`` finite values."""
    array = np.asarray(sample, dtype=np.float64)
    if array.ndim != 1 or array.size < minimum:
        raise ValueError(f"expected a 1-D sample of at least {minimum} values, "
                         f"got shape {list(array.shape)}")
    if not np.isfinite(array).all():
        raise ValueError("expected finite values in the sample")
    return array


def _finite_or_none(value):
    """A plain float, or ``None`` for NaN (an interval end the sample cannot reach)."""
    return None if math.isnan(value) else float(value)


def _sample_std(sample, axis=-1):
    """Standard deviation with Bessel's correction (ddof = 1)."""
    return np.std(sample, axis=axis, ddof=1)


def quantile_interval(sample, probability, *, confidence=CONFIDENCE):
    """Distribution-free confidence interval for the population ``probability``-quantile.

    With x₍₁₎ ≤ … ≤ x₍ₙ₎ the sorted sample and K ~ Binomial(n, probability) the number of
    draws below the quantile, the interval is [x₍ₗ₎, x₍ᵤ₎] with l the largest index such that
    P(K < l) ≤ α/2 and u the smallest such that P(K ≥ u) ≤ α/2 (α = 1 − confidence); it
    covers the quantile with probability ≥ ``confidence`` for any distribution, ties included
    (``scipy.stats.quantile_test``). When n is too small for an end (no l ≥ 1 or no u ≤ n),
    that end is ``None``: the sample cannot bound it at this confidence.

    Args:
        sample: 1-D array of n values.
        probability: the quantile's probability, in (0, 1).
        confidence: the interval's confidence level.

    Returns:
        ``[low, high]``, each a float or ``None``.
    """
    sample = _as_sample(sample)
    test = stats.quantile_test(sample, p=probability)
    interval = test.confidence_interval(confidence)
    return [_finite_or_none(interval.low), _finite_or_none(interval.high)]


def bootstrap_interval(sample, statistic, *, confidence=CONFIDENCE,
                       resamples=BOOTSTRAP_RESAMPLES, seed=0):
    """Percentile-bootstrap confidence interval of ``statistic`` (mean, standard deviation).

    ``resamples`` samples of size n are drawn with replacement from ``sample`` by a
    ``numpy.random.Generator`` seeded with ``seed``; the interval is the α/2 and 1 − α/2
    quantiles of the statistic over them. The percentile method (rather than BCa) because
    error rates are discrete with many ties, where BCa's acceleration estimate degenerates.

    Args:
        sample: 1-D array of n ≥ 2 values.
        statistic: a function of an array and an ``axis`` keyword, e.g. ``np.mean``.
        confidence: the interval's confidence level.
        resamples: number of bootstrap resamples.
        seed: seed of the resampling generator; the same seed gives the same interval.

    Returns:
        ``[low, high]`` as floats.
    """
    sample = _as_sample(sample, minimum=2)
    result = stats.bootstrap((sample,), statistic, n_resamples=resamples,
                             confidence_level=confidence, method="percentile",
                             vectorized=True, rng=np.random.default_rng(seed))
    interval = result.confidence_interval
    return [float(interval.low), float(interval.high)]


def summarize(sample, *, confidence=CONFIDENCE, resamples=BOOTSTRAP_RESAMPLES, seed=0):
    """Median, mean, standard deviation and 2.5 / 97.5 % percentiles, each with an interval.

    Quantiles are numpy's default (linear interpolation between order statistics, Hyndman
    and Fan's type 7); the standard deviation uses ddof = 1. Intervals: see ``CI_METHODS``.

    Args:
        sample: 1-D array of n ≥ 2 values (e.g. one error rate per seed).
        confidence: confidence level of every interval.
        resamples: bootstrap resamples for the mean and standard deviation.
        seed: seed of the bootstrap generator.

    Returns:
        A dict of plain floats: ``n``, ``median``, ``mean``, ``std``, ``p2_5``, ``p97_5``,
        ``ci`` (a ``[low, high]`` per statistic, ends ``None`` where the sample cannot bound
        them), ``ci_method`` (``CI_METHODS``) and ``confidence``.
    """
    sample = _as_sample(sample, minimum=2)
    estimates = {key: float(np.quantile(sample, q)) for key, q in QUANTILES.items()}
    estimates["mean"] = float(np.mean(sample))
    estimates["std"] = float(_sample_std(sample))
    intervals = {key: quantile_interval(sample, q, confidence=confidence)
                 for key, q in QUANTILES.items()}
    for key, statistic in (("mean", np.mean), ("std", _sample_std)):
        intervals[key] = bootstrap_interval(sample, statistic, confidence=confidence,
                                            resamples=resamples, seed=seed)
    return {"n": int(sample.size), **estimates, "ci": intervals, "ci_method": dict(CI_METHODS),
            "confidence": confidence}


def percentile_of(sample, value):
    """Where ``value`` lies in the sample, as a fraction: (#{x < v} + ½·#{x = v}) / n.

    This is ``scipy.stats.percentileofscore(kind="mean")`` divided by 100: 0 below every
    draw, 1 above every draw, and ties count half.

    Args:
        sample: 1-D array of n values.
        value: the value to place, e.g. the report's 0.025.

    Returns:
        A float in [0, 1].
    """
    sample = _as_sample(sample)
    return float(stats.percentileofscore(sample, value, kind="mean")) / 100


def rank_p_value(sample, value):
    """Two-sided rank p-value that ``value`` is one more draw from the sample's distribution.

    p = min(1, 2·min(F(v), 1 − F(v⁻))) with the small-sample-corrected empirical CDF
    F(v) = (#{x ≤ v} + 1) / (n + 1) and 1 − F(v⁻) = (#{x ≥ v} + 1) / (n + 1): under the null
    hypothesis v and the n draws are exchangeable, so v's rank among the n + 1 values is
    uniform and P(p ≤ α) ≤ α (the "+1" counts v itself; Davison and Hinkley 1997, §4.2).
    Ties count on both sides, which makes the test conservative for discrete samples. The
    smallest attainable p-value is 2 / (n + 1).

    Args:
        sample: 1-D array of n values, the reference distribution.
        value: the single value under test.

    Returns:
        A float in (0, 1].
    """
    sample = _as_sample(sample)
    below = (np.count_nonzero(sample <= value) + 1) / (sample.size + 1)
    above = (np.count_nonzero(sample >= value) + 1) / (sample.size + 1)
    return float(min(1.0, 2 * min(below, above)))


def holm(p_values):
    """Holm's step-down adjustment of m p-values (family-wise error, any dependence).

    Sorted ascending p₍₁₎ ≤ … ≤ p₍ₘ₎, the adjusted value of p₍ᵢ₎ is
    maxⱼ≤ᵢ min(1, (m − j + 1)·p₍ⱼ₎); rejecting the adjusted values below α controls the
    probability of any false rejection at α.

    Args:
        p_values: a sequence of m p-values.

    Returns:
        A list of m adjusted p-values, in the input's order.
    """
    p_values = np.asarray(p_values, dtype=np.float64)
    count = p_values.size
    order = np.argsort(p_values, kind="stable")
    scaled = np.minimum(1.0, (count - np.arange(count)) * p_values[order])
    adjusted = np.empty(count)
    adjusted[order] = np.maximum.accumulate(scaled)
    return [float(p) for p in adjusted]


def binomial_standard_error(rate, n):
    """Standard error √(r(1 − r)/n) of an error rate r counted on n independent points.

    The scale of the noise that a finite data set alone adds to one run's error: a rate of
    0.025 measured on 1000 points carries a standard error of about 0.0049.

    Args:
        rate: the error rate r, a fraction in [0, 1].
        n: the number of points it was counted on.

    Returns:
        A float.
    """
    if not 0 <= rate <= 1 or n < 1:
        raise ValueError(f"expected a rate in [0, 1] and n >= 1, got rate={rate}, n={n}")
    return math.sqrt(rate * (1 - rate) / n)
