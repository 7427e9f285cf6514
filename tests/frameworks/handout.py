"""A course-handout style EE-559 framework, written from scratch as a verification fixture.

Protocol variants: ``torch.set_grad_enabled(False)`` at import (as the handout asks), modules
with ``forward(self, *input)`` / ``backward(self, *gradwrtoutput)``, weights stored
``[out, in]``. Components: Linear, ReLU, Tanh, Sigmoid, Sequential, LossMSE (mean over all
elements, gradient 2 (x − t) / N) and SGD.

Planted bugs: ``BiasNeverAddedLinear`` (forward never adds b, backward still accumulates db)
and ``WrongDerivativeTanh`` (derivative 1 − x instead of 1 − y²). The adapter plants a third
one, a single Tanh instance shared by every call of ``tanh()``.
"""

import math

import torch

torch.set_grad_enabled(False)


class Module:
    """The handout's base class."""

    training = True

    def forward(self, *input):
        raise NotImplementedError

    def backward(self, *gradwrtoutput):
        raise NotImplementedError

    def param(self):
        return []

    def zero_grad(self):
        for _, gradient in self.param():
            gradient.zero_()

    def train(self):
        self.training = True
        return self

    def eval(self):
        self.training = False
        return self


class Linear(Module):
    """``s = x wᵀ + b``, ``w`` shaped [out, in]; weights and biases uniform in ±1/√in."""

    def __init__(self, in_features, out_features, generator=None):
        bound = 1 / math.sqrt(in_features)
        self.w = torch.empty(out_features, in_features).uniform_(-bound, bound,
                                                                 generator=generator)
        self.b = torch.empty(out_features).uniform_(-bound, bound, generator=generator)
        self.dw = torch.zeros_like(self.w)
        self.db = torch.zeros_like(self.b)

    def forward(self, *input):
        self.x = input[0]
        return self.x @ self.w.t() + self.b

    def backward(self, *gradwrtoutput):
        gradient = gradwrtoutput[0]
        self.dw.add_(gradient.t() @ self.x)
        self.db.add_(gradient.sum(0))
        return gradient @ self.w

    def param(self):
        return [(self.w, self.dw), (self.b, self.db)]


class BiasNeverAddedLinear(Linear):
    """Planted bug: forward computes ``x wᵀ`` only, yet backward accumulates db."""

    def forward(self, *input):
        self.x = input[0]
        return self.x @ self.w.t()


class ReLU(Module):
    """``y = max(0, x)``, derivative [x > 0] (0 at x = 0)."""

    def forward(self, *input):
        self.x = input[0]
        return self.x.clamp(min=0)

    def backward(self, *gradwrtoutput):
        return gradwrtoutput[0] * (self.x > 0).to(gradwrtoutput[0].dtype)


class Tanh(Module):
    """``y = tanh(x)``, derivative 1 − y²."""

    def forward(self, *input):
        self.y = input[0].tanh()
        return self.y

    def backward(self, *gradwrtoutput):
        return gradwrtoutput[0] * (1 - self.y ** 2)


class WrongDerivativeTanh(Tanh):
    """Planted bug: the derivative is taken as 1 − x (the input) instead of 1 − y²."""

    def forward(self, *input):
        self.x = input[0]
        return super().forward(*input)

    def backward(self, *gradwrtoutput):
        return gradwrtoutput[0] * (1 - self.x)


class Float32WrongTanh(Tanh):
    """Planted bug: right in float64, but on a float32 input the derivative is 1 − x² (the
    input's square) instead of 1 − y²; only a float32 run can see it."""

    def forward(self, *input):
        self.x = input[0]
        return super().forward(*input)

    def backward(self, *gradwrtoutput):
        if self.x.dtype == torch.float32:
            return gradwrtoutput[0] * (1 - self.x ** 2)
        return super().backward(*gradwrtoutput)


class Sigmoid(Module):
    """``y = σ(x)``, derivative y (1 − y)."""

    def forward(self, *input):
        self.y = input[0].sigmoid()
        return self.y

    def backward(self, *gradwrtoutput):
        return gradwrtoutput[0] * self.y * (1 - self.y)


