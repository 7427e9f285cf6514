"""Element-wise comparison of a computed tensor against a reference, shared by every check.

The rule is ``|got - expected| <= atol + rtol·|expected|`` element by element: ``atol``
absorbs errors that do not scale with the value (round-off of a finite difference, which
grows like machine-epsilon·|L|/eps), ``rtol`` those that do (accumulated float round-off).
Each check derives its own ``atol`` and ``rtol`` and says why in its docstring.

Two cases are named rather than measured. A comparison that demands equality (``rtol = 0``
and ``atol`` at most the smallest normal float64, ``EXACT``) reports an error ratio of 0 when
equal and ``inf`` when not, never the meaningless quotient of an error by 1e-308. A ``got``
that is NaN or infinite where ``expected`` is finite fails with "returned NaN at element …",
the first such element, whatever the other elements' errors; equal infinities are a match.

Every failing result carries a ``diagnosis`` (verification/checks/diagnosis.py): a constant
factor (named where it is 2, the batch size, the number of elements, …), an opposite sign, a
transpose, zero or no update at all, not finite at a named input, or "no recognisable
pattern". The caller may name the sizes a factor may equal (``sizes``), the inputs of the
elements (``inputs``), and, for an optimiser, the values before the step (``before``).
"""

import math
from dataclasses import replace

import torch

from verification.checks import diagnosis
from verification.checks.result import CheckResult

__all__ = ["compare", "error_ratios", "comparison_power", "EXACT", "unit_roundoff",
           "computed_dtype"]

EXACT = torch.finfo(torch.float64).tiny
"""The ``atol`` of an exact comparison (with ``rtol = 0``): the smallest normal float64, since
``compare`` divides the error by the tolerance and exactly 0 would turn a zero error into 0/0."""


def unit_roundoff(dtype):
    """u = half the machine epsilon: 2⁻⁵³ for float64, 2⁻²⁴ for float32."""
    return torch.finfo(dtype).eps / 2


def computed_dtype(*tensors):
    """The dtype a module computed in: float32 when any of its tensors (input, output,
    parameters; ``None`` skipped) is float32, else float64."""
    return (torch.float32 if any(t is not None and t.dtype == torch.float32 for t in tensors)
            else torch.float64)


def compare(*, check_id, module, kind, expected, got, atol, rtol, what, context="",
            excluded=None, sizes=None, inputs=None, input_name="x", where="", before=None,
            update=False):
    """Compare ``got`` with ``expected`` and describe the worst element.

    Args:
        check_id: the result's ``id``.
        module: the module's description (its ``repr``).
        kind: the check kind (see ``CheckResult``).
        expected: the reference tensor (finite difference, autograd, …).
        got: the tensor under test, same shape.
        atol: absolute tolerance: a number, or a float64 tensor of ``expected``'s shape
            (an element-wise bound, as a training trajectory derives one per element).
        rtol: relative tolerance.
        what: what is compared, e.g. ``"dL/d weight"``, for the message.
        context: extra facts for the message (eps, seed, how to reproduce).
        excluded: optional boolean mask, same shape, of elements to leave out.
        sizes: the ``diagnosis.Size``s a constant factor may equal, for the diagnosis;
            ``diagnosis.default_sizes`` of ``expected``'s shape when ``None``.
        inputs: the input of each element (an element-wise module's x), same shape, so that
            a NaN is diagnosed with the input that gave it; ``None`` when none.
        input_name: the name of ``inputs`` in the diagnosis (``"x"``, ``"prediction"``).
        where: a description of the whole input for the diagnosis of a NaN (an extreme input).
        before: the values before an optimiser's step, same shape (``expected`` and ``got``
            are the values after it): the diagnosis judges the updates.
        update: ``expected`` and ``got`` are themselves updates (a trajectory's Δ).

    Returns:
        A ``CheckResult`` whose ``detail`` names the worst element, with a ``diagnosis`` when
        it fails.
    """
    expected = expected.detach().to(torch.float64)
    got = got.detach().to(torch.float64)
    if expected.shape != got.shape:
        return _shape_mismatch(check_id, module, kind, expected, got, what)
    keep = torch.ones_like(expected, dtype=torch.bool) if excluded is None else ~excluded
    not_finite = keep & ~torch.isfinite(got) & torch.isfinite(expected)
    if bool(not_finite.any()):
        found = diagnosis.not_finite(got, not_finite, inputs=_wide(inputs),
                                     input_name=input_name, where=where)
        return replace(_not_finite(check_id, module, kind, expected, got, not_finite, what,
                                   context), diagnosis=found)
    abs_error = _abs_error(expected, got)
    allowed = atol + rtol * expected.abs()
    ratio = torch.where(keep, error_ratios(expected, got, atol, rtol), 0.0)
    nonzero = keep & (expected != 0)
    relative = torch.where(nonzero, abs_error / expected.abs(), torch.zeros_like(abs_error))
    count_excluded = int((~keep).sum())
    if not bool(keep.any()):
        return CheckResult(check_id, module, kind, True, 0.0, 0.0, 0.0 if torch.is_tensor(atol)
                           else atol, 0.0,
                           f"{what}: every element excluded", count_excluded)
    worst = int(ratio.flatten().argmax())
    index = diagnosis.unravel(worst, expected.shape)
    worst_ratio = float(ratio.flatten()[worst])
    passed = worst_ratio <= 1.0
    tolerance = float(allowed.flatten()[worst])
    verdict = "passed" if passed else "FAILED"
    found = "" if passed else diagnosis.diagnose(
        expected, got, allowed, keep=keep, update=update, before=_wide(before),
        sizes=diagnosis.default_sizes(expected.shape) if sizes is None else sizes)
    atol_here = float(atol.flatten()[worst]) if torch.is_tensor(atol) else atol
    rule = ("exact equality required" if _exact(atol, rtol) else
            f"tolerance {tolerance:.3g} (atol={atol_here:.3g} + rtol={rtol:.3g}·|expected|), "
            f"error/tolerance {worst_ratio:.3g}")
    detail = (
        f"{kind} check {verdict} for {module}, {what}, worst element {index}: "
        f"expected {float(expected.flatten()[worst]):.10g}, "
        f"got {float(got.flatten()[worst]):.10g}, "
        f"abs error {float(abs_error.flatten()[worst]):.3g}, {rule}"
        + (f", {count_excluded} element(s) excluded" if count_excluded else "")
        + (f"; {context}" if context else "")
    )
    return CheckResult(
        id=check_id, module=module, kind=kind, passed=passed,
        max_abs_error=float(torch.where(keep, abs_error, torch.zeros_like(abs_error)).max()),
        max_rel_error=float(relative.max()), tolerance=tolerance, error_ratio=worst_ratio,
        detail=detail, excluded=count_excluded, diagnosis=found,
        **_power(expected, allowed, keep, _exact(atol, rtol)),
    )


