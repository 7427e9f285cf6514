"""The report's literal loss pair, a negative control.

Eq. 14 is the mean L = (1/N) Σ (x_i − t_i)², whose gradient is 2(x − t)/N; eq. 15, 2(x − t),
is the gradient of the SUM Σ (x_i − t_i)². Put together (``ReportLiteralMSE``) they are not a
function and its derivative, and the same gradient check must fail with the measured gradient
N times too large (N = batch × outputs): ``check_report_literal_pair`` records that as the
EXPECTED failure ``autograd/report-literal-eq14-eq15``, and ``report_literal_ratio`` measures
the factor. The reference is ``F.mse_loss`` in float64 differentiated by autograd; the rtol
is a loss gradient's (``formulas.py``), ``atol = rtol·max|expected|``.
"""

import torch

from verification.checks.compare import compare
from verification.checks.loss.evaluation import LossPass, protocol_pass
from verification.checks.loss.formulas import KIND, loss_rtol, torch_mse
from verification.checks.reference import EXACT_ATOL

__all__ = ["REPORT_LITERAL_ID", "ReportLiteralMSE", "check_report_literal_pair",
           "report_literal_ratio"]


REPORT_LITERAL_ID = "autograd/report-literal-eq14-eq15"


class ReportLiteralMSE:
    """The report's loss as printed: forward eq. 14 (the mean), backward eq. 15 (2(x − t)).

    Inconsistent on purpose: 2(x − t) is the gradient of Σ (x − t)², not of its mean, so
    ``backward`` returns N times dL/dx (N = batch × outputs). Kept only as the negative control
    of ``check_report_literal_pair``; refnet's ``MSELoss`` pairs each forward with its own
    gradient. Predictions are [batch, outputs].
    """

    reduction = "mean"

    def __init__(self):
        self._difference = None

    def forward(self, prediction, target):
        """Eq. 14: ``(1/N) Σ (x_i − t_i)²``, a 0-d tensor."""
        self._difference = prediction - target
        return self._difference.square().mean()

    def backward(self):
        """Eq. 15: ``2 (x − t)``, shaped like the prediction."""
        return 2 * self._difference

    def __repr__(self):
        return "ReportLiteralMSE(forward=eq. 14, backward=eq. 15)"


def _compare(check_id, module, what, expected, got, rtol, context):
    """``compare`` with ``rtol`` and ``atol = rtol``·max|expected|."""
    scale = float(expected.detach().abs().max()) if expected.numel() else 0.0
    return compare(check_id=check_id, module=module, kind=KIND, expected=expected, got=got,
                   atol=max(rtol * scale, EXACT_ATOL), rtol=rtol, what=what, context=context)


def _gradient_result(check_id, module, expected, got, rtol, context):
    """The gradient step of the report pair."""
    return _compare(check_id, module, "dL/dprediction", expected, got, rtol, context)


def _describe_inputs(prediction):
    return f"prediction {list(prediction.shape)} {prediction.dtype}"


def _autograd_pass(prediction, target, reduction):
    """The reference of the report pair: ``F.mse_loss`` in float64, differentiated by autograd."""
    with torch.enable_grad():
        prediction = prediction.detach().to(torch.float64).requires_grad_()
        value = torch_mse(prediction, target.detach().to(torch.float64), reduction)
        value.sum().backward()
    return LossPass(value.detach(), prediction.grad)


def _report_literal_passes(prediction, target):
    """(eq. 15 as computed by ``ReportLiteralMSE``, autograd's gradient of eq. 14)."""
    got = protocol_pass(ReportLiteralMSE(), prediction, target)
    return got, _autograd_pass(prediction, target, "mean")


def _least_squares_ratio(got, expected):
    """The c minimising ‖got − c·expected‖: the factor by which ``got`` over-scales."""
    return float((got * expected).sum() / (expected * expected).sum())


def report_literal_ratio(prediction, target):
    """How many times eq. 15 exceeds the true gradient of eq. 14: N = batch × outputs.

    Args:
        prediction: [batch, outputs], not equal to ``target`` everywhere.
        target: same shape.

    Returns:
        The measured factor (least squares over all elements), N up to round-off.
    """
    got, expected = _report_literal_passes(prediction, target)
    return _least_squares_ratio(got.gradient.to(torch.float64), expected.gradient)


def check_report_literal_pair(prediction, target):
    """The report's eq. 14 with eq. 15 through the loss gradient check: EXPECTED to FAIL.

    Eq. 15 is the gradient of the sum, eq. 14 the mean; the check's detail states the measured
    ratio, which is the element count N = batch × outputs.

    Args:
        prediction: [batch, outputs], not equal to ``target`` everywhere.
        target: same shape.

    Returns:
        The ``CheckResult`` ``autograd/report-literal-eq14-eq15``; ``passed`` is False exactly
        when the pair is inconsistent, which it is for N > 1.
    """
    got, expected = _report_literal_passes(prediction, target)
    elements = prediction.numel()
    ratio = _least_squares_ratio(got.gradient.to(torch.float64), expected.gradient)
    context = (f"{_describe_inputs(prediction)}; EXPECTED to fail: eq. 15, 2(x − t), is the "
               f"gradient of the sum, eq. 14 the mean over N = {elements} elements; measured "
               f"ratio eq. 15 / dL/dx = {ratio:.6g} (N = {elements})")
    rtol = loss_rtol(prediction, got.gradient)
    return _gradient_result(REPORT_LITERAL_ID, repr(ReportLiteralMSE()), expected.gradient,
                            got.gradient, rtol, context)
