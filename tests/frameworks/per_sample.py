"""An EE-559 framework that handles one sample at a time, written from scratch as a fixture.

Protocol variants: ``forward`` takes a 1-D tensor [in] and returns [out]; ``backward`` takes
[out] and returns [in]; Linear accumulates the outer product of the output gradient and the
input into dw. The loss takes one sample's prediction and target and returns the SUM of
(x − t)² over its outputs. Weights are [out, in]. Components: Linear, ReLU, Tanh, Sigmoid,
Sequential, MSE and SGD.

Planted bugs: ``WrongDerivativeSigmoid`` (derivative σ (1 + σ)) and ``InPlaceReLU`` (forward
clamps its argument in place and keeps it).
"""

import math

import torch


class Module:
    training = True

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
    """``y = w x + b`` for one sample x [in]; dw += g xᵀ, db += g, dL/dx = wᵀ g."""

    def __init__(self, in_features, out_features, generator=None):
        bound = 1 / math.sqrt(in_features)
        self.weight = torch.empty(out_features, in_features).uniform_(-bound, bound,
                                                                      generator=generator)
        self.bias = torch.empty(out_features).uniform_(-bound, bound, generator=generator)
        self.grad_weight = torch.zeros_like(self.weight)
        self.grad_bias = torch.zeros_like(self.bias)

    def forward(self, x):
        self.x = x
        return self.weight @ x + self.bias

    def backward(self, grad):
        self.grad_weight.add_(torch.outer(grad, self.x))
        self.grad_bias.add_(grad)
        return self.weight.t() @ grad

    def param(self):
        return [(self.weight, self.grad_weight), (self.bias, self.grad_bias)]


class ReLU(Module):
    def forward(self, x):
        self.x = x
        return torch.clamp(x, min=0)

    def backward(self, grad):
        return grad * (self.x > 0).to(grad.dtype)


class InPlaceReLU(ReLU):
    """Planted bug: clamps the caller's tensor in place (its gradient is still right)."""

    def forward(self, x):
        x.clamp_(min=0)
        self.x = x
        return x


class Tanh(Module):
    def forward(self, x):
        self.y = torch.tanh(x)
        return self.y

    def backward(self, grad):
        return grad * (1 - self.y ** 2)


class Sigmoid(Module):
    def forward(self, x):
        self.y = torch.sigmoid(x)
        return self.y

    def backward(self, grad):
        return grad * self.y * (1 - self.y)


class WrongDerivativeSigmoid(Sigmoid):
    """Planted bug: derivative σ (1 + σ) instead of σ (1 − σ)."""

    def backward(self, grad):
        return grad * self.y * (1 + self.y)


class Sequential(Module):
    def __init__(self, *modules):
        self.modules = list(modules)

    def forward(self, x):
        for module in self.modules:
            x = module.forward(x)
        return x

    def backward(self, grad):
        for module in reversed(self.modules):
            grad = module.backward(grad)
        return grad

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


class MSE:
    """One sample: ``L = Σ (x − t)²`` over its outputs; ``backward()`` returns 2 (x − t)."""

    def forward(self, prediction, target):
        self.diff = prediction - target
        return (self.diff ** 2).sum()

    def backward(self):
        return 2 * self.diff


class SGD:
    def __init__(self, params, lr):
        self.params = list(params)
        self.lr = lr

    def step(self):
        for value, gradient in self.params:
            value.add_(gradient, alpha=-self.lr)
