"""The report's single result, reproduced over many seeds: 2.5 % train / 1.9 % test error.

The report trains its 2-25-25-25-2 network once (50 epochs, 1000 training and 1000 test
points) and states 2.5 % training and 1.9 % test error. One run is one draw from a
distribution over training sets, test sets, initial weights and batch orders, so this module
measures that distribution with refnet itself, one batched run (``replicas=R``) per
configuration, and asks whether the report's pair is a plausible draw from it.

Steps of ``run_reproduction``:

1. **Selection run** (``SELECTION_SEED_BASE``): every grid configuration is trained on a
   few hundred seeds, each with its own training set and a *validation* set; the headline
   configuration is chosen by ``HEADLINE_RULE`` from these numbers alone, before any test
   error exists.
2. **Test run** (``TEST_SEED_BASE``): every configuration is trained on ``seeds`` other
   seeds (≥ 1000 by default), each drawing its own network, training set, test set and
   batch order; per-seed train and test errors are summarised
   (``verification.many_seeds.statistics``) and judged by ``VERDICT_RULE``.
3. **Reference**: for the headline and the first ``reference_seeds`` test seeds, the same
   network is trained with torch.nn + torch.autograd + torch.optim.SGD from the same initial
   weights, data and batch order (``verification.many_seeds.torch_training``), and the per-seed
   differences in final errors and final epoch loss are reported.
4. **Figures** of the headline: loss across seeds, distribution of the errors with the
   report's values marked, and the classified test set of its typical (median) seed.
5. **Compatibility ranking** (``verification.many_seeds.compatibility``), a second analysis
   beside the pre-registered verdicts: every configuration ranked by how densely its seeds'
   (train, test) pairs lie around the report's pair.

Seed r of every run draws, from one ``torch.Generator`` seeded with r and in this order:
the network's weights, the training set, the held-out set (validation or test) and one batch
order per epoch: exactly the order of ``refnet train --seed r``, which reruns any seed alone.

The grid (``GRID``). Hidden activation ∈ {relu, tanh} (the report implements both and does
not say which gave its result); disk centre ∈ {(0, 0), (0.5, 0.5)} (the report's text and
the course handout, README's ambiguities table); SGD on ``MSELoss("sum")`` (eq. 15's
gradient), sigmoid output, Xavier weights, zero biases, 50 epochs. Learning rates: with the
summed loss an SGD step is lr·Σ_batch g = (lr·B)·mean g, so one epoch moves the weights by
about lr·N·mean g whatever the batch size B; lr = 0.01 with B = 10 is a step of 0.1 on the
mean gradient, the customary SGD rate, and 0.003 and 0.03 bracket it by half a decade each
side. In a 100-seed pilot, 0.001 left nearly every seed at centre (0.5, 0.5) untrained after
50 epochs, and 0.1 with B = 50 (steps of 5 on the mean gradient) collapsed most networks to a
constant class at (0.5, 0.5) and the Tanh ones at (0, 0). Batch size, which at
fixed lr changes only the gradient noise and the step count, is varied one factor at a time:
the learning-rate sweep at B = 10 (``refnet train``'s default), plus B = 50 at lr = 0.01.
16 configurations.

Eq. 14's reading (8 more configurations, names ending ``-mean``). The report writes the loss
as a mean (eq. 14) but its gradient as 2(x − t) (eq. 15), the gradient of the sum. A student
who implemented eq. 14 with its true gradient 2(x − t)/(2B) took steps 2B times smaller at
the same learning rate (20 times at B = 10). These configurations train exactly that
(``MSELoss("mean")``) at the report's centre with the same activations, learning rates and
batch sizes, so the slip is tested as a cause of the report's numbers, not only flagged.

Cost. Time is linear in (test seeds + selection seeds) × epochs × configurations: one
replica-epoch (one seed, one pass over 1000 points) costs about 1 ms at B = 10 on one core of
the project's 2-core machine, from a few hundred replicas on (below that, the fixed cost of
each step, about 0.3 ms, dominates). The configurations are independent and train side by
side on ``workers`` (one process per core). On the CPU a configuration's seeds train in
chunks of ``Settings.chunk_replicas`` (256) replicas: a chunk's working set stays in the
core's cache (1000 replicas at once cost 7–17 % more per replica-epoch) and the chunks spread
evenly over the workers. Chunking changes no number (``chunks``). On a GPU every
step is bound by kernel launches, not arithmetic, so each configuration is one run (an H200
ran the quick run in 39 s).
"""

