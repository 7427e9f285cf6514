"""Step 1, the analytic pass: ``zero_grad(); forward(x); backward(w)`` once, with ``w`` drawn
from the seeded generator, in float64 unless the module computes in float32 (then again in
float32: "Float32" in ``steps.py``); every call of the module's methods goes through
``_call``, which names the stage that raised, and a NaN or an infinity in its output or its
gradient is named with the input.
"""

from dataclasses import dataclass

import torch

from verification.checks.compare import computed_dtype
from verification.targets.protocol import ProtocolError


class _ModuleError(RuntimeError):
    """The module under test raised; the message names the stage."""


@dataclass(frozen=True)
class _Point:
    """The checked point: input ``x`` in the module's dtype, grad_output ``weights`` (float64,
    the output's shape), the loss ``Σ w ⊙ y`` and its scale ``Σ|w ⊙ y|``, the analytic
    gradients (dL/dx first, unless a container is declared not to return it, then each
    parameter's, in ``param()`` order) and the dtype the module computes in."""

    x: torch.Tensor
    weights: torch.Tensor
    loss: float
    scale: float
    gradients: list
    dtype: torch.dtype
    has_input_gradient: bool = True


def _analytic_pass(module, x, generator):
    """``zero_grad(); forward(x); backward(w)`` with ``w`` drawn from ``generator``.

    Run in float64 unless the module computes in float32 (float32 parameters or input, or a
    float32 output or gradient for a float64 input), then again in float32.
    """
    parameters = [value for value, _ in _call("param", module.param)]
    dtype = computed_dtype(x, *parameters)
    x = x.detach().to(dtype)
    state = torch.Generator().set_state(generator.get_state())
    point = _pass_at(module, x, generator)
    if point.dtype != dtype:
        generator.set_state(state.get_state())
        point = _pass_at(module, x.to(point.dtype), generator)
    return point


def _pass_at(module, x, generator):
    _call("zero_grad", module.zero_grad)
    y = _require_finite("forward", x, _call("forward", module.forward, x))
    weights = torch.randn(y.shape, generator=generator, dtype=torch.float64).to(y.device)
    grad_x = _call("backward", module.backward, weights.to(y.dtype))
    gradients = [gradient.detach().clone() for _, gradient in _call("param", module.param)]
    if grad_x is not None:
        gradients.insert(0, _require_finite("backward", x, grad_x).detach().clone())
    dtype = computed_dtype(x, y, *gradients)  # a float32 gradient is held to float32's u
    return _Point(x, weights, float(_loss(weights, y)), float((weights * y).abs().sum()),
                  gradients, dtype, grad_x is not None)


def _require_finite(stage, x, value):
    """``value``, unless it holds NaN or ±inf: then say where, and for which input."""
    finite = torch.isfinite(value)
    if bool(finite.all()):
        return value
    index = _unravel_first(~finite)
    kind = "NaN" if bool(torch.isnan(value).any()) else "an infinite value"
    raise _ModuleError(f"{stage} returned {kind} at element {index} for this input (x from "
                       f"{float(x.min()):.6g} to {float(x.max()):.6g}): the module is not "
                       "finite where its function is")


def _unravel_first(mask):
    flat = int(mask.flatten().nonzero()[0])
    index = []
    for size in reversed(mask.shape):
        flat, position = divmod(flat, size)
        index.append(position)
    return index[::-1]


def _call(stage, function, *args):
    """Run one of the module's methods; turn any exception into ``_ModuleError``."""
    try:
        return function(*args)
    except ProtocolError as error:
        raise _ModuleError(str(error)) from error
    except Exception as error:
        raise _ModuleError(f"{stage} raised {type(error).__name__}: {error}") from error


def _loss(weights, y):
    return (weights * y).sum()
