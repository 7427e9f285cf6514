"""An EE-559 framework with weights stored [in, out], written from scratch as a fixture.

Protocol variants: Linear computes ``x @ w + b`` with ``w`` shaped [in, out]; ``param`` is a
property (``module.param``, not ``module.param()``); modules have no ``zero_grad``: gradients
are cleared through the optimiser's ``zero_grad()``. Components: Linear, ReLU, Tanh, Sigmoid,
Sequential, MSE (mean over all elements) and SGD.

Planted bugs: ``OverwrittenGradientsLinear`` (backward copies into dw/db instead of adding)
and ``MissingOneOverNMSE`` (forward is the mean, backward returns 2 (x − t) without 1/N).
"""

import math

import torch


class Module:
    """Base class: no parameters, a training flag, and no zero_grad on purpose."""

    training = True

    @property
    def param(self):
        return []

    def train(self):
        self.training = True
        return self

    def eval(self):
        self.training = False
        return self


class Linear(Module):
    """``s = x w + b``, ``w`` shaped [in, out]; weights and biases uniform in ±1/√in."""

    def __init__(self, in_features, out_features, generator=None):
        bound = 1 / math.sqrt(in_features)
        self.w = torch.empty(in_features, out_features).uniform_(-bound, bound,
                                                                 generator=generator)
        self.b = torch.empty(out_features).uniform_(-bound, bound, generator=generator)
        self.dw = torch.zeros_like(self.w)
        self.db = torch.zeros_like(self.b)

    def forward(self, x):
        self.x = x
        return x @ self.w + self.b

    def backward(self, grad):
        self.dw += self.x.t() @ grad
        self.db += grad.sum(0)
        return grad @ self.w.t()

    @property
    def param(self):
        return [(self.w, self.dw), (self.b, self.db)]


class OverwrittenGradientsLinear(Linear):
    """Planted bug: backward writes the gradient into dw/db instead of adding it."""

    def backward(self, grad):
        self.dw.copy_(self.x.t() @ grad)
        self.db.copy_(grad.sum(0))
        return grad @ self.w.t()


class ReLU(Module):
    def forward(self, x):
        self.mask = (x > 0).to(x.dtype)
        return x.clamp(min=0)

    def backward(self, grad):
        return grad * self.mask


class Tanh(Module):
    def forward(self, x):
        self.y = torch.tanh(x)
        return self.y

    def backward(self, grad):
        return grad * (1 - self.y * self.y)


class Sigmoid(Module):
    def forward(self, x):
        self.y = torch.sigmoid(x)
        return self.y

    def backward(self, grad):
        return grad * self.y * (1 - self.y)


class Sequential(Module):
    def __init__(self, *layers):
        self.layers = layers

    def forward(self, x):
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, grad):
        for layer in reversed(self.layers):
            grad = layer.backward(grad)
        return grad

    @property
    def param(self):
        return [pair for layer in self.layers for pair in layer.param]

    def train(self):
        for layer in self.layers:
            layer.train()
        return super().train()

    def eval(self):
        for layer in self.layers:
            layer.eval()
        return super().eval()


class MSE:
    """``L = mean((x − t)²)``; ``backward()`` returns 2 (x − t) / N."""

    def forward(self, prediction, target):
        self.diff = prediction - target
        return (self.diff ** 2).mean()

    def backward(self):
        return 2 * self.diff / self.diff.numel()


class MissingOneOverNMSE(MSE):
    """Planted bug: the gradient of the mean forgets the 1/N."""

    def backward(self):
        return 2 * self.diff


class SGD:
    """``value ← value − lr · gradient``; owns the framework's only ``zero_grad``."""

    def __init__(self, params, lr):
        self.params = list(params)
        self.lr = lr

    def step(self):
        for value, gradient in self.params:
            value -= self.lr * gradient

    def zero_grad(self):
        for _, gradient in self.params:
            gradient.zero_()