import time
from dataclasses import dataclass
from functools import partial

import numpy as np
import torch
from matplotlib.figure import Figure

import refnet
from refnet.plots import classification_figure, loss_curve_figure
from verification.many_seeds import compatibility, statistics
from verification.many_seeds.seed_draws import draw_seeds
from verification.many_seeds.torch_training import predict_torch, torch_network, train_torch
from verification.many_seeds.verdicts import label, near_threshold, p_value_standard_error
from verification.many_seeds.workers import Workers

__all__ = [
    "REPORTED", "SAMPLES", "EPOCHS", "LOSS_REDUCTION", "INIT", "TEST_SEED_BASE",
    "SELECTION_SEED_BASE", "RELIABLE_TRAIN_ERROR", "RELIABLE_FRACTION", "ALPHA",
    "CHUNK_ALIGNMENT", "HEADLINE_RULE", "VERDICT_RULE", "TESTED", "Config", "GRID",
    "QUICK_GRID", "Settings", "settings_for", "SeedRun", "Reproduction", "run_seeds", "chunks",
    "concatenate", "select_headline", "judge", "typical_seed", "train_reference",
    "compare_with_torch", "run_reproduction",
]

REPORTED = {"train": 0.025, "test": 0.019}
"""The report's single run (section 3): training and test error, as fractions."""
SAMPLES = 1000
"""Points in each training, validation and test set (the report's 1000)."""
EPOCHS = 50
"""The report's epoch count (Figure 2)."""
LOSS_REDUCTION = "sum"
"""``MSELoss`` reduction used by ``refnet.train`` by default: eq. 15's gradient 2(x − t)."""
INIT = "xavier"
"""Weight initialisation (eq. 16); biases start at zero."""
TEST_SEED_BASE = 1_000_000
"""Test-run seeds are ``range(TEST_SEED_BASE, TEST_SEED_BASE + seeds)``."""
SELECTION_SEED_BASE = 2_000_000
"""Selection-run seeds are ``range(SELECTION_SEED_BASE, SELECTION_SEED_BASE + n)``."""
BOOTSTRAP_SEED = 0
"""Seed of the bootstrap intervals of ``verification.many_seeds.statistics.summarize``."""
RELIABLE_TRAIN_ERROR = 0.10
"""A seed has trained when its training error is at most this: below the 0.125 that the
constant classifier scores at centre (0, 0) (1/8 of the points are inside) and far below 0.5."""
RELIABLE_FRACTION = 0.95
"""A configuration trains reliably when at least this fraction of its seeds has trained."""
ALPHA = 0.05
"""Significance level of the verdict."""
CHUNK_ALIGNMENT = 32
"""Every chunk but the last holds a multiple of this many replicas (``chunks``)."""

HEADLINE_RULE = (
    "The headline configuration is fixed before any test error is computed, from a separate "
    "selection run whose seeds are disjoint from the test seeds; each selection seed draws "
    f"its own network, training set, batch order and a validation set of {SAMPLES} points. "
    "A configuration trains reliably when at least "
    f"{RELIABLE_FRACTION:.0%} of its selection seeds end with a training error of at most "
    f"{RELIABLE_TRAIN_ERROR:.0%}. Among the reliable configurations, the headline is the one "
    "with the lowest median validation error; ties go to the lower mean validation error, "
    "then to the earlier configuration in grid order. If no configuration is reliable, the "
    "same order is applied to all of them. Test errors never enter the choice."
)
"""How the headline is chosen, verbatim; ``select_headline`` implements exactly this."""
VERDICT_RULE = (
    "Consistent when both two-sided rank p-values of the report's figures (training error "
    f"{REPORTED['train']}, test error {REPORTED['test']}) within this configuration's seeds, "
    f"Holm-adjusted over the two, are at least {ALPHA}; inconsistent otherwise."
)
"""The verdict of every configuration, verbatim; ``judge`` implements exactly this."""
TESTED = (
    "The verdict tests one thing: whether the report's single run is a plausible draw from "
    "refnet's distribution of runs for this configuration, each run drawing its own training "
    "set, test set, initial weights and batch order; it does not say that the report used "
    "this configuration."
)
"""What the verdict does and does not establish, in one sentence."""


