"""Adapter for the ``transposed`` fixture framework: weights [in, out] (``weight_layout``),
``param`` a property and no module ``zero_grad`` (both left for the harness to discover).

Planted-bug subclasses: ``OverwrittenGradients`` (Linear copies instead of accumulating) and
``MSEMissingOneOverN`` (MSE backward without the 1/N).
"""

import transposed as fw


class Adapter:
    """Builds the correct transposed components."""

    weight_layout = "in_out"

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


class OverwrittenGradients(Adapter):
    """Linear's backward overwrites dw and db."""

    def linear(self, in_features, out_features, generator):
        return fw.OverwrittenGradientsLinear(in_features, out_features, generator)


class MSEMissingOneOverN(Adapter):
    """MSE's backward returns 2 (x − t), N times too large."""

    def mse_loss(self):
        return fw.MissingOneOverNMSE()


PLANTED = {
    "OverwrittenGradients": ("linear", "accumulation"),
    "MSEMissingOneOverN": ("mse_loss", "finite_difference"),
}
