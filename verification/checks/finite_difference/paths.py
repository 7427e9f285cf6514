"""Step 3, the losses at t + k·h for every checked tensor, and the path that computes them:
the input's tall batch (or one element at a time), and the parameters' replica twin
(``replica_path.py``) or protocol path (``protocol_path.py``).

Batching (the cost)
    ``torch.autograd.gradcheck`` runs two forward passes per element. Here:

    - Input, ``row_wise=True`` (default): the module is assumed to treat each sample (each
      row along the second-to-last axis) independently, as every refnet module does outside
      training-mode Dropout. Moving element ``(b, f)`` then changes only output row ``b``,
      so the perturbed copies of every row, ``3·B·in`` rows of width ``in`` (the row and
      its ±h copies; 2·B·in more for the kink test), are stacked into one tall batch and
      run in ONE forward call; each element's loss is its own row's
      ``Σ w_b ⊙ y_b``. Pass ``row_wise=False`` for modules that mix samples (a loss, a
      fixed-mask Dropout): then one element is perturbed at a time.
    - Parameters: see ``replica_path.py`` (``param_path="auto"`` or ``"replica"``) and
      ``protocol_path.py`` (``"protocol"``, and the fallback of ``"auto"``).
"""

from dataclasses import dataclass

import torch

from verification.checks.finite_difference.analytic import _call, _ModuleError
from verification.checks.finite_difference.protocol_path import (
    _calls,
    _each_parameter_value,
    _forward_loss,
    _one_at_a_time,
)
from verification.checks.finite_difference.replica_path import _replica_losses

_PARAM_PATHS = ("auto", "replica", "protocol")


@dataclass(frozen=True)
class _Paths:
    """How the losses are evaluated (see ``check_backward``'s arguments)."""

    row_wise: bool
    param_path: str
    chunk_elements: int

    def __post_init__(self):
        if self.param_path not in _PARAM_PATHS:
            raise ValueError(f"param_path must be one of {_PARAM_PATHS}, got {self.param_path!r}")


def _estimate(module, point, targets, multiples, paths):
    """Losses ``{k: [count]}`` for each k in ``multiples``, by target name, and the paths."""
    losses, descriptions = {}, []
    inputs = [target for target in targets if target.is_input]
    parameters = [target for target in targets if not target.is_input]
    for target in inputs:
        losses[target.name], text = _input_losses(module, point, target, multiples,
                                                  paths.row_wise)
        descriptions.append(f"input: {text}")
    if parameters:
        parameter_losses, text = _parameter_losses(module, point, parameters, multiples, paths)
        losses.update(zip((target.name for target in parameters), parameter_losses,
                          strict=True))
        descriptions.append(f"parameters: {text}")
    return losses, "; ".join(descriptions)


def _input_losses(module, point, target, multiples, row_wise):
    directions = target.directions
    if not (row_wise and point.x.ndim >= 2):
        def evaluate(values):
            return _forward_loss(module, point, values.view_as(point.x))
        losses = _one_at_a_time(evaluate, directions, multiples, point.loss)
        return losses, f"one element at a time ({_calls(directions, multiples)} forward calls)"
    blocks = [directions.row_block(multiple) for multiple in multiples]
    tall = torch.cat(blocks, dim=-2)
    try:
        outputs = _call("forward", module.forward, tall)
    except _ModuleError as error:
        raise _ModuleError(f"on the tall batch of perturbed rows, {error} (a module that mixes "
                           "samples needs row_wise=False)") from error
    _require_rows(outputs, point, tall.shape[-2])
    pieces = outputs.split([block.shape[-2] for block in blocks], dim=-2)
    losses = {multiple: directions.row_losses(point.weights, piece)
              for multiple, piece in zip(multiples, pieces, strict=True)}
    return losses, "one tall batch of perturbed rows (1 forward call)"


def _require_rows(outputs, point, rows):
    """Raise unless the tall batch gave one output row per input row, as row-wise modules do."""
    weights = point.weights
    expected = (*weights.shape[:-2], rows, *weights.shape[-1:]) if weights.ndim >= 2 else None
    if not isinstance(outputs, torch.Tensor) or tuple(outputs.shape) != expected:
        shape = list(getattr(outputs, "shape", [])) or type(outputs).__name__
        raise _ModuleError(
            f"forward on a tall batch of {rows} rows returned {shape}, not one row per input "
            f"row (expected {list(expected) if expected else 'one row each'}): the module "
            "keeps an output of an earlier call, or mixes rows (for a module that really mixes "
            "rows, check_backward takes row_wise=False)"
        )


def _parameter_losses(module, point, targets, multiples, paths):
    reason = "param_path='protocol'"
    if paths.param_path != "protocol":
        losses, reason = _replica_losses(module, point, targets, multiples, paths.chunk_elements)
        if losses is not None:
            return losses, reason
        if paths.param_path == "replica":
            raise ValueError(f"param_path='replica': {reason}")
    all_losses = [_each_parameter_value(module, point, target, multiples)
                  for target in targets]
    calls = sum(_calls(target.directions, multiples) for target in targets)
    return all_losses, f"protocol, one element at a time ({calls} forward calls; {reason})"
