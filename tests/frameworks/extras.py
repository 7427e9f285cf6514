"""A framework with activations beyond the report's, written from scratch as a fixture.

Components: Linear (weights [out, in]), Tanh, LeakyReLU, PReLU (one learned slope per feature,
or one for all), ELU, Sequential, MSELoss (mean over all elements) and Dropout (``p`` the drop
probability, ``last_mask`` the scaled mask of the last training forward). Linear and Tanh
keep what backward needs on a stack (forward pushes, backward pops), so one instance can sit at
several positions of a Sequential; the other modules keep their last input, as most course
frameworks do.

Planted bugs: ``Float32SlopeLeakyReLU`` (the slope rounded to float32, seen in a float64 run),
``RowZeroPReLU`` (the slope's gradient from the first sample only, not summed over the batch)
and ``StaleMaskDropout`` (eval-mode backward multiplies by the last training mask).
"""

import math

import torch


class Module:
    """Base: no parameters, train/eval switches ``training``."""

    training = True

    def param(self):
        return []

    def zero_grad(self):
        for _, gradient in self.param():
            gradient.zero_()

    def train(self):
        self.training = True

    def eval(self):
        self.training = False


class Linear(Module):
    """``y = x wᵀ + b``."""

    def __init__(self, in_features, out_features, generator=None):
        bound = 1 / math.sqrt(in_features)
        self.w = (2 * torch.rand(out_features, in_features, generator=generator) - 1) * bound
        self.b = (2 * torch.rand(out_features, generator=generator) - 1) * bound
        self.dw, self.db = torch.zeros_like(self.w), torch.zeros_like(self.b)
        self.inputs = []

    def forward(self, x):
        self.inputs.append(x)
        return x @ self.w.T + self.b

    def backward(self, gradient):
        self.dw += gradient.T @ self.inputs.pop()
        self.db += gradient.sum(0)
        return gradient @ self.w

    def param(self):
        return [(self.w, self.dw), (self.b, self.db)]


class Tanh(Module):
    """``y = tanh(x)``, derivative 1 − y²."""

    def __init__(self):
        self.outputs = []

    def forward(self, x):
        self.outputs.append(torch.tanh(x))
        return self.outputs[-1]

    def backward(self, gradient):
        y = self.outputs.pop()
        return gradient * (1 - y * y)


class LeakyReLU(Module):
    """``y = x`` for x > 0, ``slope · x`` otherwise."""

    def __init__(self, slope=0.01):
        self.slope = slope

    def forward(self, x):
        self.x = x
        return torch.where(x > 0, x, self.slope * x)

    def backward(self, gradient):
        return gradient * torch.where(self.x > 0, 1.0, self.slope).to(gradient.dtype)


class Float32SlopeLeakyReLU(LeakyReLU):
    """Planted bug: the slope is stored as a float32 number, 0.009999999776…, in any run."""

    def __init__(self, slope=0.01):
        super().__init__(torch.tensor(slope, dtype=torch.float32).item())


class PReLU(Module):
    """``y = x`` for x > 0, ``a · x`` otherwise, ``a`` learned: one per feature (``features``)
    or one for all; ``da = Σ_batch g · min(0, x)``."""

    def __init__(self, features=1, init=0.25):
        self.a = torch.full((features,), init)
        self.da = torch.zeros_like(self.a)

    def forward(self, x):
        self.x = x
        return torch.where(x > 0, x, self.a * x)

    def backward(self, gradient):
        self.da += self._slope_gradient(gradient * torch.clamp(self.x, max=0))
        return gradient * torch.where(self.x > 0, torch.ones_like(self.a), self.a)

    def _slope_gradient(self, terms):
        summed = terms.sum(0)
        return summed if self.a.numel() > 1 else summed.sum().reshape(1)

    def param(self):
        return [(self.a, self.da)]


class RowZeroPReLU(PReLU):
    """Planted bug: the slope's gradient takes the first sample only."""

    def _slope_gradient(self, terms):
        return super()._slope_gradient(terms[:1])


class ELU(Module):
    """``y = x`` for x > 0, ``α (eˣ − 1)`` otherwise; derivative 1, or y + α."""

    def __init__(self, alpha=1.0):
        self.alpha = alpha

    def forward(self, x):
        self.y = torch.where(x > 0, x, self.alpha * torch.expm1(torch.clamp(x, max=0)))
        self.positive = x > 0
        return self.y

    def backward(self, gradient):
        return gradient * torch.where(self.positive, 1.0, self.y + self.alpha).to(gradient.dtype)


class Sequential(Module):
    """Runs its modules in order, backward in reverse."""

    def __init__(self, *modules):
        self.modules = list(modules)

    def forward(self, x):
        for module in self.modules:
            x = module.forward(x)
        return x

    def backward(self, gradient):
        for module in reversed(self.modules):
            gradient = module.backward(gradient)
        return gradient

    def param(self):
        return [pair for module in self.modules for pair in module.param()]

    def train(self):
        for module in self.modules:
            module.train()
        super().train()

    def eval(self):
        for module in self.modules:
            module.eval()
        super().eval()


class MSELoss(Module):
    """``L = mean((y − t)²)``, gradient 2 (y − t) / N."""

    def forward(self, prediction, target):
        self.difference = prediction - target
        return (self.difference ** 2).mean()

    def backward(self):
        return 2 * self.difference / self.difference.numel()


class Dropout(Module):
    """Training: ``y = x ⊙ m / (1 − p)``, m kept with probability 1 − p; evaluation: y = x."""

    def __init__(self, p, generator=None):
        self.p, self.generator, self.last_mask = p, generator, None

    def forward(self, x):
        if not self.training:
            return x
        keep = torch.rand(x.shape, generator=self.generator) >= self.p
        self.last_mask = keep.to(x.dtype) / (1 - self.p)
        return x * self.last_mask

    def backward(self, gradient):
        return gradient * self.last_mask if self.training else gradient


class StaleMaskDropout(Dropout):
    """Planted bug: backward multiplies by the last training mask, in evaluation mode too."""

    def backward(self, gradient):
        return gradient * self.last_mask
