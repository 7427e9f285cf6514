"""Adapter for the ``folded`` fixture framework: the bias is W's last column (the ``params``
hook hands out views of W and dW, so the harness's in-place writes reach the module), every
factory gets a ``name`` and the activations their ``features``, ``forward`` leaves its output
in ``.out`` (the ``output`` hook), and there is no Tanh. MSE is the mean over all elements.

Planted-bug subclasses: ``BiasColumnGradientNotAccumulated`` (only seen by two backwards
without zero_grad), ``StaleOutput`` (ReLU's ``.out`` from its first call) and
``DerivativeIntoOutput`` (Sigmoid's backward overwrites ``.out``).
"""

import folded as fw


class Adapter:
    """Builds the correct folded components."""

    def params(self, m):
        return [h for w, g in m.param().values()
                for h in ((w[:, :-1], g[:, :-1]), (w[:, -1], g[:, -1]))]

    def output(self, m, returned):
        return m.out

    def linear(self, in_features, out_features, generator, name):
        return fw.Linear(in_features, out_features, name, generator)

    def relu(self, features, name):
        return fw.ReLU(features, name)

    def sigmoid(self, features, name):
        return fw.Sigmoid(features, name)

    def sequential(self, *modules, name):
        return fw.Sequential(*modules, name=name)

    def mse_loss(self, name):
        return fw.MSELoss(name)

    def sgd(self, params, lr):
        return fw.SGD(params, lr)


class BiasColumnGradientNotAccumulated(Adapter):
    """Linear's backward assigns the bias column of dW instead of adding to it."""

    def linear(self, in_features, out_features, generator, name):
        return fw.AssignedBiasColumnLinear(in_features, out_features, name, generator)


class StaleOutput(Adapter):
    """ReLU computes ``.out`` at its first forward only."""

    def relu(self, features, name):
        return fw.CachedOutputReLU(features, name)


class DerivativeIntoOutput(Adapter):
    """Sigmoid's backward computes y (1 − y) into ``.out``, in place."""

    def sigmoid(self, features, name):
        return fw.DerivativeIntoOutputSigmoid(features, name)


PLANTED = {
    "BiasColumnGradientNotAccumulated": ("linear", "accumulation"),
    "StaleOutput": ("relu", "finite_difference"),
    "DerivativeIntoOutput": ("sigmoid", "side_effect"),
}
