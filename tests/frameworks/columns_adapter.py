"""Adapter for the ``columns`` fixture framework: one sample at a time (``per_sample``) as a
column [n, 1] (``column_vectors``); values from ``param()`` and gradients from ``grad()``
(``params``); every Sequential ends with its loss (the adapter appends an MSE); the MSE returns
a ``LossValue`` object (``loss_value``), computed in float32 whatever the prediction's dtype.

Planted-bug subclasses: ``LinearBiasSummedOverOutputs`` (db += Σ_i g_i in every row),
``MSEForgetsOneOverN`` (backward 2 (y − t)), ``SigmoidWrongDerivative`` (σ(y) (1 − σ(y))) and
``GradReturnsCopies`` (Linear's ``grad()`` returns copies: every gradient read is right, but
the SGD built from one read never sees a later backward, so only training shows it).
"""

import columns as fw


class Adapter:
    """Builds the correct column-vector components."""

    per_sample = True
    column_vectors = True

    def params(self, m):
        return list(zip(m.param(), m.grad(), strict=True))

    def loss_value(self, returned):
        return returned.value

    def linear(self, in_features, out_features, generator):
        return fw.Linear(in_features, out_features, generator)

    def relu(self):
        return fw.ReLU()

    def tanh(self):
        return fw.Tanh()

    def sigmoid(self):
        return fw.Sigmoid()

    def sequential(self, *modules):
        return fw.Sequential(*modules, fw.MSE())

    def mse_loss(self):
        return fw.MSE()

    def sgd(self, params, lr):
        return fw.SGD(params, lr)


class LinearBiasSummedOverOutputs(Adapter):
    """Linear's backward adds the sum of the column's gradient to every bias."""

    def linear(self, in_features, out_features, generator):
        return fw.BiasSummedOverOutputsLinear(in_features, out_features, generator)


class MSEForgetsOneOverN(Adapter):
    """MSE's backward returns 2 (y − t) for the mean (1/n) Σ (y − t)²."""

    def mse_loss(self):
        return fw.ForgetsOneOverNMSE()


class SigmoidWrongDerivative(Adapter):
    """Sigmoid's backward uses σ(y) (1 − σ(y)) with y = σ(x) its output."""

    def sigmoid(self):
        return fw.SigmoidOfOutputSigmoid()


class GradReturnsCopies(Adapter):
    """Linear's ``grad()`` returns copies of its gradients."""

    def linear(self, in_features, out_features, generator):
        return fw.CopiedGradLinear(in_features, out_features, generator)


PLANTED = {
    "LinearBiasSummedOverOutputs": ("linear", "finite_difference"),
    "MSEForgetsOneOverN": ("mse_loss", "finite_difference"),
    "SigmoidWrongDerivative": ("sigmoid", "finite_difference"),
    "GradReturnsCopies": ("training", "trajectory"),
}
