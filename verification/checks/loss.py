"""Loss checks: a loss checked as a function, over a grid of shapes and at extreme inputs.

A loss follows the protocol ``forward(prediction, target) -> loss`` and ``backward() ->
dL/dprediction``. Its kind (``LossKind``, ``loss_kind``) says what it must equal: MSE,
cross-entropy (logits, one-hot or index targets), binary cross-entropy (probabilities, 0/1
targets), or any element-wise loss of ``torch.nn.functional`` named with its keyword arguments
(``loss_kind("huber_loss", {"delta": 1.0})``, an adapter's ``extra_losses``). ``check_loss``
judges it at every input (``LossInput``): the grid (its main input and ``also_at``: batch 1
and more, 2 and 3 outputs) fully, and the extreme inputs (``extreme_inputs``) by value and
gradient:

1. **Normalisation** (``autograd/<name>/loss``, a fact or a failure): L = k·c(shape)·S, S the
   unnormalised sum of the loss terms (Σ (x − t)² for MSE; Σ over samples of −Σ_c t log softmax
   for cross-entropy; Σ −[t log p + (1 − t) log(1 − p)] for BCE; the torch function with
   ``reduction="sum"`` for the others), c a named reduction's factor — ``"sum"`` (1),
   ``"mean"`` (÷ the number of terms: B for cross-entropy, B × outputs for the others, as
   torch) or ``"batch_mean"`` (÷ B) — and k a constant. The ratio r_i = L_i / (c_i·S_i) is
   measured at every input with a finite loss; a named reduction fits when every r_i equals one
   k within R (below), k being one of the r_i (1 when within R of 1); among several, the one
   with k nearest 1. Without a fit, the k most inputs agree on is the reference of the value
   and gradient checks, so that the inputs which differ from it are the ones that fail. k ≠ 1
   is a convention (½·MSE), reported in ``convention``; a ratio no named reduction times a
   constant explains fails with "not a scaled cross-entropy: the ratio L / S varies from a to
   b" (a sigmoid inside a "cross-entropy", a 1/N at some shapes only). A DECLARED reduction
   must hold with k = 1.
2. Per grid input ``<tag>`` (``6x3`` for a prediction [6, 3]), a group of three results:
   **consistency** (``finite_difference/<name>/<tag>/input``: the loss as a module of its
   prediction, ``LossAsModule``, through the central-difference check, samples coupled:
   ``backward`` must be the derivative of ``forward`` whatever the normalisation), **value**
   (``autograd/<name>/<tag>/loss``, against k·c·S) and **gradient**
   (``autograd/<name>/<tag>/grad_prediction``, against k·c times autograd's gradient of S, in
   float64). Each input stands alone: a loss written for 2 classes is measured at C = 2 (its
   sign, its 1/N) while C = 3 shows its own failure (raised, wrong shape).
3. Per extreme input (``extreme-…``): value and gradient as above; no finite differences (a
   step from p = 1e-12 leaves (0, 1)). A NaN or an infinity is named with the input.
4. **Stabilisers** (binary cross-entropy): where the plain formula's value or gradient check
   fails at some input, the stabiliser the loss follows is measured from the passes already
   made (``_stabilised``: each of ``STABILISERS`` at each of ``EPSILONS``, smallest ε first),
   and the first under which every normalisation, value and gradient check passes becomes the
   kind checked, reported as a convention; a wrong gradient fits none.

Extreme inputs (``extreme_inputs``), in the compared dtype:

- cross-entropy: logits [0, 800, −800] with the target on the large, the small and the middle
  logit, and [800, −800] with either target (a softmax without max-subtraction gives
  inf/inf = NaN there, log-softmax is well conditioned: exact zeros and ±1 in the gradient);
- BCE: p = ε and 1 − ε' with targets 0 and 1; ε = ε' = 1e-12 in float64; in float32
  ε = 1e-12 (representable) and ε' = 2⁻²⁴, because 1 − 1e-12 rounds to 1 in float32
  (log 0) and 1 − 2⁻²⁴ is the largest float32 below 1. Its reference is the formula itself,
  differentiated by autograd, not ``F.binary_cross_entropy``, whose backward divides by
  max(p(1 − p), 1e-12) and is therefore 1e-12 off, relatively, at p = 1e-12;
- MSE and the regression losses: magnitude M = 1e18 (the squares of 1.5·M stay below
  float32's 3.4e38: a loss may compute its value in float32 inside a float64 framework, which
  the float32 tolerance accepts, so the input must be finite there too);
- regression losses also at hand-picked d = x − t ∈ {−2.5, −0.5, 0.25, 2}·τ, τ the threshold
  (``delta``, ``beta``, else 1): both sides of Huber's δ. L1's kink at d = 0 is never an input:
  exactly-equal points are excluded (the derivative there is a convention, as ReLU's in
  ``kink.py``), and random grid points are never exactly equal;
- ``*_with_logits`` losses: logits ±800 with either target.

Tolerances. u is the unit round-off of the dtype the compared tensor was computed in (float32
when the prediction or that tensor is: a loss that computes in float32 inside a float64 check
is held to float32's round-off). Both sides evaluate a sum of N terms (N the elements of one
replica's prediction), each a few operations, in their own order: ``rtol =
SAFETY·(N + ELEMENTWISE_TERMS)·u`` (``autograd_tolerance``, verification/checks/reference.py).

- Value: the error of the sum is at most n·u·Σ(term error scales) = n·u·k·c·T, T
  (``LossKind.magnitude``) bounding each term's own error in units of u: MSE, T = S (x − t,
  then its square: relative errors); cross-entropy, T = Σ_b (max_j |x_bj| + |x_b,target| +
  log C) (log-sum-exp minus the target logit cancels: its error is relative to the logits, not
  to the loss, 0 at a confident right answer); BCE, T = S + N (the log of a rounded p or
  1 − p: an absolute u per term besides the relative one); the others, T = S +
  2·max(1, δ)·Σ (|x| + |t|) (d = x − t carries u(|x| + |t|), a term's slope in d is at most
  max(1, δ), and max(x, 0) − x·t of a logit loss cancels with |t| ≤ 1). ``atol = rtol·k·c·T``.
- Ratio: r_i has the relative error of its value, rtol_i·(1 + T_i / S_i), and k is one r_j
  compared with all: R = 2·max_i rtol_i·(1 + T_i / S_i).
- Gradient at a grid input: ``atol = rtol·max|expected|`` (random inputs: elements of
  comparable size, so an element's cancellation is within the largest one's scale). At an
  extreme input the elements span orders of magnitude (BCE: 1 and 1e12), where that atol would
  exceed the small ones; each element there is computed to a relative accuracy (p − t with
  t ∈ {0, 1}; 1 − p exact for p ≥ ½, Sterbenz; the softmax of integer logits, whose
  e⁻⁸⁰⁰ underflows to an exact 0 on both sides; 2(x − t) of exact differences), so rtol alone
  (``atol = EXACT_ATOL``: zeros must be exact).

The report's literal pair is a negative control. Eq. 14 is the mean
L = (1/N) Σ (x_i − t_i)², whose gradient is 2(x − t)/N; eq. 15, 2(x − t), is the gradient of the
SUM Σ (x_i − t_i)². Put together (``ReportLiteralMSE``) they are not a function and its
derivative, and the same gradient check must fail with the measured gradient N times too large
(N = batch × outputs): ``check_report_literal_pair`` records that as the EXPECTED failure
``autograd/report-literal-eq14-eq15``, and ``report_literal_ratio`` measures the factor.

Detection power (``CheckResult.detectable``: the relative error of the compared tensor's
largest element sure to fail; measured over every case of refnet and of the ``float32``
fixture, the README's table, asserted by tests/test_detection_power.py with an error of that
size planted): as ``finite_difference`` and ``autograd`` (the README's table).
"""

