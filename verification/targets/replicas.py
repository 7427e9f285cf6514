"""refnet's replica axis as a fast path for finite differences: every perturbed value of one
parameter tensor as a replica of a shallow twin of the module, in one forward call.

``refnet_twin`` is refnet's maker of twins, which a ``ModuleView`` holds as its ``twins``
(``verification/targets/protocol.py``): the view of a refnet module built for a check
(``refnet_target.refnet_component``) and of every module of refnet as a target (its adapter's
``replicated_twin``). Two places use it, each through the view, on refnet modules of its own
process:

- ``finite_difference.replica_path._replica_losses``, when a check runs in the caller's process
  (``verification.check_target``, ``check_backward``);
- ``ModuleView.forward_each``, in the executor: the outputs the judge asked for, for each value
  of a parameter, come from one replicated forward instead of one forward per value.

The classes are recognised by ``isinstance`` in the process that runs them, never by a name the
target reports: a target that only claims to be refnet gets the one-value-at-a-time loop, and a
target that subclasses or patches refnet's classes runs its own methods on the twin, in its own
process. Either way the judge receives outputs, as from any ``forward_each``, and holds them to
its own references (``remote.py``); an unperturbed replica that disagrees with the module's own
forward discards the twin.
"""

import copy

import refnet
from verification.targets.protocol import NoTwin

__all__ = ["Twin", "refnet_twin"]


def _run_copies(leaves, x):
    """Forward through shallow copies of ``leaves``, leaving the originals' caches alone."""
    for leaf in leaves:
        x = copy.copy(leaf).forward(x)
    return x


def _refnet_leaves(node):
    """The leaf modules, in order, of a tree made only of refnet's own classes, else ``None``.

    Recognised by class (``isinstance``), never by name: a foreign class called ``Linear``
    whose ``forward`` reads other attributes would otherwise be perturbed through copies it
    never reads. A refnet class whose methods are patched in memory (the mutation self-test)
    is still refnet's, and the twin runs the patched methods.
    """
    if isinstance(node, refnet.Sequential):
        found = [_refnet_leaves(child) for child in node.modules]
        if any(part is None for part in found):
            return None
        return [leaf for part in found for leaf in part]
    if isinstance(node, refnet.Linear) and node.replicas is None:
        return [node]
    if isinstance(node, (refnet.ReLU, refnet.Tanh, refnet.Sigmoid)) or (
            isinstance(node, refnet.Dropout) and not node.training):
        return [node]
    return None


def _twin_leaf(leaf, replicas, perturbed, stack):
    """A shallow copy of ``leaf``; a ``Linear`` holds ``replicas`` stacked parameters, the
    ``perturbed`` tensor's from ``stack`` and its other one expanded (shared, not copied)."""
    twin = copy.copy(leaf)
    if isinstance(leaf, refnet.Linear):
        twin.weight, twin.bias = (stack if tensor is perturbed
                                  else tensor.expand(replicas, *tensor.shape)
                                  for tensor in (leaf.weight, leaf.bias))
        twin.replicas = replicas
    return twin


class Twin:
    """The layers of a refnet tree from the ``Linear`` that owns ``tensor`` on, replicated.

    The activations entering that ``Linear`` are computed once, without replicas (on first
    use); ``outputs(stack)`` runs only the layers from there on, ``tensor`` holding one row of
    ``stack`` in each replica and the other parameters expanded (views, not copies).
    """

    def __init__(self, leaves, position, tensor, x):
        self.prefix, self.suffix = leaves[:position], leaves[position:]
        self.tensor, self.x = tensor, x
        self._entering = None

    @property
    def entering(self):
        """``[B, in]``: the activations entering the perturbed ``Linear``."""
        if self._entering is None:
            self._entering = _run_copies(self.prefix, self.x)
        return self._entering

    @property
    def per_replica(self):
        """The numbers one replica holds: the tensor, the activations entering and the
        outputs of every ``Linear`` from the perturbed one on."""
        entering = self.entering
        return self.tensor.numel() + entering.numel() + entering.shape[0] * sum(
            leaf.out_features for leaf in self.suffix if isinstance(leaf, refnet.Linear))

    def outputs(self, stack):
        """``[replicas, B, out]``: the output with ``tensor`` holding each row of ``stack``
        (``[replicas, *tensor.shape]``)."""
        replicas = len(stack)
        twins = [_twin_leaf(leaf, replicas, self.tensor, stack) for leaf in self.suffix]
        return _run_copies(twins, self.entering.expand(replicas, *self.entering.shape))


def refnet_twin(module, tensor, x):
    """The ``Twin`` of ``module`` for ``tensor`` at the input ``x`` ([B, in]).

    Raises:
        NoTwin: ``module`` is not a tree of refnet's classes, ``x`` has replicas, or
            ``tensor`` is not the weight or bias of exactly one of its ``Linear`` positions
            (a ``Linear`` placed twice would be perturbed at one place only).
    """
    leaves = _refnet_leaves(module)
    if leaves is None or x.ndim != 2:
        raise NoTwin("it serves refnet's own classes only")
    owners = [index for index, leaf in enumerate(leaves) if isinstance(leaf, refnet.Linear)
              and any(tensor is own for own in (leaf.weight, leaf.bias))]
    if len(owners) != 1:
        raise NoTwin("param() does not list Linear weights and biases")
    return Twin(leaves, owners[0], tensor, x)
