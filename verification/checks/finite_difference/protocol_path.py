"""Step 3 by the protocol alone: one perturbed value per forward call, the values restored.

For views without a replicated twin (any module but a tree of refnet's own classes without
replicas of its own), and where the twin is discarded, the protocol path perturbs one element (or
direction) at a time in place: 2 forward calls per element, 2 more where the kink test runs;
values restored. Its losses are relative to the unperturbed loss, as the replica path's are,
so that losses of the two paths can meet in one kink test.
"""

import torch

from verification.checks.finite_difference.analytic import _call, _loss

_ROWS_PER_CALL = 256
"""Perturbed values of a parameter per ``forward_each`` call (each call holds them all)."""


def _each_parameter_value(module, point, target, multiples):
    """Losses ``{k: [count]}`` of one parameter tensor moved along each direction in turn
    (``ModuleView.forward_each``: one forward per perturbed value, the values restored
    afterwards), relative to the unperturbed loss, as the replica path's are, so that losses of
    the two paths can meet in one kink test."""
    directions = target.directions

    def along(multiple):
        if multiple == 0:
            return torch.zeros(directions.count, dtype=torch.float64,
                               device=directions.base.device)
        losses = []
        for start in range(0, directions.count, _ROWS_PER_CALL):
            rows = directions.rows(multiple, torch.arange(
                start, min(start + _ROWS_PER_CALL, directions.count)))
            outputs = _call("forward", module.forward_each, target.tensor, rows, point.x)
            losses += [_loss(point.weights, output) - point.loss for output in outputs]
        return torch.stack(losses)
    return {multiple: along(multiple) for multiple in multiples}


def _one_at_a_time(evaluate, directions, multiples, base_loss):
    """Losses ``{k: [count]}`` from one ``evaluate(flat values)`` per perturbed point.

    The unperturbed loss (k = 0) is the analytic pass's: the same forward on the same values.
    """
    def along(multiple):
        if multiple == 0:
            return torch.full((directions.count,), base_loss, dtype=torch.float64,
                              device=directions.base.device)
        return torch.stack([evaluate(directions.rows(multiple, torch.tensor([index]))[0])
                            for index in range(directions.count)])
    return {multiple: along(multiple) for multiple in multiples}


def _calls(directions, multiples):
    """Forward calls of ``_one_at_a_time``: one per direction and non-zero multiple."""
    return sum(1 for multiple in multiples if multiple) * directions.count


def _forward_loss(module, point, x):
    return _loss(point.weights, _call("forward", module.forward, x))
