"""Adapter for the ``dynamic`` fixture framework: objects that ``copy.deepcopy`` cannot copy,
a Sequential whose backward returns None, MSE as a batch mean of per-sample sums
(``mse_reduction``), and cross-entropy (one-hot targets) and BCE losses.

Planted-bug subclasses: ``MSEOverBatchOnly``, ``BackwardOverwritesOutput`` (Sigmoid) and
``ExpRatioTanh`` (NaN at |x| > ~710).
"""

import dynamic as fw


class Adapter:
    """Builds the correct dynamic components."""

    mse_reduction = "batch_mean"
    sequential_returns_grad = False

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

    def bce_loss(self):
        return fw.BCE()

    def sgd(self, params, lr):
        return fw.SGD(params, lr)


class MSEOverBatchOnly(Adapter):
    """MSE's forward averages over all elements, its backward over the batch only."""

    def mse_loss(self):
        return fw.OverBatchOnlyMSE()


class BackwardOverwritesOutput(Adapter):
    """Sigmoid's backward overwrites the output tensor it returned."""

    def sigmoid(self):
        return fw.OverwritingSigmoid()


class ExpRatioTanh(Adapter):
    """Tanh computed as a ratio of exponentials."""

    def tanh(self):
        return fw.ExpRatioTanh()


PLANTED = {
    "MSEOverBatchOnly": ("mse_loss", "finite_difference"),
    "BackwardOverwritesOutput": ("sigmoid", "side_effect"),
    "ExpRatioTanh": ("tanh", "autograd"),
}
