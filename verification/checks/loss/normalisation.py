"""How a loss is normalised, measured over every input: L = k·c(shape)·S.

S is the unnormalised sum of the loss terms (``formulas.py``), c a named reduction's factor —
``"sum"`` (1), ``"mean"`` (÷ the number of terms: B for cross-entropy, B × outputs for the
others, as torch) or ``"batch_mean"`` (÷ B) — and k a constant. The ratio
r_i = L_i / (c_i·S_i) is measured at every input with a finite loss; a named reduction fits
when every r_i equals one k within R (below), k being one of the r_i (1 when within R of 1);
among several, the one with k nearest 1. Without a fit, the k most inputs agree on is the
reference of the value and gradient checks, so that the inputs which differ from it are the
ones that fail. k ≠ 1 is a convention (½·MSE), reported in ``convention``, where k > 0: a
negated loss (k < 0) is no convention, since descending it maximises the loss it negates, and
fails with "a negated loss"; a ratio no named
reduction times a constant explains fails with "not a scaled cross-entropy: the ratio L / S
varies from a to b" (a sigmoid inside a "cross-entropy", a 1/N at some shapes only). A
DECLARED reduction must hold with k = 1. The result is ``autograd/<name>/loss``, a fact or a
failure.

Ratio tolerance: r_i has the relative error of its value, rtol_i·(1 + T_i / S_i) (rtol_i and
T_i as ``formulas.py`` derives them), and k is one r_j compared with all:
R = 2·max_i rtol_i·(1 + T_i / S_i).
"""

import math
from dataclasses import dataclass, replace

import torch

from verification.checks.compare import compare
from verification.checks.loss.evaluation import evaluate
from verification.checks.loss.formulas import KIND
from verification.checks.loss.inputs import checked_inputs, grid_input
from verification.checks.reference import EXACT_ATOL
from verification.checks.result import CheckResult
from verification.targets.protocol import LossView, one_line_label
from verification.vocabulary.losses import LossKind, loss_kind

__all__ = ["NAMED", "DIVISOR", "candidates", "Normalisation", "as_normalisation", "Fit",
           "fit_normalisation", "declared_reduction", "normalisation_result",
           "measure_normalisation", "measured_reduction"]


NAMED = ("mean", "sum", "batch_mean")
"""The named reductions, in the order the fit tries them (an earlier one wins a tie)."""
DIVISOR = {"sum": "the sum of the loss terms", "batch_mean": "the sum of the loss terms "
           "divided by the batch size only", "mean": "the mean of the loss terms"}
"""Each named reduction in words, for messages."""


def candidates(kind, shape, per_sample):
    """Named reductions → factor c of S at a prediction ``shape`` (module docstring); per
    sample, B counts as 1. ``kind`` is a ``LossKind`` or its name."""
    kind = kind if isinstance(kind, LossKind) else LossKind(kind)
    batch = 1 if per_sample else shape[-2]
    return {"mean": 1.0 / kind.count(shape, per_sample), "sum": 1.0, "batch_mean": 1.0 / batch}


@dataclass(frozen=True)
class Normalisation:
    """How a loss is normalised: L = ``scale`` · c(shape) · S, c the named reduction ``name``'s
    factor (``candidates``) and ``scale`` a constant (1 for a named reduction; ½ for
    ½·MSE, …), measured to hold at several inputs and shapes (``measure_normalisation``)."""

    kind: str
    name: str
    scale: float = 1.0
    per_sample: bool = False

    def factor(self, shape):
        """c of L = c·S at a prediction of ``shape`` ([…, B, outputs])."""
        return self.scale * candidates(self.kind, shape, self.per_sample)[self.name]

    @property
    def named(self):
        """Whether this is one of the named reductions, unscaled."""
        return self.scale == 1.0

    def describe(self):
        text = DIVISOR[self.name]
        return text if self.named else f"{self.scale:.6g} × {text}"


def as_normalisation(reduction, kind="mse"):
    """A ``Normalisation`` from itself or from a reduction's name (``"mean"``, …)."""
    return reduction if isinstance(reduction, Normalisation) else Normalisation(kind, reduction)


@dataclass(frozen=True)
class Fit:
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
    return torch.cat([torch.full_like(e.sums, candidates(kind, e.item.prediction.shape,
                                                         per_sample)[name])
                      for e in evaluated])


def fit_normalisation(evaluated, kind, declared, per_sample):
    """The named reduction times a constant k that the most finite inputs agree on, within R
    (module docstring); it fits when every one does. Each input's ratio is tried as k (1 when
    within R of 1, only 1 for a declared reduction); among equally many, k nearest 1. Without
    a fit, the consensus is the reference of the inputs' value and gradient checks, so those
    that differ from it are the ones that fail."""
    used = [e for e in evaluated if e.finite]
    left_out = [e.item.tag for e in evaluated if not e.finite]
    names = (declared,) if declared else NAMED
    if not used:
        return Fit(None, names[0], 1.0, {}, 0.0, used, left_out)
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
                     if -disagree == len(values) and scale > 0 else None)
    return Fit(normalisation, name, scale, ratios, rtol, used, left_out)


def declared_reduction(loss, reduction):
    if reduction is not None:
        return reduction
    attribute = getattr(loss, "reduction", None)
    return attribute if attribute in NAMED else None


def normalisation_result(name, kind, fit, declared):
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
                  "inputs checked, where it must be 1" if declared else _no_fit(kind, fit))
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


def _describe_used(fit):
    text = ", ".join(e.item.tag for e in fit.used)
    if fit.left_out:
        text += (f"; left out, with no finite loss (their own results say why): "
                 f"{', '.join(fit.left_out)}")
    return text


def _samples_as_inputs(samples):
    return checked_inputs(*samples[0], samples[1:], ())


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
    evaluated = [evaluate(view, kind, item) for item in _samples_as_inputs(samples)]
    fit = fit_normalisation(evaluated, kind, declared, view.per_sample)
    if fit.normalisation is None or fit.left_out:
        raised = [e for e in evaluated if isinstance(e.protocol_pass, Exception)]
        if raised and not fit.used:
            raise ValueError(f"the loss raised at every input; at {raised[0].item.tag}: "
                             f"{raised[0].protocol_pass}")
        own = (f"; at {raised[0].item.tag} it raised: {raised[0].protocol_pass}" if raised
               else "")
        raise ValueError((_no_fit(kind, fit) if fit.used else "no sample gave a finite "
                          "loss") + own)
    return fit.normalisation


def measured_reduction(loss, prediction, target, *, kind="mse"):
    """The named normalisation a loss applies at one point: ``"mean"``, ``"sum"``,
    ``"batch_mean"`` (module docstring), or ``None`` when it is none of them unscaled."""
    view = loss if isinstance(loss, LossView) else LossView(loss, one_line_label(loss))
    kind = loss_kind(kind)
    found = fit_normalisation([evaluate(view, kind, grid_input(prediction, target))], kind,
                              None, view.per_sample).normalisation
    return found.name if found is not None and found.named else None


def _no_fit(kind, fit):
    """Why no normalisation fits the inputs used: a negated loss, or no constant at all."""
    return _negated(kind, fit) if fit.scale < 0 else _not_scaled(kind, fit)


def _negated(kind, fit):
    return (f"a negated loss: L = {fit.scale:.6g} × {DIVISOR[fit.name]} (the {kind.label}'s "
            "terms), so gradient descent on it maximises the loss it negates"
            + _where_it_breaks(kind, fit))


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
    needs k)": the inputs that disagree with the fit most inputs agree on (``fit_normalisation``'s
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
