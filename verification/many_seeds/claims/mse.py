"""Claim 8, MSE for classification: not tested (refnet has no cross-entropy loss); the record
gives the MSE network's errors for information."""

import numpy as np

from verification.many_seeds.claims.records import (
    configuration,
    headline_config,
    new_figure,
    record,
)

__all__ = ["claim_mse"]


def claim_mse(baseline, config, device, reproduction):
    values = {"median_train_error": float(np.median(baseline.train_errors)),
              "median_test_error": float(np.median(baseline.test_errors))}
    measured = (f"not tested; for information, MSE on one-hot targets reaches a median train "
                f"error of {values['median_train_error']:.2%} and test error of "
                f"{values['median_test_error']:.2%} over this ledger's {len(baseline.seeds)} "
                "seeds")
    if reproduction is not None:
        headline = headline_config(reproduction)
        values["reproduction_median_test_error"] = float(headline["test_error"]["median"])
        measured += (f", and {values['reproduction_median_test_error']:.2%} median test error "
                     f"in the reproduction's headline ({headline['name']})")
    figure, axes = new_figure("Claim 8: test error with MSE", "test error (%)", "seeds")
    axes.hist(100 * baseline.test_errors, bins=30)
    figure.tight_layout()
    return record(
        "mse_for_classification", verdict="inconclusive", values=values, measured=measured,
        preliminary=config.preliminary,
        seeds=baseline.seeds, configuration=configuration(config, device),
        method="not tested: refnet implements no cross-entropy loss to compare with",
        threshold="a comparison with a classification loss, which refnet cannot run",
    ), figure
