"""Claim 3, the errors lie on the border: at least ``BORDER_FRACTION`` of the misclassified
test points, pooled over seeds, lie within ``BORDER_BAND`` of the circle."""

import math

import numpy as np

import refnet
from verification.many_seeds.claims.config import BORDER_BAND, BORDER_FRACTION, CENTER
from verification.many_seeds.claims.records import (
    borderline_texts,
    configuration,
    new_figure,
    record,
)
from verification.many_seeds.claims.rules import border_summary, distance_to_circle
from verification.many_seeds.verdicts import near_threshold

__all__ = ["claim_errors_on_border"]


def claim_errors_on_border(baseline, config, device):
    distances = distance_to_circle(baseline.test_points, CENTER, refnet.DISK_RADIUS)
    summary = border_summary(distances, baseline.test_wrong)
    borderline = None
    if summary["misclassified"] == 0:
        verdict = "inconclusive"
    else:
        within = summary["within_band_misclassified"]
        verdict = "supported" if within >= BORDER_FRACTION else "not supported"
        standard_error = math.sqrt(within * (1 - within) / summary["misclassified"])
        borderline = borderline_texts(near_threshold(within, BORDER_FRACTION, standard_error),
                                      "the fraction of misclassified points near the circle")
    measured = (f"{summary['misclassified']} misclassified test points over "
                f"{len(baseline.seeds)} seeds: {summary['within_band_misclassified']:.1%} lie "
                f"within {BORDER_BAND} of the circle (all test points: "
                f"{summary['within_band_all']:.1%}); median distance "
                f"{summary['median_distance_misclassified']:.4f} against "
                f"{summary['median_distance_all']:.4f} for all points")
    figure, axes = new_figure("Claim 3: distance to the circle", "distance", "density")
    bins = np.linspace(0, float(distances.max()), 40)
    axes.hist(distances.flatten().numpy(), bins=bins, density=True, alpha=0.5,
              label="all test points")
    axes.hist(distances[baseline.test_wrong].numpy(), bins=bins, density=True, alpha=0.5,
              label="misclassified")
    axes.axvline(BORDER_BAND, color="black", linestyle="--", linewidth=0.8)
    axes.legend(fontsize=7)
    figure.tight_layout()
    return record(
        "errors_on_border", verdict=verdict, values=summary, measured=measured,
        seeds=baseline.seeds, configuration=configuration(config, device),
        borderline=borderline, preliminary=config.preliminary,
        method="distance | ‖x − c‖ − r | of each test point of the baseline run to the circle; "
               "misclassified points (argmax) against all test points, pooled over seeds",
        threshold=f"at least {BORDER_FRACTION:.0%} of the misclassified test points (pooled "
                  f"over seeds) lie within {BORDER_BAND} of the circle",
    ), figure
