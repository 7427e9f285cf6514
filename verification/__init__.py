"""verification: checks any implementation of the EE-559 module protocol (CONTRACT.md).

The folders say what each part does: ``checks/`` compare one component with a ground truth,
``targets/`` is how an implementation plugs in (an adapter, loaded by ``load_target``),
``suite/`` runs many checks (every component of a target, refnet's registry, the mutation
self-test, benchmarks), ``many_seeds/`` holds the statistics of the reproduction and the claims,
``report/`` writes ``results.json`` and the HTML report. ``verify.py`` is ``refnet verify``.

Checking a framework runs its code with the user's permissions.
"""

from verification.checks.accumulation import check_accumulation
from verification.checks.dropout import check_dropout
from verification.checks.finite_difference import (
    assert_backward_matches,
    check_backward,
    finite_differences,
)
from verification.checks.kink import check_kink
from verification.checks.loss import (
    REPORT_LITERAL_ID,
    LossAsModule,
    ReportLiteralMSE,
    check_loss,
    check_report_literal_pair,
    measured_reduction,
    report_literal_ratio,
)
from verification.checks.optimizer import check_optimizer
from verification.checks.reference import check_against_reference, torch_twin
from verification.checks.result import CheckFailure, CheckResult
from verification.checks.side_effects import check_side_effects
from verification.checks.trajectory import check_trajectory
from verification.suite.conformance import check_target, rerun, target_cases
from verification.targets.adapter import Facts, Target, TargetError, load_target

__all__ = [
    "check_backward", "assert_backward_matches", "finite_differences", "check_kink",
    "check_against_reference", "torch_twin", "check_trajectory", "check_dropout", "check_loss",
    "LossAsModule", "measured_reduction", "check_accumulation", "check_side_effects",
    "check_optimizer", "check_report_literal_pair", "report_literal_ratio", "ReportLiteralMSE",
    "REPORT_LITERAL_ID", "CheckResult", "CheckFailure", "Target", "Facts", "TargetError",
    "load_target", "target_cases", "check_target", "rerun",
]
