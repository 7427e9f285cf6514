"""Adapter for the ``float32`` fixture framework: it only computes in float32 (``dtype``),
and has dropout, Adam and an extra optimiser, Adagrad (``optimizers``).

Planted-bug subclasses: ``AdamNoBiasCorrection``, ``LinearZeroGradRebinds``,
``DropoutKeepDropSwapped``, ``DropoutNoRescale`` and ``DropoutMaskReused``.
"""

import float32 as fw
import torch


class Adapter:
    """Builds the correct float32 components."""

    dtype = torch.float32
    optimizers = {"Adagrad": "adagrad"}

    def linear(self, in_features, out_features, generator):
        return fw.Linear(in_features, out_features, generator)

    def relu(self):
        return fw.ReLU()

    def tanh(self):
        return fw.Tanh()

    def sigmoid(self):
        return fw.Sigmoid()

    def sequential(self, *modules):
        return fw.Sequential(*modules)

    def mse_loss(self):
        return fw.MSE()

    def dropout(self, p, generator):
        return fw.Dropout(p, generator)

    def sgd(self, params, lr):
        return fw.SGD(params, lr)

    def adam(self, params, lr, betas, eps):
        return fw.Adam(params, lr, betas, eps)

    def adagrad(self, params, lr):
        return fw.Adagrad(params, lr)


class AdamNoBiasCorrection(Adapter):
    """Adam without the 1/(1 − βᵗ) corrections."""

    def adam(self, params, lr, betas, eps):
        return fw.NoBiasCorrectionAdam(params, lr, betas, eps)


class LinearZeroGradRebinds(Adapter):
    """Linear's ``zero_grad`` rebinds its gradient tensors: optimisers step with stale zeros."""

    def linear(self, in_features, out_features, generator):
        return fw.ZeroGradRebindsLinear(in_features, out_features, generator)


class DropoutKeepDropSwapped(Adapter):
    """Dropout keeps each unit with probability p instead of dropping it."""

    def dropout(self, p, generator):
        return fw.KeepDropSwappedDropout(p, generator)


class DropoutNoRescale(Adapter):
    """Dropout does not scale the kept units by 1/(1 − p)."""

    def dropout(self, p, generator):
        return fw.NoRescaleDropout(p, generator)


class DropoutMaskReused(Adapter):
    """Dropout draws one mask and reuses it for every forward."""

    def dropout(self, p, generator):
        return fw.MaskReusedDropout(p, generator)


PLANTED = {
    "AdamNoBiasCorrection": ("adam", "trajectory"),
    "LinearZeroGradRebinds": ("training", "trajectory"),
    "DropoutKeepDropSwapped": ("dropout", "statistical"),
    "DropoutNoRescale": ("dropout", "property"),
    "DropoutMaskReused": ("dropout", "statistical"),
}
