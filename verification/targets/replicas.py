"""refnet's replica axis as a fast path for finite differences: every perturbed value of one
parameter tensor as a replica of a shallow twin of the module, in one forward call.

Two places use it, each on refnet modules of its own process:

- ``finite_difference.replica_path._replica_losses``, when a check runs in the caller's
  process on a tree of refnet's classes (``verification.check_target``, ``check_backward``);
- ``protocol.ModuleView.forward_each`` (``replicated_outputs``), in the executor, where a
  target's module is a tree of refnet's classes: the outputs the judge asked for, for each
  value of a parameter, come from one replicated forward instead of one forward per value.

The classes are recognised by ``isinstance`` in the process that runs them, never by a name the
target reports: a target that only claims to be refnet gets the one-value-at-a-time loop, and a
target that subclasses or patches refnet's classes runs its own methods on the twin, in its own
process. Either way the judge receives outputs, as from any ``forward_each``, and holds them to
its own references (``remote.py``); an unperturbed replica that disagrees with the module's own
forward discards the twin.
"""

import copy

import torch

import refnet

__all__ = ["refnet_leaves", "run_copies", "twin_leaf", "replicated_outputs"]

_AGREEMENT = 8
"""Unit roundoffs (of the output's largest magnitude) by which the twin's unperturbed replica
may differ from the module's own forward: the replicated product sums in another order."""


def run_copies(leaves, x):
    """Forward through shallow copies of ``leaves``, leaving the originals' caches alone."""
    for leaf in leaves:
        x = copy.copy(leaf).forward(x)
    return x


def refnet_leaves(node):
    """The leaf modules, in order, of a tree made only of refnet's own classes, else ``None``.

    Recognised by class (``isinstance``), never by name: a foreign class called ``Linear``
    whose ``forward`` reads other attributes would otherwise be perturbed through copies it
    never reads. A refnet class whose methods are patched in memory (the mutation self-test)
    is still refnet's, and the twin runs the patched methods.
    """
    if isinstance(node, refnet.Sequential):
        found = [refnet_leaves(child) for child in node.modules]
        if any(part is None for part in found):
            return None
        return [leaf for part in found for leaf in part]
    if isinstance(node, refnet.Linear) and node.replicas is None:
        return [node]
    if isinstance(node, (refnet.ReLU, refnet.Tanh, refnet.Sigmoid)) or (
            isinstance(node, refnet.Dropout) and not node.training):
        return [node]
    return None


def twin_leaf(leaf, replicas, perturbed, stack):
    """A shallow copy of ``leaf``; a ``Linear`` holds ``replicas`` stacked parameters, the
    ``perturbed`` tensor's from ``stack`` and its other one expanded (shared, not copied)."""
    twin = copy.copy(leaf)
    if isinstance(leaf, refnet.Linear):
        twin.weight, twin.bias = (stack if tensor is perturbed
                                  else tensor.expand(replicas, *tensor.shape)
                                  for tensor in (leaf.weight, leaf.bias))
        twin.replicas = replicas
    return twin


def replicated_outputs(module, tensor, values, x, forward):
    """``[len(values), *output]``: ``module``'s output for ``x`` ([B, in]) with ``tensor`` (a
    ``Linear``'s weight or bias) holding each row of ``values``, from one replicated forward
    of the layers from that ``Linear`` on; ``None`` where the module is not a tree of
    refnet's classes, the tensor not one of its ``Linear`` parameters, or the twin's
    unperturbed replica disagrees with ``forward(x)``, the module's own forward (then the
    caller runs one forward per value)."""
    leaves = refnet_leaves(module)
    linears = [leaf for leaf in leaves or () if isinstance(leaf, refnet.Linear)]
    owners = [index for index, leaf in enumerate(leaves or ())
              if leaf in linears and any(tensor is own for own in (leaf.weight, leaf.bias))]
    if len(owners) != 1 or x.ndim != 2 or len(values) == 0:
        return None
    entering = run_copies(leaves[:owners[0]], x)
    stack = torch.cat([tensor.detach().unsqueeze(0),
                       values.reshape(len(values), *tensor.shape).to(tensor.dtype)])
    twins = [twin_leaf(leaf, len(stack), tensor, stack) for leaf in leaves[owners[0]:]]
    outputs = run_copies(twins, entering.expand(len(stack), *entering.shape))
    own = forward(x)
    scale = float(own.abs().max()) if own.numel() else 0.0
    if outputs.shape[1:] != own.shape or not bool(
            ((outputs[0] - own).abs() <= _AGREEMENT * torch.finfo(own.dtype).eps * scale).all()):
        return None
    return outputs[1:]
