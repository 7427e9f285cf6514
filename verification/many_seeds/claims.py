"""The report's claims as a ledger: each one measured over many seeds and given a verdict.

Every claim of the report becomes one record (``run_claims``): the report's own words
(``quote``) and section, what was measured (``method``), the rule that decides
(``threshold``), the numbers (``values`` and a short ``measured`` text), the seeds, the
configuration, and a ``verdict`` in ``VERDICTS``; ``sentence`` says all of it in one line.
Claim 1 (the 2.5 % / 1.9 % errors) takes its verdict from the many-seed reproduction
(``verification.many_seeds.reproduction``), which this module does not rerun
(``reproduction_claim``).

Paired runs. Every run uses the refnet ``train`` defaults (``refnet.training.TRAIN_DEFAULTS``:
ReLU hidden layers, SGD with lr 0.01 on the summed MSE, batch 10, 50 epochs, disk centre
(0, 0), 1000 training and 1000 test points, Xavier weights, float32) and changes one factor
when a claim needs it. Seed s draws from one generator, in this order, the weights, the
training set, the test set and one batch order per epoch (the order of
``refnet train --seed s``), so runs on the same seeds are paired: the Dropout,
standardised-input and torch runs start from the baseline's very weights, data and batch
orders, and the per-seed difference isolates the factor changed. R seeds train as one
batched refnet run (``replicas=R``). Seeds are ``SEED_BASE + i``, disjoint from the
reproduction's.

Rules (the constants below hold their numbers):

2. Loss stagnates: on the median loss curve over seeds, the 5-epoch mean loss changes by
   less than ``STAGNATION_TOLERANCE`` over the last ``STAGNATION_WINDOW`` epochs, after
   falling by more than ``MINIMUM_FALL`` from epoch 1.
3. Errors on the border: at least ``BORDER_FRACTION`` of the misclassified test points,
   pooled over seeds, lie within ``BORDER_BAND`` of the circle.
4. Comparable to PyTorch: the 95 % bootstrap interval of the mean paired (refnet − torch)
   test-error difference lies within ±``EQUIVALENCE_MARGIN``, for SGD and for Adam.
5. Xavier beats std 10⁻⁶: Xavier's test errors are lower (one-sided sign test, ``ALPHA``)
   in the report's network and in a deeper one, the 10⁻⁶ init's first-layer gradient is
   below ``VANISHING_RATIO`` of Xavier's, and Xavier's first-layer gradient in the deep
   network is at least ``HEALTHY_RATIO`` of its last layer's.
6. Dropout lowers over-fitting: where the network over-fits (the interval of its mean
   test − train gap lies above ``OVERFIT_MARGIN``), the interval of the mean paired gap
   reduction lies above 0. Measured on the report's task and on a small training set.
7. No need to normalise: the interval of the mean paired (raw − standardised) test-error
   difference lies below ``NON_INFERIORITY_MARGIN``.
8. MSE for classification: not tested (refnet has no cross-entropy loss).

An interval strictly inside the rule's range gives "supported", one with no point inside it
"not supported", anything else "inconclusive" (``interval_verdict``).

Cost (two CPU cores): 11 batched training runs of 5000 SGD steps each (2000 in quick mode);
the default (200 seeds, 50 for the torch and deep-network runs) takes about 80 s, quick (40
and 10 seeds, 20 epochs) about 12 s. The deep network with std-10⁻⁶ weights is the slowest
run: its activations are subnormal floats.
"""

import math
from dataclasses import dataclass

import numpy as np
import torch
from matplotlib.figure import Figure
from scipy import stats

import refnet
from refnet.network import ACTIVATIONS
from refnet.training import TRAIN_DEFAULTS
from verification.many_seeds.seed_draws import draw_seeds
from verification.many_seeds.statistics import bootstrap_interval
from verification.many_seeds.torch_training import predict_torch, torch_network, train_torch
from verification.many_seeds.verdicts import (
    BORDERLINE_SE,
    interval_standard_error,
    label,
    near_threshold,
)
from verification.many_seeds.workers import Workers

__all__ = [
    "VERDICTS", "CLAIMS", "SEED_BASE", "ADAM_LR", "DROPOUT_P", "ALPHA", "STAGNATION_WINDOW",
    "STAGNATION_SMOOTHING", "STAGNATION_TOLERANCE", "MINIMUM_FALL", "BORDER_BAND",
    "BORDER_FRACTION", "EQUIVALENCE_MARGIN", "NON_INFERIORITY_MARGIN", "OVERFIT_MARGIN",
    "VANISHING_RATIO", "HEALTHY_RATIO", "RunSpec", "RUNS", "ClaimsConfig", "DEFAULT_CONFIG",
    "QUICK_CONFIG", "config_for", "stagnation", "distance_to_circle", "border_summary",
    "paired_difference", "interval_verdict", "interval_borderline", "combine_verdicts",
    "sign_test", "sign_test_borderline", "reproduction_claim", "train_run", "train_runs",
    "ledger", "run_claims",
]

