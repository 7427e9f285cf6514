"""The inputs a loss is checked at: the grid (a main input and more shapes, each checked
fully) and the extreme inputs of its kind (value and gradient only).

Extreme inputs (``extreme_inputs``), in the compared dtype:

- cross-entropy: logits [0, 800, −800] with the target on the large, the small and the middle
  logit, and [800, −800] with either target (a softmax without max-subtraction gives
  inf/inf = NaN there, log-softmax is well conditioned: exact zeros and ±1 in the gradient);
- BCE: p = ε and 1 − ε' with targets 0 and 1; ε = ε' = 1e-12 in float64; in float32
  ε = 1e-12 (representable) and ε' = 2⁻²⁴, because 1 − 1e-12 rounds to 1 in float32
  (log 0) and 1 − 2⁻²⁴ is the largest float32 below 1 (its reference: ``formulas.py``);
- MSE and the regression losses: magnitude M = 1e18 (the squares of 1.5·M stay below
  float32's 3.4e38: a loss may compute its value in float32 inside a float64 framework, which
  the float32 tolerance accepts, so the input must be finite there too);
- regression losses also at hand-picked d = x − t ∈ {−2.5, −0.5, 0.25, 2}·τ, τ the threshold
  (``delta``, ``beta``, else 1): both sides of Huber's δ. L1's kink at d = 0 is never an input:
  exactly-equal points are excluded (the derivative there is a convention, as ReLU's in
  ``kink.py``), and random grid points are never exactly equal;
- ``*_with_logits`` losses: logits ±800 with either target.

No finite differences at an extreme input (a step from p = 1e-12 leaves (0, 1)), and its
gradient is compared to rtol alone (``comparisons.py``).
"""

from dataclasses import dataclass, replace

import torch
from torch.nn import functional

from verification.vocabulary.losses import loss_kind

__all__ = ["LossInput", "grid_input", "extreme_inputs", "checked_inputs"]


@dataclass(frozen=True)
class LossInput:
    """One point at which a loss is checked.

    Attributes:
        tag: its name in result ids (``"6x3"``, ``"extreme-gap800-3-classes"``).
        description: what it is, for messages.
        prediction: [batch, outputs] (or [R, batch, outputs] with replicas).
        target: same shape, or int64 class indices [batch] for cross-entropy.
        extreme: an extreme input: value and gradient only, the gradient to rtol alone
            (``comparisons.py``).
    """

    tag: str
    description: str
    prediction: torch.Tensor
    target: torch.Tensor
    extreme: bool = False


def grid_input(prediction, target):
    """A grid ``LossInput``, tagged by its shape (``6x3``)."""
    shape = list(prediction.shape)
    return LossInput("x".join(map(str, shape)), f"prediction {shape} {prediction.dtype}",
                     prediction, target)


_LARGE = 1e18
"""Magnitude M of the large-value inputs: (1.5·M)² summed stays finite in float32."""
_NEAR_ZERO = 1e-12
_NEAR_ONE = {torch.float64: 1e-12, torch.float32: 2.0 ** -24}
"""ε' of p = 1 − ε': 1 − 1e-12 rounds to 1 in float32, whose largest value below 1 is 1 − 2⁻²⁴."""
_GAP = 800.0


def _classes(labels, outputs, dtype, index_targets):
    labels = torch.tensor(labels)
    return labels if index_targets else functional.one_hot(labels, outputs).to(dtype)


def extreme_inputs(kind, dtype=torch.float64, *, index_targets=False):
    """The extreme ``LossInput``s of a loss kind (module docstring), in ``dtype``.

    Args:
        kind: a ``LossKind`` (or what ``loss_kind`` takes).
        dtype: the compared dtype (float32 changes ε' and M).
        index_targets: cross-entropy targets as int64 class indices, not one-hot.
    """
    kind = loss_kind(kind)

    def point(tag, description, prediction, target):
        prediction = torch.tensor(prediction, dtype=torch.float64).to(dtype)
        target = target if isinstance(target, torch.Tensor) else torch.tensor(
            target, dtype=torch.float64).to(dtype)
        return LossInput(f"extreme-{tag}", f"extreme input: {description}", prediction,
                         target, extreme=True)

    gap = _GAP
    if kind.inputs == "classes":
        return [point("gap800-3-classes", "logits [0, 800, -800] in each row, target on the "
                      "large, the small, the middle logit", [[0.0, gap, -gap]] * 3,
                      _classes([1, 2, 0], 3, dtype, index_targets)),
                point("gap800-2-classes", "logits [800, -800] in each row, target on the "
                      "large, the small logit", [[gap, -gap]] * 2,
                      _classes([0, 1], 2, dtype, index_targets))]
    if kind.inputs == "probabilities":
        small, large = _NEAR_ZERO, 1.0 - _NEAR_ONE[dtype]
        return [point("p-near-0-and-1", f"p = {small:g} (row 0) and 1 - {_NEAR_ONE[dtype]:.3g} "
                      "(row 1), targets 0 and 1 in each row", [[small, small], [large, large]],
                      [[0.0, 1.0], [0.0, 1.0]])]
    if kind.inputs == "logits":
        return [point("logits-800", "logits 800 (row 0) and -800 (row 1), targets 1, 0 and "
                      "0, 1", [[gap, -gap], [gap, -gap]], [[1.0, 0.0], [0.0, 1.0]])]
    large = _LARGE
    inputs = [point("large", f"magnitude {large:g}: prediction [M, -M], target [-M/2, M/2]",
                    [[large, -large]], [[-large / 2, large / 2]])]
    if kind.name != "mse":
        tau, target = kind.threshold, 0.25
        differences = [-2.5, -0.5, 0.25, 2.0]
        inputs.append(point("both-sides-of-threshold", f"x - t = {differences} × {tau:g} "
                            "(both sides of the threshold; never x = t, the kink)",
                            [[target + d * tau for d in differences]], [[target] * 4]))
    return inputs


def checked_inputs(prediction, target, also_at, extremes):
    """The grid (the main input, then ``also_at``'s; replicated predictions stay alone) and
    the extreme inputs, with unique tags."""
    grid = [(prediction, target)] + ([] if prediction.ndim == 3 else list(also_at))
    inputs = [item if isinstance(item, LossInput) else grid_input(*item) for item in grid]
    inputs += list(extremes)
    seen, unique = {}, []
    for item in inputs:
        count = seen[item.tag] = seen.get(item.tag, 0) + 1
        unique.append(item if count == 1 else replace(item, tag=f"{item.tag}-{count}"))
    return unique
