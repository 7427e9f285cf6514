"""Step 3, fast path: every perturbation of a parameter tensor as one replica of a twin.

Parameters, ``param_path="auto"``: when the view has a replicated twin (``ModuleView.twin``;
refnet's views do, for a tree made only of refnet's own classes,
``verification/targets/replicas.py``), one replica of the twin per perturbed value: replica k
holds one perturbed element of the tensor, the other parameters are the unperturbed ones. The
activations entering the tensor's own layer are computed once, without replicas; one forward
call of the twin from that layer on, expanded to ``[K, B, in]``, gives every loss of the
tensor (in chunks of at most ``chunk_elements`` stacked numbers): one call per parameter
tensor, and the layers before a perturbed one never run K times. Replica 0 is unperturbed; if
its loss differs from the module's own by more than two roundings (the class's replica path
computes another function), the twin is discarded, and the protocol path
(``protocol_path.py``) computes the losses instead, as it does for views without a twin.
"""

from dataclasses import dataclass

import torch

from verification.checks.finite_difference.steps import _roundoff
from verification.targets.protocol import NoTwin

__all__ = ["DEFAULT_CHUNK_ELEMENTS"]


DEFAULT_CHUNK_ELEMENTS = 2 ** 24
"""Most stacked numbers (parameter copies and activations) in one twin forward: 128 MiB."""


@dataclass(frozen=True)
class _Plan:
    """Which replica moves what: perturbation p moves target ``target_of[p]`` by
    ``multiple_of[p]`` steps along direction ``direction_of[p]`` (nested in that order)."""

    target_of: torch.Tensor
    multiple_of: torch.Tensor
    direction_of: torch.Tensor
    steps: tuple

    @classmethod
    def build(cls, targets, steps):
        counts = [target.directions.count for target in targets]
        return cls(
            torch.cat([torch.full((len(steps) * n,), j) for j, n in enumerate(counts)]),
            torch.cat([torch.tensor(steps).repeat_interleave(n) for n in counts]),
            torch.cat([torch.arange(n).repeat(len(steps)) for n in counts]),
            steps,
        )

    def chunks(self, size):
        total = len(self.target_of)
        return [slice(start, min(start + size, total)) for start in range(0, total, size)]


def _replica_losses(module, point, targets, multiples, chunk_elements):
    """Every parameter perturbation as one replica of the view's twin (``ModuleView.twin``:
    refnet's, for a tree of its own classes); ``(None, reason)`` where it has none.

    For each parameter tensor, the twin computes the unperturbed activations entering its
    layer once, and only the layers from there on run with replicas: perturbation p of a
    chunk is replica p + 1, replica 0 is unperturbed.
    """
    steps = tuple(multiple for multiple in multiples if multiple)
    try:
        twins = [module.twin(target.tensor, point.x) for target in targets]
        chunk_losses = [losses for target, twin in zip(targets, twins, strict=True)
                        for losses in _target_losses(twin, point, target, steps,
                                                     chunk_elements)]
    except NoTwin as reason:
        return None, f"replica twin not used: {reason}"
    except Exception as error:  # the twin is an optimisation: any failure falls back
        return None, f"replica twin not used: it raised {type(error).__name__}: {error}"
    base_losses = torch.stack([base for base, _ in chunk_losses])
    if (base_losses - point.loss).abs().max() > 2 * _roundoff(point.scale):
        return None, ("replica twin not used: its unperturbed replica computes another loss "
                      f"({float(base_losses[0]):.17g} vs {point.loss:.17g})")
    changes = torch.cat([change for _, change in chunk_losses])
    return (_split_by_target(changes, changes.new_zeros(()), targets, steps, multiples),
            f"replica twin, {len(changes) + len(chunk_losses)} replicas in "
            f"{len(chunk_losses)} forward call(s), each from the perturbed layer on; losses "
            "relative to the unperturbed replica")


def _target_losses(twin, point, target, steps, chunk_elements):
    """One tensor's perturbations, per chunk: the unperturbed replica's loss and the changes
    ``Σ w ⊙ (y_k − y_0)`` of the others (``[chunk length]``).

    The outputs are subtracted before they are weighted and summed: ``y_k`` and ``y_0`` agree
    in most digits, so their difference is nearly exact, whereas the difference of two summed
    losses would carry the rounding of sums of size ``S``. Every consumer of these losses
    (central differences, the kink test) uses only differences, so the unperturbed loss is 0.
    """
    plan = _Plan.build([target], steps)
    losses = []
    for chunk in plan.chunks(max(1, chunk_elements // twin.per_replica)):
        replicas = 1 + chunk.stop - chunk.start
        y = twin.outputs(_replica_stack(target, 0, plan, chunk, replicas))
        losses.append(((point.weights * y[0]).sum(),
                       (point.weights * (y[1:] - y[0])).sum(dim=(-2, -1))))
    return losses


def _replica_stack(target, j, plan, chunk, replicas):
    """``[replicas, *shape]``: the tensor in every replica, moved in its own ones."""
    target_of, multiple_of, direction_of = (plan.target_of[chunk], plan.multiple_of[chunk],
                                            plan.direction_of[chunk])
    directions = target.directions
    stack = directions.base.expand(replicas, -1).clone()
    for multiple in plan.steps:
        chosen = (target_of == j) & (multiple_of == multiple)
        directions.write(stack, 1 + chosen.nonzero().squeeze(1), multiple, direction_of[chosen])
    return stack.view(replicas, *target.tensor.shape)


def _split_by_target(perturbed, base_loss, targets, steps, multiples):
    """Cut the replicas' losses (in ``_Plan`` order) into ``{k: [count]}`` per target."""
    all_losses, start = [], 0
    for target in targets:
        count = target.directions.count
        block = perturbed[start:start + len(steps) * count].view(len(steps), count)
        losses = dict(zip(steps, block, strict=True))
        if 0 in multiples:
            losses[0] = base_loss.expand(count)
        all_losses.append(losses)
        start += len(steps) * count
    return all_losses