@dataclass(frozen=True)
class Config:
    """One grid point: what the report leaves open. The rest is fixed (see the module)."""

    center: tuple
    activation: str
    lr: float
    batch_size: int
    loss_reduction: str = LOSS_REDUCTION

    @property
    def name(self):
        """A short unique name, e.g. ``relu-lr0.01-b10-c0,0``, ending ``-mean`` for eq. 14's
        mean loss."""
        x, y = self.center
        suffix = "" if self.loss_reduction == LOSS_REDUCTION else f"-{self.loss_reduction}"
        return f"{self.activation}-lr{self.lr:g}-b{self.batch_size}-c{x:g},{y:g}{suffix}"


def _grid(centers, activations, sweep, loss_reduction=LOSS_REDUCTION):
    return tuple(Config(center, activation, lr, batch_size, loss_reduction)
                 for center in centers for activation in activations
                 for lr, batch_size in sweep)


_CENTERS = ((0.0, 0.0), (0.5, 0.5))
_SWEEP = ((0.003, 10), (0.01, 10), (0.03, 10), (0.01, 50))
GRID = (_grid(_CENTERS, ("relu", "tanh"), _SWEEP)
        + _grid(_CENTERS[:1], ("relu", "tanh"), _SWEEP, loss_reduction="mean"))
"""The default grid: centre × activation × (lr, batch) in ``_SWEEP`` on the summed loss (16
configurations), then eq. 14's reading at the report's centre (8 more): 24 configurations."""
QUICK_GRID = _grid(((0.0, 0.0),), ("relu", "tanh"), ((0.01, 10),))
"""The quick grid: the report's centre, both activations, ``refnet train``'s lr and batch."""


@dataclass(frozen=True)
class Settings:
    """Sizes of a reproduction run.

    Attributes:
        grid: the configurations, in grid order.
        seeds: test seeds per configuration.
        selection_seeds: selection seeds per configuration.
        reference_seeds: headline test seeds also trained with torch (the first ones).
        samples: points in each training, validation and test set.
        epochs: training epochs.
        preliminary: a reduced run whose verdicts the full run could overturn; every label
            says "preliminary" (``verification.many_seeds.verdicts``).
        dtype: ``"float32"`` (the report's precision) or ``"float64"``, the perturbation of
            ``verification.many_seeds.perturbation``.
        chunk_replicas: replicas per batched run on the CPU, a multiple of
            ``CHUNK_ALIGNMENT`` (``chunks``).
    """

    grid: tuple = GRID
    seeds: int = 1000
    selection_seeds: int = 200
    reference_seeds: int = 30
    samples: int = SAMPLES
    epochs: int = EPOCHS
    preliminary: bool = False
    dtype: str = "float32"
    chunk_replicas: int = 256

    def __post_init__(self):
        if not 1 <= self.reference_seeds <= self.seeds:
            raise ValueError(f"Settings: reference_seeds must lie in [1, seeds={self.seeds}] "
                             f"(they are the first test seeds), got {self.reference_seeds}")
        if self.chunk_replicas < 1 or self.chunk_replicas % CHUNK_ALIGNMENT:
            raise ValueError(f"Settings: chunk_replicas must be a positive multiple of "
                             f"{CHUNK_ALIGNMENT}, got {self.chunk_replicas}")

    def seed_range(self, purpose):
        """``range`` of the seeds of ``"test"``, ``"selection"`` or ``"reference"``."""
        bases = {"test": (TEST_SEED_BASE, self.seeds),
                 "selection": (SELECTION_SEED_BASE, self.selection_seeds),
                 "reference": (TEST_SEED_BASE, self.reference_seeds)}
        base, count = bases[purpose]
        return range(base, base + count)


def settings_for(*, seeds=None, quick=False):
    """The default settings (``GRID``, 1000 seeds) or the quick ones (``QUICK_GRID``, 200).

    Args:
        seeds: test seeds per configuration; 1000 by default, 200 with ``quick``.
        quick: the reduced grid and seed counts.

    Returns:
        A ``Settings``.
    """
    if quick:
        return Settings(grid=QUICK_GRID, seeds=200 if seeds is None else seeds,
                        selection_seeds=100, reference_seeds=10, preliminary=True)
    return Settings(seeds=1000 if seeds is None else seeds)


@dataclass(frozen=True)
class SeedRun:
    """Per-seed outcome of one configuration.

    Attributes:
        seeds: the S seeds, in order.
        train_errors: float array of S training errors (fractions).
        held_out_errors: float array of S validation or test errors (fractions).
        epoch_losses: float array shaped epochs × S, the summed loss of each epoch.
    """

    seeds: list
    train_errors: np.ndarray
    held_out_errors: np.ndarray
    epoch_losses: np.ndarray


