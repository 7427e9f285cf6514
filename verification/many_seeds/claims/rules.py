"""The pure rules of the claims: each turns per-seed numbers into a statistic or a verdict.

An interval strictly inside a rule's range gives "supported", one with no point inside it
"not supported", anything else "inconclusive" (``interval_verdict``); a verdict whose number
lies near its threshold is borderline (``verification.many_seeds.verdicts``).
"""

import math

import numpy as np
import torch
from scipy import stats

from verification.many_seeds.claims.config import (
    ALPHA,
    BOOTSTRAP_SEED,
    BORDER_BAND,
    MINIMUM_FALL,
    STAGNATION_SMOOTHING,
    STAGNATION_TOLERANCE,
    STAGNATION_WINDOW,
)
from verification.many_seeds.statistics import bootstrap_interval
from verification.many_seeds.verdicts import (
    BORDERLINE_SE,
    interval_standard_error,
    near_threshold,
)

__all__ = [
    "stagnation", "distance_to_circle", "border_summary", "paired_difference",
    "interval_verdict", "interval_borderline", "combine_verdicts", "sign_test",
    "sign_test_borderline",
]


def stagnation(curve, *, window=STAGNATION_WINDOW, smoothing=STAGNATION_SMOOTHING,
               tolerance=STAGNATION_TOLERANCE, minimum_fall=MINIMUM_FALL):
    """Claim 2's rule on one loss curve.

    ``late`` is the mean of the last ``smoothing`` epochs, ``earlier`` the mean of the
    ``smoothing`` epochs that end ``window`` epochs before; the curve stagnates when
    ``|earlier − late| / earlier < tolerance`` and ``1 − late / curve[0] > minimum_fall``.

    Args:
        curve: 1-D array of E ≥ window + smoothing epoch losses.
        window: epochs between the two levels.
        smoothing: epochs averaged into each level (damps SGD's epoch-to-epoch noise).
        tolerance: the largest relative change that counts as stagnating.
        minimum_fall: the fall from epoch 1 that must come first.

    Returns:
        A dict of floats ``first``, ``earlier``, ``late``, ``relative_change`` (positive when
        still falling), ``fall`` (1 − late / first), ``tail_share`` (the last window's part of
        the total fall) and a bool ``stagnates``.
    """
    curve = np.asarray(curve, dtype=np.float64)
    if curve.ndim != 1 or curve.size < window + smoothing:
        raise ValueError(f"stagnation: expected a 1-D curve of at least {window + smoothing} "
                         f"epochs, got shape {list(curve.shape)}")
    first = float(curve[0])
    late = float(curve[-smoothing:].mean())
    earlier = float(curve[-window - smoothing:-window].mean())
    relative_change = (earlier - late) / earlier
    fall = 1 - late / first
    tail_share = (earlier - late) / (first - late) if first != late else 0.0
    return {"first": first, "earlier": earlier, "late": late,
            "relative_change": relative_change, "fall": fall, "tail_share": tail_share,
            "stagnates": abs(relative_change) < tolerance and fall > minimum_fall}


def distance_to_circle(points, center, radius):
    """Distance of each point to the circle: ``| ‖x − center‖ − radius |``.

    Args:
        points: tensor of points, any leading shape, coordinates last (``[..., 2]``).
        center: the circle's centre (x, y).
        radius: its radius.

    Returns:
        A tensor of the leading shape.
    """
    centre = torch.tensor(center, dtype=points.dtype, device=points.device)
    return ((points - centre).norm(dim=-1) - radius).abs()


def border_summary(distances, wrong, *, band=BORDER_BAND):
    """Claim 3's numbers: where the misclassified points lie relative to all points.

    Args:
        distances: R × N tensor of distances to the circle (``distance_to_circle``).
        wrong: R × N bool tensor, True where the point is misclassified.
        band: the distance that counts as "on the border".

    Returns:
        A dict: ``misclassified`` (count, pooled over seeds), ``within_band_misclassified`` and
        ``within_band_all`` (fractions of those points within ``band``),
        ``median_distance_misclassified``, ``median_distance_all``, ``distance_ratio`` (the two
        medians' ratio), ``seeds_with_errors`` and ``seeds_median_within_band`` (fraction of
        those seeds whose misclassified points have a median distance below ``band``). Without
        any misclassified point, the statistics of misclassified points are ``None``.
    """
    distances = distances.double().cpu()
    wrong = wrong.cpu()
    missed = distances[wrong]
    seeds_with_errors = [row[mask] for row, mask in zip(distances, wrong, strict=True)
                         if bool(mask.any())]
    median_all = float(distances.median())
    summary = {"misclassified": int(missed.numel()),
               "within_band_all": float((distances < band).double().mean()),
               "median_distance_all": median_all, "seeds_with_errors": len(seeds_with_errors),
               "within_band_misclassified": None, "median_distance_misclassified": None,
               "distance_ratio": None, "seeds_median_within_band": None}
    if seeds_with_errors:
        median_missed = float(missed.median())
        summary.update(
            within_band_misclassified=float((missed < band).double().mean()),
            median_distance_misclassified=median_missed,
            distance_ratio=median_missed / median_all,
            seeds_median_within_band=float(np.mean([float(row.median()) < band
                                                    for row in seeds_with_errors])))
    return summary


