"""Adapter for the ``objects`` fixture framework: ``Parameter`` objects listed by
``parameters()`` (nested per layer in a Sequential; the ``params`` hook), gradients rebound by
``zero_grad``, optimisers built on the model (``optimizer_takes_module``), the mode as an
``eval`` attribute (the ``set_training`` hook); no Sigmoid.

Planted-bug subclasses: ``LinearRebindsGradient``, ``DropoutIgnoresEvalFlag``,
``StaleGradientSGD`` (only training shows it: it needs a ``zero_grad`` after construction)
and ``AdamStepPerParameter``.
"""

import objects as fw


class Adapter:
    """Builds the correct objects components."""

    optimizer_takes_module = True

    def params(self, m):
        return m.parameters()

    def set_training(self, m, training):
        m.eval = not training

    def linear(self, in_features, out_features, generator):
        return fw.Linear(in_features, out_features, generator)

    def relu(self):
        return fw.ReLU()

    def tanh(self):
        return fw.Tanh()

    def sequential(self, *modules):
        return fw.Sequential(*modules)

    def mse_loss(self):
        return fw.MSELoss()

    def dropout(self, p, generator):
        return fw.Dropout(p, generator)

    def sgd(self, module, lr):
        return fw.SGD(module, lr)

    def adam(self, module, lr, betas, eps):
        return fw.Adam(module, lr, betas, eps)


class LinearRebindsGradient(Adapter):
    """Linear's backward assigns its gradients instead of adding to them."""

    def linear(self, in_features, out_features, generator):
        return fw.RebindingGradientLinear(in_features, out_features, generator)


class DropoutIgnoresEvalFlag(Adapter):
    """Dropout drops units in evaluation mode too."""

    def dropout(self, p, generator):
        return fw.EvalIgnoredDropout(p, generator)


class StaleGradientSGD(Adapter):
    """SGD steps with the gradient tensors it saw at construction."""

    def sgd(self, module, lr):
        return fw.StaleGradientSGD(module, lr)


class AdamStepPerParameter(Adapter):
    """Adam advances its step count once per parameter instead of once per step."""

    def adam(self, module, lr, betas, eps):
        return fw.StepPerParameterAdam(module, lr, betas, eps)


PLANTED = {
    "LinearRebindsGradient": ("linear", "accumulation"),
    "DropoutIgnoresEvalFlag": ("dropout", "property"),
    "StaleGradientSGD": ("training", "trajectory"),
    "AdamStepPerParameter": ("adam", "trajectory"),
}
