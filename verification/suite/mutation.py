"""Mutation self-test: plant known bugs in refnet, one at a time, and count those the suite kills.

A ``Mutant`` is one plausible developer mistake in a backward pass, a loss gradient, an
optimiser step or the gradient bookkeeping, written as a minimal edit of the real method.
``Mutant.applied()`` swaps the method in memory (``unittest.mock.patch.object``) and puts the
original back on exit, even when the body raises: the source tree is never touched.

``run_mutation`` first runs the suite unmutated (every check must pass, or the self-test would
mean nothing), then applies each mutant and runs the suite again: a mutant is *killed* when at
least one check fails, and the result names the check kinds that caught it. To keep the run
short, each mutant runs only the cases that exercise the class it edits (``Case.classes``
meets ``Mutant.exercised_by``); ``by_target=False`` runs every case for every mutant.

The mutants that rewrite a whole method do so through a shared skeleton (``_linear_backward``,
``_mse_backward``, ``_adam_step``) with one piece swapped; ``CONTROLS`` are the skeletons with
no piece swapped, which must survive, so a kill is due to the planted edit, not the rewrite.

Gradients overwritten instead of accumulated (``linear-overwrite``) are invisible to a check
that runs backward once after ``zero_grad``, and to training, which zeroes before every
backward; ``check_accumulation`` (verification/checks/accumulation.py: twice without zeroing,
then zero), part of every target's cases, catches it.

``detection_power`` measures, per check kind, the smallest relative error of a gradient that
the kind flags: every Linear weight gradient is scaled by ``1 + δ`` for δ = 10⁻¹ … 10⁻¹².
"""

import math
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from unittest import mock

import torch

import refnet
from verification.checks.finite_difference import check_backward
from verification.checks.reference import check_against_reference
from verification.suite import registry
from verification.suite.registry import refnet_trajectory, run_cases
from verification.targets.refnet_target import refnet_component

__all__ = [
    "Mutant", "MUTANTS", "CONTROLS", "UnmutatedSuiteFails", "cases_for", "first_failure",
    "run_mutation", "detection_power", "DETECTION_DECADES",
]

F64 = torch.float64
DETECTION_DECADES = range(1, 13)
"""δ = 10⁻ᵏ for these k in ``detection_power``."""
_EXAMPLES = 3
"""Failed check ids kept per mutant in the ``run_mutation`` record."""


@dataclass(frozen=True)
class Mutant:
    """One planted bug.

    Attributes:
        id: short and stable, e.g. ``"linear-bias-mean"``.
        description: the mistake, in one line.
        owner: the class whose attribute is replaced.
        attribute: the method's name on ``owner``.
        mutate: ``mutate(original) -> replacement``: the buggy method, given the real one.
        exercised_by: the classes whose registry cases can see the bug; ``(owner,)`` if empty.
    """

    id: str
    description: str
    owner: type
    attribute: str
    mutate: Callable
    exercised_by: tuple = ()

    @property
    def target(self):
        """``"Class.method"``."""
        return f"{self.owner.__name__}.{self.attribute}"

    @property
    def classes(self):
        """The classes whose cases run for this mutant."""
        return self.exercised_by or (self.owner,)

    @contextmanager
    def applied(self):
        """Replace the method in memory for the ``with`` block; restore it on any exit."""
        original = getattr(self.owner, self.attribute)
        with mock.patch.object(self.owner, self.attribute, self.mutate(original)):
            yield self


class UnmutatedSuiteFails(RuntimeError):
    """The suite fails without any mutant: a mutation score would mean nothing."""


def _replaced_by(function):
    """``mutate`` for a mutant that ignores the original method."""
    return lambda original: function


# --- Linear.backward (eqs. 2-4) -----------------------------------------------------------------

def _weight_gradient(layer, grad_output):
    """Eq. 3: gᵀ x, summed over the batch."""
    return grad_output.transpose(-1, -2).matmul(layer._input)


def _bias_gradient(layer, grad_output):
    """Eq. 4: g summed over the batch."""
    return grad_output.sum(dim=-2)


def _input_gradient(layer, grad_output):
    """Eq. 2: g w."""
    return grad_output.matmul(layer.weight)


def _linear_backward(*, weight=_weight_gradient, bias=_bias_gradient, grad_input=_input_gradient,
                     store=torch.Tensor.add_):
    """``Linear.backward`` from its three formulas, each ``(layer, g) -> tensor``, and the
    in-place ``store`` that puts dL/dθ into the gradient tensors."""
    def backward(self, grad_output):
        store(self.grad_weight, weight(self, grad_output))
        store(self.grad_bias, bias(self, grad_output))
        return grad_input(self, grad_output)
    return backward