import inspect
import math
from dataclasses import dataclass, replace

import torch
from torch.nn import functional

from verification.checks.compare import compare, computed_dtype
from verification.checks.diagnosis import prediction_sizes
from verification.checks.finite_difference import check_backward
from verification.checks.reference import (
    ELEMENTWISE_TERMS,
    EXACT_ATOL,
    autograd_tolerance,
    guarded,
)
from verification.checks.result import CheckResult
from verification.targets.protocol import LossView, ProtocolError, one_line_label

__all__ = [
    "REPORT_LITERAL_ID", "ReportLiteralMSE", "torch_mse", "check_loss", "LossAsModule",
    "measured_reduction", "measure_normalisation", "Normalisation", "as_normalisation",
    "LOSS_KINDS", "LossKind", "loss_kind", "LossInput", "grid_input", "extreme_inputs",
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


LOSS_KINDS = ("mse", "cross_entropy", "bce")
"""The built-in losses ``check_loss`` knows; any other kind names a ``torch.nn.functional``
loss (``loss_kind``)."""

_LABELS = {"mse": "MSE", "cross_entropy": "cross-entropy", "bce": "binary cross-entropy"}
_NOT_OPTIONS = ("input", "target", "reduction", "size_average", "reduce")
"""Parameters of a torch loss function that the check sets itself (never options)."""


@dataclass(frozen=True)
class LossKind:
    """What a loss must equal: a built-in kind (``LOSS_KINDS``) or the ``torch.nn.functional``
    function ``name`` with the keyword arguments ``options`` (``(key, value)`` pairs).

    Attributes:
        name: ``"mse"``, ``"cross_entropy"``, ``"bce"``, or a torch function's name.
        options: the torch function's keyword arguments, as sorted pairs.
    """

    name: str
    options: tuple = ()
    stabiliser: tuple = ()

    @property
    def label(self):
        """The loss's name in messages: ``"cross-entropy"``, ``"huber_loss(delta=1.0)"``,
        ``"binary cross-entropy, log(p + 1e-12)"`` with a stabiliser."""
        if self.name in _LABELS:
            return _LABELS[self.name] + (f", {self.stabilised}" if self.stabiliser else "")
        return f"{self.name}({', '.join(f'{key}={value!r}' for key, value in self.options)})"

    @property
    def stabilised(self):
        """The stabiliser as a formula (``STABILISERS``), ``""`` for none."""
        if not self.stabiliser:
            return ""
        family, epsilon, *_ = self.stabiliser
        return STABILISERS[family].format(epsilon=f"{epsilon:g}")

    @property
    def inputs(self):
        """What its predictions and targets are: ``"classes"`` (logits, one class per row),
        ``"probabilities"`` or ``"logits"`` (with 0/1 targets), or ``"real"`` (regression)."""
        if self.name == "cross_entropy":
            return "classes"
        if self.name in ("bce", "binary_cross_entropy"):
            return "probabilities"
        return "logits" if self.name.endswith("_with_logits") else "real"

    @property
    def threshold(self):
        """τ of a regression loss: its ``delta`` or ``beta`` (its formula switches there),
        else 1."""
        options = dict(self.options)
        return float(options.get("delta", options.get("beta", 1.0)))

    def terms(self, prediction, target):
        """The loss terms of float64 tensors, unreduced: one per row for cross-entropy
        ([…, B]), one per element otherwise (differentiable)."""
        if self.name == "mse":
            return (prediction - target) ** 2
        if self.name == "bce":  # the formula, not F.binary_cross_entropy (module docstring)
            return _bce_terms(prediction, target, self.stabiliser)
        if self.name == "cross_entropy":
            if target.dtype == torch.int64:
                target = functional.one_hot(target, prediction.shape[-1]).to(prediction.dtype)
            return -(target * functional.log_softmax(prediction, dim=-1)).sum(dim=-1)
        return getattr(functional, self.name)(prediction, target, reduction="none",
                                              **dict(self.options))

    def magnitude(self, prediction, target, terms):
        """T per replica: the scale of the round-off of the sum of ``terms`` (module
        docstring), from float64 tensors."""
        if self.name == "mse":
            return _total(terms)
        if self.name == "bce":
            return _total(terms + 1)
        if self.name == "cross_entropy":
            if target.dtype == torch.int64:
                target = functional.one_hot(target, prediction.shape[-1]).to(prediction.dtype)
            row = (prediction.abs().amax(dim=-1) + (target * prediction).abs().sum(dim=-1)
                   + math.log(prediction.shape[-1]))
            return row.sum(dim=-1)
        slope = 2 * max(1.0, self.threshold)
        return _total(terms.abs() + slope * (prediction.abs() + target.abs()))

    def count(self, shape, per_sample):
        """The number of terms ``"mean"`` divides by at a prediction of ``shape``."""
        batch = 1 if per_sample else shape[-2]
        return batch if self.name == "cross_entropy" else batch * shape[-1]


STABILISERS = {"add": "log(p + {epsilon}) and log(1 − p + {epsilon})",
               "clamp": "p clamped to [{epsilon}, 1 − {epsilon}]",
               "denominator": "p(1 − p) clamped below at {epsilon} in the gradient"}
"""The ways a binary cross-entropy is commonly kept finite near p = 0 and 1, each with its ε:
inside the logs; clamping p; clamping the gradient's denominator p(1 − p) (torch's BCELoss
does this at ε = 1e-12, and clamps its logs at −100, which no input here reaches)."""
EPSILONS = tuple(10.0 ** -power for power in range(16, 2, -1))
"""The ε a stabiliser is looked for at: every power of ten from 1e-16 to 1e-3."""


def _bce_terms(p, t, stabiliser):
    """−[t log p + (1 − t) log(1 − p)] per element of float64 tensors, differentiable, under
    ``stabiliser`` (``(family, ε, low, high)``: a family of ``STABILISERS``, its ε, and the
    clamp's bounds ε and 1 − ε as the checked dtype rounds them; ``()``: none). The
    denominator clamp changes only the gradient: the exact value plus g·(p − p.detach()),
    exactly 0, whose derivative is the clamped gradient g = (p − t) / max(p(1 − p), ε)."""
    family, epsilon, low, high = stabiliser or (None, 0.0, 0.0, 1.0)
    if family == "add":
        return -(t * (p + epsilon).log() + (1 - t) * (1 - p + epsilon).log())
    if family == "clamp":
        p = p.clamp(low, high)
    exact = -(t * p.log() + (1 - t) * torch.log1p(-p))
    if family != "denominator":
        return exact
    slope = ((p - t) / (p * (1 - p)).clamp_min(epsilon)).detach()
    return exact.detach() + slope * (p - p.detach())


def _total(tensor):
    """The sum over the last two axes ([B, C]; one per replica with [R, B, C])."""
    return tensor.sum(dim=(-2, -1))


def loss_kind(kind, options=None):
    """A ``LossKind`` from a built-in kind or a torch function's name and its options.

    Args:
        kind: one of ``LOSS_KINDS``, a ``torch.nn.functional`` loss's name
            (``"huber_loss"``), or a ``LossKind``.
        options: that function's keyword arguments (``{"delta": 1.0}``); none for a
            built-in kind.

    Raises:
        ValueError: an unknown name, a function without a ``reduction`` argument (not a
            loss), or an option it does not take; the message says which.
    """
    if isinstance(kind, LossKind):
        return kind
    options = dict(options or {})
    if kind in LOSS_KINDS:
        if options:
            raise ValueError(f"the built-in loss kind {kind!r} takes no options, got {options}")
        return LossKind(kind)
    function = getattr(functional, kind, None) if isinstance(kind, str) else None
    if not callable(function):
        raise ValueError(f"{kind!r} is neither a built-in loss kind {LOSS_KINDS} nor a "
                         "function of torch.nn.functional")
    parameters = inspect.signature(function).parameters
    if "reduction" not in parameters:
        raise ValueError(f"torch.nn.functional.{kind} takes no reduction: not a loss")
    unknown = sorted(key for key in options if key not in parameters or key in _NOT_OPTIONS)
    if unknown:
        takes = [key for key in parameters if key not in _NOT_OPTIONS][2:]
        raise ValueError(f"torch.nn.functional.{kind} takes no option(s) {unknown}; its "
                         f"options are {takes}")
    return LossKind(kind, tuple(sorted(options.items())))


@dataclass(frozen=True)
class LossInput:
    """One point at which a loss is checked.

    Attributes:
        tag: its name in result ids (``"6x3"``, ``"extreme-gap800-3-classes"``).
        description: what it is, for messages.
        prediction: [batch, outputs] (or [R, batch, outputs] with replicas).
        target: same shape, or int64 class indices [batch] for cross-entropy.
        extreme: an extreme input: value and gradient only, the gradient to rtol alone
            (module docstring).
    """

    tag: str
    description: str
    prediction: torch.Tensor
    target: torch.Tensor
    extreme: bool = False


def grid_input(prediction, target):
    """A grid ``LossInput``, tagged by its shape (``6x3``)."""
    shape = list(prediction.shape)
    return LossInput("x".join(map(str, shape)), f"prediction {shape} {prediction.dtype}",
                     prediction, target)


_LARGE = 1e18
"""Magnitude M of the large-value inputs: (1.5·M)² summed stays finite in float32."""
_NEAR_ZERO = 1e-12
_NEAR_ONE = {torch.float64: 1e-12, torch.float32: 2.0 ** -24}
"""ε' of p = 1 − ε': 1 − 1e-12 rounds to 1 in float32, whose largest value below 1 is 1 − 2⁻²⁴."""
_GAP = 800.0


def _classes(labels, outputs, dtype, index_targets):
    labels = torch.tensor(labels)
    return labels if index_targets else functional.one_hot(labels, outputs).to(dtype)


def extreme_inputs(kind, dtype=torch.float64, *, index_targets=False):
    """The extreme ``LossInput``s of a loss kind (module docstring), in ``dtype``.

    Args:
        kind: a ``LossKind`` (or what ``loss_kind`` takes).
        dtype: the compared dtype (float32 changes ε' and M).
        index_targets: cross-entropy targets as int64 class indices, not one-hot.
    """
    kind = loss_kind(kind)

    def point(tag, description, prediction, target):
        prediction = torch.tensor(prediction, dtype=torch.float64).to(dtype)
        target = target if isinstance(target, torch.Tensor) else torch.tensor(
            target, dtype=torch.float64).to(dtype)
        return LossInput(f"extreme-{tag}", f"extreme input: {description}", prediction,
                         target, extreme=True)

    gap = _GAP
    if kind.inputs == "classes":
        return [point("gap800-3-classes", "logits [0, 800, -800] in each row, target on the "
                      "large, the small, the middle logit", [[0.0, gap, -gap]] * 3,
                      _classes([1, 2, 0], 3, dtype, index_targets)),
                point("gap800-2-classes", "logits [800, -800] in each row, target on the "
                      "large, the small logit", [[gap, -gap]] * 2,
                      _classes([0, 1], 2, dtype, index_targets))]
    if kind.inputs == "probabilities":
        small, large = _NEAR_ZERO, 1.0 - _NEAR_ONE[dtype]
        return [point("p-near-0-and-1", f"p = {small:g} (row 0) and 1 - {_NEAR_ONE[dtype]:.3g} "
                      "(row 1), targets 0 and 1 in each row", [[small, small], [large, large]],
                      [[0.0, 1.0], [0.0, 1.0]])]
    if kind.inputs == "logits":
        return [point("logits-800", "logits 800 (row 0) and -800 (row 1), targets 1, 0 and "
                      "0, 1", [[gap, -gap], [gap, -gap]], [[1.0, 0.0], [0.0, 1.0]])]
    large = _LARGE
    inputs = [point("large", f"magnitude {large:g}: prediction [M, -M], target [-M/2, M/2]",
                    [[large, -large]], [[-large / 2, large / 2]])]
    if kind.name != "mse":
        tau, target = kind.threshold, 0.25
        differences = [-2.5, -0.5, 0.25, 2.0]
        inputs.append(point("both-sides-of-threshold", f"x - t = {differences} × {tau:g} "
                            "(both sides of the threshold; never x = t, the kink)",
                            [[target + d * tau for d in differences]], [[target] * 4]))
    return inputs


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
    terms = kind.terms(prediction, target)
    return terms.sum(dim=-1) if kind.name == "cross_entropy" else _total(terms)


_NAMED = ("mean", "sum", "batch_mean")
_DIVISOR = {"sum": "the sum of the loss terms", "batch_mean": "the sum of the loss terms "
            "divided by the batch size only", "mean": "the mean of the loss terms"}


def _candidates(kind, shape, per_sample):
    """Named reductions → factor c of S at a prediction ``shape`` (module docstring); per
    sample, B counts as 1. ``kind`` is a ``LossKind`` or its name."""
    kind = kind if isinstance(kind, LossKind) else LossKind(kind)
    batch = 1 if per_sample else shape[-2]
    return {"mean": 1.0 / kind.count(shape, per_sample), "sum": 1.0, "batch_mean": 1.0 / batch}


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
class _Evaluated:
    """A loss's forward at one input: its value (float64, one per replica; ``None`` when the
    forward raised), S and T there (``LossKind.magnitude``), the value's rtol, and the protocol
    pass (forward then backward) as the loss returned it, or the exception it raised (``None``
    where the backward was not asked for)."""

    item: LossInput
    value: torch.Tensor | None
    sums: torch.Tensor
    magnitudes: torch.Tensor
    rtol: float
    protocol_pass: _LossPass | Exception | None = None

    def replayed_pass(self):
        """The protocol pass at this input, raising what it raised."""
        if isinstance(self.protocol_pass, Exception):
            raise self.protocol_pass
        return self.protocol_pass

    @property
    def finite(self):
        """Whether the loss returned finite values here, where S is not 0 (a ratio exists)."""
        return (self.value is not None and self.value.shape == self.sums.shape
                and bool(torch.isfinite(self.value).all()) and bool((self.sums != 0).all()))

    @property
    def ratio_rtol(self):
        """The relative error of L / (c·S) here: rtol·(1 + T / S) (module docstring)."""
        return self.rtol * float((1 + self.magnitudes / self.sums.abs()).max())


def _elements(prediction):
    return prediction.shape[-2] * prediction.shape[-1]


def _rtol(prediction, computed):
    """rtol of a loss value or gradient: n = N + ``ELEMENTWISE_TERMS`` terms, in the dtype
    ``computed`` was computed in (float32 when the prediction or it is)."""
    return autograd_tolerance(computed_dtype(prediction, computed),
                              _elements(prediction) + ELEMENTWISE_TERMS, 0.0).rtol


def _evaluate(view, kind, item, *, backward=False):
    """The loss's forward at ``item`` (a raise leaves ``value`` None: its own result names it)
    with S and T from float64 copies; with ``backward``, its backward right after, kept as the
    protocol pass the value and gradient checks judge (the forward is not run twice)."""
    sums, magnitudes = _sums_and_magnitudes(kind, item)
    try:
        value = view.forward(item.prediction, item.target)
    except ProtocolError as error:
        return _Evaluated(item, None, sums, magnitudes, _rtol(item.prediction, None), error)
    return _Evaluated(item, value.detach().to(torch.float64).reshape(-1), sums, magnitudes,
                      _rtol(item.prediction, value),
                      _backward_after(view, value) if backward else None)


def _backward_after(view, value):
    """The protocol pass whose forward gave ``value``: its backward now, or what it raised.
    Tensors are copied: the checks judge them after later calls, which a loss may write into
    the same buffers."""
    try:
        return _LossPass(_copied(value), _copied(view.backward()))
    except Exception as error:  # judged where the pass is: _reference_checks' guard
        return error


def _copied(value):
    return value.clone() if isinstance(value, torch.Tensor) else value


@dataclass(frozen=True)
class _Fit:
    """The normalisation measured over the finite inputs (``None`` for none), the named
    reduction and scale k the value and gradient checks compare with (the fit's, else the
    consensus of the most inputs), the ratios r_i = L_i / (c_i·S_i) of each candidate, the
    tolerance R, and the inputs used and left out (no finite loss)."""

    normalisation: Normalisation | None
    name: str
    scale: float
    ratios: dict
    rtol: float
    used: list
    left_out: list


def _factors(kind, evaluated, name, per_sample):
    return torch.cat([torch.full_like(e.sums, _candidates(kind, e.item.prediction.shape,
                                                          per_sample)[name])
                      for e in evaluated])


def _fit(evaluated, kind, declared, per_sample):
    """The named reduction times a constant k that the most finite inputs agree on, within R
    (module docstring); it fits when every one does. Each input's ratio is tried as k (1 when
    within R of 1, only 1 for a declared reduction); among equally many, k nearest 1. Without
    a fit, the consensus is the reference of the inputs' value and gradient checks, so those
    that differ from it are the ones that fail."""
    used = [e for e in evaluated if e.finite]
    left_out = [e.item.tag for e in evaluated if not e.finite]
    names = (declared,) if declared else _NAMED
    if not used:
        return _Fit(None, names[0], 1.0, {}, 0.0, used, left_out)
    values = torch.cat([e.value for e in used])
    sums = torch.cat([e.sums for e in used])
    rtol = 2 * max(e.ratio_rtol for e in used)
    ratios, best = {}, None
    for name in names:
        ratios[name] = values / (sums * _factors(kind, used, name, per_sample))
        for ratio in ([1.0] if declared else ratios[name].tolist()):
            scale = 1.0 if abs(ratio - 1.0) <= rtol else ratio
            agree = int(((ratios[name] - scale).abs() <= rtol * abs(scale)).sum())
            key = (-agree, abs(math.log(abs(scale))) if scale else math.inf)
            if best is None or key < best[0]:
                best = (key, name, scale)
    (disagree, _), name, scale = best
    normalisation = (Normalisation(kind.name, name, scale, per_sample)
                     if -disagree == len(values) else None)
    return _Fit(normalisation, name, scale, ratios, rtol, used, left_out)


def _declared(loss, reduction):
    if reduction is not None:
        return reduction
    attribute = getattr(loss, "reduction", None)
    return attribute if attribute in _NAMED else None


def _wide(prediction, target):
    wide_target = target.detach() if target.dtype == torch.int64 else target.detach().to(
        torch.float64)
    return prediction.detach().to(torch.float64), wide_target


def _inputs(prediction, target, also_at, extremes):
    """The grid (the main input, then ``also_at``'s; replicated predictions stay alone) and
    the extreme inputs, with unique tags."""
    grid = [(prediction, target)] + ([] if prediction.ndim == 3 else list(also_at))
    inputs = [item if isinstance(item, LossInput) else grid_input(*item) for item in grid]
    inputs += list(extremes)
    seen, unique = {}, []
    for item in inputs:
        count = seen[item.tag] = seen.get(item.tag, 0) + 1
        unique.append(item if count == 1 else replace(item, tag=f"{item.tag}-{count}"))
    return unique


def check_loss(loss, prediction, target, *, kind="mse", options=None, reduction=None,
               per_sample=False, name=None, seed=0, also_at=(), extremes=()):
    """Check a loss as a function: at every input of the grid and at extreme inputs, its
    backward against its forward, both against torch, one normalisation over all (module
    docstring).

    Args:
        loss: an object with ``forward(prediction, target)`` and ``backward()`` (or a
            ``LossView``), e.g. ``refnet.MSELoss("sum")``.
        prediction: [batch, outputs], or [R, batch, outputs] with replicas (MSE only);
            probabilities in (0, 1) for BCE, logits for cross-entropy.
        target: same shape (one-hot or 0/1), or int64 class indices [batch] for
            cross-entropy.
        kind: ``"mse"``, ``"cross_entropy"``, ``"bce"``, a ``torch.nn.functional`` loss's
            name, or a ``LossKind``.
        options: the torch function's keyword arguments (``{"delta": 1.0}``).
        reduction: the declared normalisation, ``"mean"``, ``"sum"`` or ``"batch_mean"``;
            when ``None``, the loss's ``reduction`` attribute if it has one, else measured.
        per_sample: the loss takes one sample at a time (the view sums the rows).
        name: the loss's name in the ids; its ``repr`` when ``None``.
        seed: seed of the finite-difference check's random weight.
        also_at: more grid inputs, ``(prediction, target)`` pairs (or ``LossInput``s) at
            other shapes, each checked fully.
        extremes: extreme ``LossInput``s (``extreme_inputs``), checked by value and gradient.

    Returns:
        ``autograd/<name>/loss`` (the normalisation; its ``convention`` states one other than
        torch's), then per grid input ``finite_difference/<name>/<tag>/input``,
        ``autograd/<name>/<tag>/loss`` and ``autograd/<name>/<tag>/grad_prediction``, per
        extreme input the last two; a failed ``…/<tag>/raised`` for a part that raised.
    """
    kind = loss_kind(kind, options)
    view = loss if isinstance(loss, LossView) else LossView(loss, name or one_line_label(loss),
                                                            per_sample=per_sample)
    name = view.name if name is None else name
    declared = _declared(view.loss, reduction)
    inputs = _inputs(prediction, target, also_at, extremes)
    evaluated, fits = [], []

    def measure():
        evaluated.extend(_evaluate(view, kind, item, backward=True) for item in inputs)
        stabilised = _stabilised(view, kind, evaluated, declared, name)
        if stabilised is not None:
            kinds[0] = stabilised
            evaluated[:] = [_weighed(stabilised, e) for e in evaluated]
        fits.append(_fit(evaluated, kinds[0], declared, view.per_sample))
        return [_normalisation_result(name, kinds[0], fits[0], declared)]

    kinds = [kind]
    results = guarded(f"{KIND}/{name}/raised", name, KIND, measure)
    if not fits:  # an input or the fit raised: the result above says so
        return results
    for item in evaluated:
        results += _input_checks(view, kinds[0], item, fits[0], name, seed)
    return results


def _stabilised(view, kind, evaluated, declared, name):
    """The stabilised kind a binary cross-entropy follows, measured (``STABILISERS`` at each
    of ``EPSILONS``, smallest ε first), where the plain formula's value or gradient checks
    fail at some input and the stabilised one's pass at every input, from the passes already
    made (no new call of the loss); else ``None``. A wrong gradient fits no stabiliser."""
    if kind.name != "bce" or kind.stabiliser or _all_pass(view, kind, evaluated, declared, name):
        return None
    dtype = evaluated[0].item.prediction.dtype
    for power in EPSILONS:  # each also as a float32 constant (torch's 1e-12f: 9.99999996e-13)
        for epsilon in dict.fromkeys((power, float(torch.tensor(power, dtype=torch.float32)))):
            rounded = torch.tensor(epsilon, dtype=dtype)
            low, high = float(rounded), float(1 - rounded)
            for family in STABILISERS:
                candidate = replace(kind, stabiliser=(family, epsilon, low, high))
                if _all_pass(view, candidate, [_weighed(candidate, e) for e in evaluated],
                             declared, name):
                    return candidate
    return None


def _all_pass(view, kind, evaluated, declared, name):
    """Whether the normalisation, value and gradient checks of ``kind`` pass at every
    input already evaluated (every one finite, with its backward)."""
    if not all(e.finite and not isinstance(e.protocol_pass, Exception) for e in evaluated):
        return False
    fit = _fit(evaluated, kind, declared, view.per_sample)
    return fit.normalisation is not None and all(
        result.passed for e in evaluated
        for result in _reference_checks(view, kind, e, fit, name, e.item.tag))


def _weighed(kind, evaluated):
    """``evaluated`` with S and T of ``kind`` (the loss's own value and pass kept)."""
    sums, magnitudes = _sums_and_magnitudes(kind, evaluated.item)
    return replace(evaluated, sums=sums, magnitudes=magnitudes)


def _sums_and_magnitudes(kind, item):
    """S and T of ``kind`` at ``item`` (one per replica), from float64 copies of its
    prediction and target."""
    wide_prediction, wide_target = _wide(item.prediction, item.target)
    terms = kind.terms(wide_prediction, wide_target)
    return (_unnormalised(kind, wide_prediction, wide_target).reshape(-1),
            kind.magnitude(wide_prediction, wide_target, terms).reshape(-1))


def _input_checks(view, kind, evaluated, fit, name, seed):
    """The group of one input: consistency (grid inputs only), value, gradient."""
    item = evaluated.item
    group = f"{name}/{item.tag}"
    results = []
    if not item.extreme:
        results += guarded(f"finite_difference/{group}/raised", name, "finite_difference",
                           lambda: check_backward(LossAsModule(view, item.target),
                                                  item.prediction, seed=seed, row_wise=False,
                                                  name=group))
    return results + guarded(f"{KIND}/{group}/raised", name, KIND,
                             lambda: _reference_checks(view, kind, evaluated, fit, name, group))


def _reference_checks(view, kind, evaluated, fit, name, group):
    """Value and gradient at one input against k·c·S and k·c·dS/dprediction."""
    item = evaluated.item
    got = evaluated.replayed_pass()
    factor = fit.scale * _candidates(kind, item.prediction.shape, view.per_sample)[fit.name]
    reference = (f"L = {fit.normalisation.describe()}" if fit.normalisation is not None else
                 f"no normalisation fits (see {KIND}/{name}/loss): compared with "
                 f"{fit.scale:.6g} × {_DIVISOR[fit.name]}, the ratio most inputs agree on")
    context = f"at {item.description}{_flat(view)}; {kind.label} loss, {reference}"
    value_tolerance = autograd_tolerance(computed_dtype(item.prediction, got.value),
                                         _elements(item.prediction) + ELEMENTWISE_TERMS,
                                         abs(factor) * float(evaluated.magnitudes.max()))
    sizes = prediction_sizes(item.prediction.shape,
                             "classes" if kind.inputs == "classes" else "outputs")
    where = item.description if item.extreme else ""
    value = compare(check_id=f"{KIND}/{group}/loss", module=name, kind=KIND,
                    expected=factor * evaluated.sums.reshape(got.value.shape),
                    got=got.value, atol=value_tolerance.atol, rtol=value_tolerance.rtol,
                    what="loss value", context=context, sizes=sizes, where=where)
    wide_prediction, wide_target = _wide(item.prediction, item.target)
    with torch.enable_grad():
        leaf = wide_prediction.clone().requires_grad_()
        (factor * _unnormalised(kind, leaf, wide_target)).sum().backward()
    rtol = _rtol(item.prediction, got.gradient)
    scale = 0.0 if item.extreme else float(leaf.grad.abs().max())
    gradient = compare(check_id=f"{KIND}/{group}/grad_prediction", module=name, kind=KIND,
                       expected=leaf.grad, got=got.gradient, atol=max(rtol * scale, EXACT_ATOL),
                       rtol=rtol, what="dL/dprediction",
                       context=context + ("; rtol alone: the elements of an extreme input "
                                          "span orders of magnitude" if item.extreme else ""),
                       sizes=sizes, inputs=item.prediction, input_name="prediction",
                       where=where)
    return [value, gradient]


def _flat(view):
    hooks = getattr(view, "hooks", None)
    return " (fed 1-D, declared loss_flat)" if hooks is not None and hooks.loss_flat else ""


def _describe_used(fit):
    text = ", ".join(e.item.tag for e in fit.used)
    if fit.left_out:
        text += (f"; left out, with no finite loss (their own results say why): "
                 f"{', '.join(fit.left_out)}")
    return text


def _normalisation_result(name, kind, fit, declared):
    """``autograd/<name>/loss``: the ratios L / (c·S) against the constant k of the fit, or
    a failure saying how far they vary."""
    check_id = f"{KIND}/{name}/loss"
    inf = float("inf")
    if not fit.used:
        return CheckResult(check_id, name, KIND, False, inf, inf, 0.0, inf,
                           f"{KIND} check FAILED for {name}, loss normalisation: no input gave "
                           f"a finite loss; {_describe_used(fit)}")
    if fit.normalisation is None:
        reason = (f"the declared reduction {declared!r} does not hold: L / (c·S) is "
                  f"{', '.join(f'{float(r):.6g}' for r in fit.ratios[declared])} at the "
                  "inputs checked, where it must be 1" if declared else _not_scaled(kind, fit))
        return CheckResult(check_id, name, KIND, False, inf, inf, fit.rtol, inf,
                           f"{KIND} check FAILED for {name}, loss normalisation: {reason}; "
                           f"inputs {_describe_used(fit)}")
    ratios = fit.ratios[fit.name]
    result = compare(check_id=check_id, module=name, kind=KIND,
                     expected=torch.full_like(ratios, fit.scale), got=ratios, atol=EXACT_ATOL,
                     rtol=fit.rtol, what="L / (c·S), one per input",
                     context=f"{kind.label} loss, normalisation "
                     f"{'declared ' + declared if declared else 'measured'}: "
                     f"{fit.normalisation.describe()}; inputs {_describe_used(fit)}")
    return replace(result, convention=_convention(kind, fit.normalisation, declared))


def _samples_as_inputs(samples):
    return _inputs(*samples[0], samples[1:], ())


def measure_normalisation(loss, samples, *, kind="mse", declared=None):
    """The ``Normalisation`` a loss follows over ``samples`` (module docstring).

    Args:
        loss: a ``LossView`` (or any loss with the protocol).
        samples: ``(prediction, target)`` pairs at several shapes ([batch, outputs]).
        kind: ``"mse"``, ``"cross_entropy"``, ``"bce"`` or a ``LossKind``.
        declared: a declared reduction's name, which must then hold.

    Raises:
        ValueError: no named reduction times a constant fits every sample (or one raised);
            the message gives how far the ratio L / S varies.
    """
    view = loss if isinstance(loss, LossView) else LossView(loss, one_line_label(loss))
    kind = loss_kind(kind)
    evaluated = [_evaluate(view, kind, item) for item in _samples_as_inputs(samples)]
    fit = _fit(evaluated, kind, declared, view.per_sample)
    if fit.normalisation is None or fit.left_out:
        raised = [e for e in evaluated if isinstance(e.protocol_pass, Exception)]
        if raised and not fit.used:
            raise ValueError(f"the loss raised at every input; at {raised[0].item.tag}: "
                             f"{raised[0].protocol_pass}")
        own = (f"; at {raised[0].item.tag} it raised: {raised[0].protocol_pass}" if raised
               else "")
        raise ValueError((_not_scaled(kind, fit) if fit.used else "no sample gave a finite "
                          "loss") + own)
    return fit.normalisation


def measured_reduction(loss, prediction, target, *, kind="mse"):
    """The named normalisation a loss applies at one point: ``"mean"``, ``"sum"``,
    ``"batch_mean"`` (module docstring), or ``None`` when it is none of them unscaled."""
    view = loss if isinstance(loss, LossView) else LossView(loss, one_line_label(loss))
    kind = loss_kind(kind)
    found = _fit([_evaluate(view, kind, grid_input(prediction, target))], kind, None,
                 view.per_sample).normalisation
    return found.name if found is not None and found.named else None


def _not_scaled(kind, fit):
    values = torch.cat([e.value for e in fit.used])
    ratios = values / torch.cat([e.sums for e in fit.used])
    left_out = (f" (left out, with no finite loss: {', '.join(fit.left_out)})"
                if fit.left_out else "")
    return (f"not a scaled {kind.label}: the ratio L / S of the loss to the sum of its terms "
            f"varies from {float(ratios.min()):.6g} to {float(ratios.max()):.6g} over the "
            f"inputs {', '.join(e.item.tag for e in fit.used)}{left_out}, where any named "
            "reduction (mean, sum, batch mean) times a constant would fit every one"
            + _where_it_breaks(kind, fit))


def _where_it_breaks(kind, fit):
    """"; the closest fit, <reduction> × k, holds at A, B and breaks at C (ratio r where it
    needs k)": the inputs that disagree with the fit most inputs agree on (``_fit``'s
    consensus; an input with replicas breaks it where any replica does)."""
    ratios = fit.ratios.get(fit.name)
    if ratios is None:
        return ""
    off, start = [], 0
    for evaluated in fit.used:
        count = evaluated.value.numel()
        here = ratios[start:start + count]
        start += count
        worst = float(here[(here - fit.scale).abs().argmax()])
        if abs(worst - fit.scale) > fit.rtol * abs(fit.scale):
            off.append((evaluated.item.tag, worst))
    held = [e.item.tag for e in fit.used if e.item.tag not in dict(off)]
    if not off or not held:
        return ""
    closest = Normalisation(kind.name, fit.name, fit.scale).describe()
    return (f"; the closest fit, {closest}, holds at {', '.join(held)} and breaks at "
            + ", ".join(f"{tag} (ratio {ratio:.6g} where it needs {fit.scale:.6g})"
                        for tag, ratio in off))


def _convention(kind, normalisation, declared):
    """A sentence when the loss is not normalised as torch's default ``"mean"`` or is
    stabilised (``STABILISERS``)."""
    stabilised = (f"stabilised: {kind.stabilised}, measured (where the plain formula's value "
                  f"or gradient differs)" if kind.stabiliser else "")
    if normalisation.name == "mean" and normalisation.named:
        return stabilised
    torch_rule = "B" if kind.name == "cross_entropy" else "B × outputs"
    text = (f"normalisation: {normalisation.describe()}, where torch's default "
            f"(reduction='mean') divides by {torch_rule}")
    text += f"; declared {declared!r}" if declared else ""
    return text + (f"; {stabilised}" if stabilised else "")


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
    rtol = _rtol(prediction, got.gradient)
    return _gradient_result(REPORT_LITERAL_ID, repr(ReportLiteralMSE()), expected.gradient,
                            got.gradient, rtol, context)
