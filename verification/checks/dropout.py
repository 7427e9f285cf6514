"""Dropout checks (report section 2.7.2) on any framework: drop rate, rescale, fresh masks,
backward under the same mask, evaluation mode.

Everything is read from the module's outputs on positive inputs (no zeros, so ``y == 0`` means
dropped, and ``y / x`` is the factor the forward applied); nothing depends on the module's
attributes, so the same check judges refnet and any other framework. ``p`` is the DROP
probability.

1. Drop rate (kind ``statistical``): the dropped count D of n elements is Binomial(n, p). The
   check passes when |D/n − p| ≤ z·sqrt(p(1 − p)/n) with z = ``Z_THRESHOLD`` = 5, a two-sided
   false-alarm probability of 5.7·10⁻⁷ under the normal approximation (n·p·(1 − p) ≫ 1 for the
   default n = 10⁵ and 0.01 ≤ p ≤ 0.99); the count's z-score goes into the detail. Keep and
   drop probabilities swapped read 1 − p.
2. Fresh masks (kind ``statistical``): two forwards on the same input drop the same unit with
   probability p² when masks are independent (and p when a mask is reused), held to the same
   z-threshold with sqrt(p²(1 − p²)/n).
3. Kept scale (kind ``property``): every output is 0 or x / (1 − p). The module rounds about
   three times (1 − p, its inverse, the product with x), so rtol = 4u of its dtype and dropped
   units must be exactly 0.
4. Backward under the same mask (kind ``property``): after a forward, ``backward(g)`` must be
   g ⊙ (y / x), the factor that forward applied (rtol = 4u: the module's g·s against
   g·(x·s)/x).
5. Evaluation mode (kind ``property``), after a training-mode forward and backward: forward
   and backward are exactly the identity (``eval-forward``, ``eval-backward``). The comparison
   is exact, so any nonzero difference fails: a backward that still multiplies by the last
   training mask (a zero where a unit was dropped, 1/(1 − p) where kept) is off by the whole
   gradient there, and the message names the stale mask when the result is dL/dy times it.

Detection power (``CheckResult.detectable``: the relative error of the compared tensor's
largest element sure to fail; measured over every case of refnet and of the ``float32``
fixture, the README's table, asserted by tests/test_detection_power.py with an error of that
size planted): ``property``: float64 1e-15, float32 5e-07 (backward under the mask; evaluation
mode exact); ``statistical``: 0.12 of the compared statistic in both dtypes (the fresh-mask
overlap against its binomial spread at 20 000 units).
"""

import math

import torch

from verification.checks.compare import EXACT, compare
from verification.checks.reference import guarded, unit_roundoff, upstream_gradient
from verification.targets.spec import as_component

__all__ = ["Z_THRESHOLD", "check_dropout"]

Z_THRESHOLD = 5.0
"""Standard deviations allowed to a statistical check: false alarms with probability 5.7·10⁻⁷."""
_ROW = 100
"""Width of the rows of the statistical input."""


def _positive_input(shape, like, seed):
    """Values uniform in [0.5, 1.5) shaped ``shape``, dtype and device of ``like``: no zeros.
    Drawn on the CPU from ``seed``, so any device sees the same."""
    generator = torch.Generator().manual_seed(seed)
    values = 0.5 + torch.rand(shape, generator=generator, dtype=like.dtype)
    return values.to(like.device)


def _proportion_check(check_id, module, what, count, total, probability):
    """``count / total`` against ``probability`` with the z-threshold of a binomial count."""
    sigma = math.sqrt(probability * (1 - probability) / total)
    deviation = count / total - probability
    z_score = deviation / sigma if sigma else (0.0 if deviation == 0 else math.copysign(
        math.inf, deviation))
    context = (f"{count} of {total}, allowed ±{Z_THRESHOLD:g}σ, z = {z_score:+.2f} "
               f"(σ = sqrt(p(1 − p)/n) = {sigma:.3g})")
    spread = Z_THRESHOLD * sigma
    return compare(check_id=check_id, module=module, kind="statistical",
                   expected=torch.tensor(probability, dtype=torch.float64),
                   got=torch.tensor(count / total, dtype=torch.float64),
                   atol=max(spread, EXACT), rtol=0.0, what=what, context=context)