@dataclass(frozen=True)
class Reproduction:
    """What ``run_reproduction`` returns.

    Attributes:
        results: the contract's ``reproduction`` object plus extra keys, JSON-serialisable.
        figures: matplotlib ``Figure``s of the headline by name: ``loss_curves``,
            ``error_distribution``, ``typical_classification``.
    """

    results: dict
    figures: dict


def _draw(config, seeds, settings, device):
    """Network, training set and held-out set of each seed (a replica axis of len(seeds))."""
    return draw_seeds(seeds, activation=config.activation, center=config.center,
                      train_samples=settings.samples, held_out_samples=settings.samples,
                      init=INIT, dtype=getattr(torch, settings.dtype), device=device)


def _error_rates(model, data_set):
    """Per-replica error rates, float array of R fractions."""
    x, labels = data_set
    return refnet.error(model, x, labels).cpu().numpy() / labels.shape[-1]


def run_seeds(config, seeds, settings, *, device="cpu"):
    """Train ``config`` once per seed, in one batched run (one replica per seed).

    Args:
        config: the configuration.
        seeds: the S seeds.
        settings: samples and epochs.
        device: where the networks and data live (generators stay on the CPU, so the
            numbers drawn do not depend on the device).

    Returns:
        A ``SeedRun``.
    """
    seeds = list(seeds)
    draws = _draw(config, seeds, settings, device)
    x, labels = draws.train_set
    targets = refnet.one_hot(labels, dtype=x.dtype)
    epoch_losses = refnet.train(draws.model, x, targets, lr=config.lr,
                                batch_size=config.batch_size, epochs=settings.epochs,
                                loss=refnet.MSELoss(config.loss_reduction),
                                generator=draws.generators)
    return SeedRun(seeds, _error_rates(draws.model, draws.train_set),
                   _error_rates(draws.model, draws.held_out_set),
                   np.asarray(epoch_losses, dtype=np.float64).reshape(settings.epochs, -1))


def chunks(seeds, settings, device="cpu"):
    """The seeds cut into consecutive runs of ``settings.chunk_replicas`` (the last one
    shorter) on the CPU, or all in one run on another device.

    Training the chunks separately gives every seed the same numbers as one run of all the
    seeds (``tests/test_reproduction.py`` checks it seed by seed). Replicas do not interact,
    and torch's element-wise kernels walk a contiguous tensor from its start in blocks of two
    vector registers (16 float32 with AVX2, 32 with AVX-512), computing only the elements
    past the last full block with scalar code, which may round differently (it does for
    ``torch.sigmoid``). A chunk that starts at a multiple of ``CHUNK_ALIGNMENT`` replicas starts
    every per-replica tensor at a block boundary, so each element falls in a vector block or
    in the scalar tail exactly as it does in the whole run. (A run of 100 seeds split as
    50 + 50 would not: the first half's last elements would move into a scalar tail.)
    """
    seeds = list(seeds)
    size = settings.chunk_replicas if torch.device(device).type == "cpu" else len(seeds)
    return [seeds[start:start + size] for start in range(0, len(seeds), max(size, 1))]


def concatenate(runs):
    """One ``SeedRun`` of consecutive chunks' runs, seeds in order."""
    return SeedRun([seed for run in runs for seed in run.seeds],
                   np.concatenate([run.train_errors for run in runs]),
                   np.concatenate([run.held_out_errors for run in runs]),
                   np.concatenate([run.epoch_losses for run in runs], axis=1))


def select_headline(selection):
    """Apply ``HEADLINE_RULE`` to the selection run; test errors are not an input.

    Args:
        selection: one pair per configuration, in grid order: (training errors, validation
            errors), each a 1-D array over that configuration's selection seeds.

    Returns:
        A dict: ``index`` of the headline in grid order, and per configuration (lists in
        grid order) ``reliable_fraction``, ``reliable``, ``validation_median`` and
        ``validation_mean``.
    """
    fractions = [float(np.mean(np.asarray(train) <= RELIABLE_TRAIN_ERROR))
                 for train, _ in selection]
    reliable = [fraction >= RELIABLE_FRACTION for fraction in fractions]
    medians = [float(np.median(validation)) for _, validation in selection]
    means = [float(np.mean(validation)) for _, validation in selection]
    candidates = [i for i, ok in enumerate(reliable) if ok] or list(range(len(selection)))
    index = min(candidates, key=lambda i: (medians[i], means[i], i))
    return {"index": index, "reliable_fraction": fractions, "reliable": reliable,
            "validation_median": medians, "validation_mean": means}


