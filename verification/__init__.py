"""verification: checks any module that follows refnet's module protocol (CONTRACT.md)."""

from verification.checks.dropout import check_dropout
from verification.checks.finite_difference import (
    assert_backward_matches,
    check_backward,
    finite_differences,
)
from verification.checks.kink import check_kink
from verification.checks.loss import (
    REPORT_LITERAL_ID,
    ReportLiteralMSE,
    check_loss,
    check_report_literal_pair,
    report_literal_ratio,
)
from verification.checks.reference import check_against_reference, torch_twin
from verification.checks.trajectory import check_trajectory

__all__ = [
    "check_backward", "assert_backward_matches", "finite_differences", "check_kink",
    "check_against_reference", "torch_twin", "check_trajectory", "check_dropout", "check_loss",
    "check_report_literal_pair", "report_literal_ratio", "ReportLiteralMSE", "REPORT_LITERAL_ID",
]
