"""A diagnosis of a failing comparison: the smallest fact that explains it, from the tensors.

``compare`` (verification/checks/compare.py) measures how far ``got`` is from ``expected``;
this module says what kind of wrong it is. Every function is pure: tensors in, one sentence
out. The patterns, tried in this order on the compared elements (float64; an excluded element
is left out):

- **no update at all** (a step's update, ``before`` given or ``update=True``): the values after
  the step equal those before, exactly, where the reference moves;
- **zero**: ``got`` is exactly 0 everywhere where the reference is not;
- **transposed**: ``got`` has the shape of expected's transpose and equals it (a weight
  gradient [in, out] for [out, in]), or, square, equals expected transposed element by
  element within the check's tolerance;
- **a constant factor** f: the least-squares ratio

      f = (got · expected) / (expected · expected),

  the f minimising ‖got − f·expected‖, is "constant" when the residual got − f·expected passes
  the check's own element-wise tolerance ``allowed`` (= atol + rtol·|expected|) everywhere. It
  is then named where it matches, within a relative slack s, −1 ("opposite sign"), 2 or ½, or a
  size of the comparison (``Size``: the number of elements, ``default_sizes``, and where the
  caller knows them the batch size and the number of outputs or classes, ``prediction_sizes``)
  or its inverse. The slack follows from the tolerance: f's own error is at most
  about max(allowed)/max|expected| =: r (the residual is within ``allowed``), so
  s = min(``MAX_SLACK``, max(4r, 10⁻⁶)): a float64 check names factors within 10⁻⁶, a loose
  float32 one within 5 % (2, 3 and 6 stay 33 % or more apart);
- **not finite** (``not_finite``): the first NaN or infinity, with the input it came from where
  the caller gives the inputs (an element-wise module at an extreme point: "x = 800");
- anything else: "no recognisable pattern (…)" with short facts: how many elements are out of
  tolerance, the best constant factor and how far its residual is from passing.

A single compared element (a loss value) always fits "a constant factor" (its ratio); there
only a named factor is a diagnosis. ``kink.py`` and ``trajectory.py`` add their own framing
("wrong only at the kink", "from step k, the update").
"""

import math
from dataclasses import dataclass

import torch

__all__ = ["Size", "default_sizes", "least_squares_factor", "factor_fits", "name_factor",
           "diagnose", "diagnose_shape", "not_finite", "MAX_SLACK", "prediction_sizes",
           "unravel"]

MAX_SLACK = 0.05
"""The widest relative slack a named factor is matched with (module docstring)."""
_MIN_SLACK = 1e-6


@dataclass(frozen=True)
class Size:
    """A size a factor may equal.

    Attributes:
        name: what it is, e.g. ``"the batch size"``.
        value: the size, an integer > 1.
        symbol: its letter in a normalisation, e.g. ``"B"`` (``"the 1/B is missing"``).
        detail: how it is made up, e.g. ``"(6 × 3)"``; empty when it is not a product.
    """

    name: str
    value: int
    symbol: str
    detail: str = ""


def default_sizes(shape):
    """The sizes any comparison of ``shape`` has: the number of elements, where it exceeds 1
    (with its product, ``(6 × 3)``, for more than one axis); none for a single element. A
    tensor's rows are not a batch in general (a weight gradient's are outputs), so the batch
    size and the outputs come from ``prediction_sizes`` where the caller knows them."""
    shape = [size for size in shape]
    count = math.prod(shape)
    if count <= 1:
        return ()
    detail = f"({' × '.join(map(str, shape))})" if sum(s > 1 for s in shape) > 1 else ""
    return (Size("the number of elements", count, "N", detail),)


def prediction_sizes(shape, last="outputs"):
    """The sizes of a per-sample tensor (a prediction, dL/dy, a module's input or output).

    Args:
        shape: [batch, outputs] (the last two axes of more).
        last: the name of the last axis: ``"outputs"``, ``"classes"`` or ``"features"``.

    Returns:
        A tuple of ``Size``, most specific first, each only where it exceeds 1: the number of
        elements B·C (when both B and C exceed 1), the batch size B, the number of outputs
        (or classes) C.
    """
    if len(shape) < 2:
        return default_sizes(shape)
    batch, width = shape[-2], shape[-1]
    sizes = []
    if batch > 1 and width > 1:
        sizes.append(Size("the number of elements", batch * width, "N", f"({batch} × {width})"))
    if batch > 1:
        sizes.append(Size("the batch size", batch, "B"))
    if width > 1:
        sizes.append(Size(f"the number of {last}", width, "C"))
    return tuple(sizes)


