"""Claim 7, no need to normalise: the interval of the mean paired (raw − standardised)
test-error difference lies below ``NON_INFERIORITY_MARGIN``."""

import numpy as np

from verification.many_seeds.claims.config import NON_INFERIORITY_MARGIN
from verification.many_seeds.claims.records import (
    boxes,
    configuration,
    interval_text,
    paired_borderline,
    record,
)
from verification.many_seeds.claims.rules import interval_verdict, paired_difference

__all__ = ["claim_no_normalisation"]


def claim_no_normalisation(runs, config, device):
    baseline, standardised = runs["baseline"], runs["standardised"]
    seeds = baseline.seeds
    difference = paired_difference(baseline.test_errors, standardised.test_errors)
    verdict = interval_verdict(difference["ci_low"], difference["ci_high"],
                               below=NON_INFERIORITY_MARGIN)
    values = {**difference, "median_test_error_raw": float(np.median(baseline.test_errors)),
              "median_test_error_standardised": float(np.median(standardised.test_errors))}
    helps = ("standardising lowers the error significantly" if difference["ci_low"] > 0
             else "no significant difference")
    measured = (f"raw − standardised test error over {len(seeds)} paired seeds: "
                f"{interval_text(difference)}; medians {values['median_test_error_raw']:.2%} "
                f"raw, {values['median_test_error_standardised']:.2%} standardised ({helps})")
    return record(
        "no_normalisation", verdict=verdict, values=values, measured=measured, seeds=seeds,
        borderline=paired_borderline(difference, "raw − standardised",
                                     below=NON_INFERIORITY_MARGIN),
        preliminary=config.preliminary,
        configuration=configuration(config, device,
                                     compared="inputs standardised per feature with the "
                                              "training set's mean and std"),
        method="paired runs from the same weights, data and batch orders on raw inputs and on "
               "inputs standardised with each training set's mean and std (test points too)",
        threshold=f"the 95% CI of the mean paired (raw − standardised) test-error difference "
                  f"lies below +{100 * NON_INFERIORITY_MARGIN:g} pp (raw is not worse by more)",
    ), boxes("Claim 7: test error", "test error (%)",
              {"raw": baseline.test_errors, "standardised": standardised.test_errors})
