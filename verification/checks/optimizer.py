"""An optimiser alone against ``torch.optim``: the same start, the same gradients, every step.

The target's optimiser is built on ``(value, gradient)`` pairs, exactly as ``param()`` lists
them, and ``torch.optim.<Name>`` on float64 copies of the same values. Before step k both sides
receive the same gradients g_k (standard normal, drawn from ``seed``; written into the target's
gradient tensors in place, assigned to ``.grad`` on torch's side); after each step the values
are compared. No network is involved, so a discrepancy belongs to the optimiser (a missing bias
correction, a swapped β, an ascent).

Tolerance. The gradients are identical on both sides, so the only differences are the
roundings inside each update (a handful of element-wise operations: moments, square root,
division, the product with η), each relative to its result: one step moves a value by at most
``SAFETY·OPERATIONS·u·(|θ| + |Δθ|)`` apart from torch's. These errors do not feed back (the
next gradient does not depend on θ) and add up over steps, so after step k
``rtol_k = k·SAFETY·OPERATIONS·u`` and ``atol_k = rtol_k·(max|θ| + Σ_{j≤k} max|Δθ_j|)``, u that
of the target's dtype. An Adam without bias correction is off by a factor √(1 − β₂)/(1 − β₁)
≈ 0.3 at the first step; a sign error by 2|Δθ|.
"""

from dataclasses import dataclass

import torch

from verification.checks.compare import compare
from verification.checks.reference import SAFETY, guarded, unit_roundoff
from verification.targets.protocol import call

__all__ = ["check_optimizer", "OPERATIONS"]

KIND = "trajectory"
OPERATIONS = 8
"""Element-wise roundings charged to one update (module docstring)."""


@dataclass(frozen=True)
class _Run:
    """The values after each step, per tensor: ``values[k][i]`` after step k + 1."""

    values: list


def _start(shapes, dtype, seed):
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=generator, dtype=torch.float64).to(dtype)
            for shape in shapes]


def _gradients(shapes, steps, seed):
    generator = torch.Generator().manual_seed(seed + 1)
    return [[torch.randn(shape, generator=generator, dtype=torch.float64) for shape in shapes]
            for _ in range(steps)]


def _target_run(build, name, start, gradients, host):
    """The target's optimiser from ``start``: built on fresh pairs, or on ``host`` (a
    ``ModuleView`` whose pairs are re-read at every step: a framework may rebind them)."""
    if host is None:
        pairs = [(value.clone(), torch.zeros_like(value)) for value in start]
        optimizer = call(name, "construction", build, pairs)

        def current():
            return pairs
    else:
        for (value, _), first in zip(host.param(), start, strict=True):
            value.copy_(first)
        optimizer = call(name, "construction", build, host.optimizer_argument())
        current = host.param
    values = []
    for step_gradients in gradients:
        for (_, gradient), new in zip(current(), step_gradients, strict=True):
            gradient.copy_(new)
        call(name, "step", optimizer.step)
        values.append([value.detach().to(torch.float64).clone() for value, _ in current()])
    return _Run(values)


def _torch_run(torch_class, options, start, gradients, lr):
    parameters = [torch.nn.Parameter(value.detach().to(torch.float64).clone())
                  for value in start]
    optimizer = torch_class(parameters, lr=lr, **options)
    values = []
    for step_gradients in gradients:
        for parameter, new in zip(parameters, step_gradients, strict=True):
            parameter.grad = new.clone()
        optimizer.step()
        values.append([parameter.detach().clone() for parameter in parameters])
    return _Run(values)


def check_optimizer(build, torch_class, *, lr, options=None, steps=20,
                    shapes=((4, 3), (4,)), dtype=torch.float64, seed=0, name=None, host=None):
    """Step a target's optimiser and ``torch_class`` side by side from the same values.

    Args:
        build: ``build(params) -> optimiser`` with a ``step()``; ``params`` is a list of
            ``(value, gradient)`` pairs (a ``param()`` list).
        torch_class: the ``torch.optim`` class it implements, e.g. ``torch.optim.Adam``.
        lr: the learning rate given to ``torch_class`` (``build`` carries its own).
        options: other keyword arguments of ``torch_class`` (betas, eps, …).
        steps: number of steps.
        shapes: shapes of the parameter tensors.
        dtype: the dtype of the target's tensors (float32 for a float32-only framework).
        seed: seed of the start values and the gradients.
        name: the optimiser's name in the ids; the class name when ``None``.
        host: a ``ModuleView`` of the target's own module for an optimiser built on a module
            (``optimizer_takes_module``): ``build`` then gets what ``host.optimizer_argument()``
            gives, and the values and gradients live in the module's parameters (their shapes
            replace ``shapes``).

    Returns:
        One ``trajectory/<name>/param[i]`` per tensor, at its worst step; one failed
        ``…/raised`` when the optimiser raises.
    """
    name = torch_class.__name__ if name is None else name
    return guarded(f"{KIND}/{name}/raised", name, KIND,
                   lambda: _check(build, torch_class, dict(options or {}), lr, steps, shapes,
                                  dtype, seed, name, host))


def _check(build, torch_class, options, lr, steps, shapes, dtype, seed, name, host):
    if host is not None:
        pairs = host.param()
        shapes, dtype = [tuple(value.shape) for value, _ in pairs], pairs[0][0].dtype
    start = _start(shapes, dtype, seed)
    gradients = _gradients(shapes, steps, seed)
    got = _target_run(build, name, start, gradients, host)
    expected = _torch_run(torch_class, options, start, gradients, lr)
    per_step = SAFETY * OPERATIONS * unit_roundoff(dtype)
    context = (f"{steps} steps from the same values and gradients (seed {seed}), lr={lr}, "
               f"{torch_class.__name__}({', '.join(f'{k}={v}' for k, v in options.items())}), "
               f"{dtype}")
    results = []
    for index in range(len(shapes)):
        previous = start[index].to(torch.float64)
        largest, movement, worst = float(previous.abs().max()), 0.0, None
        for step, (got_step, expected_step) in enumerate(zip(got.values, expected.values,
                                                             strict=True), start=1):
            value = expected_step[index]
            largest = max(largest, float(value.abs().max()))
            movement += float((value - previous).abs().max())
            previous = value
            rtol = step * per_step
            result = compare(check_id=f"{KIND}/{name}/param[{index}]", module=name, kind=KIND,
                             expected=value, got=got_step[index], atol=rtol * (largest + movement),
                             rtol=rtol, what=f"param[{index}] after step {step}", context=context)
            if worst is None or result.error_ratio > worst.error_ratio:
                worst = result
        results.append(worst)
    return results