def least_squares_factor(expected, got):
    """f = (got · expected) / (expected · expected), the f minimising ‖got − f·expected‖;
    NaN when ``expected`` is 0 everywhere."""
    denominator = float((expected * expected).sum())
    return float((got * expected).sum()) / denominator if denominator > 0 else math.nan


def factor_fits(expected, got, factor, allowed):
    """Whether got − factor·expected is within max(1, |factor|)·``allowed`` (atol +
    rtol·|expected|) at every element: ``got`` is ``expected`` times a constant, under the
    check's own tolerance scaled as ``got`` is (f times the values, f times their round-off)."""
    if not math.isfinite(factor):
        return False
    return bool(((got - factor * expected).abs() <= max(1.0, abs(factor)) * allowed).all())


def _slack(expected, allowed):
    """s = min(``MAX_SLACK``, max(4r, 10⁻⁶)), r = max(allowed) / max|expected|."""
    scale = float(expected.abs().max()) if expected.numel() else 0.0
    ratio = float(allowed.max()) / scale if scale > 0 else math.inf
    return min(MAX_SLACK, max(4 * ratio, _MIN_SLACK))


def _near(value, wanted, slack):
    return abs(value - wanted) <= slack * abs(wanted)


def name_factor(factor, sizes=(), slack=_MIN_SLACK, update=False):
    """The sentence of a constant factor, a named one where it matches (module docstring).

    Args:
        factor: the measured factor f.
        sizes: the ``Size``s it may equal.
        slack: the relative slack of a match.
        update: the compared tensors are a step's updates (a sign error then goes up the
            gradient).

    Returns:
        ``(sentence, named)``: e.g. ``("×2.00: an extra factor 2", True)``,
        ``("×18 = the number of elements (6 × 3): the 1/N is missing", True)``,
        ``("×1/6: divided by the batch size 6", True)``, ``("×0.873", False)``.
    """
    if _near(factor, -1.0, slack):
        return ("opposite sign: the step goes up the gradient" if update else
                "opposite sign: got = −expected"), True
    sign, size = ("opposite sign and ", -factor) if factor < 0 else ("", factor)
    if _near(size, 2.0, slack):
        also = [s.name for s in sizes if s.value == 2]
        return (f"{sign}×{size:.2f}: an extra factor 2"
                + (f" (= {also[0]})" if also else "")), True
    if _near(size, 0.5, slack):
        return f"{sign}×0.50: a factor 2 missing (half the reference)", True
    for candidate in sizes:
        if _near(size, candidate.value, slack):
            detail = f" {candidate.detail}" if candidate.detail else ""
            return (f"{sign}×{candidate.value} = {candidate.name}{detail}: the "
                    f"1/{candidate.symbol} is missing"), True
        if _near(size, 1 / candidate.value, slack):
            return (f"{sign}×1/{candidate.value}: divided by {candidate.name} "
                    f"{candidate.value}"), True
    return f"{sign}×{size:.3g}: off by a constant factor", False


def _transposed(expected, got, allowed):
    """Whether a square ``got`` is ``expected``'s transpose within ``allowed``."""
    return (expected.ndim == 2 and expected.shape[0] == expected.shape[1] > 1
            and not torch.equal(expected, expected.T)
            and bool(((got - expected.T).abs() <= allowed).all()))


