"""Loss checks: MSE, cross-entropy and binary cross-entropy of any framework, in two parts.

A loss follows the protocol ``forward(prediction, target) -> loss`` and ``backward() ->
dL/dprediction``. ``check_loss`` separates what is a bug from what is a convention:

1. **Consistency** (kind ``finite_difference``): the loss seen as a module of its prediction
   (``LossAsModule``) through the central-difference check, samples coupled
   (``row_wise=False``). ``backward`` must be the derivative of ``forward``, whatever the
   normalisation: a loss divided by B with a gradient divided by B passes, a mean whose
   gradient lacks the 1/N fails.
2. **Normalisation** (a fact): the factor c = L / S, S the unnormalised sum of the loss terms
   (Σ (x − t)² for MSE; Σ over samples of −Σ_c t log softmax for cross-entropy;
   Σ −[t log p + (1 − t) log(1 − p)] for BCE), measured at the main input and at every
   ``also_at`` input (other batch sizes and widths). The named reductions are ``"sum"``
   (c = 1), ``"mean"`` (÷ the number of terms: B × outputs for MSE and BCE, B for
   cross-entropy, as torch) and ``"batch_mean"`` (÷ B). A loss follows a named reduction
   times a constant k (``Normalisation``: ½·MSE is ½ × the batch mean) when
   k_i = c_i / c_named(shape_i) is the same at every input, within the values' rtol; among
   several, the one with k nearest 1. That is a convention, reported in the value result's
   ``convention``, not a failure. A ratio that no named reduction times a constant explains
   (a sigmoid inside a "cross-entropy") fails: "not a scaled cross-entropy: the ratio L / S
   varies from a to b". A DECLARED reduction (the target's ``mse_reduction``, or a
   ``reduction`` attribute as refnet's ``MSELoss`` has) must hold with k = 1.
3. **Reference** (kind ``autograd``): the values at every input against k·c_named·S, and
   dL/dprediction at the main input against k·c_named times autograd's gradient of S, in
   float64.

The tolerance is ``autograd_tolerance`` (verification/checks/reference.py) with summation
length n = N + ``ELEMENTWISE_TERMS``, N the elements of one replica's prediction: the loss sums
N terms, and each side rounds that sum in its own order. The terms are all positive and each
gradient element is a few operations rounded relative to its result, so Σ|terms| is the
compared value itself and the scale is max|expected|. u is that of the dtype the compared
tensor was computed in: float32 when the prediction or that tensor is float32 (a loss that
computes in float32 inside a float64 check is held to float32's round-off, its gradient to
its own dtype's).

The report's literal pair is a negative control. Eq. 14 is the mean
L = (1/N) Σ (x_i − t_i)², whose gradient is 2(x − t)/N; eq. 15, 2(x − t), is the gradient of the
SUM Σ (x_i − t_i)². Put together (``ReportLiteralMSE``) they are not a function and its
derivative, and the same gradient check must fail with the measured gradient N times too large
(N = batch × outputs): ``check_report_literal_pair`` records that as the EXPECTED failure
``autograd/report-literal-eq14-eq15``, and ``report_literal_ratio`` measures the factor.
"""

import math
from dataclasses import dataclass, replace

import torch
from torch.nn import functional

from verification.checks.compare import compare, computed_dtype
from verification.checks.finite_difference import check_backward
from verification.checks.reference import (
    ELEMENTWISE_TERMS,
    EXACT_ATOL,
    autograd_tolerance,
    guarded,
)
from verification.checks.result import CheckResult
from verification.targets.protocol import LossView
from verification.targets.refnet_target import one_line_label