def paired_difference(first, second):
    """Per-seed ``first − second`` and its mean with a 95 % percentile-bootstrap interval.

    Args:
        first: 1-D array of n ≥ 2 per-seed values (e.g. error rates).
        second: 1-D array of the same seeds' values under the other condition.

    Returns:
        A dict of floats: ``mean``, ``median``, ``ci_low``, ``ci_high``, ``max_abs`` and
        ``identical`` (fraction of seeds with a zero difference).
    """
    difference = np.asarray(first, dtype=np.float64) - np.asarray(second, dtype=np.float64)
    low, high = bootstrap_interval(difference, np.mean, seed=BOOTSTRAP_SEED)
    return {"mean": float(difference.mean()), "median": float(np.median(difference)),
            "ci_low": low, "ci_high": high, "max_abs": float(np.abs(difference).max()),
            "identical": float(np.mean(difference == 0))}


def interval_verdict(low, high, *, above=-math.inf, below=math.inf):
    """Verdict of an interval [low, high] against the open range (above, below).

    Returns:
        ``"supported"`` when the interval lies strictly inside the range, ``"not supported"``
        when no point of it is inside (``high <= above`` or ``low >= below``),
        ``"inconclusive"`` otherwise.
    """
    if above < low and high < below:
        return "supported"
    if high <= above or low >= below:
        return "not supported"
    return "inconclusive"


def interval_borderline(low, high, *, above=-math.inf, below=math.inf):
    """Whether an end of [low, high] lies in the borderline zone of a bound of
    ``interval_verdict`` (``verification.many_seeds.verdicts``), the interval's own standard
    error (its half-width / 1.96) as the scale.

    Returns:
        ``None``, or the ``near_threshold`` detail of the first such end, with ``end``
        (``"lower end"`` or ``"upper end"``).
    """
    standard_error = interval_standard_error(low, high)
    for end, value in (("lower end", low), ("upper end", high)):
        for bound in (above, below):
            near = near_threshold(value, bound, standard_error)
            if near is not None:
                return {**near, "end": end}
    return None


def combine_verdicts(verdicts):
    """All supported: supported; any not supported: not supported; else inconclusive."""
    verdicts = list(verdicts)
    if verdicts and all(verdict == "supported" for verdict in verdicts):
        return "supported"
    if "not supported" in verdicts:
        return "not supported"
    return "inconclusive"


def sign_test(lower, higher):
    """One-sided sign test that ``lower`` is below ``higher`` seed by seed (ties dropped).

    Args:
        lower: 1-D array of per-seed values expected to be smaller.
        higher: 1-D array of the same seeds' other values.

    Returns:
        A dict: ``wins``, ``losses``, ``ties`` (ints) and ``p_value`` (exact binomial,
        ``scipy.stats.binomtest``; 1.0 when every seed ties).
    """
    lower, higher = np.asarray(lower), np.asarray(higher)
    wins, losses = int(np.sum(lower < higher)), int(np.sum(lower > higher))
    return {"wins": wins, "losses": losses, "ties": int(lower.size - wins - losses),
            "p_value": _sign_p_value(wins, wins + losses)}


def _sign_p_value(wins, trials):
    return (float(stats.binomtest(wins, trials, 0.5, alternative="greater").pvalue)
            if trials else 1.0)


def sign_test_borderline(test, alpha=ALPHA):
    """Whether a redraw of the seeds could move ``sign_test``'s verdict (p < ``alpha``).

    The wins w of n = wins + losses move between machines with the binomial standard error
    sqrt(n·q(1 − q)), q = (w + 1)/(n + 2) (add-one, so that 6 wins of 6 still have a spread);
    the verdict is borderline when w ± ``BORDERLINE_SE`` standard errors, rounded, gives the
    other verdict.

    Returns:
        ``None``, or a dict ``wins``, ``trials``, ``shift`` (wins moved) and ``p_value``
        (at the shifted wins, where the verdict differs).
    """
    wins, trials = test["wins"], test["wins"] + test["losses"]
    rate = (wins + 1) / (trials + 2)
    shift = BORDERLINE_SE * math.sqrt(trials * rate * (1 - rate))
    decided = test["p_value"] < alpha
    for moved in (round(wins - shift), round(wins + shift)):
        moved = min(max(moved, 0), trials)
        p_value = _sign_p_value(moved, trials)
        if (p_value < alpha) != decided:
            return {"wins": wins, "trials": trials, "shift": shift, "p_value": p_value}
    return None