def _statistical_checks(view, p, x, name):
    view.mode(True)
    output = view.forward(x)
    second = view.forward(x)
    dropped, both = int((output == 0).sum()), int(((output == 0) & (second == 0)).sum())
    kept = output != 0
    return [
        _proportion_check(f"statistical/{name}/drop-rate", name, "fraction of dropped units "
                          f"(p = {p:g} is the drop probability)", dropped, output.numel(), p),
        _proportion_check(f"statistical/{name}/fresh-mask", name,
                          "fraction dropped by two successive forwards", both, x.numel(), p * p),
        compare(check_id=f"property/{name}/kept-scale", module=name, kind="property",
                expected=torch.where(kept, x.to(torch.float64) / (1 - p), 0.0), got=output,
                atol=EXACT, rtol=4 * unit_roundoff(output.dtype),
                what="output: 0 or x / (1 - p)", context=f"p={p}, {x.numel()} units"),
    ]


def _backward_check(view, x, seed, name):
    view.mode(True)
    output = view.forward(x)
    grad_output = upstream_gradient(output, seed)
    factor = output.to(torch.float64) / x.to(torch.float64)
    return compare(check_id=f"property/{name}/backward-under-mask", module=name, kind="property",
                   expected=grad_output.to(torch.float64) * factor,
                   got=view.backward(grad_output), atol=EXACT,
                   rtol=4 * unit_roundoff(output.dtype),
                   what="dL/dx = dL/dy ⊙ (y / x), the factor of the same forward",
                   context=f"seed={seed}")


def _identity_check(check_id, name, what, x, got, context="evaluation mode"):
    return compare(check_id=check_id, module=name, kind="property", expected=x, got=got,
                   atol=EXACT, rtol=0.0, what=what, context=context)


def _eval_checks(view, x, seed, name):
    """Training-mode forward and backward (leaving a mask behind), then evaluation mode."""
    view.mode(True)
    training_output = view.forward(x)
    view.backward(upstream_gradient(training_output, seed))
    stale = training_output.to(torch.float64) / x.to(torch.float64)
    view.mode(False)
    output = view.forward(x)
    grad_output = upstream_gradient(output, seed)
    grad_input = view.backward(grad_output)
    context = "evaluation mode, after a training-mode forward and backward"
    if not torch.equal(grad_input, grad_output) and torch.allclose(
            grad_input.to(torch.float64), grad_output.to(torch.float64) * stale,
            rtol=4 * unit_roundoff(grad_input.dtype), atol=0.0):
        context += ("; dL/dx is dL/dy times the stale training mask of that forward: in "
                    "evaluation mode backward must return dL/dy unchanged")
    return [_identity_check(f"property/{name}/eval-forward", name, "y = x", x, output),
            _identity_check(f"property/{name}/eval-backward", name, "dL/dx = dL/dy",
                            grad_output, grad_input, context)]


def check_dropout(dropout, x, *, p=None, seed=0, samples=100_000, name=None):
    """Check a Dropout: drop rate, mask freshness, kept scale, backward, evaluation identity.

    Steps (module docstring): the statistics on ``samples`` positive units drawn from
    ``seed``; backward under the mask of the same forward, and the evaluation identity, on
    positive inputs shaped like ``x``. The masks come from the module's own generator. A
    refnet module is left in the mode it was in.

    Args:
        dropout: a Dropout of any framework (or a ``Component``).
        x: gives the shape, dtype and device of the backward and evaluation inputs.
        p: the drop probability it was built with; its ``p`` attribute when ``None``.
        seed: seed of the upstream gradient and of the inputs.
        samples: units in the statistical checks (rounded down to rows of 100).
        name: the module's name in the ids; its description when ``None``.

    Returns:
        ``statistical/<name>/drop-rate`` and ``…/fresh-mask``, ``property/<name>/kept-scale``,
        ``…/backward-under-mask``, ``…/eval-forward`` and ``…/eval-backward``; a failed
        ``…/raised`` result replaces a part that raised.
    """
    component = as_component(dropout, name=name)
    view, name = component.view, component.name
    p = view.module.p if p is None else p
    was_training = getattr(view.module, "training", None)
    statistical_input = _positive_input((max(1, samples // _ROW), _ROW), x, seed)
    positive = _positive_input(tuple(x.shape), x, seed + 1)
    try:
        return [
            *guarded(f"statistical/{name}/raised", name, "statistical",
                     lambda: _statistical_checks(view, p, statistical_input, name)),
            *guarded(f"property/{name}/backward-raised", name, "property",
                     lambda: [_backward_check(view, positive, seed, name)]),
            *guarded(f"property/{name}/raised", name, "property",
                     lambda: _eval_checks(view, positive, seed, name)),
        ]
    finally:
        if was_training is not None:
            _restore_mode(view, was_training)


def _restore_mode(view, training):
    """Put the module back in the mode it was in; a module that cannot switch has already
    failed the checks that switch it."""
    try:
        view.mode(training)
    except Exception:  # the checks above have reported it
        pass
