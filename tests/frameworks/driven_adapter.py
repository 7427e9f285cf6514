"""Adapter for the ``driven`` fixture framework: losses built with the model they drive
(``loss_takes_model``) on flat predictions (``loss_flat``), whose forward returns
``(loss, per_sample_losses)`` (the ``loss_value`` hook); MSE is ½ × the mean, a measured
convention; ``param()`` gives ``(w, b, dw, db)`` 4-tuples (the ``params`` hook).

Planted-bug subclasses: ``HalfMSEGradientWithoutHalf``, ``BCEMissingOneOverN``,
``LossDrivesStaleGradient`` and ``LinearDbNotSummed``.
"""

import driven as fw


class Adapter:
    """Builds the correct driven components."""

    loss_takes_model = True
    loss_flat = True

    def params(self, m):
        return [p for w, b, dw, db in m.param() for p in ((w, dw), (b, db))]

    def loss_value(self, returned):
        return returned[0]

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

    def mse_loss(self, model):
        return fw.MSE(model)

    def bce_loss(self, model):
        return fw.BCE(model)

    def sgd(self, params, lr):
        return fw.SGD(params, lr)


class HalfMSEGradientWithoutHalf(Adapter):
    """MSE's forward is ½ × the mean, its backward the mean's gradient (the ½ forgotten)."""

    def mse_loss(self, model):
        return fw.HalfMSEWithoutHalfGradient(model)


class BCEMissingOneOverN(Adapter):
    """BCE's gradient lacks the 1/n of its mean."""

    def bce_loss(self, model):
        return fw.BCEWithoutOneOverN(model)


class LossDrivesStaleGradient(Adapter):
    """MSE's backward drives the model with the previous forward's gradient."""

    def mse_loss(self, model):
        return fw.StaleGradientMSE(model)


class LinearDbNotSummed(Adapter):
    """Linear's db accumulates the first sample's gradient, not the batch sum."""

    def linear(self, in_features, out_features, generator):
        return fw.DbNotSummedLinear(in_features, out_features, generator)


PLANTED = {
    "HalfMSEGradientWithoutHalf": ("mse_loss", "finite_difference"),
    "BCEMissingOneOverN": ("bce_loss", "finite_difference"),
    "LossDrivesStaleGradient": ("mse_loss", "finite_difference"),
    "LinearDbNotSummed": ("linear", "finite_difference"),
}