def judge(train_errors, test_errors, *, reported=REPORTED, alpha=ALPHA):
    """Place the report's figures in a configuration's distribution and apply ``VERDICT_RULE``.

    Args:
        train_errors: 1-D array of per-seed training errors (fractions).
        test_errors: 1-D array of per-seed test errors, same seeds.
        reported: the report's ``{"train": …, "test": …}``.
        alpha: significance level.

    Returns:
        A dict: ``percentile`` (fraction of seeds below the reported value, ties half),
        ``p_value`` (two-sided rank p-values), ``p_value_holm`` (Holm-adjusted over the two),
        each ``{"train": …, "test": …}``, then ``alpha``, ``verdict`` and ``borderline``
        (``None``, or the ``near_threshold`` detail of the deciding p-value and which
        ``error`` it is: ``verification.many_seeds.verdicts``).
    """
    samples = {"train": train_errors, "test": test_errors}
    percentile = {key: statistics.percentile_of(samples[key], reported[key]) for key in samples}
    p_value = {key: statistics.rank_p_value(samples[key], reported[key]) for key in samples}
    adjusted = dict(zip(p_value, statistics.holm(list(p_value.values())), strict=True))
    consistent = min(adjusted.values()) >= alpha
    return {"percentile": percentile, "p_value": p_value, "p_value_holm": adjusted,
            "alpha": alpha, "verdict": "consistent" if consistent else "inconsistent",
            "borderline": _p_value_borderline(p_value, adjusted, alpha, len(train_errors))}


def _p_value_borderline(p_value, adjusted, alpha, seeds):
    """``near_threshold`` of the deciding (smallest) Holm-adjusted p-value against ``alpha``,
    with the rank p-value's sampling standard error scaled by Holm's factor; or ``None``."""
    key = min(adjusted, key=adjusted.get)
    factor = adjusted[key] / p_value[key] if p_value[key] > 0 else 1.0
    standard_error = factor * p_value_standard_error(p_value[key], seeds)
    near = near_threshold(adjusted[key], alpha, standard_error)
    return None if near is None else {**near, "error": key}


