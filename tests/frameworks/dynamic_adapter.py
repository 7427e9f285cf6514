"""Adapter for the ``dynamic`` fixture framework: objects that ``copy.deepcopy`` cannot copy,
a Sequential whose backward returns None, MSE as a batch mean of per-sample sums
(``mse_reduction``), cross-entropy (one-hot targets) and BCE losses, and extra losses by
their torch names (``extra_losses``): BCE with logits, Huber (δ = 1.5), L1, smooth L1 (β = 0.5).

Planted-bug subclasses: ``MSEOverBatchOnly``, ``BackwardOverwritesOutput`` (Sigmoid),
``ExpRatioTanh`` (NaN at |x| > ~710), and for the losses ``SigmoidInsideCrossEntropy``,
``TwoClassCrossEntropyWrongSign``, ``TwoClassCrossEntropyMissingOneOverN``,
``SoftmaxWithoutMaxSubtraction`` and ``BCEWithLogitsMissingOneOverN``.
"""

import dynamic as fw


class Adapter:
    """Builds the correct dynamic components."""

    mse_reduction = "batch_mean"
    sequential_returns_grad = False
    extra_losses = {"bce_with_logits": ("binary_cross_entropy_with_logits", {}),
                    "huber": ("huber_loss", {"delta": 1.5}), "l1": ("l1_loss", {}),
                    "smooth_l1": ("smooth_l1_loss", {"beta": 0.5})}

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

    def bce_with_logits(self):
        return fw.BCEWithLogits()

    def huber(self):
        return fw.Huber(1.5)

    def l1(self):
        return fw.L1()

    def smooth_l1(self):
        return fw.SmoothL1(0.5)

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


class SigmoidInsideCrossEntropy(Adapter):
    """A "cross-entropy" with a sigmoid where the softmax belongs."""

    def cross_entropy_loss(self):
        return fw.SigmoidCrossEntropy()


class TwoClassCrossEntropyWrongSign(Adapter):
    """Cross-entropy code for 2 classes whose gradient has the wrong sign."""

    def cross_entropy_loss(self):
        return fw.TwoClassWrongSign()


class TwoClassCrossEntropyMissingOneOverN(Adapter):
    """Cross-entropy code for 2 classes whose gradient lacks the 1/B of its forward."""

    def cross_entropy_loss(self):
        return fw.TwoClassNoMean()


class SoftmaxWithoutMaxSubtraction(Adapter):
    """Cross-entropy whose softmax overflows to NaN at a logit gap of 800."""

    def cross_entropy_loss(self):
        return fw.UnstableCrossEntropy()


class BCEWithLogitsMissingOneOverN(Adapter):
    """BCE with logits whose gradient lacks the 1/N of its forward."""

    def bce_with_logits(self):
        return fw.BCEWithLogitsNoMean()


PLANTED = {
    "MSEOverBatchOnly": ("mse_loss", "finite_difference"),
    "BackwardOverwritesOutput": ("sigmoid", "side_effect"),
    "ExpRatioTanh": ("tanh", "autograd"),
    "SigmoidInsideCrossEntropy": ("cross_entropy_loss", "autograd"),
    "TwoClassCrossEntropyWrongSign": ("cross_entropy_loss", "finite_difference"),
    "TwoClassCrossEntropyMissingOneOverN": ("cross_entropy_loss", "finite_difference"),
    "SoftmaxWithoutMaxSubtraction": ("cross_entropy_loss", "autograd"),
    "BCEWithLogitsMissingOneOverN": ("bce_with_logits", "finite_difference"),
}
