"""An optimiser alone against ``torch.optim``: the same start, the same gradients, every step.

The target's optimiser is built on ``(value, gradient)`` pairs, exactly as ``param()`` lists
them, and ``torch.optim.<Name>`` on float64 copies of the same values. Before step k both sides
receive the same gradients g_k (standard normal, drawn from ``seed``; written into the target's
gradient tensors in place, assigned to ``.grad`` on torch's side); after each step the values
are compared. No network is involved, so a discrepancy belongs to the optimiser (a missing bias
correction, a swapped β, an ascent, momentum applied wrongly).

Settings. An optimiser is checked at torch's defaults and at other values of the settings it
takes (torch.optim's keywords): ``setting_cases``
(``verification/vocabulary/optimizer_settings.py``) gives one case per setting at its value in
``SETTING_VALUES`` (the first candidate that differs from the class's default), together with
what it ``REQUIRES`` (dampening and Nesterov momentum only act with a momentum; Nesterov needs
dampening 0), and one case with every setting at once. Every setting is given explicitly in
every case, so a framework's own defaults never matter (an SGD whose momentum is 0.9 by default
fails the default case unless the adapter passes momentum=0).

Tolerance. The gradients are identical on both sides, so the only differences are the
roundings inside each step, of two sizes:

- at θ's scale: the step's result θ − Δθ is rounded once, by at most u·|θ| (u that of the
  target's dtype); a weight decay λ ≠ 0 adds two, for a framework that applies it as
  θ·(1 − ηλ) (the factor and the product: AdamW's decoupled decay does, and an L2 decay may
  be written so), ``THETA_ROUNDINGS`` and ``DECAY_ROUNDINGS``, c in all;
- at the update's scale: ``OPERATIONS`` element-wise roundings (moments, square root,
  division, the product with η) plus ``EXTRA_OPERATIONS`` per setting away from its default
  (g + λθ, the momentum buffer, …), n in all, each relative to its result: at most
  n·u·|Δθ|.

One step's roundings therefore move a value by at most ``SAFETY·u·(c·|θ| + n·|Δθ|)`` apart from
torch's (SAFETY = 4: 2 because torch's float64 side rounds too, 2 for slack, which also
covers a framework rounding toward +∞, IEEE 754's directed mode, whose roundings reach 2u).
They reach the following steps in two ways:

- through the state: a rounding committed into a running average that decays by ρ per step
  (SGD's or RMSprop's momentum buffer, ρ = μ; Adam's first moment, ρ = β₁) is in every later
  update, weighted ρⁱ: in all 1/(1 − ρ) times its size (a geometric series), so the movement
  term is charged ``M = 1/(1 − ρ)``. Sums of squares (v, Adagrad's sum) are positive: their
  relative errors add up over steps like θ's own, which the factor k below already counts;
- through θ itself, with an L2 weight decay λ (the gradient is g + λθ): an error δ in θ enters
  the next gradient as λδ, and the update moves by at most η·λ·M·δ for it (an SGD's update is
  linear in the gradient with gain at most M; Adam's divides it by √v̂, about 1 for standard
  normal gradients), so errors grow by at most ``F = exp(k·η·λ·M)`` over k steps (1.2 at
  η = 0.1, λ = 0.01, M = 10, k = 20). AdamW's decoupled decay multiplies θ by 1 − ηλ < 1: it
  shrinks errors, F = 1. Without weight decay the gradient does not depend on θ: F = 1.

Summed over k steps: ``rtol_k = k·SAFETY·c·u·F`` and
``atol_k = k·SAFETY·u·F·(c·max|θ| + n·M·Σ_{j≤k} max|Δθ_j|)``, max|θ| over the steps so far. A
correct float32 optimiser that rounds every step's result upward (``tests/``) reaches 0.18 of
it; an earlier version charged the n update roundings at θ's scale too, eight times more
than any step rounds there.

Detection power. A relative error r in the update of step j stays in θ (SGD) or grows (with
momentum), so it is flagged when r·|Δθ_j| exceeds the tolerance at step j:
r > j·SAFETY·u·F·(c·max|θ| + n·M·Σ|Δθ|)/|Δθ_j|. Measured on SGD, Adam, AdamW, RMSprop and
Adagrad at every case of ``setting_cases`` (values and gradients of this check, η of a
target's cases), the smallest r flagged is 2.1e-13 in float64 and 1.1e-4 in float32 at the
first step, 3.8e-11 and 0.02 at the twentieth (1e-12, 1e-3, 1e-10 and 0.05 before the θ term
was separated): the tolerance stays a small part of one update (``DETECTED``, planted in both
dtypes by ``tests/test_optimizer_settings.py``). An Adam without bias correction is off by a
factor √(1 − β₂)/(1 − β₁) ≈ 0.3 at the first step; a sign error by 2|Δθ|; a momentum applied
as θ −= η·μ·b by (1 − μ)|Δθ| at the first step.
"""