def diagnose(expected, got, allowed, *, sizes=(), keep=None, before=None, update=False):
    """The diagnosis of a failing comparison of same-shaped float64 tensors (module docstring).

    Args:
        expected: the reference.
        got: the tensor under test, same shape, finite where ``keep`` is.
        allowed: the check's element-wise tolerance atol + rtol·|expected|, same shape (or
            broadcastable).
        sizes: the ``Size``s a factor may equal (``default_sizes``).
        keep: boolean mask of the compared elements; all when ``None``.
        before: the values before a step (``expected`` and ``got`` are values after it): the
            diagnosis then judges the updates got − before against expected − before.
        update: ``expected`` and ``got`` are themselves a step's updates.

    Returns:
        One sentence: the pattern that fits, or "no recognisable pattern (…)".
    """
    allowed = torch.as_tensor(allowed, dtype=torch.float64).expand_as(expected)
    if _transposed(expected, got, allowed):
        return (f"transposed: got is the reference's transpose (a {list(expected.shape)} "
                "tensor read with its axes swapped)")
    if before is not None:
        expected, got, update = expected - before, got - before, True
    if keep is not None:
        expected, got, allowed = expected[keep], got[keep], allowed[keep]
    expected, got, allowed = expected.flatten(), got.flatten(), allowed.flatten()
    if not expected.numel():
        return "no recognisable pattern (no element compared)"
    moves = bool((expected != 0).any())
    if update and moves and bool((got == 0).all()):
        return "no update at all: the parameters after the step equal those before"
    if moves and bool((got == 0).all()):
        return (f"zero: got is 0 everywhere, where the reference reaches "
                f"{float(expected.abs().max()):.3g}")
    if not moves:
        return (f"no recognisable pattern (the reference is 0 everywhere; got reaches "
                f"{float(got.abs().max()):.3g})")
    factor = least_squares_factor(expected, got)
    if factor_fits(expected, got, factor, allowed):
        sentence, named = name_factor(factor, sizes, _slack(expected, allowed), update)
        if named or expected.numel() > 1:
            return sentence
        return f"no recognisable pattern (got / expected = {factor:.6g})"
    return _no_pattern(expected, got, allowed, factor)


def _no_pattern(expected, got, allowed, factor):
    failing = int(((got - expected).abs() > allowed).sum())
    residual = (got - factor * expected).abs() / allowed
    worst = float(torch.nan_to_num(residual, nan=math.inf).max())
    return (f"no recognisable pattern ({failing} of {expected.numel()} element(s) out of "
            f"tolerance; no constant factor fits: the best, {factor:.3g}, leaves "
            f"{worst:.3g}× the tolerance)")


def diagnose_shape(expected_shape, got_shape):
    """The diagnosis of a shape mismatch: "transposed" when ``got_shape`` is
    ``expected_shape`` reversed (2-D), else the shapes."""
    expected_shape, got_shape = list(expected_shape), list(got_shape)
    if len(expected_shape) == 2 and got_shape == expected_shape[::-1]:
        return (f"transposed: shape {got_shape} where {expected_shape} belongs (a weight "
                "gradient in the other layout, or a missing .T)")
    if sorted(expected_shape) == sorted(got_shape):
        return f"no recognisable pattern (the axes are permuted: {got_shape} for {expected_shape})"
    return f"no recognisable pattern (shape {got_shape} for {expected_shape})"


def not_finite(got, mask, *, inputs=None, input_name="x", where=""):
    """The diagnosis of a ``got`` that is NaN or infinite where the reference is finite.

    Args:
        got: the tensor under test (float64).
        mask: boolean, same shape: where ``got`` is not finite and the reference is.
        inputs: the input of each element (an element-wise module's x, a loss's prediction),
            same shape as ``got``; ``None`` when elements have no input of their own.
        input_name: the input's name in the sentence (``"x"``, ``"prediction"``).
        where: a description of the whole input (a loss's extreme input), or empty.

    Returns:
        E.g. "not finite (nan) at x = 800 (element [0, 2]); 1 such element".
    """
    flat = int(mask.flatten().nonzero()[0])
    index = unravel(flat, got.shape)
    value = float(got.flatten()[flat])
    count = int(mask.sum())
    at = (f"{input_name} = {float(inputs.flatten()[flat]):g} (element {index})"
          if inputs is not None and inputs.shape == got.shape else f"element {index}")
    return (f"not finite ({value}) at {at}" + (f", {where}" if where else "")
            + f"; {count} such element(s)")


def unravel(flat_index, shape):
    """The multi-index of element ``flat_index`` of a row-major tensor of ``shape`` (the
    element every message names; ``compare`` uses it too)."""
    index = []
    for size in reversed(shape):
        flat_index, position = divmod(flat_index, size)
        index.append(position)
    return index[::-1]
