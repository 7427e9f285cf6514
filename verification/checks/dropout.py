"""Dropout checks (report section 2.7.2): fixed-mask autograd, drop statistics, evaluation mode.

1. Fixed mask (kind ``autograd``): ``check_against_reference`` in training mode; the twin
   multiplies by the very mask refnet's forward drew (``last_scaled_mask``), so output and
   dL/dx are compared with the usual autograd tolerance.
2. Drop rate (kind ``statistical``): on an input with no zeros, the dropped count D of n
   elements is Binomial(n, p). The check passes when |D/n − p| ≤ z·sqrt(p(1 − p)/n) with
   z = ``Z_THRESHOLD`` = 5, a two-sided false-alarm probability of 5.7·10⁻⁷ under the normal
   approximation (n·p·(1 − p) ≫ 1 for the default n = 10⁵ and 0.01 ≤ p ≤ 0.99); the exact
   binomial p-value (scipy) goes into the detail.
3. Fresh masks (kind ``statistical``): two forwards on the same input drop the same unit with
   probability p² when masks are independent (and p when a mask is reused), held to the same
   z-threshold with sqrt(p²(1 − p²)/n).
4. Kept scale (kind ``property``): every output is 0 or x / (1 − p). refnet rounds three times
   (1 − p to the dtype, 1 / (1 − p), the product with x), so rtol = 4u of the dtype and
   dropped units must be exactly 0.
5. Evaluation mode (kind ``property``): forward and backward are exactly the identity.
"""

import math

import torch
from scipy import stats

from verification.checks.compare import compare
from verification.checks.reference import (
    EXACT_ATOL,
    check_against_reference,
    guarded,
    unit_roundoff,
    upstream_gradient,
)

__all__ = ["Z_THRESHOLD", "check_dropout"]

Z_THRESHOLD = 5.0
"""Standard deviations allowed to a statistical check: false alarms with probability 5.7·10⁻⁷."""


def _positive_input(samples, like, seed):
    """``samples`` values uniform in [0.5, 1.5), dtype and device of ``like``: no zeros, so
    ``y == 0`` means dropped. Drawn on the CPU from ``seed``, so any device sees the same."""
    generator = torch.Generator().manual_seed(seed)
    values = 0.5 + torch.rand(samples, generator=generator, dtype=like.dtype)
    return values.to(like.device)


def _proportion_check(check_id, module, what, count, total, probability):
    """``count / total`` against ``probability`` with the z-threshold of a binomial count."""
    spread = Z_THRESHOLD * math.sqrt(probability * (1 - probability) / total)
    p_value = stats.binomtest(count, total, probability).pvalue
    context = (f"{count} of {total}, allowed ±{Z_THRESHOLD:g}σ, "
               f"exact two-sided binomial p-value {p_value:.3g}")
    return compare(check_id=check_id, module=module, kind="statistical",
                   expected=torch.tensor(probability, dtype=torch.float64),
                   got=torch.tensor(count / total, dtype=torch.float64),
                   atol=max(spread, EXACT_ATOL), rtol=0.0, what=what, context=context)


def _drop_rate_check(dropout, output, name):
    dropped = int((output == 0).sum())
    return _proportion_check(f"statistical/{name}/drop-rate", name, "fraction of dropped units",
                             dropped, output.numel(), dropout.p)


def _fresh_mask_check(dropout, first_output, x, name):
    second_output = dropout.forward(x)
    both = int(((first_output == 0) & (second_output == 0)).sum())
    return _proportion_check(f"statistical/{name}/fresh-mask", name,
                             "fraction dropped by two successive forwards", both, x.numel(),
                             dropout.p ** 2)


def _kept_scale_check(dropout, output, x, name):
    kept = output != 0
    expected = torch.where(kept, x.to(torch.float64) / (1 - dropout.p), 0.0)
    return compare(check_id=f"property/{name}/kept-scale", module=name, kind="property",
                   expected=expected, got=output, atol=EXACT_ATOL,
                   rtol=4 * unit_roundoff(x.dtype), what="output: 0 or x / (1 - p)",
                   context=f"p={dropout.p}, {x.numel()} units")


def _statistical_checks(dropout, x, name):
    output = dropout.train().forward(x)
    return [_drop_rate_check(dropout, output, name), _fresh_mask_check(dropout, output, x, name),
            _kept_scale_check(dropout, output, x, name)]


def _identity_check(check_id, name, what, x, got):
    return compare(check_id=check_id, module=name, kind="property", expected=x, got=got,
                   atol=EXACT_ATOL, rtol=0.0, what=what, context="evaluation mode")


def _eval_checks(dropout, x, seed, name):
    output = dropout.eval().forward(x)
    grad_output = upstream_gradient(output, seed)
    grad_input = dropout.backward(grad_output)
    return [_identity_check(f"property/{name}/eval-forward", name, "y = x", x, output),
            _identity_check(f"property/{name}/eval-backward", name, "dL/dx = dL/dy",
                            grad_output, grad_input)]


def _restore_mode(dropout, training):
    if training:
        dropout.train()
    else:
        dropout.eval()


def check_dropout(dropout, x, *, seed=0, samples=100_000, name=None):
    """Check a refnet ``Dropout``: fixed-mask autograd, drop statistics, evaluation identity.

    Steps (see the module docstring): the autograd check on ``x`` under refnet's own mask; the
    drop rate, mask freshness and kept scale on ``samples`` units drawn from ``seed``; forward
    and backward in evaluation mode. The masks come from the module's generator. The module is
    left in the mode it was in.

    Args:
        dropout: a refnet ``Dropout``.
        x: input of the autograd and evaluation checks, any shape.
        seed: seed of the upstream gradient and of the statistical input.
        samples: units in the statistical checks.
        name: the module's name in the ids; its ``repr`` when ``None``.

    Returns:
        ``autograd/<name>/output`` and ``…/grad_input``, ``statistical/<name>/drop-rate`` and
        ``…/fresh-mask``, ``property/<name>/kept-scale``, ``…/eval-forward`` and
        ``…/eval-backward``; a failed ``…/raised`` result replaces a part that raised.
    """
    name = repr(dropout) if name is None else name
    was_training = dropout.training
    statistical_input = _positive_input(samples, x, seed)
    try:
        return [
            *check_against_reference(dropout.train(), x, seed=seed, name=name),
            *guarded(f"statistical/{name}/raised", name, "statistical",
                     lambda: _statistical_checks(dropout, statistical_input, name)),
            *guarded(f"property/{name}/raised", name, "property",
                     lambda: _eval_checks(dropout, x, seed, name)),
        ]
    finally:
        _restore_mode(dropout, was_training)
