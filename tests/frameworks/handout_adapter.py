"""Adapter for the ``handout`` fixture framework: all defaults (weights [out, in], batched
modules, MSE mean over all elements, ReLU slope 0 at 0), no dropout, Adam or other losses.

Planted-bug subclasses: ``BiasNeverAdded``, ``WrongTanhDerivative`` and ``ReusedTanh`` (every
``tanh()`` call returns the same instance, so a Sequential holding two Tanh is wrong although
one Tanh alone is right). ``CorrectOnlyInFloat64`` (a Tanh wrong on float32 inputs alone) is
no entry of ``PLANTED``, whose bugs show in float64: tests/test_conform.py checks that it fails
by default and passes with ``--dtype float64``.
"""

import handout as fw


class Adapter:
    """Builds the correct handout components."""

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
        return fw.LossMSE()

    def sgd(self, params, lr):
        return fw.SGD(params, lr)


class BiasNeverAdded(Adapter):
    """Linear's forward never adds the bias."""

    def linear(self, in_features, out_features, generator):
        return fw.BiasNeverAddedLinear(in_features, out_features, generator)


class WrongTanhDerivative(Adapter):
    """Tanh's backward uses 1 − x instead of 1 − y²."""

    def tanh(self):
        return fw.WrongDerivativeTanh()


class ReusedTanh(Adapter):
    """``tanh()`` hands out one shared instance, created once with the class."""

    shared_tanh = fw.Tanh()

    def tanh(self):
        return ReusedTanh.shared_tanh


class CorrectOnlyInFloat64(Adapter):
    """Tanh's backward uses 1 − x² instead of 1 − y², on float32 inputs only."""

    def tanh(self):
        return fw.Float32WrongTanh()


PLANTED = {
    "BiasNeverAdded": ("linear", "finite_difference"),
    "WrongTanhDerivative": ("tanh", "finite_difference"),
    "ReusedTanh": ("sequential", "finite_difference"),
}
