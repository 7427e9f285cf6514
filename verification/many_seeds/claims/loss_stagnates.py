"""Claim 2, the loss stagnates: on the median loss curve over seeds, the 5-epoch mean loss
changes by less than ``STAGNATION_TOLERANCE`` over the last ``STAGNATION_WINDOW`` epochs,
after falling by more than ``MINIMUM_FALL`` from epoch 1 (``rules.stagnation``)."""

import numpy as np

from verification.many_seeds.claims.config import (
    BOOTSTRAP_SEED,
    MINIMUM_FALL,
    STAGNATION_SMOOTHING,
    STAGNATION_TOLERANCE,
    STAGNATION_WINDOW,
)
from verification.many_seeds.claims.records import (
    borderline_texts,
    configuration,
    first,
    new_figure,
    record,
)
from verification.many_seeds.claims.rules import stagnation
from verification.many_seeds.verdicts import near_threshold

__all__ = ["claim_loss_stagnates"]


def _stagnation_standard_error(epoch_losses, resamples=200):
    """Bootstrap standard error, over seeds, of the median curve's relative change (claim 2):
    ``resamples`` resamples of the seeds with replacement (seeded with ``BOOTSTRAP_SEED``)."""
    generator = np.random.default_rng(BOOTSTRAP_SEED)
    seeds = epoch_losses.shape[1]
    changes = [stagnation(np.median(epoch_losses[:, generator.integers(0, seeds, seeds)],
                                    axis=1))["relative_change"] for _ in range(resamples)]
    return float(np.std(changes, ddof=1))


def claim_loss_stagnates(baseline, config, device):
    median_curve = np.median(baseline.epoch_losses, axis=1)
    summary = stagnation(median_curve)
    per_seed = float(np.mean([stagnation(curve)["stagnates"]
                              for curve in baseline.epoch_losses.T]))
    epochs = config.epochs
    late = f"{epochs - STAGNATION_SMOOTHING + 1}–{epochs}"
    earlier_end = epochs - STAGNATION_WINDOW
    earlier = f"{earlier_end - STAGNATION_SMOOTHING + 1}–{earlier_end}"
    measured = (f"the median epoch loss over {len(baseline.seeds)} seeds fell "
                f"{summary['fall']:.0%} from epoch 1 to epochs {late}, and "
                f"{summary['relative_change']:.1%} from epochs {earlier} to {late} (that last "
                f"stretch is {summary['tail_share']:.1%} of the whole fall); "
                f"{per_seed:.0%} of seeds meet the rule on their own curve")
    figure, axes = new_figure("Claim 2: training loss per epoch", "epoch", "summed loss")
    x = np.arange(1, epochs + 1)
    low, high = np.quantile(baseline.epoch_losses, [0.1, 0.9], axis=1)
    axes.fill_between(x, low, high, alpha=0.3, label="10–90 % of seeds")
    axes.plot(x, median_curve, label="median over seeds")
    axes.axvspan(earlier_end - STAGNATION_SMOOTHING + 0.5, earlier_end + 0.5, color="grey",
                 alpha=0.2)
    axes.axvspan(epochs - STAGNATION_SMOOTHING + 0.5, epochs + 0.5, color="grey", alpha=0.2)
    axes.set_yscale("log")
    axes.legend(fontsize=7)
    figure.tight_layout()
    change_se = _stagnation_standard_error(baseline.epoch_losses)
    values = {**summary, "fraction_of_seeds_stagnating": per_seed,
              "relative_change_standard_error": change_se}
    near = first(*(near_threshold(sign * summary["relative_change"], STAGNATION_TOLERANCE,
                                  change_se) for sign in (1, -1)))
    borderline = borderline_texts(near, "the median curve's relative change",
                                  "{:.2%}".format)
    return record(
        "loss_stagnates", verdict="supported" if summary["stagnates"] else "not supported",
        values=values, measured=measured, seeds=baseline.seeds,
        configuration=configuration(config, device), borderline=borderline,
        preliminary=config.preliminary,
        method="summed training loss per epoch of the baseline run; median over seeds per "
               "epoch; the rule on that median curve, and on each seed's curve",
        threshold=f"the {STAGNATION_SMOOTHING}-epoch mean loss changes by less than "
                  f"{STAGNATION_TOLERANCE:.0%} over the last {STAGNATION_WINDOW} epochs, after "
                  f"falling by more than {MINIMUM_FALL:.0%} from epoch 1 (median curve)",
    ), figure