VERDICTS = ("supported", "not supported", "inconclusive")
CLAIMS = {
    "headline_errors": (
        1, "§3 Results",
        "The training and test errors obtained with the neural network with the architecture "
        "shown in Figure 1 were respectively of 2.5% and 1.9%."),
    "loss_stagnates": (
        2, "§4 Discussion, Figure 2",
        "The trend was as expected, in fact the loss diminished until reaching a stagnating "
        "point."),
    "errors_on_border": (
        3, "§4 Discussion, Figure 3",
        "As expected, it turned out that these points lied on the border of the disk, which is "
        "the most critical region."),
    "comparable_to_pytorch": (
        4, "§4 Discussion",
        "Even if not shown in this report, the found results were validated by comparing them "
        "to the Pytorch Neural Network frame by using both the SGD and the Adam optimizer and "
        "the results were quite comparable."),
    "xavier_initialisation": (
        5, "§2.7.1 Xavier initialization",
        "However, it has been shown [2] that a more accurate weights initialization could be "
        "achieved by using the so-called Xavier initialization. This allows to train deeper "
        "networks avoiding the problem of the vanishing gradient."),
    "dropout_overfitting": (
        6, "§2.7.2 Dropout",
        "The dropout is another common strategy used to allow the training of deeper network "
        "by decreasing the risk of over-fitting."),
    "no_normalisation": (
        7, "§1 Introduction and Dataset",
        "Notice that, because of the particular values chosen for the generation of our "
        "dataset, there was no need to normalize the data, since every point lied in the same "
        "range, being [0,1]."),
    "mse_for_classification": (
        8, "§2.3 Loss function",
        "Even if the final goal of this Mini-Project was to perform a classification (whether "
        "the point is inside or not the disk with the given radius), the mean-squared loss "
        "(MSE), a classical loss function used in the case of regression task, was "
        "implemented and used."),
}
"""Claim id → (number, section, the report's exact words; ``$…$`` maths written plainly)."""

SEED_BASE = 3_000_000
"""Claim seeds are ``SEED_BASE + i``; the reproduction uses 1 000 000 and 2 000 000 on."""
ACTIVATION, LR, BATCH_SIZE = (TRAIN_DEFAULTS[key] for key in ("activation", "lr", "batch_size"))
CENTER = TRAIN_DEFAULTS["center"]
HIDDEN_WIDTH, REPORT_HIDDEN_LAYERS = 25, 3
ADAM_LR = 1e-3
"""Adam's rate on both sides of claim 4: torch's default (the report gives none)."""
DROPOUT_P = 0.2
"""Dropout probability after every hidden activation (the report gives none)."""
DROPOUT_SEED = 0
"""Seed of the one generator that draws every Dropout mask of a run."""
BOOTSTRAP_SEED = 0
ALPHA = 0.05
STAGNATION_WINDOW, STAGNATION_SMOOTHING, STAGNATION_TOLERANCE, MINIMUM_FALL = 10, 5, 0.05, 0.5
BORDER_BAND, BORDER_FRACTION = 0.05, 0.9
EQUIVALENCE_MARGIN = NON_INFERIORITY_MARGIN = OVERFIT_MARGIN = 0.005
"""Half a percentage point, about one binomial standard error of a 2.5 % rate on 1000 points."""
VANISHING_RATIO, HEALTHY_RATIO = 1e-3, 1e-2


