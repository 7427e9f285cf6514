"""The ledger's numbers: the report's claims (``CLAIMS``), the rules' constants and how much
to measure (``ClaimsConfig``)."""

from dataclasses import dataclass

from refnet.training import TRAIN_DEFAULTS

__all__ = [
    "VERDICTS", "CLAIMS", "SEED_BASE", "ACTIVATION", "LR", "BATCH_SIZE", "CENTER",
    "HIDDEN_WIDTH", "REPORT_HIDDEN_LAYERS", "ADAM_LR", "DROPOUT_P", "DROPOUT_SEED",
    "BOOTSTRAP_SEED", "ALPHA", "STAGNATION_WINDOW", "STAGNATION_SMOOTHING",
    "STAGNATION_TOLERANCE", "MINIMUM_FALL", "BORDER_BAND", "BORDER_FRACTION",
    "EQUIVALENCE_MARGIN", "NON_INFERIORITY_MARGIN", "OVERFIT_MARGIN", "VANISHING_RATIO",
    "HEALTHY_RATIO", "ClaimsConfig", "DEFAULT_CONFIG", "QUICK_CONFIG", "config_for",
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
