"""Step 3, fast path: every perturbation of a parameter tensor as one replica of a twin.

Parameters, ``param_path="auto"``: when the module tree is made only of refnet's own
classes (``Linear``, ``ReLU``, ``Tanh``, ``Sigmoid``, ``Dropout`` in eval mode,
``Sequential``, recognised by ``isinstance``, never by name: refnet's methods patched
in memory still qualify, a foreign class called ``Linear`` does not), the tree is
flattened into its leaves and, per parameter tensor, a
replicated twin of the layers from the tensor's own ``Linear`` on is built from
shallow copies whose ``Linear`` layers carry ``replicas=K`` stacked parameters:
replica k holds one perturbed element of the tensor, the other parameters are the
unperturbed ones expanded (views, not copies). The activations entering that layer
are computed once, without replicas; one forward call of the twin on them, expanded
to ``[K, B, in]``, gives every loss of the tensor (in chunks of at most
``chunk_elements`` stacked numbers): one call per parameter tensor, and the layers
before a perturbed one never run K times. Replica 0 is unperturbed; if its loss
differs from the module's own by more than two roundings (the class's replica path
computes another function), the twin is discarded, and the protocol path
(``protocol_path.py``) computes the losses instead.
"""

from dataclasses import dataclass

import torch

import refnet
from verification.checks.finite_difference.steps import _roundoff
from verification.targets.replicas import refnet_leaves, run_copies, twin_leaf

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
    """Every parameter perturbation as one replica of a twin; ``(None, reason)`` if unusable.

    The module tree is flattened into its leaves. For each parameter tensor, the unperturbed
    activations entering its layer are computed once, and only the layers from there on run
    with replicas: perturbation p of a chunk is replica p + 1, replica 0 is unperturbed.
    Layers other than the perturbed one see their parameters expanded (a view, no copy).
    """
    leaves = refnet_leaves(module.module)
    if leaves is None or point.x.ndim != 2:
        return None, "replica twin not used: it serves refnet's own classes only"
    linears = [leaf for leaf in leaves if isinstance(leaf, refnet.Linear)]
    if not _parameters_are_linears(linears, targets):
        return None, "replica twin not used: param() does not list Linear weights and biases"
    steps = tuple(multiple for multiple in multiples if multiple)
    try:
        chunk_losses = [losses for target in targets
                        for losses in _target_losses(leaves, point, target, steps,
                                                     chunk_elements)]
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


def _target_losses(leaves, point, target, steps, chunk_elements):
    """One tensor's perturbations, per chunk: the unperturbed replica's loss and the changes
    ``Σ w ⊙ (y_k − y_0)`` of the others (``[chunk length]``).

    The outputs are subtracted before they are weighted and summed: ``y_k`` and ``y_0`` agree
    in most digits, so their difference is nearly exact, whereas the difference of two summed
    losses would carry the rounding of sums of size ``S``. Every consumer of these losses
    (central differences, the kink test) uses only differences, so the unperturbed loss is 0.
    """
    position = next(index for index, leaf in enumerate(leaves) if isinstance(leaf, refnet.Linear)
                    and (target.tensor is leaf.weight or target.tensor is leaf.bias))
    entering = run_copies(leaves[:position], point.x)
    suffix = leaves[position:]
    plan = _Plan.build([target], steps)
    per_replica = target.tensor.numel() + entering.numel() + entering.shape[0] * sum(
        leaf.out_features for leaf in suffix if isinstance(leaf, refnet.Linear))
    losses = []
    for chunk in plan.chunks(max(1, chunk_elements // per_replica)):
        replicas = 1 + chunk.stop - chunk.start
        stack = _replica_stack(target, 0, plan, chunk, replicas)
        twins = [twin_leaf(leaf, replicas, target.tensor, stack) for leaf in suffix]
        y = run_copies(twins, entering.expand(replicas, *entering.shape))
        losses.append(((point.weights * y[0]).sum(),
                       (point.weights * (y[1:] - y[0])).sum(dim=(-2, -1))))
    return losses


def _parameters_are_linears(linears, targets):
    """Every Linear has its own weight and bias, and each target is one of them (the kink
    test asks for a subset of the tensors)."""
    tensors = [id(t) for linear in linears for t in (linear.weight, linear.bias)]
    return len(set(tensors)) == len(tensors) and {id(target.tensor) for target in targets} <= set(
        tensors)


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