@dataclass(frozen=True)
class ClaimsConfig:
    """How much to measure.

    Attributes:
        seeds: seeds of the main runs (claims 2, 3, 5, 6, 7, 8), all paired.
        paired_seeds: the first ``paired_seeds`` of those, for the torch runs (claim 4) and
            the deep network (claim 5).
        epochs: epochs of every run on the full training set.
        samples: points in each training and test set.
        small_samples: claim 6's small training set, trained for
            ``epochs · samples / small_samples`` epochs (the same number of SGD steps).
        deep_hidden_layers: hidden layers of claim 5's deeper network.
        preliminary: a reduced run, whose verdicts the full run could overturn: every label
            says "preliminary" (``verification.many_seeds.verdicts``).
        dtype: ``"float32"`` (the report's precision) or ``"float64"`` for every training
            run, the perturbation of ``verification.many_seeds.perturbation``.
    """

    seeds: int = 200
    paired_seeds: int = 50
    epochs: int = 50
    samples: int = 1000
    small_samples: int = 100
    deep_hidden_layers: int = 8
    preliminary: bool = False
    dtype: str = "float32"

    def __post_init__(self):
        if not 2 <= self.paired_seeds <= self.seeds:
            raise ValueError(f"ClaimsConfig: need 2 <= paired_seeds <= seeds, got "
                             f"paired_seeds={self.paired_seeds}, seeds={self.seeds}")
        if self.epochs < STAGNATION_WINDOW + STAGNATION_SMOOTHING:
            raise ValueError(f"ClaimsConfig: the stagnation rule needs at least "
                             f"{STAGNATION_WINDOW + STAGNATION_SMOOTHING} epochs, got "
                             f"{self.epochs}")

    def seed_list(self, count):
        """The first ``count`` claim seeds, as ints."""
        return list(range(SEED_BASE, SEED_BASE + count))

    @property
    def small_epochs(self):
        """Epochs on the small training set: as many SGD steps as a full run."""
        return max(1, self.epochs * self.samples // self.small_samples)


DEFAULT_CONFIG = ClaimsConfig()
QUICK_CONFIG = ClaimsConfig(seeds=40, paired_seeds=10, epochs=20, preliminary=True)
"""Quick mode: 40 seeds instead of 200, 10 instead of 50, and 20 epochs instead of 50 (so
claim 2 looks at a shorter curve than the report's Figure 2, and every network is less
trained: a verdict can differ from the default's, as claim 7's does)."""


def config_for(*, quick=False):
    """``QUICK_CONFIG`` with ``quick``, else ``DEFAULT_CONFIG``."""
    return QUICK_CONFIG if quick else DEFAULT_CONFIG


# --- pure rules -----------------------------------------------------------------------------


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


# --- batched training -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Run:
    """One batched run's outcome, per seed (R seeds; N test points).

    Attributes:
        seeds: the R seeds.
        epoch_losses: float array epochs × R of summed epoch losses.
        train_errors: float array of R training error rates.
        test_errors: float array of R test error rates.
        test_points: R × N × 2 CPU tensor of the (raw) test points.
        test_wrong: R × N CPU bool tensor, True where a test point is misclassified.
    """

    seeds: list
    epoch_losses: np.ndarray
    train_errors: np.ndarray
    test_errors: np.ndarray
    test_points: torch.Tensor
    test_wrong: torch.Tensor


def _draw(seeds, config, device, *, init="xavier", hidden_layers=REPORT_HIDDEN_LAYERS,
          train_samples=None, dtype=None):
    """Network, training set and test set of each seed, in the single-run order, in
    ``dtype`` (the config's when ``None``)."""
    dtype = getattr(torch, config.dtype) if dtype is None else dtype
    return draw_seeds(seeds, activation=ACTIVATION, center=CENTER,
                      train_samples=train_samples or config.samples,
                      held_out_samples=config.samples, init=init,
                      sizes=(2, *(HIDDEN_WIDTH,) * hidden_layers, 2), dtype=dtype,
                      device=device)


def _outcome(seeds, epoch_losses, predict, draws):
    """A ``_Run`` from the epoch losses and a ``predict(x) -> labels`` of the trained nets."""
    rates = [(predict(x) != labels).double().mean(dim=-1).cpu().numpy()
             for x, labels in (draws.train_set, draws.held_out_set)]
    x_test, labels_test = draws.held_out_set
    losses = np.asarray(epoch_losses, dtype=np.float64).reshape(len(epoch_losses), len(seeds))
    return _Run(list(seeds), losses, *rates, x_test.cpu(), (predict(x_test) != labels_test).cpu())


def _with_dropout(model, p):
    """The same layers with ``Dropout(p)`` after every hidden activation (one mask generator)."""
    generator = torch.Generator().manual_seed(DROPOUT_SEED)
    modules = []
    for module in model.modules:
        modules.append(module)
        if isinstance(module, ACTIVATIONS[ACTIVATION]):
            modules.append(refnet.Dropout(p, generator=generator))
    return refnet.Sequential(*modules)


def _standardiser(x):
    """``points ↦ (points − mean) / std`` with the per-seed, per-feature statistics of ``x``."""
    mean, std = x.mean(dim=-2, keepdim=True), x.std(dim=-2, keepdim=True)
    return lambda points: (points - mean) / std


_REFNET_OPTIMIZERS = {"sgd": lambda params: refnet.SGD(params, LR),
                      "adam": lambda params: refnet.Adam(params, lr=ADAM_LR)}
_TORCH_OPTIMIZERS = {"sgd": lambda params: torch.optim.SGD(params, lr=LR),
                     "adam": lambda params: torch.optim.Adam(params, lr=ADAM_LR)}


def _train_refnet(draws, seeds, *, epochs, optimizer="sgd", dropout=0.0, standardise=False):
    """Train the drawn networks with refnet; optionally with Dropout or standardised inputs."""
    model = _with_dropout(draws.model, dropout) if dropout else draws.model
    x, labels = draws.train_set
    scale = _standardiser(x) if standardise else (lambda points: points)
    losses = refnet.train(model, scale(x), refnet.one_hot(labels, dtype=x.dtype),
                          batch_size=BATCH_SIZE, epochs=epochs,
                          optimizer=_REFNET_OPTIMIZERS[optimizer](model.param()),
                          generator=draws.generators)
    return _outcome(seeds, losses, lambda points: refnet.predict(model, scale(points)), draws)


def _train_torch(draws, seeds, *, epochs, optimizer):
    """Train the drawn networks with torch.autograd and torch.optim on refnet's batch orders."""
    network = torch_network(draws.model)
    x, labels = draws.train_set
    epoch_losses = train_torch(network, x, refnet.one_hot(labels, dtype=x.dtype),
                               draws.generators,
                               optimizer=_TORCH_OPTIMIZERS[optimizer](network.parameters()),
                               batch_size=BATCH_SIZE, epochs=epochs)
    return _outcome(seeds, epoch_losses, lambda points: predict_torch(network, points), draws)


@dataclass(frozen=True)
class RunSpec:
    """One batched training run of the ledger: the baseline with one factor changed.

    Attributes:
        label: what the progress display calls it.
        framework: ``"refnet"`` or ``"torch"`` (torch.nn + autograd + torch.optim).
        paired_only: train only the first ``paired_seeds`` seeds instead of all ``seeds``.
        init: ``"xavier"`` or ``"normal"`` (std 10⁻⁶).
        deep: ``deep_hidden_layers`` hidden layers instead of the report's 3.
        small: ``small_samples`` training points for ``small_epochs`` epochs.
        optimizer: ``"sgd"`` or ``"adam"``.
        dropout: Dropout probability after every hidden activation (0: none).
        standardise: standardise the inputs with each training set's mean and std.
    """

    label: str
    framework: str = "refnet"
    paired_only: bool = False
    init: str = "xavier"
    deep: bool = False
    small: bool = False
    optimizer: str = "sgd"
    dropout: float = 0.0
    standardise: bool = False


RUNS = {
    "baseline": RunSpec("baseline"),
    "refnet_adam": RunSpec("claim 4: refnet Adam", paired_only=True, optimizer="adam"),
    "torch_sgd": RunSpec("claim 4: torch SGD", framework="torch", paired_only=True),
    "torch_adam": RunSpec("claim 4: torch Adam", framework="torch", paired_only=True,
                          optimizer="adam"),
    "normal": RunSpec("claim 5: normal init", init="normal"),
    "deep_xavier": RunSpec("claim 5: deep xavier", paired_only=True, deep=True),
    "deep_normal": RunSpec("claim 5: deep normal", paired_only=True, deep=True, init="normal"),
    "dropout": RunSpec("claim 6: Dropout", dropout=DROPOUT_P),
    "small": RunSpec("claim 6: small training set", small=True),
    "small_dropout": RunSpec("claim 6: small training set, Dropout", small=True,
                             dropout=DROPOUT_P),
    "standardised": RunSpec("claim 7: standardised inputs", standardise=True),
}
"""Every training run of ``run_claims``, by name; all start from the same seeds' draws."""


def train_run(spec, config, device="cpu"):
    """Draw the seeds of ``spec`` and train them as one batched run; a ``_Run``.

    A module-level function of picklable arguments, so that a ``Workers`` pool can run it."""
    seeds = config.seed_list(config.paired_seeds if spec.paired_only else config.seeds)
    draws = _draw(seeds, config, device, init=spec.init,
                  hidden_layers=config.deep_hidden_layers if spec.deep else REPORT_HIDDEN_LAYERS,
                  train_samples=config.small_samples if spec.small else None)
    epochs = config.small_epochs if spec.small else config.epochs
    if spec.framework == "torch":
        return _train_torch(draws, seeds, epochs=epochs, optimizer=spec.optimizer)
    return _train_refnet(draws, seeds, epochs=epochs, optimizer=spec.optimizer,
                         dropout=spec.dropout, standardise=spec.standardise)


def train_runs(config, device="cpu", *, workers=None, progress=None):
    """Every run of ``RUNS``, side by side on ``workers`` (one after the other without).

    Args:
        config: a ``ClaimsConfig``.
        device: where the runs train.
        workers: a ``Workers`` pool, or ``None`` to train in this process.
        progress: optional ``progress(done, total, label)``, called before and after each
            run is collected (``done`` and ``total`` count runs).

    Returns:
        A dict run name → ``_Run``, the same whichever ``workers`` ran them.
    """
    workers = workers or Workers(1)
    progress = progress or (lambda done, total, label: None)
    futures = {name: workers.submit(train_run, spec, config, device)
               for name, spec in RUNS.items()}
    runs = {}
    for done, (name, future) in enumerate(futures.items()):
        progress(done, len(RUNS), RUNS[name].label)
        runs[name] = future.result()
    progress(len(RUNS), len(RUNS), "done")
    return runs


def _initial_gradient_norms(seeds, config, device, *, init, hidden_layers):
    """Median over seeds of each layer's weight-gradient norm at initialisation (float64).

    The gradient is that of the summed MSE over the whole training set, before any step.

    Returns:
        A list of floats, one per Linear layer from input to output.
    """
    draws = _draw(seeds, config, device, init=init, hidden_layers=hidden_layers,
                  dtype=torch.float64)
    x, labels = draws.train_set
    loss = refnet.MSELoss(reduction="sum")
    model = draws.model.train()
    model.zero_grad()
    loss.forward(model.forward(x), refnet.one_hot(labels, dtype=x.dtype))
    model.backward(loss.backward())
    norms = [module.grad_weight.flatten(1).norm(dim=1) for module in model.modules
             if isinstance(module, refnet.Linear)]
    return [float(norm.median()) for norm in norms]


# --- records and figures --------------------------------------------------------------------


def _configuration(config, device, **changes):
    """The run's settings (``TRAIN_DEFAULTS`` and ``config``), with a claim's ``changes``."""
    return {"activation": ACTIVATION, "lr": LR, "batch_size": BATCH_SIZE,
            "epochs": config.epochs, "center": [float(c) for c in CENTER],
            "samples": config.samples, "hidden_layers": REPORT_HIDDEN_LAYERS,
            "hidden_width": HIDDEN_WIDTH, "init": "xavier", "optimizer": "SGD",
            "loss": "MSELoss(reduction='sum')", "dtype": config.dtype, "device": str(device),
            **changes}


def _record(claim_id, *, method, threshold, values, measured, verdict, seeds, configuration,
            borderline=None, preliminary=False):
    """One ledger entry; ``sentence`` joins label, measurement and rule in one line.

    ``verdict`` is this run's outcome of the rule; ``label`` is what is printed, the same on
    every machine: "borderline" when ``borderline`` (a ``near_threshold`` detail with a
    ``what`` text) is given, prefixed "preliminary: " for a reduced run."""
    number, section, quote = CLAIMS[claim_id]
    shown = label(verdict, borderline=borderline is not None, preliminary=preliminary)
    note = ""
    if borderline is not None:
        note = (f" Borderline: {verdict} on this run, but {borderline['what']} "
                f"{borderline['closeness']}, so another machine may decide otherwise.")
        borderline = {key: value for key, value in borderline.items()
                      if key not in ("what", "closeness")}
    if preliminary:
        note += " Preliminary: a reduced run (fewer seeds and epochs); the full run decides."
    return {"id": claim_id, "number": number, "section": section, "quote": quote,
            "method": method, "configuration": configuration, "seeds": [int(s) for s in seeds],
            "threshold": threshold, "values": values, "measured": measured,
            "sentence": f"{shown.capitalize()}: {measured} (rule: {threshold}).{note}",
            "verdict": verdict, "label": shown, "borderline": borderline,
            "preliminary": preliminary}


def _paired_borderline(difference, name, **bounds):
    """``interval_borderline`` of a ``paired_difference``'s interval, with ``_borderline``'s
    texts."""
    near = interval_borderline(difference["ci_low"], difference["ci_high"], **bounds)
    return None if near is None else _borderline(near, f"the {name} interval's {near['end']}")


def _first(*borderlines):
    return next((item for item in borderlines if item is not None), None)


def _percentage_points(fraction):
    return f"{100 * fraction:.3f} pp"


def _borderline(near, what, show=_percentage_points):
    """A ``near_threshold`` detail (or ``None``) with the texts ``_record`` prints: ``what``
    is near, and how near, its numbers written by ``show``."""
    if near is None:
        return None
    return {**near, "what": what,
            "closeness": f"lies {show(near['distance'])} from its threshold, within "
                         f"{BORDERLINE_SE:g} standard errors (±{show(near['zone'])})"}


def _pp(fraction):
    """A fraction as signed percentage points, e.g. ``+0.125 pp``."""
    return f"{100 * fraction + 0.0:+.3f} pp"  # + 0.0 turns -0.0 into 0.0


def _interval_text(difference):
    return (f"mean {_pp(difference['mean'])} (95% CI {_pp(difference['ci_low'])} to "
            f"{_pp(difference['ci_high'])})")


def _figure(title, xlabel, ylabel):
    figure = Figure(figsize=(4, 3))
    axes = figure.subplots()
    axes.set_title(title, fontsize=8)
    axes.set_xlabel(xlabel, fontsize=8)
    axes.set_ylabel(ylabel, fontsize=8)
    axes.tick_params(labelsize=7)
    axes.grid(alpha=0.3)
    return figure, axes


def _boxes(title, ylabel, samples):
    """Box plots of named per-seed samples, in percent."""
    figure, axes = _figure(title, "", ylabel)
    axes.boxplot([100 * np.asarray(sample) for sample in samples.values()])
    axes.set_xticks(range(1, len(samples) + 1), list(samples), fontsize=7)
    figure.tight_layout()
    return figure


# --- claims ---------------------------------------------------------------------------------


def _headline(reproduction_results):
    configs = [config for config in reproduction_results["configs"] if config.get("headline")]
    if len(configs) != 1:
        raise ValueError(f"reproduction_claim: expected one headline configuration, got "
                         f"{len(configs)}")
    return configs[0]


def reproduction_claim(reproduction_results):
    """Claim 1 from the contract's ``reproduction`` object: the headline's verdict.

    Args:
        reproduction_results: ``{"seeds", "configs": [{"name", "headline", "train_error",
            "test_error", "reported", "verdict", …}], …}`` with exactly one headline.

    Returns:
        The claim record; "consistent" becomes "supported", "inconsistent" "not supported".
        ``seeds`` lists the test seeds when ``seed_ranges["test"]`` gives them, else it is
        empty and ``values["seed_count"]`` holds their number.
    """
    headline = _headline(reproduction_results)
    verdict = {"consistent": "supported", "inconsistent": "not supported"}[headline["verdict"]]
    near = headline.get("borderline")
    borderline = None if near is None else _borderline(
        near, f"the Holm-adjusted p-value of the {near['error']} error", "{:.3f}".format)
    train, test = headline["train_error"], headline["test_error"]
    reported = headline.get("reported", {"train": 0.025, "test": 0.019})
    seed_range = reproduction_results.get("seed_ranges", {}).get("test")
    values = {"seed_count": int(reproduction_results["seeds"]),
              "reported_train": reported["train"], "reported_test": reported["test"],
              **{f"{name}_{key}": float(summary[key]) for name, summary in
                 (("train", train), ("test", test)) for key in ("median", "p2_5", "p97_5")}}
    measured = (f"headline {headline['name']} over {values['seed_count']} seeds: train error "
                f"median {train['median']:.2%} (95% of seeds {train['p2_5']:.2%}–"
                f"{train['p97_5']:.2%}), test {test['median']:.2%} ({test['p2_5']:.2%}–"
                f"{test['p97_5']:.2%}); the reproduction judged the report's pair "
                f"{headline['verdict']}")
    return _record(
        "headline_errors", verdict=verdict, values=values, measured=measured,
        method="verification.many_seeds.reproduction: the headline configuration trained on "
               "many seeds; its verdict asks whether the report's single run is a plausible draw",
        threshold=reproduction_results.get("verdict_rule", "the reproduction's verdict rule"),
        seeds=range(*seed_range) if seed_range else [],
        borderline=borderline, preliminary=bool(headline.get("preliminary", False)),
        configuration={key: headline[key] for key in
                       ("name", "center", "activation", "lr", "batch_size", "epochs")
                       if key in headline})


def _missing_reproduction_claim(config, device):
    return _record(
        "headline_errors", verdict="inconclusive", values={}, seeds=[],
        measured="not measured here: run_claims was given no reproduction results",
        method="verification.many_seeds.reproduction decides this claim; pass its results to "
               "run_claims(reproduction=...) or call reproduction_claim",
        threshold="the reproduction's verdict rule", configuration=_configuration(config, device))


def _reproduction_figure(reproduction_results):
    headline = _headline(reproduction_results)
    figure, axes = _figure(f"Claim 1: {headline['name']}", "", "error (%)")
    for position, key in enumerate(("train", "test")):
        summary = headline[f"{key}_error"]
        axes.errorbar([position], [100 * summary["median"]], fmt="o", capsize=4,
                      yerr=[[100 * (summary["median"] - summary["p2_5"])],
                            [100 * (summary["p97_5"] - summary["median"])]],
                      label="median, 2.5–97.5 % of seeds" if position == 0 else None)
        axes.plot([position], [100 * headline["reported"][key]], "rx",
                  label="report" if position == 0 else None)
    axes.set_xticks([0, 1], ["train", "test"])
    axes.legend(fontsize=7)
    figure.tight_layout()
    return figure


def _stagnation_standard_error(epoch_losses, resamples=200):
    """Bootstrap standard error, over seeds, of the median curve's relative change (claim 2):
    ``resamples`` resamples of the seeds with replacement (seeded with ``BOOTSTRAP_SEED``)."""
    generator = np.random.default_rng(BOOTSTRAP_SEED)
    seeds = epoch_losses.shape[1]
    changes = [stagnation(np.median(epoch_losses[:, generator.integers(0, seeds, seeds)],
                                    axis=1))["relative_change"] for _ in range(resamples)]
    return float(np.std(changes, ddof=1))


def _claim_loss_stagnates(baseline, config, device):
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
    figure, axes = _figure("Claim 2: training loss per epoch", "epoch", "summed loss")
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
    near = _first(*(near_threshold(sign * summary["relative_change"], STAGNATION_TOLERANCE,
                                   change_se) for sign in (1, -1)))
    borderline = _borderline(near, "the median curve's relative change", "{:.2%}".format)
    return _record(
        "loss_stagnates", verdict="supported" if summary["stagnates"] else "not supported",
        values=values, measured=measured, seeds=baseline.seeds,
        configuration=_configuration(config, device), borderline=borderline,
        preliminary=config.preliminary,
        method="summed training loss per epoch of the baseline run; median over seeds per "
               "epoch; the rule on that median curve, and on each seed's curve",
        threshold=f"the {STAGNATION_SMOOTHING}-epoch mean loss changes by less than "
                  f"{STAGNATION_TOLERANCE:.0%} over the last {STAGNATION_WINDOW} epochs, after "
                  f"falling by more than {MINIMUM_FALL:.0%} from epoch 1 (median curve)",
    ), figure


def _claim_errors_on_border(baseline, config, device):
    distances = distance_to_circle(baseline.test_points, CENTER, refnet.DISK_RADIUS)
    summary = border_summary(distances, baseline.test_wrong)
    borderline = None
    if summary["misclassified"] == 0:
        verdict = "inconclusive"
    else:
        within = summary["within_band_misclassified"]
        verdict = "supported" if within >= BORDER_FRACTION else "not supported"
        standard_error = math.sqrt(within * (1 - within) / summary["misclassified"])
        borderline = _borderline(near_threshold(within, BORDER_FRACTION, standard_error),
                                    "the fraction of misclassified points near the circle")
    measured = (f"{summary['misclassified']} misclassified test points over "
                f"{len(baseline.seeds)} seeds: {summary['within_band_misclassified']:.1%} lie "
                f"within {BORDER_BAND} of the circle (all test points: "
                f"{summary['within_band_all']:.1%}); median distance "
                f"{summary['median_distance_misclassified']:.4f} against "
                f"{summary['median_distance_all']:.4f} for all points")
    figure, axes = _figure("Claim 3: distance to the circle", "distance", "density")
    bins = np.linspace(0, float(distances.max()), 40)
    axes.hist(distances.flatten().numpy(), bins=bins, density=True, alpha=0.5,
              label="all test points")
    axes.hist(distances[baseline.test_wrong].numpy(), bins=bins, density=True, alpha=0.5,
              label="misclassified")
    axes.axvline(BORDER_BAND, color="black", linestyle="--", linewidth=0.8)
    axes.legend(fontsize=7)
    figure.tight_layout()
    return _record(
        "errors_on_border", verdict=verdict, values=summary, measured=measured,
        seeds=baseline.seeds, configuration=_configuration(config, device),
        borderline=borderline, preliminary=config.preliminary,
        method="distance | ‖x − c‖ − r | of each test point of the baseline run to the circle; "
               "misclassified points (argmax) against all test points, pooled over seeds",
        threshold=f"at least {BORDER_FRACTION:.0%} of the misclassified test points (pooled "
                  f"over seeds) lie within {BORDER_BAND} of the circle",
    ), figure


def _claim_comparable_to_pytorch(runs, config, device):
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
                f"and batch order): SGD {_interval_text(comparisons['sgd'])}, "
                f"{comparisons['sgd']['identical']:.0%} of seeds identical; Adam "
                f"{_interval_text(comparisons['adam'])}, "
                f"{comparisons['adam']['identical']:.0%} identical; refnet SGD − torch Adam "
                f"(the report's cross-optimiser reading, not in the rule) "
                f"{_interval_text(comparisons['refnet_sgd_vs_torch_adam'])}")
    borderline = _first(*(_paired_borderline(comparisons[name], name.upper(),
                                                  above=-EQUIVALENCE_MARGIN,
                                                  below=EQUIVALENCE_MARGIN)
                          for name in ("sgd", "adam")))
    return _record(
        "comparable_to_pytorch", verdict=verdict, values=values, measured=measured, seeds=seeds,
        borderline=borderline, preliminary=config.preliminary,
        configuration=_configuration(config, device, adam_lr=ADAM_LR,
                                     torch="torch.nn.ReLU/Sigmoid, stacked nn.Linear weights, "
                                           "autograd, torch.optim.SGD/Adam"),
        method="refnet SGD (the baseline's first seeds) and refnet Adam against torch.autograd "
               "+ torch.optim SGD and Adam from the same initial weights, data and batch "
               "orders; paired per-seed differences of the final test error",
        threshold=f"the 95% bootstrap CI of the mean paired test-error difference lies within "
                  f"±{100 * EQUIVALENCE_MARGIN:g} pp, for SGD and for Adam",
    ), _boxes("Claim 4: test error by framework", "test error (%)",
              {name.replace("_", "\n"): errors for name, errors in test_errors.items()})


