"""Which grid configuration's runs look most like the report's single run (a second analysis).

The reproduction's verdicts (``reproduction.VERDICT_RULE``, pre-registered) ask, one
configuration at a time, whether the report's (train, test) = (2.5 %, 1.9 %) is a plausible
draw. They do not say which configuration fits best. This module ranks them by one stated
measure of the *pair*:

**Compatibility** = the density of the configuration's per-seed (train error, test error)
pairs at the report's pair, estimated with a Gaussian kernel density in percentage points
(per pp²): ``density(r) = (1/S) Σ_s N(r; e_s, H)`` over the S seeds' pairs e_s, with
bandwidth matrix H = h² Σ + (δ²/12) I, where Σ is the pairs' covariance, h = S^(-1/6)
(Scott's rule in two dimensions) and δ = 0.1 pp the lattice step of an error on 1000
points (the term is the variance of rounding to that lattice; it keeps H invertible when a
configuration's errors do not vary, which ``scipy.stats.gaussian_kde`` cannot). A higher
density means more of the configuration's runs end near the report's pair.

Its uncertainty is a 95 % percentile-bootstrap interval over seeds (``RESAMPLES`` resamples,
seeded ``BOOTSTRAP_SEED``). Beside it, the **typicality** of the pair: the fraction of the
configuration's own seeds whose pair has a lower density than the report's (0: the report's
pair is rarer than every seed; about 0.5: as typical as the median seed).

This ranks the grid; it does not prove which configuration the report used (other
choices outside the grid could fit better still).
"""

import numpy as np
from matplotlib.figure import Figure

__all__ = ["MEASURE", "LATTICE_STEP_PP", "RESAMPLES", "BOOTSTRAP_SEED", "density",
           "compatibility", "rank", "ranking_figure"]

MEASURE = (
    "Compatibility of a configuration with the report's (train, test) pair: the Gaussian "
    "kernel density of its seeds' (train, test) error pairs at the report's pair, per "
    "percentage point squared (Scott's bandwidth on the pairs' covariance, plus the variance "
    "of the 0.1 pp error lattice), with a 95% bootstrap interval over seeds; typicality is the "
    "fraction of the configuration's seeds whose own pair has a lower density. A second "
    "analysis beside the pre-registered verdicts: it ranks the grid, it does not prove what "
    "the report used."
)
LATTICE_STEP_PP = 0.1
"""One misclassified point of 1000, in percentage points."""
RESAMPLES = 200
BOOTSTRAP_SEED = 0


def _bandwidth(pairs):
    """H = h² Σ + (δ²/12) I for S pairs (S × 2, in pp)."""
    count = len(pairs)
    covariance = np.cov(pairs, rowvar=False) if count > 1 else np.zeros((2, 2))
    return count ** (-1 / 3) * covariance + LATTICE_STEP_PP ** 2 / 12 * np.eye(2)


def density(pairs, points, bandwidth=None):
    """Kernel density of ``pairs`` (S × 2) at each of ``points`` (P × 2), in pp⁻²."""
    pairs, points = np.atleast_2d(pairs), np.atleast_2d(points)
    bandwidth = _bandwidth(pairs) if bandwidth is None else bandwidth
    inverse = np.linalg.inv(bandwidth)
    normaliser = 2 * np.pi * np.sqrt(np.linalg.det(bandwidth))
    offsets = points[:, None, :] - pairs[None, :, :]
    squared = np.einsum("psi,ij,psj->ps", offsets, inverse, offsets)
    return np.exp(-0.5 * squared).mean(axis=1) / normaliser


def compatibility(train_errors, test_errors, reported):
    """The compatibility of one configuration (fractions in, pp inside).

    Args:
        train_errors: 1-D array of S per-seed training errors (fractions).
        test_errors: the same seeds' test errors.
        reported: ``{"train": …, "test": …}`` fractions.

    Returns:
        A dict: ``density`` (pp⁻²), ``ci_low``, ``ci_high`` and ``typicality``.
    """
    pairs = 100 * np.column_stack([train_errors, test_errors]).astype(np.float64)
    point = 100 * np.array([[reported["train"], reported["test"]]])
    at_report = float(density(pairs, point)[0])
    generator = np.random.default_rng(BOOTSTRAP_SEED)
    resampled = [density(pairs[generator.integers(0, len(pairs), len(pairs))], point)[0]
                 for _ in range(RESAMPLES)]
    low, high = np.quantile(resampled, [0.025, 0.975])
    typicality = float(np.mean(density(pairs, pairs) < at_report))
    return {"density": at_report, "ci_low": float(low), "ci_high": float(high),
            "typicality": typicality}


