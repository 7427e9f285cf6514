"""Finite-difference check of the backward pass of any object that follows the module protocol.

What is checked
    For a module and an input ``x`` (``[B, in]``, or ``[R, B, in]`` with replicas), the check
    builds the scalar ``L = Σ w ⊙ module.forward(x)``, where ``w`` is a fixed random
    "grad_output" of the output's shape drawn from ``torch.Generator().manual_seed(seed)``.
    The analytic side is ``zero_grad(); forward(x); backward(w)``: the returned dL/dx and the
    gradients listed by ``param()``. The numerical side is the central difference, in float64,
    ``g_i ≈ (L(t + h_i) − L(t − h_i)) / 2h_i`` for every element ``t_i`` of ``x`` and of every
    parameter. Each tensor gives one ``CheckResult`` (kind ``finite_difference``, id
    ``finite_difference/<module>/<tensor>``), compared by ``verification.checks.compare.compare``.
    The generic path uses only the protocol (``forward``, ``backward``, ``param``,
    ``zero_grad``), so the check works for any framework; it overwrites the module's
    gradients and cached forward state, and restores every parameter value exactly.

One module per step (``check.py`` runs them in order: ``check_backward``,
``assert_backward_matches``, ``finite_differences``):

1. ``analytic.py``: the analytic pass, in the dtype the module computes in;
2. ``directions.py``: what is perturbed, along which directions (every element, or random
   projections);
3. ``paths.py``: the losses at t + k·h, by the input's tall batch or one element at a time,
   and for the parameters by ``replica_path.py`` (the view's replicated twin, where it has one)
   or ``protocol_path.py`` (one perturbed value per forward call);
4. and 5. ``comparison.py``: the kink test where needed, and the comparison;

with the step size and the tolerance derived in ``steps.py``.

Detection power (``CheckResult.detectable``: the relative error of the compared tensor's
largest element sure to fail; measured over every case of refnet and of the ``float32``
fixture, the README's table, asserted by tests/test_detection_power.py with an error of that
size planted): float64 4e-06, float32 0.21 (the report network's dL/dx).
"""

from verification.checks.finite_difference.check import (
    assert_backward_matches,
    check_backward,
    finite_differences,
)
from verification.checks.finite_difference.replica_path import DEFAULT_CHUNK_ELEMENTS
from verification.checks.finite_difference.steps import (
    DEFAULT_EPS,
    FLOAT32_EPS,
    ROUNDOFF_GROWTH,
    tolerances,
)

__all__ = [
    "check_backward", "assert_backward_matches", "finite_differences",
    "tolerances", "DEFAULT_EPS", "FLOAT32_EPS", "ROUNDOFF_GROWTH", "DEFAULT_CHUNK_ELEMENTS",
]
