"""Verdict labels that two machines print alike: "borderline" and "preliminary".

A verdict compares a statistic measured over seeds (an interval end, a p-value) with a
threshold. The statistic itself is not the same on every machine: float32 training is not
bit-identical across CPUs (other vector kernels, other summation orders), and training
amplifies round-off until a seed's final errors are, in effect, drawn again. Measured here
(``python -m verification.many_seeds.perturbation``; README, "Determinism"): training the
same 200 seeds in float64 instead of float32 changed the final test error of 96 % of them,
by 0.8 points on average, about as much as errors vary from seed to seed, and moved the mean
by 1.6 of its standard errors (SE), within the √2·SE spread of a complete redraw; two torch
threads instead of one changed nothing. Two machines can therefore differ by a full redraw of
every seed: their estimates of one statistic differ by up to √2·SE in standard deviation.

The rule: a verdict is **borderline** when its deciding statistic lies within
``BORDERLINE_SE`` = 3 of its standard errors of the threshold. Two machines then print
different labels only if their estimates differ by more than 2 × 3 SE, a 4.2-σ event of that
√2·SE difference (two-sided probability 2·10⁻⁵ per verdict, at the worst case of a complete
redraw). Two standard errors would not do: a ledger has about ten verdicts, so a 2.8-σ event
(0.5 % each) would split two machines on one of them in 5 % of commits, and the tiny-scale
test (``tests/test_perturbation.py``) saw claim 7's interval move by 2.6 σ under float64. The
label is "borderline" on both; which side of the threshold this run fell on goes into the
detail, not into the label.

A verdict of a reduced run (``refnet verify --quick``: fewer seeds and epochs) is
**preliminary**: the full run's rule could overturn it, so its label says so.
"""

import math

__all__ = ["BORDERLINE_SE", "Z_95", "interval_standard_error", "near_threshold", "label",
           "p_value_standard_error"]

BORDERLINE_SE = 3.0
"""Half-width of the borderline zone around a threshold, in standard errors (module text)."""
Z_95 = 1.959963984540054
"""The standard normal quantile of a two-sided 95 % interval."""


def interval_standard_error(low, high):
    """The standard error behind a 95 % interval [low, high]: its half-width / 1.96."""
    return (high - low) / (2 * Z_95)


def p_value_standard_error(p_value, seeds):
    """Sampling standard error of a two-sided rank p-value p = 2·min(F, 1 − F) estimated from
    ``seeds`` seeds: F is a fraction of seeds, with standard error sqrt(F(1 − F)/S) where
    F = p/2, and p moves twice as fast as F."""
    tail = min(max(p_value / 2, 0.0), 0.5)
    return 2 * math.sqrt(tail * (1 - tail) / seeds)


def near_threshold(value, threshold, standard_error):
    """The detail of a borderline comparison, or ``None`` when ``value`` is clear of it.

    Returns:
        ``None``, or a dict ``value``, ``threshold``, ``distance`` (|value − threshold|),
        ``standard_error`` and ``zone`` (``BORDERLINE_SE`` standard errors).
    """
    if not (math.isfinite(threshold) and math.isfinite(value)):
        return None
    zone = BORDERLINE_SE * standard_error
    distance = abs(value - threshold)
    if distance > zone:
        return None
    return {"value": value, "threshold": threshold, "distance": distance,
            "standard_error": standard_error, "zone": zone}


def label(verdict, *, borderline=False, preliminary=False):
    """The verdict as printed: ``"supported"``, ``"borderline"``, ``"preliminary: supported"``,
    ``"preliminary: borderline"``. The same on every machine for the same commit and seeds."""
    shown = "borderline" if borderline else verdict
    return f"preliminary: {shown}" if preliminary else shown
