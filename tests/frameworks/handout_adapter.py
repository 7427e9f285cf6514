"""Adapter for the ``handout`` fixture framework: all defaults (weights [out, in], batched
modules, MSE mean over all elements, ReLU slope 0 at 0), no dropout, Adam or other losses.

Planted-bug subclasses: ``BiasNeverAdded``, ``WrongTanhDerivative`` and ``ReusedTanh`` (every
``tanh()`` call returns the same instance, so a Sequential holding two Tanh is wrong although
one Tanh alone is right). ``CorrectOnlyInFloat64`` (a Tanh wrong on float32 inputs alone) is
no entry of ``PLANTED``, whose bugs show in float64: tests/test_conform.py checks that it fails
by default and passes with ``--dtype float64``. The planted bugs after it, one per pattern of
a diagnosis (verification/checks/diagnosis.py: an MSE gradient without its 1/N, a doubled
weight gradient, a transposed or a zero one, a ReLU slope of 2 at its kink, a Tanh that
overflows, an SGD up the gradient or idle), are checked by tests/test_diagnosis.py alone.
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


class MSEGradientWithoutMean(Adapter):
    """The MSE's gradient lacks its 1/N (the report's eq. 15 with eq. 14)."""

    def mse_loss(self):
        return fw.LossMSEGradientWithoutMean()


class DoubledWeightGradient(Adapter):
    """Linear's dL/dw is twice the right one."""

    def linear(self, in_features, out_features, generator):
        return fw.DoubledGradientLinear(in_features, out_features, generator)


class TransposedWeightGradient(Adapter):
    """Linear's dL/dw is held [in, out], the transpose of its weight's layout."""

    def linear(self, in_features, out_features, generator):
        return fw.TransposedGradientLinear(in_features, out_features, generator)


class ZeroWeightGradient(Adapter):
    """Linear's dL/dw is never accumulated: zero."""

    def linear(self, in_features, out_features, generator):
        return fw.FrozenWeightLinear(in_features, out_features, generator)


class ReluSlopeTwoAtZero(Adapter):
    """ReLU's derivative at 0 is 2, outside [0, 1]; right everywhere else."""

    def relu(self):
        return fw.KinkTwoReLU()


class OverflowingTanh(Adapter):
    """Tanh from exponentials: NaN at large |x|."""

    def tanh(self):
        return fw.OverflowingTanh()


class AscendingSGD(Adapter):
    """SGD steps up the gradient (wrong sign)."""

    def sgd(self, params, lr):
        return fw.AscendingSGD(params, lr)


class IdleSGD(Adapter):
    """SGD's step does nothing."""

    def sgd(self, params, lr):
        return fw.IdleSGD(params, lr)


class SummedMSE(Adapter):
    """Correct: an MSE summed over the elements (declared), trained at the rate its measured
    normalisation keeps stable (not a planted bug); no Sigmoid, so the trained network's
    output is unbounded, as in the framework that diverged."""

    mse_reduction = "sum"
    sigmoid = None

    def mse_loss(self):
        return fw.LossMSESum()


PLANTED = {
    "BiasNeverAdded": ("linear", "finite_difference"),
    "WrongTanhDerivative": ("tanh", "finite_difference"),
    "ReusedTanh": ("sequential", "finite_difference"),
}