import math
from dataclasses import dataclass, replace

import torch

from verification.checks.compare import compare
from verification.checks.reference import SAFETY, guarded, unit_roundoff
from verification.targets.protocol import call
from verification.vocabulary.optimizer_settings import torch_defaults

__all__ = ["check_optimizer", "DETECTED", "OPERATIONS", "EXTRA_OPERATIONS", "THETA_ROUNDINGS",
           "DECAY_ROUNDINGS"]

KIND = "trajectory"
OPERATIONS = 8
"""Element-wise roundings charged to one update at torch's defaults (module docstring)."""
THETA_ROUNDINGS = 1
"""Roundings at θ's scale per step: the result θ − Δθ (module docstring)."""
DECAY_ROUNDINGS = 2
"""More roundings at θ's scale with a weight decay λ ≠ 0: θ·(1 − ηλ) and 1 − ηλ itself."""
EXTRA_OPERATIONS = {"weight_decay": 2, "momentum": 3, "dampening": 1, "nesterov": 2,
                    "centered": 3, "amsgrad": 1, "lr_decay": 3,
                    "initial_accumulator_value": 0, "maximize": 0, "betas": 0, "eps": 0,
                    "alpha": 0, "rho": 0, "momentum_decay": 2, "decoupled_weight_decay": 2}
"""Roundings a setting away from its default adds to one update: g + λθ (2), the momentum
buffer μb + (1 − d)g (3), Nesterov's g + μb (2), the centred variance v − ḡ² and its average
(3), the running maximum (1), η/(1 + (t − 1)·decay) (3), NAdam's μ_t schedule (2)."""
DETECTED = {(torch.float64, 1): 3e-13, (torch.float64, 20): 5e-11,
            (torch.float32, 1): 2e-4, (torch.float32, 20): 0.03}
"""``{(dtype, step): r}``: a relative error r in that step's update is flagged (measured,
module docstring)."""
def _amplification(torch_class, settings, lr):
    """``(M, F_per_step, n, c)``: the state's memory 1/(1 − ρ), the weight decay's growth per
    step exp(η·λ·M), the roundings per update and those at θ's scale (module docstring);
    λ is the one torch's side steps with (the class's default where not given)."""
    decay = max(settings.get("momentum", 0.0), settings.get("betas", (0.0,))[0])
    memory = 1 / (1 - decay)
    weight_decay = settings.get("weight_decay",
                                torch_defaults(torch_class, ("weight_decay",))["weight_decay"])
    coupled = torch_class is not torch.optim.AdamW and not settings.get(
        "decoupled_weight_decay", False)
    growth = math.exp(lr * weight_decay * memory) if coupled else 1.0
    defaults = torch_defaults(torch_class, settings)
    operations = OPERATIONS + sum(EXTRA_OPERATIONS.get(k, 0) for k, v in settings.items()
                                  if v != defaults[k])
    theta = THETA_ROUNDINGS + (DECAY_ROUNDINGS if weight_decay else 0)
    return memory, growth, operations, theta


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
        options: other keyword arguments of ``torch_class`` (betas, eps, momentum, …): the
            settings ``build`` was given, which also set the tolerance (module docstring).
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
        One ``trajectory/<name>/param[i]`` per tensor (``name`` carries the settings in a
        target's cases: ``sgd[momentum=0.9]``), at its worst step; one failed
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
    memory, growth, operations, theta = _amplification(torch_class, options, lr)
    per_step = SAFETY * unit_roundoff(dtype)
    context = (f"{steps} steps from the same values and gradients (seed {seed}), lr={lr}, "
               f"{torch_class.__name__}({', '.join(f'{k}={v}' for k, v in options.items())}), "
               f"{dtype}; tolerance k·{SAFETY}·u·F^k·({theta}·max|θ| + {operations}·M·Σ|Δθ|), "
               f"M={memory:.3g} (state memory), F={growth:.6g} (weight-decay feedback)")
    results = []
    for index in range(len(shapes)):
        previous = start[index].to(torch.float64)
        largest, movement, worst, first = float(previous.abs().max()), 0.0, None, None
        for step, (got_step, expected_step) in enumerate(zip(got.values, expected.values,
                                                             strict=True), start=1):
            value = expected_step[index]
            largest = max(largest, float(value.abs().max()))
            movement += float((value - previous).abs().max())
            previous = value
            scale = step * per_step * growth ** step
            result = compare(check_id=f"{KIND}/{name}/param[{index}]", module=name, kind=KIND,
                             expected=value, got=got_step[index],
                             atol=scale * (theta * largest + operations * memory * movement),
                             rtol=scale * theta, what=f"param[{index}] after step {step}",
                             context=context, before=start[index] if step == 1 else None)
            if first is None and not result.passed:
                first = f"from step {step}: {result.diagnosis}"
            if worst is None or result.error_ratio > worst.error_ratio:
                worst = result
        results.append(worst if worst.passed else replace(worst, diagnosis=first))
    return results