def _linear(mutant_id, description, **pieces):
    return Mutant(mutant_id, description, refnet.Linear, "backward",
                  _replaced_by(_linear_backward(**pieces)))


# --- MSELoss.backward ---------------------------------------------------------------------------

def _mse_scale(loss):
    """The real factor: 2/N for the mean, 2 for the sum."""
    return 2 / loss._count() if loss.reduction == "mean" else 2


def _mse_backward(scale=_mse_scale):
    """``MSELoss.backward`` as ``scale(loss) · (x − t)``."""
    def backward(self):
        return scale(self) * self._difference
    return backward


def _mse(mutant_id, description, scale):
    return Mutant(mutant_id, description, refnet.MSELoss, "backward",
                  _replaced_by(_mse_backward(scale)))


# --- optimisers ---------------------------------------------------------------------------------

def _sgd_ascent(self):
    for value, gradient in self.params:
        value.add_(gradient, alpha=self.lr)


def _adam_denominator(second, correction, eps):
    """The real one: sqrt(v) / sqrt(1 − β₂ᵗ) + ε."""
    return (second.sqrt() / math.sqrt(correction)).add_(eps)


def _adam_step(*, betas=lambda adam: adam.betas, correction=lambda beta, steps: 1 - beta ** steps,
               denominator=_adam_denominator):
    """``Adam.step`` with its betas, its bias correction ``(β, t) -> 1 − βᵗ`` and its
    denominator ``(v, 1 − β₂ᵗ, ε) -> …`` as pieces."""
    def step(self):
        self.steps += 1
        beta1, beta2 = betas(self)
        step_size = self.lr / correction(beta1, self.steps)
        for (value, gradient), first, second in zip(
                self.params, self._first_moments, self._second_moments, strict=True):
            first.mul_(beta1).add_(gradient, alpha=1 - beta1)
            second.mul_(beta2).addcmul_(gradient, gradient, value=1 - beta2)
            value.addcdiv_(first, denominator(second, correction(beta2, self.steps), self.eps),
                           value=-step_size)
    return step


def _adam(mutant_id, description, **pieces):
    return Mutant(mutant_id, description, refnet.Adam, "step", _replaced_by(_adam_step(**pieces)))


# --- containers and bookkeeping -----------------------------------------------------------------

def _backward_in_forward_order(self, grad_output):
    for module in self.modules:
        grad_output = module.backward(grad_output)
    return grad_output


def _zero_grad_swapped_pair(self):
    for gradient, _ in self.param():
        gradient.zero_()


def _dropout_ignoring_mode(original):
    """Dropout whose ``_apply`` draws a mask whatever the mode."""
    def apply(self, x):
        training, self.training = self.training, True
        try:
            return original(self, x)
        finally:
            self.training = training
    return apply


