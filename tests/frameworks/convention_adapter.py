"""Adapter for the ``convention`` fixture framework: ReLU's slope at 0 is 1
(``relu_slope_at_zero``) and cross-entropy takes int64 class indices
(``cross_entropy_target``); it has Adam.

Planted-bug subclasses: ``CrossEntropyWithoutSoftmax``, ``LinearBiasGradientMean`` and
``SGDAscent``.
"""

import convention as fw


class Adapter:
    """Builds the correct convention components."""

    relu_slope_at_zero = 1.0
    cross_entropy_target = "index"

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

    def cross_entropy_loss(self):
        return fw.CrossEntropy()

    def sgd(self, params, lr):
        return fw.SGD(params, lr)

    def adam(self, params, lr, betas, eps):
        return fw.Adam(params, lr, betas, eps)


class CrossEntropyWithoutSoftmax(Adapter):
    """Cross-entropy's backward forgets the softmax."""

    def cross_entropy_loss(self):
        return fw.NoSoftmaxCrossEntropy()


class LinearBiasGradientMean(Adapter):
    """Linear accumulates the batch mean of the output gradient into db."""

    def linear(self, in_features, out_features, generator):
        return fw.BiasGradientMeanLinear(in_features, out_features, generator)


class SGDAscent(Adapter):
    """SGD adds lr · g instead of subtracting it."""

    def sgd(self, params, lr):
        return fw.AscentSGD(params, lr)


PLANTED = {
    "CrossEntropyWithoutSoftmax": ("cross_entropy_loss", "finite_difference"),
    "LinearBiasGradientMean": ("linear", "finite_difference"),
    "SGDAscent": ("sgd", "trajectory"),
}
