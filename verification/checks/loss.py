"""Loss checks: refnet's ``MSELoss`` against ``torch.nn.functional.mse_loss`` and autograd.

``check_loss`` compares the loss value and dL/dprediction of any object with refnet's loss
protocol (``forward(prediction, target) -> loss``, ``backward() -> dL/dprediction`` and a
``reduction`` attribute) with ``F.mse_loss`` of the same reduction, differentiated by autograd in
float64. Predictions with a replica axis give one loss per replica, as in refnet.

The tolerance is ``autograd_tolerance`` (verification/reference.py) with summation length
n = N + ``ELEMENTWISE_TERMS``, N the elements of one replica's prediction: the loss sums N
squares, and each side rounds that sum in its own order. No cancellation can occur — the
squares are all positive and each gradient element is one subtraction, rounded relative to its
result, times a constant — so Σ|terms| is the compared value itself and the scale is
max|expected|.

The report's literal pair is a negative control. Eq. 14 is the mean
L = (1/N) Σ (x_i − t_i)², whose gradient is 2(x − t)/N; eq. 15, 2(x − t), is the gradient of the
SUM Σ (x_i − t_i)². Put together (``ReportLiteralMSE``) they are not a function and its
derivative, and the same gradient check must fail with the measured gradient N times too large
(N = batch × outputs): ``check_report_literal_pair`` records that as the EXPECTED failure
``autograd/report-literal-eq14-eq15``, and ``report_literal_ratio`` measures the factor.
"""

from dataclasses import dataclass

import torch
from torch.nn import functional

from verification.checks.compare import compare
from verification.checks.reference import ELEMENTWISE_TERMS, autograd_tolerance, guarded

__all__ = [
    "REPORT_LITERAL_ID", "ReportLiteralMSE", "torch_mse", "check_loss",
    "check_report_literal_pair", "report_literal_ratio",
]

KIND = "autograd"
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


def torch_mse(prediction, target, reduction):
    """``F.mse_loss`` of one network, or of each replica.

    Args:
        prediction: [batch, outputs], or [R, batch, outputs] with replicas.
        target: same shape.
        reduction: ``"mean"`` or ``"sum"``.

    Returns:
        A 0-d tensor, or with replicas one loss per replica (shape [R]).
    """
    if prediction.ndim == 2:
        return functional.mse_loss(prediction, target, reduction=reduction)
    replicas = zip(prediction, target, strict=True)
    return torch.stack([functional.mse_loss(*replica, reduction=reduction)
                        for replica in replicas])


@dataclass(frozen=True)
class _LossPass:
    """A loss value (0-d, or [R]) and its gradient (shaped like the prediction)."""

    value: torch.Tensor
    gradient: torch.Tensor


def _protocol_pass(loss, prediction, target):
    """The loss under test, through its protocol: forward, then backward."""
    value = loss.forward(prediction, target)
    return _LossPass(value, loss.backward())


def _autograd_pass(prediction, target, reduction):
    """The reference: ``F.mse_loss`` in float64, differentiated by autograd."""
    prediction = prediction.detach().to(torch.float64).requires_grad_()
    value = torch_mse(prediction, target.detach().to(torch.float64), reduction)
    value.sum().backward()
    return _LossPass(value.detach(), prediction.grad)


def _tolerance(prediction, scale):
    """``autograd_tolerance`` with n = N + ``ELEMENTWISE_TERMS``, N one replica's elements."""
    elements = prediction.shape[-2] * prediction.shape[-1]
    return autograd_tolerance(prediction.dtype, elements + ELEMENTWISE_TERMS, scale)


def _compare(check_id, module, what, expected, got, prediction, context):
    """``compare`` under ``autograd_tolerance`` with the scale max|expected|."""
    tolerance = _tolerance(prediction, float(expected.abs().max()))
    return compare(check_id=check_id, module=module, kind=KIND, expected=expected, got=got,
                   atol=tolerance.atol, rtol=tolerance.rtol, what=what, context=context)


def _gradient_result(check_id, module, expected, got, prediction, context):
    """The gradient step of the loss check, shared by ``check_loss`` and the report pair."""
    return _compare(check_id, module, "dL/dprediction", expected.gradient, got.gradient,
                    prediction, context)


def _describe_inputs(prediction):
    return f"prediction {list(prediction.shape)} {prediction.dtype}"


def check_loss(loss, prediction, target, *, name=None):
    """Compare a loss's value and dL/dprediction with ``F.mse_loss`` and autograd.

    Steps: run the loss's forward and backward; run ``F.mse_loss`` with the same reduction
    under autograd in float64; compare the values, then the gradients.

    Args:
        loss: an object with ``forward(prediction, target)``, ``backward()`` and ``reduction``
            (``"mean"`` or ``"sum"``), e.g. ``refnet.MSELoss("sum")``.
        prediction: [batch, outputs], or [R, batch, outputs] with replicas.
        target: same shape and dtype.
        name: the loss's name in the ids; its ``repr`` when ``None``.

    Returns:
        Two ``CheckResult``s, ``autograd/<name>/loss`` and ``autograd/<name>/grad_prediction``;
        one failed ``autograd/<name>/raised`` when the loss raises.
    """
    name = repr(loss) if name is None else name
    return guarded(f"{KIND}/{name}/raised", name, KIND,
                   lambda: _check_loss(loss, prediction, target, name))


def _check_loss(loss, prediction, target, name):
    """The steps of ``check_loss``."""
    got = _protocol_pass(loss, prediction, target)
    expected = _autograd_pass(prediction, target, loss.reduction)
    context = _describe_inputs(prediction)
    value_result = _compare(f"{KIND}/{name}/loss", name, "loss value", expected.value,
                            got.value, prediction, context)
    gradient_result = _gradient_result(f"{KIND}/{name}/grad_prediction", name, expected, got,
                                       prediction, context)
    return [value_result, gradient_result]


def _report_literal_passes(prediction, target):
    """(eq. 15 as computed by ``ReportLiteralMSE``, autograd's gradient of eq. 14)."""
    got = _protocol_pass(ReportLiteralMSE(), prediction, target)
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
    return _gradient_result(REPORT_LITERAL_ID, repr(ReportLiteralMSE()), expected, got,
                            prediction, context)
