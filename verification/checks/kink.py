"""The derivative exactly at a kink: torch's convention, another valid one, or a bug.

Finite differences cannot decide the derivative of ReLU at 0 (its one-sided slopes differ, so
the finite-difference check leaves such elements out). Any value in [0, 1] is a valid
subgradient there; torch.autograd uses 0 (``torch.relu``), as the report's eq. 9 does
("otherwise"). ``check_kink`` feeds an input whose every element sits on the kink and reads the
slope ``s = (dL/dx) / (dL/dy)`` per element:

- ``s`` equals torch's value everywhere: pass;
- ``s`` is one constant in [0, 1] (1, say, for ``x >= 0``): pass, with a ``convention``
  sentence; a convention difference is a fact, not a failure;
- anything else (slopes that vary, lie outside [0, 1], or differ from a declared slope): fail.

Slopes are compared with rtol = 4u of the module's dtype: ``g·s`` then ``/ g`` rounds twice.
"""

from dataclasses import replace

import torch

from verification.checks.compare import EXACT, compare, computed_dtype
from verification.checks.reference import guarded, unit_roundoff
from verification.targets.refnet_target import as_component

__all__ = ["check_kink"]

KIND = "kink"


def check_kink(module, reference=torch.relu, *, at=0.0, shape=(2, 3), seed=0, name=None,
               declared_slope=None):
    """Classify the module's derivative exactly at a kink (module docstring).

    Args:
        module: an element-wise module, e.g. a ReLU (or a ``Component``).
        reference: the torch function of the same activation.
        at: the kink's position.
        shape: the input's shape (every element equals ``at``).
        seed: seeds the random grad_output.
        name: the module's label; its description when ``None``.
        declared_slope: the slope the target declares it uses there (``relu_slope_at_zero``);
            ``None`` accepts any single valid one.

    Returns:
        One ``CheckResult`` of kind ``kink``, id ``kink/<name>/x=<at>``.
    """
    component = as_component(module, name=name)
    label = component.name
    check_id = f"{KIND}/{label}/x={at:g}"
    results = guarded(check_id, label, KIND,
                      lambda: [_check(component, reference, at, shape, seed, declared_slope)])
    failed = [result for result in results if not result.passed]
    return failed[0] if failed else results[0]


def _check(component, reference, at, shape, seed, declared_slope):
    view, label = component.view, component.name
    generator = torch.Generator().manual_seed(seed)
    x = torch.full(shape, float(at), dtype=torch.float64)
    upstream = torch.randn(shape, generator=generator, dtype=torch.float64)
    view.zero_grad()
    view.forward(x)
    computed = view.backward(upstream)
    got = computed.to(torch.float64)
    with torch.enable_grad():
        leaf = x.clone().requires_grad_(True)
        (expected,) = torch.autograd.grad(reference(leaf), leaf, grad_outputs=upstream)
    torch_slope = float(expected[(0,) * len(shape)] / upstream[(0,) * len(shape)])
    slopes = got / upstream
    slope = float(slopes.flatten()[0])
    rtol = 4 * unit_roundoff(computed_dtype(computed))
    uniform = bool(((slopes - slope).abs() <= rtol * abs(slope)).all())
    function = getattr(reference, "__name__", str(reference))
    wanted = torch_slope if declared_slope is None else float(declared_slope)
    convention = ""
    if declared_slope is None and uniform and 0.0 <= slope <= 1.0 and slope != torch_slope:
        wanted = slope
        convention = (f"derivative {slope:g} at x = {at:g}, where torch.autograd's "
                      f"{function} uses {torch_slope:g} (both valid subgradients)")
    elif declared_slope is not None and wanted != torch_slope:
        convention = (f"derivative {wanted:g} at x = {at:g} (declared), where torch.autograd's "
                      f"{function} uses {torch_slope:g}")
    result = compare(
        check_id=f"{KIND}/{label}/x={at:g}", module=label, kind=KIND,
        expected=wanted * upstream, got=got, atol=EXACT, rtol=rtol,
        what=f"dL/dx exactly at the kink x = {at:g}: slope "
             f"{'declared ' if declared_slope is not None else ''}{wanted:g} expected "
             f"(torch.autograd of {function}: {torch_slope:g}; any single value in [0, 1] is "
             "valid)",
        context=f"seed={seed}; reproduce: verification.check_kink({label}, at={at:g})")
    return result if not result.passed else _with_convention(result, convention)


def _with_convention(result, convention):
    return replace(result, convention=convention)