class Sequential(Module):
    """Runs its modules in order, and backwards in reverse order."""

    def __init__(self, *modules):
        self.modules = list(modules)

    def forward(self, *input):
        x = input[0]
        for module in self.modules:
            x = module.forward(x)
        return x

    def backward(self, *gradwrtoutput):
        gradient = gradwrtoutput[0]
        for module in reversed(self.modules):
            gradient = module.backward(gradient)
        return gradient

    def param(self):
        return [pair for module in self.modules for pair in module.param()]

    def train(self):
        for module in self.modules:
            module.train()
        return super().train()

    def eval(self):
        for module in self.modules:
            module.eval()
        return super().eval()


class LossMSE(Module):
    """``L = mean((x − t)²)`` over all elements; ``backward()`` returns 2 (x − t) / N."""

    def forward(self, *input):
        prediction, target = input
        self.difference = prediction - target
        return (self.difference ** 2).mean()

    def backward(self, *gradwrtoutput):
        return 2 * self.difference / self.difference.numel()


class LossMSESum(LossMSE):
    """``L = Σ (x − t)²``, the report's eq. 15 pair: ``backward()`` returns 2 (x − t). A
    correct loss, whose steps at a mean's rate are N times a mean's."""

    def forward(self, *input):
        return super().forward(*input) * self.difference.numel()

    def backward(self, *gradwrtoutput):
        return 2 * self.difference


class LossMSEGradientWithoutMean(LossMSE):
    """Planted bug: the forward is the mean, the gradient 2 (x − t) without its 1/N."""

    def backward(self, *gradwrtoutput):
        return 2 * self.difference


class DoubledGradientLinear(Linear):
    """Planted bug: dL/dw is accumulated twice."""

    def backward(self, *gradwrtoutput):
        self.dw.add_(gradwrtoutput[0].t() @ self.x)
        return super().backward(*gradwrtoutput)


class TransposedGradientLinear(Linear):
    """Planted bug: dL/dw accumulates into a [in, out] tensor, xᵀ g, the transpose of g xᵀ."""

    def __init__(self, in_features, out_features, generator=None):
        super().__init__(in_features, out_features, generator)
        self.dw = torch.zeros(in_features, out_features)

    def backward(self, *gradwrtoutput):
        gradient = gradwrtoutput[0]
        self.dw.add_(self.x.t() @ gradient)
        self.db.add_(gradient.sum(0))
        return gradient @ self.w


class FrozenWeightLinear(Linear):
    """Planted bug: backward never accumulates dL/dw (its gradient stays zero)."""

    def backward(self, *gradwrtoutput):
        gradient = gradwrtoutput[0]
        self.db.add_(gradient.sum(0))
        return gradient @ self.w


class KinkTwoReLU(ReLU):
    """Planted bug: the derivative at x = 0 is 2 (outside [0, 1]); right elsewhere."""

    def backward(self, *gradwrtoutput):
        slope = (self.x > 0).to(gradwrtoutput[0].dtype) + 2 * (self.x == 0).to(
            gradwrtoutput[0].dtype)
        return gradwrtoutput[0] * slope


class OverflowingTanh(Tanh):
    """Planted bug: tanh as (e^2x − 1) / (e^2x + 1), inf / inf = NaN beyond x ≈ 355."""

    def forward(self, *input):
        exp = (2 * input[0]).exp()
        self.y = (exp - 1) / (exp + 1)
        return self.y


class SGD:
    """Plain gradient descent: ``value ← value − lr · gradient``."""

    def __init__(self, params, lr):
        self.params = list(params)
        self.lr = lr

    def step(self):
        for value, gradient in self.params:
            value.sub_(self.lr * gradient)

    def zero_grad(self):
        for _, gradient in self.params:
            gradient.zero_()


class AscendingSGD(SGD):
    """Planted bug: ``value ← value + lr · gradient``, up the gradient."""

    def step(self):
        for value, gradient in self.params:
            value.add_(self.lr * gradient)


class IdleSGD(SGD):
    """Planted bug: ``step()`` changes nothing."""

    def step(self):
        pass
