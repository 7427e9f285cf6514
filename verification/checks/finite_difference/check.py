"""The check's public face: ``check_backward`` (one result per tensor, never raising),
``assert_backward_matches`` (raising with a message that names the worst element and a line
that reproduces it) and ``finite_differences`` (the numerical gradients themselves). They run
the steps in order: the analytic pass (``analytic.py``), the directions (``directions.py``),
the losses at t ± h (``paths.py``), the kink test where needed and the comparison
(``comparison.py``); the step size, the tolerance and "Float32" are derived in ``steps.py``.
"""

from dataclasses import replace

import torch

from verification.checks.finite_difference.analytic import _analytic_pass, _ModuleError
from verification.checks.finite_difference.comparison import (
    _CENTRAL,
    _compare_target,
    _kink_test_where_needed,
)
from verification.checks.finite_difference.directions import _targets
from verification.checks.finite_difference.paths import _estimate, _Paths
from verification.checks.finite_difference.replica_path import DEFAULT_CHUNK_ELEMENTS
from verification.checks.finite_difference.steps import _bounds, _default_eps
from verification.checks.result import CheckFailure, CheckResult
from verification.targets.spec import as_component

__all__ = ["check_backward", "assert_backward_matches", "finite_differences"]


def check_backward(module, x, *, seed=0, eps=None, atol=None, rtol=None, row_wise=True,
                   param_path="auto", projections=None, chunk_elements=DEFAULT_CHUNK_ELEMENTS,
                   name=None):
    """Compare ``module.backward`` with central differences of its ``forward``.

    Never raises on a mismatch, nor when the module raises: that becomes a failed result.

    Args:
        module: any object with the module protocol (or a ``Component``), float64 or float32
            (module docstring, "Float32").
        x: the input, ``[B, in]`` or ``[R, B, in]`` (``[B, in]`` for a per-sample module's
            ``Component``); converted to the dtype the module computes in.
        seed: seeds the random grad_output ``w`` (and the projection directions).
        eps: relative step, ``h = eps·max(1, |t|)``; ``DEFAULT_EPS`` in float64 and
            ``FLOAT32_EPS`` in float32 when ``None``.
        atol: absolute tolerance; derived by ``tolerances`` when ``None``.
        rtol: relative tolerance; derived by ``tolerances`` when ``None``.
        row_wise: whether samples (rows) are independent, allowing the one-call input path.
        param_path: ``"auto"`` (the view's replica twin where it has one, else protocol),
            ``"replica"`` (twin or ``ValueError``) or ``"protocol"`` (one element at
            a time).
        projections: ``None`` to check every element, or the number k of signed random
            directions per tensor.
        chunk_elements: most stacked numbers per twin forward call.
        name: the module's label in ids and messages; a one-line ``repr`` when ``None``.

    Returns:
        One ``CheckResult`` per tensor: ``input``, then ``param[i] (...)`` in ``param()``
        order; a single failed result when the module raised.
    """
    module = _view(module, name)
    label = module.name
    generator = torch.Generator().manual_seed(seed)
    paths = _Paths(row_wise, param_path, chunk_elements)
    try:
        point = _analytic_pass(module, x, generator)
        eps = _default_eps(point.dtype) if eps is None else eps
        targets = _targets(module, point, eps, projections, generator)
        losses, path = _estimate(module, point, targets, _CENTRAL, paths)
        bounds = _bounds(point.scale, eps, atol, rtol, point.dtype)
        path += _kink_test_where_needed(module, point, targets, losses, bounds, paths)
    except _ModuleError as error:
        return [_error_result("finite_difference", label, error, seed)]
    context = f"eps={eps:g}, seed={seed}, {point.dtype}, {path}"
    return [_compare_target(label, target, gradient, losses[target.name], bounds, context)
            for target, gradient in zip(targets, point.gradients, strict=True)]


def assert_backward_matches(module, x, *, seed=0, **options):
    """Like ``check_backward``, but raise when a tensor disagrees.

    Args:
        module: any object with the module protocol.
        x: the input, ``[B, in]`` or ``[R, B, in]``.
        seed: seeds the random grad_output.
        **options: the other keyword arguments of ``check_backward``.

    Returns:
        The list of passing ``CheckResult`` (one per tensor).

    Raises:
        CheckFailure: naming the module, each failing tensor with its worst element
            (index, expected, got, errors, atol, rtol, eps, seed), worst tensor first, and
            a line that reproduces the check.
    """
    results = check_backward(module, x, seed=seed, **options)
    failed = sorted((r for r in results if not r.passed), key=lambda r: -r.error_ratio)
    if failed:
        raise CheckFailure(replace(failed[0], detail=_failure_message(failed, results, seed,
                                                                      options)))
    return results


def finite_differences(module, x, *, seed=0, eps=None, row_wise=True,
                       param_path="auto", chunk_elements=DEFAULT_CHUNK_ELEMENTS):
    """Central differences of ``L = Σ w ⊙ module.forward(x)``, as a reference.

    Args:
        module: any object with the module protocol (float64 parameters).
        x: the input, ``[B, in]`` or ``[R, B, in]``.
        seed: seeds the random grad_output ``w``.
        eps: relative step.
        row_wise: whether samples are independent (one-call input path).
        param_path: ``"auto"``, ``"replica"`` or ``"protocol"``.
        chunk_elements: most stacked numbers per twin forward call.

    Returns:
        A dict from tensor name (``"input"``, ``"param[0] (weight)"``, ...) to dL/d tensor,
        shaped like the tensor.

    Raises:
        RuntimeError: when the module raises; the message names the stage.
    """
    module = _view(module, None)
    generator = torch.Generator().manual_seed(seed)
    point = _analytic_pass(module, x, generator)
    eps = _default_eps(point.dtype) if eps is None else eps
    targets = _targets(module, point, eps, None, generator)
    paths = _Paths(row_wise, param_path, chunk_elements)
    losses, _ = _estimate(module, point, targets, _CENTRAL, paths)
    return {target.name: target.directions.central(losses[target.name]).view(target.tensor.shape)
            for target in targets}


def _view(module, name):
    """The ``ModuleView`` the check calls (a ``Component``'s, or a new one for a module)."""
    return as_component(module, name=name).view


def _error_result(kind, label, error, seed):
    inf = float("inf")
    detail = f"{kind} check FAILED for {label}: {error} (seed={seed})"
    return CheckResult(f"{kind}/{label}/error", label, kind, False, inf, inf, 0.0, inf, detail)


def _failure_message(failed, results, seed, options):
    lines = [f"check_backward failed for {failed[0].module}: {len(failed)} of {len(results)} "
             "tensor(s) disagree with central differences, worst first:"]
    lines += [f"  {rank}. {result.detail}; max rel error {result.max_rel_error:.3g}"
              for rank, result in enumerate(failed, start=1)]
    extra = "".join(f", {key}={value!r}" for key, value in options.items())
    lines.append(f"reproduce: verification.assert_backward_matches(module, x, seed={seed}{extra})"
                 f" with module = {failed[0].module}")
    return "\n".join(lines)
