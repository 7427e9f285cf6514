"""Steps 4 and 5: the kink test where needed, and the comparison of each tensor's numerical
gradient with its analytic one (``|numeric − analytic| ≤ atol + rtol·|numeric|``, the
tolerance of ``steps.py``).

Kinks
    At a kink (ReLU at 0) the derivative jumps and a central difference whose stencil
    straddles it averages the two slopes. The check evaluates five points ``t + k·h``,
    ``k = −2…2`` (like Chainer's ``detect_nondifferentiable``), forms the four slopes between
    neighbours and their second differences ``e`` (third differences of L). For a smooth L,
    ``|e| ≤ 8δ/h + 6T`` (below the tolerance); a kink inside ``[t − 2h, t + 2h]`` adds a jump
    to ``e`` at least twice the error it causes in the central difference. Elements with
    ``max|e| > tolerance`` are therefore left out (``compare(..., excluded=mask)``) and
    counted in ``CheckResult.excluded``; an element that stays in is never spoiled by a kink
    beyond its tolerance, so a kink can never make the check flaky. (Two kinks whose jumps
    cancel exactly in ``e`` would escape; that needs two units to cross zero within ``2h``
    of the same point.) The value exactly at the kink, which finite differences cannot
    decide, is pinned by ``check_kink`` against torch's convention.

    The two outer points cost as much as the central pair, so they are evaluated only for
    the tensors that fail with the central pair alone: a kink can only make a correct
    gradient look wrong (or hide an error by cancelling it to within the tolerance, a
    coincidence), so a tensor that already agrees needs no kink test.
"""

import torch

from verification.checks.compare import compare
from verification.checks.diagnosis import prediction_sizes
from verification.checks.finite_difference.paths import _estimate

_CENTRAL = (0, -1, 1)
"""Step multiples always evaluated: the point and its central-difference neighbours."""
_OUTER = (-2, 2)
"""Step multiples added for the kink test, only for tensors that fail at ±h."""
_OFFSETS = (-2, -1, 0, 1, 2)


def _kink_test_where_needed(module, point, targets, losses, bounds, paths):
    """Add the points ``t ± 2h`` for the targets that fail at ``t ± h``; describe the paths.

    A kink can only make a correct gradient look wrong (or hide an error by cancelling it
    within the tolerance, a coincidence), so a tensor that already agrees needs no test.
    """
    suspects = [target for target, gradient in zip(targets, point.gradients, strict=True)
                if gradient.shape == target.tensor.shape
                and not _compare_target("", target, gradient, losses[target.name], bounds,
                                        "").passed]
    if not suspects:
        return ""
    outer, path = _estimate(module, point, suspects, _OUTER, paths)
    for name, more in outer.items():
        losses[name].update(more)
    return f"; kink test at t ± 2h for {len(suspects)} tensor(s), {path}"


def _compare_target(label, target, gradient, losses, bounds, context):
    """One ``CheckResult``: numerical vs analytic along the target's directions."""
    atol, rtol = bounds
    directions = target.directions
    check_id = f"finite_difference/{label}/{target.name}"
    what = directions.describe(target.name)
    if gradient.shape != target.tensor.shape:
        return compare(check_id=check_id, module=label, kind="finite_difference",
                       expected=target.tensor, got=gradient, atol=atol, rtol=rtol,
                       what=f"shape of {what}", context=context)
    numeric = directions.central(losses)
    shape = directions.result_shape
    near_kink = None
    if all(multiple in losses for multiple in _OFFSETS):
        near_kink = _near_kink(losses, directions.step, atol + rtol * numeric.abs()).view(shape)
    kinks = 0 if near_kink is None else int(near_kink.sum())
    note = f"; {kinks} element(s) within 2 steps of a kink left out" if kinks else ""
    return compare(
        check_id=check_id, module=label, kind="finite_difference",
        expected=numeric.view(shape), got=directions.analytic(gradient).view(shape),
        atol=atol, rtol=rtol, what=what, context=context + note, excluded=near_kink,
        sizes=prediction_sizes(shape, "features") if target.is_input else None,
    )


def _near_kink(losses, step, allowed):
    """Five-point kink test: third differences of L larger than the tolerance."""
    points = torch.stack([losses[multiple] for multiple in _OFFSETS])
    slopes = points.diff(dim=0) / step
    return slopes.diff(n=2, dim=0).abs().amax(dim=0) > allowed
