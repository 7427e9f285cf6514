"""The report's claims as a ledger: each one measured over many seeds and given a verdict.

Every claim of the report becomes one record (``run_claims``): the report's own words
(``quote``) and section, what was measured (``method``), the rule that decides
(``threshold``), the numbers (``values`` and a short ``measured`` text), the seeds, the
configuration, and a ``verdict`` in ``VERDICTS``; ``sentence`` says all of it in one line.
Claim 1 (the 2.5 % / 1.9 % errors) takes its verdict from the many-seed reproduction
(``verification.many_seeds.reproduction``), which this package does not rerun
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

Rules, one module per claim, each stating its own (``config`` holds their numbers, ``rules``
the pure functions they apply, ``runs`` the training, ``records`` what the claims share,
``assembly`` the ledger of them all):

1. ``reproduction``: the report's errors, judged by the many-seed reproduction.
2. ``loss_stagnates``: the loss stagnates.
3. ``border``: the errors lie on the border of the disk.
4. ``pytorch``: the results are comparable to PyTorch's, with SGD and with Adam.
5. ``xavier``: Xavier initialisation beats std 10⁻⁶ and trains a deeper network.
6. ``dropout``: Dropout lowers over-fitting.
7. ``normalisation``: there is no need to normalise the inputs.
8. ``mse``: MSE for classification: not tested (refnet has no cross-entropy loss).

An interval strictly inside the rule's range gives "supported", one with no point inside it
"not supported", anything else "inconclusive" (``interval_verdict``).

Cost (two CPU cores): 11 batched training runs of 5000 SGD steps each (2000 in quick mode);
the default (200 seeds, 50 for the torch and deep-network runs) takes about 80 s, quick (40
and 10 seeds, 20 epochs) about 12 s. The deep network with std-10⁻⁶ weights is the slowest
run: its activations are subnormal floats.
"""

from verification.many_seeds.claims.assembly import ledger, run_claims
from verification.many_seeds.claims.config import (
    ADAM_LR,
    ALPHA,
    BORDER_BAND,
    BORDER_FRACTION,
    CLAIMS,
    DEFAULT_CONFIG,
    DROPOUT_P,
    EQUIVALENCE_MARGIN,
    HEALTHY_RATIO,
    MINIMUM_FALL,
    NON_INFERIORITY_MARGIN,
    OVERFIT_MARGIN,
    QUICK_CONFIG,
    SEED_BASE,
    STAGNATION_SMOOTHING,
    STAGNATION_TOLERANCE,
    STAGNATION_WINDOW,
    VANISHING_RATIO,
    VERDICTS,
    ClaimsConfig,
    config_for,
)
from verification.many_seeds.claims.reproduction import reproduction_claim
from verification.many_seeds.claims.rules import (
    border_summary,
    combine_verdicts,
    distance_to_circle,
    interval_borderline,
    interval_verdict,
    paired_difference,
    sign_test,
    sign_test_borderline,
    stagnation,
)
from verification.many_seeds.claims.runs import RUNS, RunSpec, train_run, train_runs

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