MUTANTS = (
    _linear("linear-input-transposed", "dL/dx = g wᵀ instead of g w (a transpose too many)",
            grad_input=lambda layer, g: g.matmul(layer.weight.transpose(-1, -2))),
    _linear("linear-weight-transposed", "dL/dw = xᵀ g instead of gᵀ x (the transpose of eq. 3)",
            weight=lambda layer, g: layer._input.transpose(-1, -2).matmul(g)),
    _linear("linear-input-sign", "dL/dx = −g w (sign error)",
            grad_input=lambda layer, g: -g.matmul(layer.weight)),
    _linear("linear-bias-mean", "dL/db averaged over the batch instead of summed",
            bias=lambda layer, g: g.mean(dim=-2)),
    _linear("linear-weight-mean", "dL/dw divided by the batch size (batch mean, not sum)",
            weight=lambda layer, g: _weight_gradient(layer, g) / g.shape[-2]),
    _linear("linear-bias-axis-0", "dL/db summed over axis 0: the batch, but with replicas the "
            "replica axis", bias=lambda layer, g: g.sum(dim=0)),
    _linear("linear-overwrite", "dL/dθ overwritten (copy_) instead of accumulated (add_)",
            store=torch.Tensor.copy_),
    Mutant("relu-kink-one", "ReLU derivative 1 at x = 0 (x >= 0 instead of x > 0)", refnet.ReLU,
           "_apply", _replaced_by(lambda self, x: (x.clamp_min(0), (x >= 0).to(x.dtype)))),
    Mutant("relu-slope-one", "ReLU derivative 1 for x <= 0 too (the mask forgotten)",
           refnet.ReLU, "_slope", _replaced_by(lambda self, positive: torch.ones_like(positive))),
    Mutant("tanh-slope-at-input", "Tanh derivative 1 − x² (caches x instead of y = tanh x)",
           refnet.Tanh, "_apply", _replaced_by(lambda self, x: (torch.tanh(x), x))),
    Mutant("tanh-slope-unsquared", "Tanh derivative 1 − y instead of 1 − y²", refnet.Tanh,
           "_slope", _replaced_by(lambda self, y: 1 - y)),
    Mutant("sigmoid-slope-plus", "Sigmoid derivative σ(1 + σ) instead of σ(1 − σ)",
           refnet.Sigmoid, "_slope", _replaced_by(lambda self, y: y * (1 + y))),
    Mutant("dropout-backward-unscaled", "Dropout backward multiplies by m, without 1/(1 − p)",
           refnet.Dropout, "_slope", _replaced_by(lambda self, mask: (mask != 0).to(mask.dtype))),
    Mutant("dropout-active-in-eval", "Dropout drops units in evaluation mode too",
           refnet.Dropout, "_apply", _dropout_ignoring_mode),
    _mse("mse-mean-unnormalised", "mean loss with gradient 2(x − t): the 1/N missing",
         lambda loss: 2),
    _mse("mse-sum-without-2", "sum loss with gradient (x − t): the factor 2 missing",
         lambda loss: 1 if loss.reduction == "sum" else _mse_scale(loss)),
    _mse("mse-mean-over-batch", "mean loss gradient divided by the batch size, not batch × "
         "outputs", lambda loss: 2 / loss._difference.shape[-2] if loss.reduction == "mean"
         else 2),
    Mutant("sgd-ascent", "SGD step θ ← θ + η g (sign of the update)", refnet.SGD, "step",
           _replaced_by(_sgd_ascent)),
    _adam("adam-no-bias-correction", "Adam without bias correction (1 − βᵗ taken as 1)",
          correction=lambda beta, steps: 1.0),
    _adam("adam-betas-swapped", "Adam with β₁ and β₂ swapped",
          betas=lambda adam: adam.betas[::-1]),
    _adam("adam-eps-inside-sqrt", "Adam with ε inside the square root: sqrt(v̂ + ε)",
          denominator=lambda second, correction, eps: (second / correction + eps).sqrt()),
    Mutant("sequential-forward-order", "Sequential backward runs the modules in forward order",
           refnet.Sequential, "backward", _replaced_by(_backward_in_forward_order)),
    Mutant("zero-grad-swapped-pair", "zero_grad unpacks (value, gradient) the wrong way round: "
           "zeroes the parameters, keeps the gradients", refnet.Module, "zero_grad",
           _replaced_by(_zero_grad_swapped_pair),
           exercised_by=(refnet.Linear, refnet.SGD, refnet.Adam)),
)
"""The catalogue: each must be killed by the suite."""

CONTROLS = (
    _linear("control-linear", "Linear.backward rebuilt from its skeleton, no piece swapped"),
    _mse("control-mse", "MSELoss.backward rebuilt from its skeleton, no piece swapped",
         _mse_scale),
    _adam("control-adam", "Adam.step rebuilt from its skeleton, no piece swapped"),
)
"""The skeletons unedited: each must survive, or the kills above prove nothing."""


# --- running ------------------------------------------------------------------------------------

def cases_for(mutant, selected):
    """The cases of ``selected`` that exercise a class the mutant edits."""
    return [case for case in selected if set(case.classes) & set(mutant.classes)]


def first_failure(selected):
    """The first failing ``CheckResult`` of ``selected``, run case by case; ``None`` if all pass."""
    for case in selected:
        failed = [result for result in run_cases([case]) if not result.passed]
        if failed:
            return failed[0]
    return None


def _require_passing(selected):
    failed = [result for result in run_cases(selected) if not result.passed]
    if failed:
        raise UnmutatedSuiteFails(
            f"the suite fails without any mutant ({len(failed)} check(s), first "
            f"{failed[0].id}: {failed[0].detail}); fix it before reading a mutation score")


def _record(mutant, selected):
    """Apply the mutant, run ``selected``, describe what caught it."""
    with mutant.applied():
        results = run_cases(selected)
    failed = [result for result in results if not result.passed]
    return {"id": mutant.id, "description": mutant.description, "target": mutant.target,
            "killed": bool(failed), "caught_by": sorted({result.kind for result in failed}),
            "checks_run": len(results), "checks_failed": len(failed),
            "examples": [result.id for result in failed[:_EXAMPLES]]}


