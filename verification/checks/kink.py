"""The derivative exactly at a kink: torch's convention, another valid one, or a bug.

Finite differences cannot decide the derivative of a function at a kink (ReLU, LeakyReLU,
PReLU at 0, ReLU6 at 0 and 6, Hardtanh at ±1, …): its one-sided slopes differ, so the
finite-difference check leaves such elements out. ``check_kink`` feeds an input whose every
element sits on the kink and reads the slope ``s = (dL/dx) / (dL/dy)`` per element, against
torch.autograd's value there and the two one-sided slopes ``L`` and ``R`` of the reference
(its autograd slope at ``at ∓ δ``, δ = 2⁻²⁶·max(1, |at|)):

- ``s`` equals torch's value everywhere: pass;
- ``s`` is one constant between ``L`` and ``R`` where both are constants (ReLU: any value in
  [0, 1], 1 say, for ``x >= 0``), or ``s`` is the left-hand slope everywhere, or the right-hand
  one everywhere (PReLU with one slope per feature): pass, with a ``convention`` sentence; a
  convention difference is a fact, not a failure;
- anything else (slopes that vary, lie outside, or differ from a declared slope): fail.

Slopes are compared with rtol = 4u of the module's dtype (``g·s`` then ``/ g`` rounds twice),
and a one-sided slope also with the change of the reference's slope between δ and 2δ: on a
curved side (ELU with α ≠ 1) that bounds how far the slope at δ is from its limit at the kink;
on a straight side it is 0.

``find_kinks`` locates a function's kinks (continuous, one-sided slopes that differ) and jumps
(discontinuities, as Hardshrink's at ±λ) among candidate points, so that the suite checks each
kink here and keeps hand-picked points off both.

Detection power (``CheckResult.detectable``: the relative error of the compared tensor's
largest element sure to fail; measured over every case of refnet and of the ``float32``
fixture, the README's table, asserted by tests/test_detection_power.py with an error of that
size planted): exact in both dtypes for ReLU (torch's slope 0); a slope that varies between
elements, or lies outside the one-sided slopes, fails.
"""

from dataclasses import dataclass, replace

import torch

from verification.checks.compare import EXACT, compare, computed_dtype
from verification.checks.reference import guarded, unit_roundoff
from verification.targets.spec import as_component

__all__ = ["check_kink", "find_kinks", "Kinks"]

KIND = "kink"
_SIDE = 2.0 ** -26
"""δ / max(1, |at|): the one-sided slopes are read at ``at ∓ δ`` (and ``at ∓ 2δ``)."""


def _slope(reference, x):
    """The autograd slope of an element-wise ``reference`` at every element of ``x``."""
    with torch.enable_grad():
        leaf = x.detach().clone().requires_grad_(True)
        (slope,) = torch.autograd.grad(reference(leaf).sum(), leaf)
    return slope.detach()


def _sides(reference, x, at):
    """``(L, R, slack_L, slack_R)``: one-sided slopes at ``at ∓ δ`` and how much each moves
    between δ and 2δ (module docstring)."""
    delta = _SIDE * max(1.0, abs(at))
    left, right = _slope(reference, x - delta), _slope(reference, x + delta)
    return (left, right, (left - _slope(reference, x - 2 * delta)).abs(),
            (right - _slope(reference, x + 2 * delta)).abs())


@dataclass(frozen=True)
class Kinks:
    """Where a function is not differentiable, among the candidates tried.

    Attributes:
        kinks: continuous points whose one-sided slopes differ.
        jumps: points where the function itself jumps.
    """

    kinks: tuple
    jumps: tuple


