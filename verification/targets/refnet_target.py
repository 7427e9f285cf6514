"""refnet as one target among others, and the structure of a refnet module already built.

``RefnetAdapter`` is the adapter of ``load_target("refnet")``: a few lines per component, like
any user's. ``as_component`` turns a module handed to a public check function into a
``Component``: refnet modules have a known structure (read from their classes, which is
refnet's own business), any other module has none unless the caller passes ``layer=``.
"""

import re
from importlib import metadata

import refnet
from verification.targets.protocol import ModuleView
from verification.targets.spec import Component, Layer, describe

__all__ = ["RefnetAdapter", "as_component", "structure_of", "one_line_label"]


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


def as_component(module, layer=None, *, weight_layout="out_in", per_sample=False, name=None):
    """A ``Component`` for ``module``: itself if it is one; the structure from ``layer``, else
    from refnet's classes (``structure_of``); ``layer`` stays ``None`` for a foreign module
    given without one (finite differences need no structure; twins do)."""
    if isinstance(module, Component):
        return module
    known = structure_of(module)
    leaves = None
    if layer is None and known is not None:
        layer, leaves = known
    label = name or (describe(layer) if layer is not None else one_line_label(module))
    view = module if isinstance(module, ModuleView) else ModuleView(module, label,
                                                                  per_sample=per_sample)
    return Component(view, layer, leaves, weight_layout)


def one_line_label(module):
    """A one-line description of any object: its ``repr`` without line breaks, or its class
    name (when it has no ``repr`` of its own, or its ``repr`` raises)."""
    if type(module).__repr__ is object.__repr__:
        return type(module).__name__
    try:
        text = " ".join(repr(module).split())
    except Exception:  # a foreign __repr__ that raises must not break the harness
        return type(module).__name__
    return re.sub(r",? \)", ")", re.sub(r"\( ", "(", text))
