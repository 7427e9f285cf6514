"""Claim 6, Dropout lowers over-fitting: where the network over-fits (the interval of its
mean test − train gap lies above ``OVERFIT_MARGIN``), the interval of the mean paired gap
reduction lies above 0. Measured on the report's task and on a small training set."""

import numpy as np

from verification.many_seeds.claims.config import BOOTSTRAP_SEED, DROPOUT_P, OVERFIT_MARGIN
from verification.many_seeds.claims.records import (
    borderline_texts,
    boxes,
    configuration,
    first,
    paired_borderline,
    pp,
    record,
)
from verification.many_seeds.claims.rules import (
    combine_verdicts,
    interval_verdict,
    paired_difference,
)
from verification.many_seeds.statistics import bootstrap_interval
from verification.many_seeds.verdicts import interval_standard_error, near_threshold

__all__ = ["claim_dropout_overfitting"]


def _dropout_arm(plain, dropped):
    """Gap (test − train) statistics of one paired plain / Dropout pair of runs."""
    gap = plain.test_errors - plain.train_errors
    gap_dropout = dropped.test_errors - dropped.train_errors
    low, high = bootstrap_interval(gap, np.mean, seed=BOOTSTRAP_SEED)
    reduction = paired_difference(gap, gap_dropout)
    overfits = low > OVERFIT_MARGIN
    verdict = (interval_verdict(reduction["ci_low"], reduction["ci_high"], above=0.0)
               if overfits else "inconclusive")
    borderline = first(
        borderline_texts(near_threshold(low, OVERFIT_MARGIN,
                                        interval_standard_error(low, high)),
                         "the gap interval's lower end"),
        paired_borderline(reduction, "gap reduction", above=0.0) if overfits else None)
    return {"gap_mean": float(gap.mean()), "gap_ci_low": low, "gap_ci_high": high,
            "gap_mean_dropout": float(gap_dropout.mean()),
            "reduction_mean": reduction["mean"], "reduction_ci_low": reduction["ci_low"],
            "reduction_ci_high": reduction["ci_high"],
            "median_test_error": float(np.median(plain.test_errors)),
            "median_test_error_dropout": float(np.median(dropped.test_errors)),
            "overfits": overfits, "verdict": verdict, "borderline": borderline}


def _arm_text(arm, label):
    over = "over-fits" if arm["overfits"] else "does not over-fit"
    return (f"{label}: the plain network {over} (gap {pp(arm['gap_mean'])}, 95% CI "
            f"{pp(arm['gap_ci_low'])} to {pp(arm['gap_ci_high'])}), Dropout changes the gap "
            f"by {pp(-arm['reduction_mean'])} (CI {pp(-arm['reduction_ci_high'])} to "
            f"{pp(-arm['reduction_ci_low'])}) and the median test error from "
            f"{arm['median_test_error']:.2%} to {arm['median_test_error_dropout']:.2%}")


def claim_dropout_overfitting(runs, config, device):
    baseline, dropped = runs["baseline"], runs["dropout"]
    seeds = baseline.seeds
    small = {0.0: runs["small"], DROPOUT_P: runs["small_dropout"]}
    arms = {"full": _dropout_arm(baseline, dropped), "small": _dropout_arm(*small.values())}
    deciding = [arm["verdict"] for arm in arms.values() if arm["overfits"]]
    verdict = combine_verdicts(deciding) if deciding else "inconclusive"
    reason = "" if deciding else "; nothing to over-fit in either setting, so nothing to judge"
    measured = (f"{len(seeds)} paired seeds. " + _arm_text(arms["full"], "report's task") + "; "
                + _arm_text(arms["small"], f"{config.small_samples} training points, "
                                           f"{config.small_epochs} epochs") + reason)
    values = {f"{name}_{key}": value for name, arm in arms.items() for key, value in arm.items()
              if key not in ("verdict", "borderline")}
    figure = boxes("Claim 6: test − train error", "gap (pp)",
                    {label: run.test_errors - run.train_errors for label, run in
                     (("1000\nplain", baseline), ("1000\nDropout", dropped),
                      (f"{config.small_samples}\nplain", small[0.0]),
                      (f"{config.small_samples}\nDropout", small[DROPOUT_P]))})
    return record(
        "dropout_overfitting", verdict=verdict, values=values, measured=measured, seeds=seeds,
        borderline=first(*(arm["borderline"] for arm in arms.values())),
        preliminary=config.preliminary,
        configuration=configuration(config, device, dropout_p=DROPOUT_P,
                                     dropout_after="every hidden ReLU",
                                     small_samples=config.small_samples,
                                     small_epochs=config.small_epochs),
        method="paired runs with and without Dropout from the same weights, data and batch "
               "orders; per-seed gap = test error − train error; on the report's task and on "
               f"{config.small_samples} training points (as many SGD steps), where there is "
               "more to over-fit",
        threshold=f"in each setting where the plain network over-fits (95% CI of its mean gap "
                  f"above {100 * OVERFIT_MARGIN:g} pp), the 95% CI of the mean paired gap "
                  f"reduction lies above 0; inconclusive where neither over-fits",
    ), figure