def find_kinks(reference, candidates):
    """The kinks and jumps of an element-wise ``reference`` (float64) among ``candidates``.

    A candidate is a kink when its one-sided slopes differ by more than their slack (module
    docstring) plus 1e-6 of their size, and a jump when ``|f(at + δ) − f(at − δ)|`` exceeds
    what the slopes allow over 2δ by more than 1e-6 of ``|f|``.
    """
    kinks, jumps = [], []
    for at in sorted(set(map(float, candidates))):
        x = torch.tensor([at], dtype=torch.float64)
        delta = _SIDE * max(1.0, abs(at))
        with torch.no_grad():
            low, centre, high = (float(reference(x + k * delta)) for k in (-1, 0, 1))
        left, right, slack_left, slack_right = (float(t) for t in _sides(reference, x, at))
        steepest = max(abs(left), abs(right))
        if abs(high - low) > 2 * delta * steepest * (1 + 1e-6) + 1e-6 * abs(centre):
            jumps.append(at)
        elif abs(left - right) > slack_left + slack_right + 1e-6 * steepest:
            kinks.append(at)
    return Kinks(tuple(kinks), tuple(jumps))


def check_kink(module, reference=torch.relu, *, at=0.0, shape=(2, 3), seed=0, name=None,
               declared_slope=None, dtype=torch.float64):
    """Classify the module's derivative exactly at a kink (module docstring).

    Args:
        module: an element-wise module, e.g. a ReLU (or a ``Component``).
        reference: the torch function of the same activation, or its twin (a module whose
            ``label`` names it), holding the module's parameter values.
        at: the kink's position.
        shape: the input's shape (every element equals ``at``).
        seed: seeds the random grad_output.
        name: the module's label; its description when ``None``.
        declared_slope: the slope the target declares it uses there (``relu_slope_at_zero``);
            ``None`` accepts any valid one.
        dtype: the dtype of the input and grad_output the module is fed (the dtype being
            checked: a float32 run feeds float32, so the module computes, and is held to
            the round-off of, float32); the reference's slopes are float64 either way.

    Returns:
        One ``CheckResult`` of kind ``kink``, id ``kink/<name>/x=<at>``.
    """
    component = as_component(module, name=name)
    label = component.name
    check_id = f"{KIND}/{label}/x={at:g}"
    results = guarded(check_id, label, KIND,
                      lambda: [_check(component, reference, at, shape, seed, declared_slope,
                                                      dtype)])
    failed = [result for result in results if not result.passed]
    return failed[0] if failed else results[0]


@dataclass(frozen=True)
class _Candidate:
    """A slope the module may use at the kink: per element, with its slack and its sentence."""

    slopes: torch.Tensor
    slack: torch.Tensor
    convention: str


def _uniform(tensor, rtol):
    first = float(tensor.flatten()[0])
    return bool(((tensor - first).abs() <= rtol * abs(first)).all()), first


def _candidates(reference, x, at, slopes, rtol, torch_slope, function):
    """The valid slopes other than torch's, in order of preference (module docstring)."""
    left, right, slack_left, slack_right = _sides(reference, x, at)
    zero = torch.zeros_like(slopes)
    found = []
    uniform, slope = _uniform(slopes, rtol)
    left_uniform, low = _uniform(left, rtol)
    right_uniform, high = _uniform(right, rtol)
    margin = float(slack_left.max() + slack_right.max()) + rtol * max(abs(low), abs(high))
    if uniform and left_uniform and right_uniform and (
            min(low, high) - margin <= slope <= max(low, high) + margin):
        found.append(_Candidate(torch.full_like(slopes, slope), zero,
                                f"derivative {slope:g} at x = {at:g}, where torch.autograd's "
                                f"{function} uses {torch_slope:g} (both valid subgradients)"))
    for side, values, slack in (("left", left, slack_left), ("right", right, slack_right)):
        found.append(_Candidate(values, slack, f"derivative at x = {at:g} is the {side}-hand "
                                f"slope, where torch.autograd's {function} uses its own "
                                "value (both valid subgradients)"))
    return found