def _wide(tensor):
    return None if tensor is None else tensor.detach().to(torch.float64)


def _power(expected, allowed, keep, exact):
    """``scale`` and ``detectable`` (``comparison_power``) of the kept elements."""
    if exact:
        scale = float(torch.where(keep, expected.abs(), torch.zeros_like(expected)).max())
        return {"scale": scale, "detectable": 0.0}
    return comparison_power(expected[keep], allowed.expand_as(expected)[keep])


def comparison_power(expected, allowed):
    """``{"scale", "detectable"}`` of a comparison under the element-wise tolerances
    ``allowed``: scale = max |expected|, detectable = max allowed / scale (``CheckResult``);
    infinite for an all-zero reference under a nonzero tolerance. For a check made of several
    comparisons (a trajectory's steps), pass them concatenated."""
    scale = float(expected.abs().max()) if expected.numel() else 0.0
    largest = float(allowed.max()) if allowed.numel() else 0.0
    detectable = largest / scale if scale > 0 else (math.inf if largest > EXACT else 0.0)
    return {"scale": scale, "detectable": detectable}


def _abs_error(expected, got):
    """|got − expected|, 0 where they are equal (equal infinities included)."""
    return torch.where(got == expected, 0.0, (got - expected).abs())


def error_ratios(expected, got, atol, rtol):
    """Element-wise error / (atol + rtol·|expected|) of float64 tensors of one shape, as
    ``compare`` judges them: 0 where equal, ``inf`` where unequal under an exact comparison
    (``rtol = 0``, ``atol`` ≤ ``EXACT``) and where the quotient is NaN."""
    equal = got == expected
    if _exact(atol, rtol):
        return torch.where(equal, 0.0, float("inf")).to(got)
    ratio = torch.where(equal, 0.0, _abs_error(expected, got) / (atol + rtol * expected.abs()))
    return torch.nan_to_num(ratio, nan=float("inf"), posinf=float("inf"))


def _exact(atol, rtol):
    """Whether ``atol``, ``rtol`` demand equality (a tensor ``atol`` never does)."""
    return not torch.is_tensor(atol) and rtol == 0 and atol <= EXACT


def _shape_mismatch(check_id, module, kind, expected, got, what):
    detail = (f"{kind} check FAILED for {module}, {what}: expected shape "
              f"{list(expected.shape)}, got {list(got.shape)}")
    inf = float("inf")
    return CheckResult(check_id, module, kind, False, inf, inf, 0.0, inf, detail,
                       diagnosis=diagnosis.diagnose_shape(expected.shape, got.shape))


def _not_finite(check_id, module, kind, expected, got, mask, what, context):
    """The first element where ``got`` is NaN or infinite and ``expected`` is finite."""
    flat = int(mask.flatten().nonzero()[0])
    index = diagnosis.unravel(flat, expected.shape)
    value = float(got.flatten()[flat])
    detail = (f"{kind} check FAILED for {module}, {what}: the module returned {value} at "
              f"element {index} for this input, where the reference is "
              f"{float(expected.flatten()[flat]):.10g} ({int(mask.sum())} such element(s))"
              + (f"; {context}" if context else ""))
    inf = float("inf")
    return CheckResult(check_id, module, kind, False, inf, inf, 0.0, inf, detail)
