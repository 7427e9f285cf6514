"""Claim 5, Xavier beats std 10⁻⁶: Xavier's test errors are lower (one-sided sign test,
``ALPHA``) in the report's network and in a deeper one, the 10⁻⁶ init's first-layer gradient
is below ``VANISHING_RATIO`` of Xavier's, and Xavier's first-layer gradient in the deep
network is at least ``HEALTHY_RATIO`` of its last layer's."""

import numpy as np

from verification.many_seeds.claims.config import (
    ALPHA,
    HEALTHY_RATIO,
    REPORT_HIDDEN_LAYERS,
    VANISHING_RATIO,
)
from verification.many_seeds.claims.records import configuration, first, new_figure, record
from verification.many_seeds.claims.rules import sign_test, sign_test_borderline
from verification.many_seeds.claims.runs import initial_gradient_norms
from verification.many_seeds.verdicts import BORDERLINE_SE

__all__ = ["claim_xavier_initialisation"]


def claim_xavier_initialisation(runs, config, device):
    baseline, normal = runs["baseline"], runs["normal"]
    seeds, deep_seeds = baseline.seeds, config.seed_list(config.paired_seeds)
    depth = config.deep_hidden_layers
    deep = {init: runs[f"deep_{init}"] for init in ("xavier", "normal")}
    gradients = {(layers, init): initial_gradient_norms(seeds, config, device, init=init,
                                                        hidden_layers=layers)
                 for layers in (REPORT_HIDDEN_LAYERS, depth) for init in ("xavier", "normal")}
    tests = {"report": sign_test(baseline.test_errors, normal.test_errors),
             "deep": sign_test(deep["xavier"].test_errors, deep["normal"].test_errors)}
    first_layer_ratio = gradients[depth, "normal"][0] / gradients[depth, "xavier"][0]
    xavier_first_to_last = gradients[depth, "xavier"][0] / gradients[depth, "xavier"][-1]
    holds = [tests["report"]["p_value"] < ALPHA, tests["deep"]["p_value"] < ALPHA,
             first_layer_ratio < VANISHING_RATIO, xavier_first_to_last >= HEALTHY_RATIO]
    near = first(*({**shifted, "network": name} for name, test in tests.items()
                   if (shifted := sign_test_borderline(test)) is not None))
    borderline = None if near is None else {
        **near, "what": f"the sign test in the {near['network']} network ({near['wins']} wins "
                        f"of {near['trials']})",
        "closeness": f"would give p = {near['p_value']:.2g} if {near['shift']:.1f} wins "
                     f"({BORDERLINE_SE:g} binomial standard errors) moved"}
    values = {
        "median_test_error_xavier": float(np.median(baseline.test_errors)),
        "median_test_error_normal": float(np.median(normal.test_errors)),
        "median_test_error_deep_xavier": float(np.median(deep["xavier"].test_errors)),
        "median_test_error_deep_normal": float(np.median(deep["normal"].test_errors)),
        **{f"sign_test_{name}_{key}": value for name, test in tests.items()
           for key, value in test.items()},
        "deep_first_layer_gradient_ratio_normal_to_xavier": first_layer_ratio,
        "deep_xavier_first_to_last_layer_gradient": xavier_first_to_last,
        **{f"gradient_norms_{layers}_hidden_{init}": norms
           for (layers, init), norms in gradients.items()},
    }
    measured = (f"median test error Xavier {values['median_test_error_xavier']:.2%} vs std 1e-6 "
                f"{values['median_test_error_normal']:.2%} ({len(seeds)} seeds, sign test p = "
                f"{tests['report']['p_value']:.2g}); with {depth} hidden layers "
                f"{values['median_test_error_deep_xavier']:.2%} vs "
                f"{values['median_test_error_deep_normal']:.2%} ({len(deep_seeds)} seeds, p = "
                f"{tests['deep']['p_value']:.2g}); at initialisation the deep network's "
                f"first-layer gradient under std 1e-6 is {first_layer_ratio:.1e} of Xavier's, "
                f"and Xavier's first layer gets {xavier_first_to_last:.2f} of its last "
                f"layer's gradient")
    figure, axes = new_figure("Claim 5: weight-gradient norm at initialisation", "layer",
                              "median norm")
    for (layers, init), norms in gradients.items():
        axes.plot(range(1, len(norms) + 1), norms, marker=".",
                  label=f"{layers} hidden, {init}")
    axes.set_yscale("log")
    axes.legend(fontsize=6)
    figure.tight_layout()
    return record(
        "xavier_initialisation", verdict="supported" if all(holds) else "not supported",
        borderline=borderline, preliminary=config.preliminary,
        values=values, measured=measured, seeds=seeds,
        configuration=configuration(config, device, compared_init="normal, std 1e-6",
                                     deep_hidden_layers=depth, deep_seeds=len(deep_seeds)),
        method="paired runs from the same data and batch orders with Xavier and std-1e-6 "
               "weights, in the report's network and in a deep one; per-layer norms of the "
               "float64 full-batch weight gradient at initialisation, median over seeds",
        threshold=f"Xavier's test errors lower (one-sided sign test p < {ALPHA}) in both "
                  f"networks, the deep network's first-layer gradient under std 1e-6 below "
                  f"{VANISHING_RATIO:g} of Xavier's, and Xavier's first-layer gradient at least "
                  f"{HEALTHY_RATIO:g} of its last layer's",
    ), figure
