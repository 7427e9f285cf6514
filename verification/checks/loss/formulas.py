"""What a loss must equal, in float64: the terms of each kind, their sum S, the scale T of the
round-off of that sum, and the rtol a loss value is held to.

S, the unnormalised sum of the loss terms: Σ (x − t)² for MSE; Σ over samples of
−Σ_c t log softmax for cross-entropy (index targets one-hot); Σ −[t log p + (1 − t) log(1 − p)]
for binary cross-entropy; the torch function with ``reduction="sum"`` for the others. The BCE
reference is the formula itself, differentiated by autograd, not ``F.binary_cross_entropy``,
whose backward divides by max(p(1 − p), 1e-12) and is therefore 1e-12 off, relatively, at
p = 1e-12. Under a stabiliser (``STABILISERS`` of verification/vocabulary/losses.py, with its
ε) it is the formula so kept finite: log(p + ε) and log(1 − p + ε); p clamped to [ε, 1 − ε];
or the exact value with the gradient (p − t) / max(p(1 − p), ε).

Tolerances. u is the unit round-off of the dtype the compared tensor was computed in (float32
when the prediction or that tensor is: a loss that computes in float32 inside a float64 check
is held to float32's round-off). Both sides evaluate a sum of N terms (N the elements of one
replica's prediction), each a few operations, in their own order: ``rtol =
SAFETY·(N + ELEMENTWISE_TERMS)·u`` (``autograd_tolerance``, verification/checks/reference.py).

- Value: the error of the sum is at most n·u·Σ(term error scales) = n·u·k·c·T, T
  (``magnitude``) bounding each term's own error in units of u: MSE, T = S (x − t,
  then its square: relative errors); cross-entropy, T = Σ_b (max_j |x_bj| + |x_b,target| +
  log C) (log-sum-exp minus the target logit cancels: its error is relative to the logits, not
  to the loss, 0 at a confident right answer); BCE, T = S + N (the log of a rounded p or
  1 − p: an absolute u per term besides the relative one); the others, T = S +
  2·max(1, δ)·Σ (|x| + |t|) (d = x − t carries u(|x| + |t|), a term's slope in d is at most
  max(1, δ), and max(x, 0) − x·t of a logit loss cancels with |t| ≤ 1). ``atol = rtol·k·c·T``.
"""

import math

import torch
from torch.nn import functional

from verification.checks.compare import computed_dtype
from verification.checks.reference import ELEMENTWISE_TERMS, autograd_tolerance

__all__ = ["KIND", "torch_mse", "loss_terms", "magnitude", "unnormalised",
           "sums_and_magnitudes", "wide", "elements", "loss_rtol"]

KIND = "autograd"
"""The kind of the loss check's results: compared with autograd's gradient of the formulas."""


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


def loss_terms(kind, prediction, target):
    """The loss terms of ``kind`` (a ``LossKind``) at float64 tensors, unreduced: one per row
    for cross-entropy ([…, B]), one per element otherwise (differentiable)."""
    if kind.name == "mse":
        return (prediction - target) ** 2
    if kind.name == "bce":  # the formula, not F.binary_cross_entropy (module docstring)
        return _bce_terms(prediction, target, kind.stabiliser)
    if kind.name == "cross_entropy":
        if target.dtype == torch.int64:
            target = functional.one_hot(target, prediction.shape[-1]).to(prediction.dtype)
        return -(target * functional.log_softmax(prediction, dim=-1)).sum(dim=-1)
    return getattr(functional, kind.name)(prediction, target, reduction="none",
                                          **dict(kind.options))


def magnitude(kind, prediction, target, terms):
    """T per replica: the scale of the round-off of the sum of ``terms`` (module docstring),
    from float64 tensors."""
    if kind.name == "mse":
        return _total(terms)
    if kind.name == "bce":
        return _total(terms + 1)
    if kind.name == "cross_entropy":
        if target.dtype == torch.int64:
            target = functional.one_hot(target, prediction.shape[-1]).to(prediction.dtype)
        row = (prediction.abs().amax(dim=-1) + (target * prediction).abs().sum(dim=-1)
               + math.log(prediction.shape[-1]))
        return row.sum(dim=-1)
    slope = 2 * max(1.0, kind.threshold)
    return _total(terms.abs() + slope * (prediction.abs() + target.abs()))


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


def unnormalised(kind, prediction, target):
    """S: the sum of the loss terms per replica (0-d, or [R]), in float64, differentiable."""
    terms = loss_terms(kind, prediction, target)
    return terms.sum(dim=-1) if kind.name == "cross_entropy" else _total(terms)


def sums_and_magnitudes(kind, item):
    """S and T of ``kind`` at ``item`` (one per replica), from float64 copies of its
    prediction and target."""
    wide_prediction, wide_target = wide(item.prediction, item.target)
    terms = loss_terms(kind, wide_prediction, wide_target)
    return (unnormalised(kind, wide_prediction, wide_target).reshape(-1),
            magnitude(kind, wide_prediction, wide_target, terms).reshape(-1))


def wide(prediction, target):
    """Detached float64 copies of ``prediction`` and ``target`` (class indices stay int64)."""
    wide_target = target.detach() if target.dtype == torch.int64 else target.detach().to(
        torch.float64)
    return prediction.detach().to(torch.float64), wide_target


def elements(prediction):
    """N: the elements of one replica's prediction (batch × outputs)."""
    return prediction.shape[-2] * prediction.shape[-1]


def loss_rtol(prediction, computed):
    """rtol of a loss value or gradient: n = N + ``ELEMENTWISE_TERMS`` terms, in the dtype
    ``computed`` was computed in (float32 when the prediction or it is)."""
    return autograd_tolerance(computed_dtype(prediction, computed),
                              elements(prediction) + ELEMENTWISE_TERMS, 0.0).rtol
