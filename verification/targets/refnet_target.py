"""refnet as one target among others, and the structure of a refnet module already built.

``RefnetAdapter`` is the adapter of ``load_target("refnet")``: a few lines per component, like
any user's, and refnet's fast path for finite differences (``replicated_twin``,
``replicas.py``). ``refnet_component`` turns a refnet module into the ``Component`` a public
check function receives: its structure read from refnet's classes (refnet's own business, which
the checks never see), its view holding refnet's twins. Any other module is a ``Component``
through ``spec.as_component`` with the structure its caller gives.
"""

from importlib import metadata

import refnet
from verification.targets.protocol import ModuleView, one_line_label
from verification.targets.replicas import refnet_twin
from verification.targets.spec import Component, Layer, describe

__all__ = ["RefnetAdapter", "refnet_component", "structure_of"]


def _refnet_version():
    try:
        return f"refnet {metadata.version('refnet')}"
    except metadata.PackageNotFoundError:
        return None


class RefnetAdapter:
    """refnet through the adapter contract (verification/targets/adapter.py)."""

    NAME = "refnet"
    VERSION = _refnet_version()
    relu_slope_at_zero = 0.0  # eq. 9: "otherwise" 0, as torch
    mse_reduction = "mean"  # MSELoss("mean") divides by batch × outputs, as torch
    replicated_twin = staticmethod(refnet_twin)  # finite differences in one call per tensor

    def linear(self, in_features, out_features, generator):
        import torch
        return refnet.Linear(in_features, out_features, generator=generator,
                             dtype=torch.get_default_dtype())

    def relu(self):
        return refnet.ReLU()

    def tanh(self):
        return refnet.Tanh()

    def sigmoid(self):
        return refnet.Sigmoid()

    def sequential(self, *modules):
        return refnet.Sequential(*modules)

    def mse_loss(self):
        return refnet.MSELoss("mean")

    def dropout(self, p, generator):
        return refnet.Dropout(p, generator=generator)

    def sgd(self, params, lr):
        return refnet.SGD(params, lr)

    def adam(self, params, lr, betas, eps):
        return refnet.Adam(params, lr=lr, betas=betas, eps=eps)


_ACTIVATIONS = {refnet.ReLU: "relu", refnet.Tanh: "tanh", refnet.Sigmoid: "sigmoid"}


def structure_of(module):
    """``(Layer, leaves)`` of a refnet module, or ``None`` for anything else."""
    if isinstance(module, refnet.Sequential):
        parts = [structure_of(child) for child in module.modules]
        if any(part is None for part in parts):
            return None
        return (Layer("sequential", children=tuple(layer for layer, _ in parts)),
                [leaf for _, leaves in parts for leaf in leaves])
    if isinstance(module, refnet.Linear):
        out_features, in_features = module.weight.shape[-2:]
        return Layer("linear", in_features, out_features, replicas=module.replicas), [module]
    if isinstance(module, refnet.Dropout):
        return Layer("dropout", p=module.p), [module]
    if type(module) in _ACTIVATIONS:
        return Layer(_ACTIVATIONS[type(module)]), [module]
    return None


def refnet_component(module, name=None):
    """The ``Component`` of a refnet module (nested to any depth), as a public check receives
    it: its structure and leaves read from refnet's classes (``structure_of``; ``None`` where
    a part is not refnet's), its view holding refnet's twins (``replicas.refnet_twin``);
    labelled ``name``, else by its structure, else by its ``repr``."""
    layer, leaves = structure_of(module) or (None, None)
    label = name or (describe(layer) if layer is not None else one_line_label(module))
    return Component(ModuleView(module, label, twins=refnet_twin), layer, leaves)