def _claim_xavier_initialisation(runs, config, device):
    baseline, normal = runs["baseline"], runs["normal"]
    seeds, deep_seeds = baseline.seeds, config.seed_list(config.paired_seeds)
    depth = config.deep_hidden_layers
    deep = {init: runs[f"deep_{init}"] for init in ("xavier", "normal")}
    gradients = {(layers, init): _initial_gradient_norms(seeds, config, device, init=init,
                                                         hidden_layers=layers)
                 for layers in (REPORT_HIDDEN_LAYERS, depth) for init in ("xavier", "normal")}
    tests = {"report": sign_test(baseline.test_errors, normal.test_errors),
             "deep": sign_test(deep["xavier"].test_errors, deep["normal"].test_errors)}
    first_layer_ratio = gradients[depth, "normal"][0] / gradients[depth, "xavier"][0]
    xavier_first_to_last = gradients[depth, "xavier"][0] / gradients[depth, "xavier"][-1]
    holds = [tests["report"]["p_value"] < ALPHA, tests["deep"]["p_value"] < ALPHA,
             first_layer_ratio < VANISHING_RATIO, xavier_first_to_last >= HEALTHY_RATIO]
    near = _first(*({**shifted, "network": name} for name, test in tests.items()
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
    figure, axes = _figure("Claim 5: weight-gradient norm at initialisation", "layer",
                           "median norm")
    for (layers, init), norms in gradients.items():
        axes.plot(range(1, len(norms) + 1), norms, marker=".",
                  label=f"{layers} hidden, {init}")
    axes.set_yscale("log")
    axes.legend(fontsize=6)
    figure.tight_layout()
    return _record(
        "xavier_initialisation", verdict="supported" if all(holds) else "not supported",
        borderline=borderline, preliminary=config.preliminary,
        values=values, measured=measured, seeds=seeds,
        configuration=_configuration(config, device, compared_init="normal, std 1e-6",
                                     deep_hidden_layers=depth, deep_seeds=len(deep_seeds)),
        method="paired runs from the same data and batch orders with Xavier and std-1e-6 "
               "weights, in the report's network and in a deep one; per-layer norms of the "
               "float64 full-batch weight gradient at initialisation, median over seeds",
        threshold=f"Xavier's test errors lower (one-sided sign test p < {ALPHA}) in both "
                  f"networks, the deep network's first-layer gradient under std 1e-6 below "
                  f"{VANISHING_RATIO:g} of Xavier's, and Xavier's first-layer gradient at least "
                  f"{HEALTHY_RATIO:g} of its last layer's",
    ), figure


def _dropout_arm(plain, dropped):
    """Gap (test − train) statistics of one paired plain / Dropout pair of runs."""
    gap = plain.test_errors - plain.train_errors
    gap_dropout = dropped.test_errors - dropped.train_errors
    low, high = bootstrap_interval(gap, np.mean, seed=BOOTSTRAP_SEED)
    reduction = paired_difference(gap, gap_dropout)
    overfits = low > OVERFIT_MARGIN
    verdict = (interval_verdict(reduction["ci_low"], reduction["ci_high"], above=0.0)
               if overfits else "inconclusive")
    borderline = _first(
        _borderline(near_threshold(low, OVERFIT_MARGIN, interval_standard_error(low, high)),
                       "the gap interval's lower end"),
        _paired_borderline(reduction, "gap reduction", above=0.0) if overfits else None)
    return {"gap_mean": float(gap.mean()), "gap_ci_low": low, "gap_ci_high": high,
            "gap_mean_dropout": float(gap_dropout.mean()),
            "reduction_mean": reduction["mean"], "reduction_ci_low": reduction["ci_low"],
            "reduction_ci_high": reduction["ci_high"],
            "median_test_error": float(np.median(plain.test_errors)),
            "median_test_error_dropout": float(np.median(dropped.test_errors)),
            "overfits": overfits, "verdict": verdict, "borderline": borderline}


def _arm_text(arm, label):
    over = "over-fits" if arm["overfits"] else "does not over-fit"
    return (f"{label}: the plain network {over} (gap {_pp(arm['gap_mean'])}, 95% CI "
            f"{_pp(arm['gap_ci_low'])} to {_pp(arm['gap_ci_high'])}), Dropout changes the gap "
            f"by {_pp(-arm['reduction_mean'])} (CI {_pp(-arm['reduction_ci_high'])} to "
            f"{_pp(-arm['reduction_ci_low'])}) and the median test error from "
            f"{arm['median_test_error']:.2%} to {arm['median_test_error_dropout']:.2%}")


def _claim_dropout_overfitting(runs, config, device):
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
    figure = _boxes("Claim 6: test − train error", "gap (pp)",
                    {label: run.test_errors - run.train_errors for label, run in
                     (("1000\nplain", baseline), ("1000\nDropout", dropped),
                      (f"{config.small_samples}\nplain", small[0.0]),
                      (f"{config.small_samples}\nDropout", small[DROPOUT_P]))})
    return _record(
        "dropout_overfitting", verdict=verdict, values=values, measured=measured, seeds=seeds,
        borderline=_first(*(arm["borderline"] for arm in arms.values())),
        preliminary=config.preliminary,
        configuration=_configuration(config, device, dropout_p=DROPOUT_P,
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


def _claim_no_normalisation(runs, config, device):
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
                f"{_interval_text(difference)}; medians {values['median_test_error_raw']:.2%} "
                f"raw, {values['median_test_error_standardised']:.2%} standardised ({helps})")
    return _record(
        "no_normalisation", verdict=verdict, values=values, measured=measured, seeds=seeds,
        borderline=_paired_borderline(difference, "raw − standardised",
                                           below=NON_INFERIORITY_MARGIN),
        preliminary=config.preliminary,
        configuration=_configuration(config, device,
                                     compared="inputs standardised per feature with the "
                                              "training set's mean and std"),
        method="paired runs from the same weights, data and batch orders on raw inputs and on "
               "inputs standardised with each training set's mean and std (test points too)",
        threshold=f"the 95% CI of the mean paired (raw − standardised) test-error difference "
                  f"lies below +{100 * NON_INFERIORITY_MARGIN:g} pp (raw is not worse by more)",
    ), _boxes("Claim 7: test error", "test error (%)",
              {"raw": baseline.test_errors, "standardised": standardised.test_errors})


def _claim_mse(baseline, config, device, reproduction):
    values = {"median_train_error": float(np.median(baseline.train_errors)),
              "median_test_error": float(np.median(baseline.test_errors))}
    measured = (f"not tested; for information, MSE on one-hot targets reaches a median train "
                f"error of {values['median_train_error']:.2%} and test error of "
                f"{values['median_test_error']:.2%} over this ledger's {len(baseline.seeds)} "
                "seeds")
    if reproduction is not None:
        headline = _headline(reproduction)
        values["reproduction_median_test_error"] = float(headline["test_error"]["median"])
        measured += (f", and {values['reproduction_median_test_error']:.2%} median test error "
                     f"in the reproduction's headline ({headline['name']})")
    figure, axes = _figure("Claim 8: test error with MSE", "test error (%)", "seeds")
    axes.hist(100 * baseline.test_errors, bins=30)
    figure.tight_layout()
    return _record(
        "mse_for_classification", verdict="inconclusive", values=values, measured=measured,
        preliminary=config.preliminary,
        seeds=baseline.seeds, configuration=_configuration(config, device),
        method="not tested: refnet implements no cross-entropy loss to compare with",
        threshold="a comparison with a classification loss, which refnet cannot run",
    ), figure


def ledger(runs, config, device="cpu", reproduction=None):
    """The claims from the trained ``runs`` (``train_runs``) and the reproduction's results.

    Args:
        runs: run name → ``_Run``, every name of ``RUNS``.
        config: the ``ClaimsConfig`` the runs were trained with.
        device: where they trained (recorded in each configuration).
        reproduction: the contract's ``reproduction`` object, which decides claim 1; without
            it claim 1 is "inconclusive" (not measured here).

    Returns:
        ``(claims, figures)`` as ``run_claims`` describes.
    """
    baseline = runs["baseline"]
    measured = [
        _claim_loss_stagnates(baseline, config, device),
        _claim_errors_on_border(baseline, config, device),
        _claim_comparable_to_pytorch(runs, config, device),
        _claim_xavier_initialisation(runs, config, device),
        _claim_dropout_overfitting(runs, config, device),
        _claim_no_normalisation(runs, config, device),
        _claim_mse(baseline, config, device, reproduction),
    ]
    figures = {claim["id"]: figure for claim, figure in measured}
    if reproduction is None:
        first = _missing_reproduction_claim(config, device)
    else:
        first = reproduction_claim(reproduction)
        figures[first["id"]] = _reproduction_figure(reproduction)
    return [first, *(claim for claim, _ in measured)], figures


def run_claims(*, quick=False, device="cpu", progress=None, config=None, reproduction=None,
               workers=None):
    """Measure every claim of the report and give each a verdict (see the module docstring).

    Args:
        quick: use ``QUICK_CONFIG`` (fewer seeds and epochs) instead of ``DEFAULT_CONFIG``.
        device: where refnet and torch train; generators stay on the CPU, so the numbers
            drawn do not depend on the device.
        progress: optional ``progress(done, total, label)``, called as each of the runs of
            ``RUNS`` is collected (``done`` and ``total`` count runs).
        config: a ``ClaimsConfig`` overriding ``quick`` (tests use tiny ones).
        reproduction: the contract's ``reproduction`` object, which decides claim 1; without
            it claim 1 is "inconclusive" (not measured here).
        workers: a ``Workers`` pool to train the runs side by side; ``None``: one by one.

    Returns:
        ``(claims, figures)``: a list of JSON-serialisable claim records in the report's
        claim order (keys ``id``, ``number``, ``section``, ``quote``, ``method``,
        ``configuration``, ``seeds``, ``threshold``, ``values``, ``measured``, ``sentence``,
        ``verdict``, ``label``, ``borderline``, ``preliminary``), and a dict claim id →
        matplotlib ``Figure`` (4 × 3 in). The same call gives the same claims.
    """
    config = config or config_for(quick=quick)
    runs = train_runs(config, device, workers=workers, progress=progress)
    return ledger(runs, config, device, reproduction)
