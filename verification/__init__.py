"""verification: checks any implementation of the EE-559 module protocol (CONTRACT.md).

The folders say what each part does: ``checks/`` compare one component with a ground truth,
``targets/`` is how an implementation plugs in (an adapter, loaded by ``load_target``),
``confined/`` runs one in processes of its own (a judge and an executor),
``suite/`` runs many checks (every component of a target, refnet's registry, the mutation
self-test, benchmarks), ``many_seeds/`` holds the statistics of the reproduction and the claims,
``report/`` writes ``results.json`` and the HTML report. ``verify.py`` is ``refnet verify``.

Checking a framework runs its code with the user's permissions.

The names below are imported on first use (PEP 562), not with the package: the pytest plugin
(``verification.pytest_plugin``, loaded by every pytest run where refnet is installed) must
import nothing of refnet until ``--conform`` is given, or coverage of ``refnet/``, which
starts after plugins load, would miss its module-level lines.
"""

import importlib

_EXPORTS = {
    "check_accumulation": "verification.checks.accumulation",
    "check_dropout": "verification.checks.dropout",
    "assert_backward_matches": "verification.checks.finite_difference",
    "check_backward": "verification.checks.finite_difference",
    "finite_differences": "verification.checks.finite_difference",
    "check_kink": "verification.checks.kink",
    "REPORT_LITERAL_ID": "verification.checks.loss",
    "LossAsModule": "verification.checks.loss",
    "ReportLiteralMSE": "verification.checks.loss",
    "check_loss": "verification.checks.loss",
    "check_report_literal_pair": "verification.checks.loss",
    "measured_reduction": "verification.checks.loss",
    "measure_normalisation": "verification.checks.loss",
    "report_literal_ratio": "verification.checks.loss",
    "check_optimizer": "verification.checks.optimizer",
    "check_against_reference": "verification.checks.reference",
    "torch_twin": "verification.checks.reference",
    "CheckFailure": "verification.checks.result",
    "CheckResult": "verification.checks.result",
    "check_side_effects": "verification.checks.side_effects",
    "check_trajectory": "verification.checks.trajectory",
    "check_target": "verification.suite.conformance",
    "rerun": "verification.suite.conformance",
    "target_cases": "verification.suite.conformance",
    "planned_cases": "verification.suite.conformance",
    "Facts": "verification.targets.adapter",
    "Target": "verification.targets.adapter",
    "TargetError": "verification.targets.adapter",
    "load_target": "verification.targets.adapter",
}
"""Each public name and the module that defines it."""

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    """Import ``name`` from its module on first use (``from verification import check_loss``)."""
    if name not in _EXPORTS:
        raise AttributeError(f"module 'verification' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value