__all__ = [
    "REPORT_LITERAL_ID", "ReportLiteralMSE", "torch_mse", "check_loss", "LossAsModule",
    "measured_reduction", "measure_normalisation", "Normalisation", "as_normalisation",
    "LOSS_KINDS", "check_report_literal_pair", "report_literal_ratio",
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


LOSS_KINDS = ("mse", "cross_entropy", "bce")
"""The losses ``check_loss`` knows."""


class LossAsModule:
    """``prediction ↦ loss(prediction, target)``: a loss seen through the module protocol, so
    that the finite-difference check can judge its backward (samples are coupled by the
    reduction: check it with ``row_wise=False``)."""

    def __init__(self, loss, target):
        self.loss, self.target = loss, target

    def forward(self, x):
        return self.loss.forward(x, self.target)

    def backward(self, grad_output):
        gradient = self.loss.backward()
        return grad_output.reshape(grad_output.shape + (1,) * (gradient.ndim - grad_output.ndim)
                                   ) * gradient

    def param(self):
        return []

    def zero_grad(self):
        pass

    def __repr__(self):
        return repr(self.loss)


@dataclass(frozen=True)
class _LossPass:
    """A loss value (0-d, or [R]) and its gradient (shaped like the prediction)."""

    value: torch.Tensor
    gradient: torch.Tensor


def _protocol_pass(loss, prediction, target):
    """The loss under test, through its protocol: forward, then backward."""
    value = loss.forward(prediction, target)
    return _LossPass(value, loss.backward())


def _unnormalised(kind, prediction, target):
    """S: the sum of the loss terms per replica (0-d, or [R]), in float64, differentiable."""
    replicated = prediction.ndim == 3
    dims = (-2, -1) if replicated else None

    def total(terms):
        return terms.sum(dim=dims) if replicated else terms.sum()

    if kind == "mse":
        return total((prediction - target) ** 2)
    if kind == "bce":
        return total(functional.binary_cross_entropy(prediction, target, reduction="none"))
    if target.dtype == torch.int64:
        target = functional.one_hot(target, prediction.shape[-1]).to(prediction.dtype)
    return total(-(target * functional.log_softmax(prediction, dim=-1)))


_NAMED = ("mean", "sum", "batch_mean")
_DIVISOR = {"sum": "the sum of the loss terms", "batch_mean": "the sum of the loss terms "
            "divided by the batch size only", "mean": "the mean of the loss terms"}


def _candidates(kind, shape, per_sample):
    """Named reductions → factor c of S at a prediction ``shape`` (module docstring); per
    sample, B counts as 1."""
    batch = 1 if per_sample else shape[-2]
    outputs = shape[-1]
    terms = batch if kind == "cross_entropy" else batch * outputs
    return {"mean": 1.0 / terms, "sum": 1.0, "batch_mean": 1.0 / batch}


@dataclass(frozen=True)
class Normalisation:
    """How a loss is normalised: L = ``scale`` · c(shape) · S, c the named reduction ``name``'s
    factor (``_candidates``) and ``scale`` a constant (1 for a named reduction; ½ for
    ½·MSE, …), measured to hold at several inputs and shapes (``measure_normalisation``)."""

    kind: str
    name: str
    scale: float = 1.0
    per_sample: bool = False

    def factor(self, shape):
        """c of L = c·S at a prediction of ``shape`` ([…, B, outputs])."""
        return self.scale * _candidates(self.kind, shape, self.per_sample)[self.name]

    @property
    def named(self):
        """Whether this is one of the named reductions, unscaled."""
        return self.scale == 1.0

    def describe(self):
        text = _DIVISOR[self.name]
        return text if self.named else f"{self.scale:.6g} × {text}"


def as_normalisation(reduction, kind="mse"):
    """A ``Normalisation`` from itself or from a reduction's name (``"mean"``, …)."""
    return reduction if isinstance(reduction, Normalisation) else Normalisation(kind, reduction)


@dataclass(frozen=True)
class _Measured:
    """A loss measured at several inputs: values L_i, sums S_i, the prediction shapes, the
    rtol the values are held to, and the normalisation they fit (``None`` for none)."""

    values: torch.Tensor
    sums: torch.Tensor
    shapes: list
    rtol: float
    normalisation: Normalisation | None
    ratios: dict


def _value_tolerance(prediction, value):
    """The tolerance of a loss value: n = N + ``ELEMENTWISE_TERMS`` terms, in the dtype the
    value was computed in (float32 when the prediction or the value is)."""
    elements = prediction.shape[-2] * prediction.shape[-1]
    return autograd_tolerance(computed_dtype(prediction, value), elements + ELEMENTWISE_TERMS,
                              float(value.detach().abs().max()))


def _measure(view, samples, kind, declared):
    """Evaluate the loss at every ``(prediction, target)`` of ``samples`` and find the
    normalisation it follows: the declared one (its factor must hold, scale 1), else the named
    reduction whose scale k_i = (L_i / S_i) / c_i is the same at every sample, k_0's within
    the values' rtol (among several, the one with k nearest 1)."""
    values, sums, shapes, rtol = [], [], [], 0.0
    for prediction, target in samples:
        value = view.forward(prediction, target)
        values.append(value.detach().to(torch.float64).reshape(-1))
        sums.append(_unnormalised(kind, *_wide(prediction, target)).reshape(-1))
        shapes += [tuple(prediction.shape)] * values[-1].numel()  # one per replica
        rtol = max(rtol, _value_tolerance(prediction, value).rtol)
    values, sums = torch.cat(values), torch.cat(sums)
    names = (declared,) if declared else _NAMED
    ratios, fits = {}, []
    for name in names:
        factors = torch.tensor([_candidates(kind, shape, view.per_sample)[name]
                                for shape in shapes], dtype=torch.float64)
        scales = values / (sums * factors)
        ratios[name] = scales
        scale = 1.0 if declared else float(scales[0])
        if bool(torch.isfinite(scales).all()) and bool(
                ((scales - scale).abs() <= rtol * abs(scale)).all()):
            fits.append((abs(math.log(abs(scale))) if scale else math.inf, name, scale))
    normalisation = None
    if fits:
        _, name, scale = min(fits, key=lambda fit: fit[0])
        scale = 1.0 if abs(scale - 1.0) <= rtol else scale
        normalisation = Normalisation(kind, name, scale, view.per_sample)
    return _Measured(values, sums, shapes, rtol, normalisation, ratios)


def _samples(prediction, target, also_at):
    """The main input first, then ``also_at``'s (replicated predictions stay alone)."""
    return [(prediction, target)] + ([] if prediction.ndim == 3 else list(also_at))


def _declared(loss, reduction):
    if reduction is not None:
        return reduction
    attribute = getattr(loss, "reduction", None)
    return attribute if attribute in _NAMED else None


def _wide(prediction, target):
    wide_target = target.detach() if target.dtype == torch.int64 else target.detach().to(
        torch.float64)
    return prediction.detach().to(torch.float64), wide_target


def check_loss(loss, prediction, target, *, kind="mse", reduction=None, per_sample=False,
               name=None, seed=0, also_at=()):
    """Check a loss's backward against its forward, then both against torch (module docstring).

    Args:
        loss: an object with ``forward(prediction, target)`` and ``backward()`` (or a
            ``LossView``), e.g. ``refnet.MSELoss("sum")``.
        prediction: [batch, outputs], or [R, batch, outputs] with replicas (MSE only);
            probabilities in (0, 1) for BCE, logits for cross-entropy.
        target: same shape (one-hot or 0/1), or int64 class indices [batch] for
            cross-entropy.
        kind: ``"mse"``, ``"cross_entropy"`` or ``"bce"``.
        reduction: the declared normalisation, ``"mean"``, ``"sum"`` or ``"batch_mean"``;
            when ``None``, the loss's ``reduction`` attribute if it has one, else measured.
        per_sample: the loss takes one sample at a time (the view sums the rows).
        name: the loss's name in the ids; its ``repr`` when ``None``.
        seed: seed of the finite-difference check's random weight.
        also_at: more ``(prediction, target)`` pairs, at other shapes, at which the
            normalisation must hold too (a convention is a factor constant over them).

    Returns:
        ``finite_difference/<name>/input`` (consistency), ``autograd/<name>/loss`` (whose
        ``convention`` states a normalisation other than torch's) and
        ``autograd/<name>/grad_prediction``; a failed ``…/raised`` for a part that raised.
    """
    if kind not in LOSS_KINDS:
        raise ValueError(f"check_loss: kind must be one of {LOSS_KINDS}, got {kind!r}")
    view = loss if isinstance(loss, LossView) else LossView(loss, name or one_line_label(loss),
                                                            per_sample=per_sample)
    name = view.name if name is None else name
    declared = _declared(view.loss, reduction)
    consistency = guarded(f"finite_difference/{name}/raised", name, "finite_difference",
                          lambda: check_backward(LossAsModule(view, target), prediction,
                                                 seed=seed, row_wise=False, name=name))
    samples = _samples(prediction, target, also_at)
    reference = guarded(f"{KIND}/{name}/raised", name, KIND,
                        lambda: _check_loss(view, samples, kind, declared, name))
    return consistency + reference


def measure_normalisation(loss, samples, *, kind="mse", declared=None):
    """The ``Normalisation`` a loss follows over ``samples`` (module docstring).

    Args:
        loss: a ``LossView`` (or any loss with the protocol).
        samples: ``(prediction, target)`` pairs at several shapes ([batch, outputs]).
        kind: ``"mse"``, ``"cross_entropy"`` or ``"bce"``.
        declared: a declared reduction's name, which must then hold.

    Raises:
        ValueError: no named reduction times a constant fits every sample; the message gives
            how far the ratio L / S varies.
    """
    view = loss if isinstance(loss, LossView) else LossView(loss, one_line_label(loss))
    measured = _measure(view, samples, kind, declared)
    if measured.normalisation is None:
        raise ValueError(_not_scaled(kind, measured))
    return measured.normalisation


def measured_reduction(loss, prediction, target, *, kind="mse"):
    """The named normalisation a loss applies at one point: ``"mean"``, ``"sum"``,
    ``"batch_mean"`` (module docstring), or ``None`` when it is none of them unscaled."""
    view = loss if isinstance(loss, LossView) else LossView(loss, one_line_label(loss))
    found = _measure(view, [(prediction, target)], kind, None).normalisation
    return found.name if found is not None and found.named else None


_LOSS_NAMES = {"mse": "MSE", "cross_entropy": "cross-entropy", "bce": "binary cross-entropy"}


def _not_scaled(kind, measured):
    ratios = measured.values / measured.sums
    shapes = ", ".join(f"{list(shape)}" for shape in measured.shapes)
    return (f"not a scaled {_LOSS_NAMES[kind]}: the ratio L / S of the loss to the sum of its "
            f"terms varies from {float(ratios.min()):.6g} to {float(ratios.max()):.6g} over "
            f"predictions {shapes}, where any named reduction (mean, sum, batch mean) times a "
            "constant would fit every one")


def _check_loss(view, samples, kind, declared, name):
    """Steps 2 and 3 of ``check_loss``."""
    measured = _measure(view, samples, kind, declared)
    normalisation = measured.normalisation
    prediction, target = samples[0]
    got = _protocol_pass(view, prediction, target)
    if normalisation is None:  # the gradient is held to the declared factor, or L_0 / S_0
        factor = (_candidates(kind, prediction.shape, view.per_sample)[declared] if declared
                  else float(measured.values[0] / measured.sums[0]))
        return [_not_scaled_result(name, kind, measured, declared, prediction, got),
                *_gradient_check(name, kind, got, prediction, target, factor, declared)]
    factors = torch.tensor([normalisation.factor(shape) for shape in measured.shapes],
                           dtype=torch.float64)
    context = (f"{_describe_inputs(prediction)} and {len(samples) - 1} more shape(s); {kind} "
               f"loss, normalisation {'declared ' + declared if declared else 'measured'}: "
               f"{normalisation.describe()}")
    value_result = _compare(f"{KIND}/{name}/loss", name, "loss value at each shape",
                            factors * measured.sums, measured.values, measured.rtol, context)
    convention = _convention(kind, normalisation, declared)
    return [replace(value_result, convention=convention),
            *_gradient_check(name, kind, got, prediction, target,
                             normalisation.factor(prediction.shape), declared)]


def _gradient_check(name, kind, got, prediction, target, factor, declared):
    """dL/dprediction at the main input against ``factor``·dS/dprediction by autograd (one
    factor per replica is not needed: it depends only on the shape)."""
    wide_prediction, wide_target = _wide(prediction, target)
    with torch.enable_grad():
        leaf = wide_prediction.clone().requires_grad_()
        (factor * _unnormalised(kind, leaf, wide_target)).sum().backward()
    context = (f"{_describe_inputs(prediction)}; {kind} loss, L = {factor:.6g}·S, S the sum "
               "of its terms"
               + (f" (declared {declared})" if declared else ""))
    tolerance = _value_tolerance(prediction, got.gradient)
    return [_gradient_result(f"{KIND}/{name}/grad_prediction", name, leaf.grad, got.gradient,
                             tolerance.rtol, context)]


def _not_scaled_result(name, kind, measured, declared, prediction, got):
    inf = float("inf")
    reason = (f"the declared reduction {declared!r} does not hold: L / (c·S) is "
              f"{', '.join(f'{float(r):.6g}' for r in measured.ratios[declared])} at the "
              "shapes checked, where it must be 1" if declared else _not_scaled(kind, measured))
    return CheckResult(f"{KIND}/{name}/loss", name, KIND, False, inf, inf,
                       measured.rtol, inf, f"{KIND} check FAILED for {name}, loss value: "
                       f"{reason}; {_describe_inputs(prediction)}")


def _convention(kind, normalisation, declared):
    """A sentence when the loss is not normalised as torch's default ``"mean"``."""
    if normalisation.name == "mean" and normalisation.named:
        return ""
    torch_rule = "B" if kind == "cross_entropy" else "B × outputs"
    text = (f"normalisation: {normalisation.describe()}, where torch's default "
            f"(reduction='mean') divides by {torch_rule}")
    return text + (f"; declared {declared!r}" if declared else "")


def _compare(check_id, module, what, expected, got, rtol, context):
    """``compare`` with ``rtol`` and ``atol = rtol``·max|expected|."""
    scale = float(expected.detach().abs().max()) if expected.numel() else 0.0
    return compare(check_id=check_id, module=module, kind=KIND, expected=expected, got=got,
                   atol=max(rtol * scale, EXACT_ATOL), rtol=rtol, what=what, context=context)


def _gradient_result(check_id, module, expected, got, rtol, context):
    """The gradient step of the loss check, shared by ``check_loss`` and the report pair."""
    return _compare(check_id, module, "dL/dprediction", expected, got, rtol, context)


def _describe_inputs(prediction):
    return f"prediction {list(prediction.shape)} {prediction.dtype}"


def _autograd_pass(prediction, target, reduction):
    """The reference of the report pair: ``F.mse_loss`` in float64, differentiated by autograd."""
    with torch.enable_grad():
        prediction = prediction.detach().to(torch.float64).requires_grad_()
        value = torch_mse(prediction, target.detach().to(torch.float64), reduction)
        value.sum().backward()
    return _LossPass(value.detach(), prediction.grad)


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
    rtol = _value_tolerance(prediction, got.gradient).rtol
    return _gradient_result(REPORT_LITERAL_ID, repr(ReportLiteralMSE()), expected.gradient,
                            got.gradient, rtol, context)