def typical_seed(seeds, errors):
    """The seed of the (lower) median error; among equal errors, the earliest seed.

    Args:
        seeds: S seeds.
        errors: 1-D array of their S errors.

    Returns:
        ``(seed, position)``: the seed and its position in ``seeds``.
    """
    order = sorted(range(len(seeds)), key=lambda i: (errors[i], i))
    position = order[(len(order) - 1) // 2]
    return seeds[position], position


def _binomial_scale(samples):
    """The sampling standard error of each reported figure on ``samples`` points."""
    return {key: statistics.binomial_standard_error(rate, samples)
            for key, rate in REPORTED.items()}


def _config_record(config, test_run, selection, index, settings):
    """The contract's per-configuration object, plus the statistics behind its verdict."""
    summarize = partial(statistics.summarize, seed=BOOTSTRAP_SEED)
    judged = judge(test_run.train_errors, test_run.held_out_errors)
    verdict, borderline = judged.pop("verdict"), judged.pop("borderline")
    return {
        "name": config.name, "headline": index == selection["index"],
        "center": [float(c) for c in config.center], "activation": config.activation,
        "lr": config.lr, "batch_size": config.batch_size, "epochs": settings.epochs,
        "loss_reduction": config.loss_reduction, "init": INIT,
        "train_error": summarize(test_run.train_errors),
        "test_error": summarize(test_run.held_out_errors),
        "reported": dict(REPORTED), "verdict": verdict,
        "label": label(verdict, borderline=borderline is not None,
                       preliminary=settings.preliminary),
        "borderline": borderline, "preliminary": settings.preliminary, **judged,
        "binomial_se": _binomial_scale(settings.samples),
        "selection": {key: selection[key][index] for key in
                      ("reliable_fraction", "reliable", "validation_median", "validation_mean")},
        "final_loss_median": float(np.median(test_run.epoch_losses[-1])),
    }


def _torch_errors(network, data_set):
    """Per-replica error rates of the torch network, float array of R fractions."""
    x, labels = data_set
    return (predict_torch(network, x) != labels).sum(dim=-1).cpu().numpy() / labels.shape[-1]


def _differences(refnet_values, torch_values):
    """Per-seed refnet − torch differences and their summary."""
    difference = np.asarray(refnet_values, dtype=np.float64) - np.asarray(torch_values)
    return {"per_seed": [float(d) for d in difference],
            "max_abs": float(np.max(np.abs(difference))),
            "mean": float(np.mean(difference)),
            "identical_seeds": int(np.count_nonzero(difference == 0))}


def train_reference(config, settings, *, device="cpu"):
    """Train the headline's first ``reference_seeds`` test seeds again with torch.

    The torch network (``verification.many_seeds.torch_training``, float32 like refnet's run)
    starts from the very weights refnet drew for those seeds, on the same training and test
    sets, with the same batch orders; only the arithmetic differs (torch.nn activations and
    loss, torch.autograd gradients, torch.optim.SGD updates, and summation order). It needs
    only the headline, so it trains beside refnet's test run.

    Args:
        config: the headline configuration.
        settings: ``reference_seeds``, samples and epochs.
        device: where the twin trains.

    Returns:
        The torch side as a ``SeedRun`` (training and test errors, epoch losses).
    """
    seeds = list(settings.seed_range("reference"))
    draws = _draw(config, seeds, settings, device)
    network = torch_network(draws.model)
    x, labels = draws.train_set
    epoch_losses = train_torch(
        network, x, refnet.one_hot(labels, dtype=x.dtype), draws.generators,
        optimizer=torch.optim.SGD(network.parameters(), lr=config.lr),
        batch_size=config.batch_size, epochs=settings.epochs,
        reduction=config.loss_reduction)
    return SeedRun(seeds, _torch_errors(network, draws.train_set),
                   _torch_errors(network, draws.held_out_set),
                   np.asarray(epoch_losses, dtype=np.float64).reshape(settings.epochs, -1))


def compare_with_torch(torch_run, test_run, settings):
    """refnet − torch, seed by seed, on the reference seeds.

    Chaotic training dynamics amplify the two sides' round-off differences over 50 epochs, so
    per-seed errors may differ by a few points; the differences measure that.

    Args:
        torch_run: ``train_reference``'s ``SeedRun``.
        test_run: the headline's ``SeedRun`` from the test run, whose first seeds are the
            reference seeds.
        settings: the run's settings (for the dtype).

    Returns:
        A dict: ``seeds``, ``dtype``, and refnet − torch ``train_error``, ``test_error`` and
        ``final_loss`` differences (``per_seed``, ``max_abs``, ``mean``, ``identical_seeds``),
        plus ``final_loss_max_rel`` (largest |Δ loss| / torch loss).
    """
    count = len(torch_run.seeds)
    refnet_final, torch_final = test_run.epoch_losses[-1, :count], torch_run.epoch_losses[-1]
    return {
        "seeds": torch_run.seeds, "dtype": settings.dtype,
        "train_error": _differences(test_run.train_errors[:count], torch_run.train_errors),
        "test_error": _differences(test_run.held_out_errors[:count],
                                   torch_run.held_out_errors),
        "final_loss": _differences(refnet_final, torch_final),
        "final_loss_max_rel": float(np.max(np.abs(refnet_final - torch_final)
                                           / np.abs(torch_final))),
    }


def _loss_band_figure(epoch_losses, name):
    """Figure 2 over seeds: median epoch loss with its 2.5–97.5 % band (epochs × S input)."""
    low, median, high = np.quantile(epoch_losses, [0.025, 0.5, 0.975], axis=1)
    figure = loss_curve_figure([float(value) for value in median])
    axes = figure.axes[0]
    epochs = range(1, len(median) + 1)
    axes.fill_between(epochs, low, high, alpha=0.3, label="2.5–97.5 % of seeds")
    axes.lines[0].set_label("median over seeds")
    axes.set_yscale("log")
    axes.set_title(f"Training loss per epoch, {epoch_losses.shape[1]} seeds\n{name}", fontsize=9)
    axes.legend(fontsize=7)
    figure.tight_layout()
    return figure


def _error_distribution_figure(test_run, name):
    """Empirical CDFs of the training and test errors with the report's values marked."""
    figure = Figure(figsize=(8, 3.5))
    samples = {"train": test_run.train_errors, "test": test_run.held_out_errors}
    for axes, (key, errors) in zip(figure.subplots(1, 2), samples.items(), strict=True):
        ordered = np.sort(errors)
        axes.step(ordered, np.arange(1, len(ordered) + 1) / len(ordered), where="post",
                  label=f"refnet, {len(ordered)} seeds")
        axes.axvline(REPORTED[key], color="red", linestyle="--",
                     label=f"report: {REPORTED[key]}")
        axes.set_xlabel(f"{key} error (fraction)")
        axes.set_ylabel("fraction of seeds ≤ x")
        axes.set_title(f"{key} error, {name}", fontsize=9)
        axes.grid(alpha=0.3)
        axes.legend(fontsize=7, loc="lower right")
    figure.tight_layout()
    return figure


def rerun_alone(config, seed, settings, device="cpu"):
    """Train ``seed`` alone, as ``refnet train --seed`` does, and classify its test set.

    Returns:
        ``(x_test, labels_test, predicted, error)``: the test set, the predicted labels and
        the test error as a fraction.
    """
    generator = torch.Generator().manual_seed(seed)
    dtype = getattr(torch, settings.dtype)
    model = refnet.report_network(config.activation, init=INIT, generator=generator,
                                  dtype=dtype, device=device)
    x, labels = refnet.disk_dataset(settings.samples, center=config.center,
                                    generator=generator, dtype=dtype, device=device)
    x_test, labels_test = refnet.disk_dataset(settings.samples, center=config.center,
                                              generator=generator, dtype=dtype, device=device)
    refnet.train(model, x, refnet.one_hot(labels, dtype=dtype), lr=config.lr,
                 batch_size=config.batch_size, epochs=settings.epochs,
                 loss=refnet.MSELoss(config.loss_reduction), generator=generator)
    error = refnet.error(model, x_test, labels_test) / settings.samples
    return x_test.cpu(), labels_test.cpu(), refnet.predict(model, x_test).cpu(), error


def _headline_figures(config, test_run, rerun, settings):
    """The three figures of the headline and the facts about its typical seed.

    ``rerun`` is ``(seed, position, rerun_alone(...) of that seed)``."""
    seed, position, (x_test, labels_test, predicted, rerun_error) = rerun
    classified = classification_figure(x_test, labels_test, predicted, center=config.center,
                                       radius=refnet.DISK_RADIUS)
    classified.axes[0].set_title(f"Test set of seed {seed} (median test error)\n{config.name}",
                                 fontsize=9)
    classified.tight_layout()
    figures = {"loss_curves": _loss_band_figure(test_run.epoch_losses, config.name),
               "error_distribution": _error_distribution_figure(test_run, config.name),
               "typical_classification": classified}
    typical = {"seed": seed, "test_error": float(test_run.held_out_errors[position]),
               "test_error_rerun_alone": rerun_error,
               "command": _train_command(config, seed, settings)}
    return figures, typical


def _train_command(config, seed, settings):
    """The ``refnet train`` command line that reruns one seed of a configuration alone."""
    x, y = config.center
    return (f"refnet train --seed {seed} --activation {config.activation} --lr {config.lr:g} "
            f"--batch-size {config.batch_size} --epochs {settings.epochs} "
            f"--center {x:g},{y:g} --samples {settings.samples}"
            + ("" if config.loss_reduction == LOSS_REDUCTION
               else f" --reduction {config.loss_reduction}"))


class _Progress:
    """Counts replica-epochs done and forwards them to the caller's ``progress``."""

    def __init__(self, settings, callback):
        per_config = (settings.seeds + settings.selection_seeds) * settings.epochs
        self.total = per_config * len(settings.grid) + settings.reference_seeds * settings.epochs
        self.done = 0
        self.callback = callback or (lambda done, total, label: None)

    def collect(self, label, future, replica_epochs):
        """Wait for the run ``label``, count its replica-epochs and return its result."""
        self.callback(self.done, self.total, label)
        result = future.result()
        self.done += replica_epochs
        self.callback(self.done, self.total, label)
        return result


def _run_all(purpose, settings, device, workers, progress):
    """One ``SeedRun`` per configuration, in grid order, on the seeds of ``purpose``, each
    trained as ``chunks`` side by side."""
    seed_chunks = chunks(settings.seed_range(purpose), settings, device)
    futures = [[workers.submit(run_seeds, config, chunk, settings, device=device)
                for chunk in seed_chunks] for config in settings.grid]
    return [concatenate([progress.collect(f"{purpose} {config.name}", future,
                                          len(chunk) * settings.epochs)
                         for chunk, future in zip(seed_chunks, config_futures, strict=True)])
            for config, config_futures in zip(settings.grid, futures, strict=True)]


def _headline_runs(config, test_run, torch_future, settings, device, workers, progress):
    """The typical seed's rerun alone, and the comparison with the torch reference (trained
    since the headline was chosen, ``torch_future``)."""
    seed, position = typical_seed(test_run.seeds, test_run.held_out_errors)
    rerun = workers.submit(rerun_alone, config, seed, settings, device)
    torch_run = progress.collect(f"reference {config.name}", torch_future,
                                 settings.reference_seeds * settings.epochs)
    return compare_with_torch(torch_run, test_run, settings), (seed, position, rerun.result())


def _timed(elapsed, key, function, *args):
    start = time.perf_counter()
    result = function(*args)
    elapsed[key] = round(time.perf_counter() - start, 3)
    return result


def _seed_ranges(settings):
    return {purpose: [settings.seed_range(purpose).start, settings.seed_range(purpose).stop]
            for purpose in ("test", "selection", "reference")}


def run_reproduction(*, seeds=None, quick=False, device="cpu", progress=None, settings=None,
                     workers=None):
    """Reproduce the report's result over many seeds (see the module docstring for the steps).

    Args:
        seeds: test seeds per configuration (default 1000, or 200 with ``quick``).
        quick: run ``QUICK_GRID`` with fewer selection and reference seeds.
        device: where refnet and torch train (``"cpu"`` or ``"cuda"``).
        progress: optional ``progress(done, total, label)``, called before and after each
            batched run; ``done`` and ``total`` count replica-epochs (one seed trained one
            epoch) and ``label`` names the run, e.g. ``"test relu-lr0.01-b10-c0,0"``.
        settings: a ``Settings`` overriding ``seeds`` and ``quick`` (tests use tiny ones).
        workers: a ``Workers`` pool that runs the configurations side by side; ``None`` runs
            them one after the other in this process. The numbers are the same either way.

    Returns:
        A ``Reproduction``. ``results`` holds ``seeds`` and ``configs`` (the contract's keys
        per configuration plus ``percentile``, ``p_value``, ``p_value_holm``, ``alpha``,
        ``binomial_se``, ``selection``, ``final_loss_median`` and intervals inside the error
        summaries), and ``headline``, ``headline_rule``, ``verdict_rule``, ``tested``,
        ``selection``, ``reference``, ``typical_seed``, ``seed_ranges``, ``compatibility``,
        ``settings`` and ``elapsed_s``. Everything but ``elapsed_s`` is identical for
        identical settings.
    """
    settings = settings or settings_for(seeds=seeds, quick=quick)
    workers = workers or Workers(1)
    tracker = _Progress(settings, progress)
    elapsed = {}
    start = time.perf_counter()
    selection_runs = _timed(elapsed, "selection", _run_all, "selection", settings, device,
                            workers, tracker)
    selection = select_headline([(run.train_errors, run.held_out_errors)
                                 for run in selection_runs])
    headline = settings.grid[selection["index"]]
    torch_future = workers.submit(train_reference, headline, settings, device=device)
    test_runs = _timed(elapsed, "test", _run_all, "test", settings, device, workers, tracker)
    headline_run = test_runs[selection["index"]]
    reference, rerun = _timed(elapsed, "reference", _headline_runs, headline, headline_run,
                              torch_future, settings, device, workers, tracker)
    figures, typical = _timed(elapsed, "figures", _headline_figures, headline, headline_run,
                              rerun, settings)
    ranked = compatibility.rank([config.name for config in settings.grid],
                                [(run.train_errors, run.held_out_errors) for run in test_runs],
                                REPORTED)
    figures["compatibility"] = compatibility.ranking_figure(ranked["ranking"])
    configs = [_config_record(config, run, selection, index, settings)
               for index, (config, run) in enumerate(zip(settings.grid, test_runs, strict=True))]
    elapsed["total"] = round(time.perf_counter() - start, 3)
    results = {
        "seeds": settings.seeds, "configs": configs, "headline": headline.name,
        "headline_rule": HEADLINE_RULE, "verdict_rule": VERDICT_RULE, "tested": TESTED,
        "selection": {"seeds": settings.selection_seeds,
                      "names": [config.name for config in settings.grid], **selection},
        "reference": reference, "typical_seed": typical, "seed_ranges": _seed_ranges(settings),
        "compatibility": ranked,
        "settings": {"quick": quick, "samples": settings.samples, "epochs": settings.epochs,
                     "dtype": settings.dtype, "device": str(device),
                     "configurations": len(settings.grid),
                     "chunk_replicas": len(chunks(range(settings.seeds), settings, device)[0])},
        "elapsed_s": elapsed,
    }
    return Reproduction(results, figures)
