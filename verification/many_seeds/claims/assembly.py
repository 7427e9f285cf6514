"""The ledger: every claim's record and figure, in the report's order."""

from verification.many_seeds.claims.border import claim_errors_on_border
from verification.many_seeds.claims.config import config_for
from verification.many_seeds.claims.dropout import claim_dropout_overfitting
from verification.many_seeds.claims.loss_stagnates import claim_loss_stagnates
from verification.many_seeds.claims.mse import claim_mse
from verification.many_seeds.claims.normalisation import claim_no_normalisation
from verification.many_seeds.claims.pytorch import claim_comparable_to_pytorch
from verification.many_seeds.claims.reproduction import (
    missing_reproduction_claim,
    reproduction_claim,
    reproduction_figure,
)
from verification.many_seeds.claims.runs import train_runs
from verification.many_seeds.claims.xavier import claim_xavier_initialisation

__all__ = ["ledger", "run_claims"]


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
        claim_loss_stagnates(baseline, config, device),
        claim_errors_on_border(baseline, config, device),
        claim_comparable_to_pytorch(runs, config, device),
        claim_xavier_initialisation(runs, config, device),
        claim_dropout_overfitting(runs, config, device),
        claim_no_normalisation(runs, config, device),
        claim_mse(baseline, config, device, reproduction),
    ]
    figures = {claim["id"]: figure for claim, figure in measured}
    if reproduction is None:
        first = missing_reproduction_claim(config, device)
    else:
        first = reproduction_claim(reproduction)
        figures[first["id"]] = reproduction_figure(reproduction)
    return [first, *(claim for claim, _ in measured)], figures


def run_claims(*, quick=False, device="cpu", progress=None, config=None, reproduction=None,
               workers=None):
    """Measure every claim of the report and give each a verdict (see the package docstring).

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
