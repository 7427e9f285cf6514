"""The step of the central differences and the tolerance they are held to, derived.

Step size
    The central difference has two errors. Truncation: ``h²·|L'''|/6``. Round-off: if one
    computed ``L`` is off by at most ``δ``, the difference of two is off by ``2δ``, divided by
    ``2h``: ``δ/h``. We write ``δ = γ·u·S`` with ``u = 2⁻⁵³``, ``S = Σ|w ⊙ y|`` the scale of L
    (a sum of magnitudes: cancellation in L does not cancel the rounding) and ``γ = 64`` the
    growth of rounding through a forward pass (in the probabilistic model of Higham & Mary
    2019 a chain of m operations grows like √m·u: √(4 layers × 26 + 16 terms) ≈ 11 for the
    report network, so 64 leaves a margin of about 6). Assuming ``|L'''| ≲ S/s³`` on the
    step's scale ``s = max(1, |t|)`` (a change of t by its own size changes the output by
    about the output's size), the total
    ``γuS/h + h²S/6`` is smallest at ``h* = (3γu)^(1/3) ≈ 3e-5``; we take ``eps = 1e-6``,
    smaller, because curvature is the unknown term (weights above 1 raise it): at 1e-6 the
    truncation term stays below round-off for any ``|L'''| < 6γu/eps³ ≈ 4·10⁴·S``, and a
    smaller step reaches fewer kinks. The step is ``h_i = eps·max(1, |t_i|)``: a fixed
    relative change for large values, an absolute one near zero. The denominator is the
    step actually taken, ``(t + h) − (t − h)`` in floating point.

Tolerance
    ``|numeric − analytic| ≤ atol + rtol·|numeric|`` with (see ``tolerances``)

    - ``atol = 10·δ/eps + 8·T``, ``δ = γ·u·S``, ``T = eps²·S/6``, and
    - ``rtol = 2·γ·u``: the analytic backward's own rounding, a pass as deep as the forward,
      plus the relative part of the numerical one (``L(t ± h)`` differs from ``S`` by ``h·g``).

    The factors 10 and 8 come from the kink test below, which spends half of the tolerance:
    an element that passes it carries a kink error of at most ``tolerance/2 + 4δ/eps + 3T``
    and a finite-difference error of at most ``δ/eps + T``; both together stay within the
    tolerance whenever ``atol ≥ 10·δ/eps + 8·T``. The rule is derived, not fitted: with
    eps = 1e-6 it is 7.1e-8·S (5.5e-7 for the report network and B = 8, where gradients are
    of order 0.1 and measured errors below 1e-9). It assumes the module's outputs are not
    computed by heavy cancellation (``|y|`` much smaller than the terms that produce it);
    for such a module pass ``atol`` explicitly.

Float32
    A module that computes in float32 (float32 parameters, a float32 input, or a float32
    output whatever it is given: a framework that calls ``.float()`` inside) is checked in
    float32: the input is fed in float32, perturbations are taken in float32 (so the step in
    the denominator is the one the module saw), and u = 2⁻²⁴ in δ and ``rtol``. The same
    optimum gives ``h* = (3γu)^(1/3) ≈ 0.023``; ``FLOAT32_EPS = 1e-2`` is smaller for the
    reasons above, where the tolerance is still dominated by round-off
    (``atol ≈ 3.8e-3·S``): a float32 check flags errors of a few parts in a thousand of the
    loss's scale, not the 1e-7·S of float64.
"""

import torch

from verification.checks.compare import unit_roundoff

__all__ = ["DEFAULT_EPS", "FLOAT32_EPS", "ROUNDOFF_GROWTH", "tolerances"]


DEFAULT_EPS = 1e-6
"""Relative step in float64: ``h = eps·max(1, |t|)`` (derivation in the module docstring)."""
FLOAT32_EPS = 1e-2
"""Relative step for a module that computes in float32 (module docstring, "Float32")."""
ROUNDOFF_GROWTH = 64
"""γ: the error of one computed L in units of ``u·S`` (module docstring)."""


def tolerances(scale, eps=DEFAULT_EPS, dtype=torch.float64):
    """The derived ``(atol, rtol)`` for a loss of scale ``S`` (module docstring, "Tolerance").

    Args:
        scale: ``S = Σ|w ⊙ y|`` at the checked point.
        eps: the relative step.
        dtype: the dtype the module computes in (u = 2⁻⁵³ or 2⁻²⁴).

    Returns:
        ``(atol, rtol)`` with ``atol = 10·γ·u·S/eps + 8·eps²·S/6`` and ``rtol = 2·γ·u``.
    """
    roundoff = _roundoff(scale, dtype)
    truncation = eps ** 2 * scale / 6
    return 10 * roundoff / eps + 8 * truncation, 2 * ROUNDOFF_GROWTH * unit_roundoff(dtype)


def _bounds(scale, eps, atol, rtol, dtype):
    """``(atol, rtol)``: the derived ones unless the caller gave them."""
    derived_atol, derived_rtol = tolerances(scale, eps, dtype)
    return (derived_atol if atol is None else atol, derived_rtol if rtol is None else rtol)


def _default_eps(dtype):
    return FLOAT32_EPS if dtype == torch.float32 else DEFAULT_EPS


def _roundoff(scale, dtype=torch.float64):
    """δ: the error bound of one computed L."""
    return ROUNDOFF_GROWTH * unit_roundoff(dtype) * scale
