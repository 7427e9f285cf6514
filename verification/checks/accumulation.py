"""Gradient bookkeeping: ``backward`` ADDS into the ``param()`` gradients; ``zero_grad`` clears.

A backward that overwrites its gradients instead of adding to them passes every check that runs
backward once after ``zero_grad`` (finite differences, the twin) and even training, which
zeroes before each backward; it breaks whoever accumulates over several backwards (one sample
at a time, or several losses). The check: zero_grad, forward, backward(g), keep the gradients
G; forward and backward(g) again without zeroing, the gradients must be 2G; zero_grad, they
must be exactly 0. Both passes compute the same sums on the same values, so 2G is held to
``autograd_tolerance`` (n the chain's summation length, the scale max|2G|); an overwrite is off
by G, a factor 2. A target without ``zero_grad`` gets no ``zero_grad`` result (the protocol view
zeroes its gradients through ``param()``, and a note says so).

Detection power (``CheckResult.detectable``: the relative error of the compared tensor's
largest element sure to fail; measured over every case of refnet and of the ``float32``
fixture, the README's table, asserted by tests/test_detection_power.py with an error of that
size planted): float64 2e-13, float32 1e-4.
"""

from verification.checks.compare import EXACT, compare
from verification.checks.reference import (
    ELEMENTWISE_TERMS,
    autograd_tolerance,
    guarded,
    summation_length,
    upstream_gradient,
)
from verification.targets.spec import as_component

__all__ = ["check_accumulation"]

KIND = "accumulation"


def check_accumulation(module, x, *, seed=0, name=None):
    """Two backwards without ``zero_grad`` give twice the gradient; ``zero_grad`` clears it.

    Args:
        module: a refnet module, a ``Component``, or any module with the protocol (without
            training-mode Dropout: the two forwards must agree).
        x: input, ``[B, in]`` or ``[R, B, in]``.
        seed: seed of the upstream gradient g.
        name: the module's name in the ids; its description when ``None``.

    Returns:
        Per ``param()`` pair, ``accumulation/<name>/param[i]`` and, when the module has a
        ``zero_grad``, ``accumulation/<name>/zero_grad/param[i]``; one failed
        ``accumulation/<name>/raised`` when the module raises.
    """
    component = as_component(module, name=name)
    return guarded(f"{KIND}/{component.name}/raised", component.name, KIND,
                   lambda: _check(component, x, seed))


def _check(component, x, seed):
    view, name = component.view, component.name
    view.zero_grad()
    grad_output = upstream_gradient(view.forward(x), seed)
    view.backward(grad_output)
    once = [gradient.clone() for _, gradient in view.param()]
    view.forward(x)
    view.backward(grad_output)
    twice = [gradient.clone() for _, gradient in view.param()]
    terms = (summation_length(component.layer, x.shape[-2]) if component.layer is not None
             else x.shape[-2] + ELEMENTWISE_TERMS)
    results = []
    for index, (first, second) in enumerate(zip(once, twice, strict=True)):
        tolerance = autograd_tolerance(first.dtype, terms, float(2 * first.abs().max()))
        results.append(compare(
            check_id=f"{KIND}/{name}/param[{index}]", module=name, kind=KIND,
            expected=2 * first, got=second, atol=tolerance.atol, rtol=tolerance.rtol,
            what=f"param[{index}] gradient after two backwards without zero_grad",
            context=f"seed={seed}; expected twice the gradient of one backward (a gradient "
                    "that is overwritten instead of added to reads 1×)"))
    if view.has_zero_grad:
        view.zero_grad()
        for index, (_, cleared) in enumerate(view.param()):
            results.append(compare(
                check_id=f"{KIND}/{name}/zero_grad/param[{index}]", module=name, kind=KIND,
                expected=cleared.new_zeros(cleared.shape), got=cleared, atol=EXACT, rtol=0.0,
                what=f"param[{index}] gradient after zero_grad", context=f"seed={seed}"))
    return results
