"""Claim 4, comparable to PyTorch: the 95 % bootstrap interval of the mean paired
(refnet − torch) test-error difference lies within ±``EQUIVALENCE_MARGIN``, for SGD and for
Adam."""

import numpy as np

from verification.many_seeds.claims.config import ADAM_LR, EQUIVALENCE_MARGIN
from verification.many_seeds.claims.records import (
    boxes,
    configuration,
    first,
    interval_text,
    paired_borderline,
    record,
)
from verification.many_seeds.claims.rules import (
    combine_verdicts,
    interval_verdict,
    paired_difference,
)

__all__ = ["claim_comparable_to_pytorch"]


def claim_comparable_to_pytorch(runs, config, device):
    seeds = config.seed_list(config.paired_seeds)
    refnet_sgd = runs["baseline"].test_errors[:len(seeds)]
    refnet_adam = runs["refnet_adam"].test_errors
    torch_runs = {name: runs[f"torch_{name}"].test_errors for name in ("sgd", "adam")}
    comparisons = {"sgd": paired_difference(refnet_sgd, torch_runs["sgd"]),
                   "adam": paired_difference(refnet_adam, torch_runs["adam"]),
                   "refnet_sgd_vs_torch_adam": paired_difference(refnet_sgd, torch_runs["adam"])}
    verdict = combine_verdicts(
        interval_verdict(comparisons[name]["ci_low"], comparisons[name]["ci_high"],
                         above=-EQUIVALENCE_MARGIN, below=EQUIVALENCE_MARGIN)
        for name in ("sgd", "adam"))
    test_errors = {"refnet_sgd": refnet_sgd, "refnet_adam": refnet_adam,
                   "torch_sgd": torch_runs["sgd"], "torch_adam": torch_runs["adam"]}
    values = {f"{name}_{key}": value for name, comparison in comparisons.items()
              for key, value in comparison.items()}
    values.update({f"median_test_error_{name}": float(np.median(errors))
                   for name, errors in test_errors.items()})
    measured = (f"refnet − torch test error over {len(seeds)} paired seeds (same weights, data "
                f"and batch order): SGD {interval_text(comparisons['sgd'])}, "
                f"{comparisons['sgd']['identical']:.0%} of seeds identical; Adam "
                f"{interval_text(comparisons['adam'])}, "
                f"{comparisons['adam']['identical']:.0%} identical; refnet SGD − torch Adam "
                f"(the report's cross-optimiser reading, not in the rule) "
                f"{interval_text(comparisons['refnet_sgd_vs_torch_adam'])}")
    borderline = first(*(paired_borderline(comparisons[name], name.upper(),
                                           above=-EQUIVALENCE_MARGIN, below=EQUIVALENCE_MARGIN)
                         for name in ("sgd", "adam")))
    return record(
        "comparable_to_pytorch", verdict=verdict, values=values, measured=measured, seeds=seeds,
        borderline=borderline, preliminary=config.preliminary,
        configuration=configuration(config, device, adam_lr=ADAM_LR,
                                     torch="torch.nn.ReLU/Sigmoid, stacked nn.Linear weights, "
                                           "autograd, torch.optim.SGD/Adam"),
        method="refnet SGD (the baseline's first seeds) and refnet Adam against torch.autograd "
               "+ torch.optim SGD and Adam from the same initial weights, data and batch "
               "orders; paired per-seed differences of the final test error",
        threshold=f"the 95% bootstrap CI of the mean paired test-error difference lies within "
                  f"±{100 * EQUIVALENCE_MARGIN:g} pp, for SGD and for Adam",
    ), boxes("Claim 4: test error by framework", "test error (%)",
              {name.replace("_", "\n"): errors for name, errors in test_errors.items()})