def rank(names, runs, reported):
    """Every configuration's compatibility, most compatible first, and one sentence.

    Args:
        names: configuration names.
        runs: per configuration, ``(train_errors, test_errors)`` over its test seeds.
        reported: the report's pair.

    Returns:
        A dict: ``measure``, ``ranking`` (dicts with ``rank``, ``name`` and the
        ``compatibility`` keys) and ``sentence``.
    """
    measured = [{"name": name, **compatibility(train, test, reported)}
                for name, (train, test) in zip(names, runs, strict=True)]
    ordered = sorted(measured, key=lambda row: (-row["density"], row["name"]))
    ranking = [{"rank": position + 1, **row} for position, row in enumerate(ordered)]
    return {"measure": MEASURE, "ranking": ranking, "sentence": _sentence(ranking)}


def _sentence(ranking):
    """The best configuration, those not separable from it (intervals overlapping its own),
    and how far the best of the rest lies below."""
    best = ranking[0]
    text = (f"Most compatible with the report's pair: {best['name']} (density "
            f"{best['density']:.3g} per pp², 95% CI {best['ci_low']:.3g}–{best['ci_high']:.3g}; "
            f"typicality {best['typicality']:.2f})")
    tied = [row for row in ranking[1:] if row["ci_high"] >= best["ci_low"]]
    rest = [row for row in ranking[1:] if row["ci_high"] < best["ci_low"]]
    if tied:
        verb = "is" if len(tied) == 1 else "are"
        text += (f"; {len(tied)} more {verb} not separable from it (their intervals overlap "
                 f"its own): {', '.join(row['name'] for row in tied)}")
    if rest:
        runner = rest[0]
        ratio = best["density"] / runner["density"] if runner["density"] > 0 else float("inf")
        which = "The other" if len(rest) == 1 else f"The most compatible of the other {len(rest)}"
        text += (f". {which} is {runner['name']} ({runner['density']:.3g}), {ratio:.1f}× less "
                 f"dense than {best['name']}")
    return text + ". This ranks the grid; it does not show what the report used."


DISPLAY_DECADES = 4
"""The figure shows densities down to 10⁻⁴ of the best; lower ones sit at its left edge."""


def ranking_figure(ranking):
    """Density at the report's pair with its interval, one row per configuration (log axis,
    ``DISPLAY_DECADES`` decades below the best; the rest drawn as ◁ at the left edge)."""
    figure = Figure(figsize=(7, 0.3 * len(ranking) + 1.2))
    axes = figure.subplots()
    rows = list(reversed(ranking))
    positions = np.arange(len(rows))
    floor = max(max(row["density"] for row in rows), 1e-300) * 10.0 ** -DISPLAY_DECADES
    shown = np.array([row["density"] >= floor for row in rows])
    values = np.array([max(row["density"], floor) for row in rows])
    low = np.array([max(row["ci_low"], floor) for row in rows])
    high = np.array([max(row["ci_high"], floor) for row in rows])
    axes.errorbar(values[shown], positions[shown],
                  xerr=[values[shown] - low[shown], high[shown] - values[shown]],
                  fmt="o", markersize=4, capsize=2)
    if (~shown).any():
        axes.plot(values[~shown], positions[~shown], "<", color="grey",
                  label=f"below {floor:.2g}")
        axes.legend(fontsize=7, loc="lower right")
    axes.set_yticks(positions, [row["name"] for row in rows], fontsize=7)
    axes.set_xscale("log")
    axes.set_xlim(left=floor / 2)
    axes.set_xlabel("density at the report's (2.5%, 1.9%), per pp² (log; 95% bootstrap CI)")
    axes.set_title("Which configuration's runs end nearest the report's pair", fontsize=9)
    axes.grid(alpha=0.3)
    figure.tight_layout()
    return figure
