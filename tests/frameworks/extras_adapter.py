"""Adapter for the ``extras`` fixture framework: LeakyReLU, PReLU (one slope per feature) and ELU
declared by the torch functions they mirror (``extra_activations``), with Tanh, a Sequential,
MSE (mean) and Dropout.

Planted-bug subclasses: ``LeakySlopeFloat32``, ``PReLUGradientFirstRow`` and
``DropoutEvalStaleMask``.
"""

import extras as fw


class Adapter:
    """Builds the correct extras components."""

    extra_activations = {"leaky_relu": ("leaky_relu", {"negative_slope": 0.01}),
                         "prelu": "prelu",
                         "elu": ("elu", {"alpha": 1.0})}

    def linear(self, in_features, out_features, generator):
        return fw.Linear(in_features, out_features, generator)

    def tanh(self):
        return fw.Tanh()

    def leaky_relu(self):
        return fw.LeakyReLU(0.01)

    def prelu(self, features):
        return fw.PReLU(features)

    def elu(self):
        return fw.ELU(1.0)

    def sequential(self, *modules):
        return fw.Sequential(*modules)

    def mse_loss(self):
        return fw.MSELoss()

    def dropout(self, p, generator):
        return fw.Dropout(p, generator)


class LeakySlopeFloat32(Adapter):
    """LeakyReLU's slope rounded to float32 in a float64 run."""

    def leaky_relu(self):
        return fw.Float32SlopeLeakyReLU(0.01)


class PReLUGradientFirstRow(Adapter):
    """PReLU's slope gradient from the first sample only."""

    def prelu(self, features):
        return fw.RowZeroPReLU(features)


class DropoutEvalStaleMask(Adapter):
    """Eval-mode Dropout backward multiplies by the stale training mask."""

    def dropout(self, p, generator):
        return fw.StaleMaskDropout(p, generator)


PLANTED = {
    "LeakySlopeFloat32": ("leaky_relu", "autograd"),
    "PReLUGradientFirstRow": ("prelu", "finite_difference"),
    "DropoutEvalStaleMask": ("dropout", "property"),
}