def run_mutation(cases=None, progress=None, *, mutants=MUTANTS, by_target=True,
                 unmutated_passed=False):
    """Run the suite unmutated, then once per mutant; count the mutants it kills.

    Args:
        cases: the suite, a list of ``Case``; ``registry.cases()`` when ``None``.
        progress: optional ``progress(mutant_id)``, called before each mutant.
        mutants: the mutants to plant, ``MUTANTS`` by default.
        by_target: run, per mutant, only the cases whose classes meet ``Mutant.classes``
            (about 8 s in all on a 2-core machine with ``torch.set_num_threads(1)``; several
            times longer with two OpenMP threads on a busy machine, as these tensors are too
            small to split); ``False`` runs every case for every mutant.
        unmutated_passed: the caller has just run these very cases unmutated and every
            check passed (``refnet verify``'s checks stage); skips running them again.

    Returns:
        A JSON-serialisable dict: ``total``, ``killed``, ``survived`` (ids), ``seconds``,
        ``cases_per_mutant`` and ``mutants``, one record per mutant with ``id``,
        ``description``, ``target``, ``killed``, ``caught_by`` (the kinds of the failed
        checks; ``error`` where a whole case raised), ``checks_run``, ``checks_failed`` and
        ``examples`` (a few failed ids).

    Raises:
        UnmutatedSuiteFails: when a check fails without any mutant.
    """
    start = time.perf_counter()
    selected = registry.cases() if cases is None else list(cases)
    if not unmutated_passed:
        _require_passing(selected)
    records = []
    for mutant in mutants:
        if progress is not None:
            progress(mutant.id)
        records.append(_record(mutant, cases_for(mutant, selected) if by_target else selected))
    return {"total": len(records), "killed": sum(record["killed"] for record in records),
            "survived": [record["id"] for record in records if not record["killed"]],
            "seconds": time.perf_counter() - start,
            "cases_per_mutant": "those exercising the edited class" if by_target else "all",
            "mutants": records}


# --- detection power ----------------------------------------------------------------------------

def _scaled_weight_gradients(delta):
    """Every Linear's weight gradient scaled by ``1 + delta`` after the real backward."""
    def mutate(original):
        def backward(self, grad_output):
            grad_input = original(self, grad_output)
            self.grad_weight.mul_(1 + delta)
            return grad_input
        return backward
    return Mutant(f"weight-gradient-times-(1+{delta:g})", "dL/dw scaled by 1 + δ",
                  refnet.Linear, "backward", mutate)


def _network_and_data():
    generator = torch.Generator().manual_seed(0)
    network = refnet.report_network("tanh", dtype=F64, generator=generator)
    x, labels = refnet.disk_dataset(40, generator=generator, dtype=F64)
    return network, x, refnet.one_hot(labels, dtype=F64)


_PROBES = {
    "finite_difference": lambda model, x, targets: check_backward(refnet_component(model),
                                                                  x[:8]),
    "autograd": lambda model, x, targets: check_against_reference(refnet_component(model),
                                                                  x[:8]),
    "trajectory": lambda model, x, targets: refnet_trajectory(model, x, targets, optimizer="sgd",
                                                              lr=0.05, steps=20),
}
"""Per kind, the check run on the report network (tanh, float64) and 40 disk samples."""


def _flags(probe, delta):
    with _scaled_weight_gradients(delta).applied():
        return not all(result.passed for result in probe(*_network_and_data()))


def _smallest_detected(kind, decades):
    smallest = None
    for exponent in decades:
        delta = 10.0 ** -exponent
        if not _flags(_PROBES[kind], delta):
            break
        smallest = delta
    return {"kind": kind, "smallest_detected": smallest,
            "method": ("every Linear weight gradient of the report network (tanh, float64) "
                       f"scaled by 1 + δ, δ = 1e-{decades[0]} … 1e-{decades[-1]}: the smallest "
                       "δ flagged with every larger δ flagged too (None: not even the first)")}


def detection_power(decades=DETECTION_DECADES):
    """The smallest relative gradient error each check kind flags.

    Args:
        decades: exponents k of the tried δ = 10⁻ᵏ, increasing.

    Returns:
        One ``{"kind", "smallest_detected", "method"}`` per kind (finite_difference, autograd,
        trajectory); ``smallest_detected`` is a float, or ``None`` when the largest δ passes.
    """
    return [_smallest_detected(kind, decades) for kind in _PROBES]
