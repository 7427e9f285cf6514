"""Adapter for the ``per_sample`` fixture framework: modules take one 1-D sample
(``per_sample``) and the loss is the sum over one sample's outputs (``mse_reduction``).

Planted-bug subclasses: ``WrongSigmoidDerivative`` (σ (1 + σ)) and ``ReLUWritesIntoInput``
(ReLU clamps its input in place).
"""

import per_sample as fw


class Adapter:
    """Builds the correct per-sample components."""

    per_sample = True
    mse_reduction = "sum"

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

    def sgd(self, params, lr):
        return fw.SGD(params, lr)


class WrongSigmoidDerivative(Adapter):
    """Sigmoid's backward uses σ (1 + σ)."""

    def sigmoid(self):
        return fw.WrongDerivativeSigmoid()


class ReLUWritesIntoInput(Adapter):
    """ReLU's forward clamps the caller's tensor in place."""

    def relu(self):
        return fw.InPlaceReLU()


PLANTED = {
    "WrongSigmoidDerivative": ("sigmoid", "finite_difference"),
    "ReLUWritesIntoInput": ("relu", "side_effect"),
}