def _check(component, reference, at, shape, seed, declared_slope, dtype):
    view, label = component.view, component.name
    generator = torch.Generator().manual_seed(seed)
    x = torch.full(shape, float(at), dtype=dtype).to(torch.float64)
    upstream = torch.randn(shape, generator=generator, dtype=torch.float64).to(dtype).to(
        torch.float64)  # the values fed, held in float64 for the reference and the slopes
    view.zero_grad()
    view.forward(x.to(dtype))
    computed = view.backward(upstream.to(dtype))
    got = computed.to(torch.float64)
    expected = _slope(reference, x)
    torch_slope = float(expected.flatten()[0])
    slopes = got / upstream
    rtol = 4 * unit_roundoff(computed_dtype(computed))
    function = getattr(reference, "label", None) or getattr(reference, "__name__",
                                                            type(reference).__name__)
    chosen = _Candidate(expected, torch.zeros_like(expected), "")
    if declared_slope is not None:
        wanted = float(declared_slope)
        chosen = _Candidate(torch.full_like(expected, wanted), chosen.slack,
                            "" if wanted == torch_slope else
                            f"derivative {wanted:g} at x = {at:g} (declared), where "
                            f"torch.autograd's {function} uses {torch_slope:g}")
    elif not _matches(slopes, expected, chosen.slack, rtol):
        chosen = next((candidate for candidate in _candidates(
            reference, x, at, slopes, rtol, torch_slope, function)
            if _matches(slopes, candidate.slopes, candidate.slack, rtol)), chosen)
    result = compare(
        check_id=f"{KIND}/{label}/x={at:g}", module=label, kind=KIND,
        expected=chosen.slopes * upstream, got=got,
        atol=max(EXACT, float((chosen.slack * upstream.abs()).max())), rtol=rtol,
        what=f"dL/dx exactly at the kink x = {at:g}: slope "
             f"{'declared ' if declared_slope is not None else ''}"
             f"{_text(chosen.slopes)} expected (torch.autograd of {function}: "
             f"{_text(expected)}; a single value between the one-sided slopes, or either "
             "one-sided slope, is valid)",
        context=f"seed={seed}; reproduce: verification.check_kink({label}, at={at:g})")
    if result.passed:
        return replace(result, convention=chosen.convention)
    return replace(result, diagnosis=_only_at_kink(view, reference, x, upstream, at, dtype,
                                                   slopes, rtol) or result.diagnosis)


_PROBE = 2.0 ** -10
"""The module's own slopes are read at ``at ∓ _PROBE·max(1, |at|)`` for the diagnosis."""


def _only_at_kink(view, reference, x, upstream, at, dtype, slopes, rtol):
    """"right on both sides of the kink, wrong only at x = at: …" when the module's slopes at
    ``at ∓ δ'`` (δ' = ``_PROBE``·max(1, |at|), both sides of the kink but near it) equal the
    reference's there, within 2·rtol and the reference's own change over δ' at the kink
    (``_sides``'s slack); else empty (the comparison's own diagnosis then stands)."""
    offset = _PROBE * max(1.0, abs(at))
    for side in (-offset, offset):
        point = (x + side).to(dtype).to(torch.float64)
        view.zero_grad()
        view.forward(point.to(dtype))
        own = view.backward(upstream.to(dtype)).to(torch.float64) / upstream
        wanted = _slope(reference, point)
        if not bool(((own - wanted).abs() <= 2 * rtol * wanted.abs() + 1e-12).all()):
            return ""
    left, right, _, _ = _sides(reference, x, at)
    uniform, slope = _uniform(slopes, rtol)
    found = (f"slope {slope:g}" if uniform else
             f"slopes varying from {float(slopes.min()):g} to {float(slopes.max()):g}")
    return (f"right on both sides of the kink (x = {at:g} ∓ {offset:.3g}), wrong only at the kink "
            f"x = {at:g}: {found}, where the one-sided slopes are {_text(left)} and "
            f"{_text(right)}")


def _matches(slopes, wanted, slack, rtol):
    return bool(((slopes - wanted).abs() <= rtol * wanted.abs() + slack).all())


def _text(slopes):
    uniform, first = _uniform(slopes, 0.0)
    return f"{first:g}" if uniform else "per element"
