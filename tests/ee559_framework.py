"""An independent mini framework written to the EE-559 course API, as a fixture.

It shares no code with refnet: plain torch tensor operations, no autograd, a weight laid out
``[in, out]`` (refnet uses ``[out, in]``) and other attribute names (``w``, ``b``, ``dw``,
``db``). Modules follow the course's ``forward(*input)``, ``backward(*gradwrtoutput)`` and
``param()``; the only glue for the verification protocol is ``zero_grad``, ``train`` and
``eval`` in the base class. ``BuggyTanh`` is wrong on purpose: its derivative is ``1 − x``
instead of ``1 − y²``. ``Sequential`` does not refuse an instance placed twice, so the
fixture can build the reused-activation bug that refnet's ``Sequential`` forbids.
"""

import math

import torch

__all__ = ["Module", "Linear", "Tanh", "BuggyTanh", "ReLU", "Sequential", "LossMSE"]


class Module:
    """The course's base class, plus the verification protocol's glue."""

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
    """``s = x w + b`` with ``w`` shaped ``[in, out]``; dL/dw = xᵀ g, dL/db = Σ g, dL/dx = g wᵀ.

    Weights start uniform in ±1/√in (torch.nn.Linear's rule), biases too.
    """

    def __init__(self, in_features, out_features, generator):
        bound = 1 / math.sqrt(in_features)
        self.w = _uniform((in_features, out_features), bound, generator)
        self.b = _uniform((out_features,), bound, generator)
        self.dw = torch.zeros_like(self.w)
        self.db = torch.zeros_like(self.b)

    def forward(self, *input):
        self.x = input[0]
        return self.x @ self.w + self.b

    def backward(self, *gradwrtoutput):
        gradient = gradwrtoutput[0]
        self.dw += self.x.T @ gradient
        self.db += gradient.sum(dim=0)
        return gradient @ self.w.T

    def param(self):
        return [(self.w, self.dw), (self.b, self.db)]


def _uniform(shape, bound, generator):
    return (2 * torch.rand(shape, generator=generator, dtype=torch.float64) - 1) * bound


class Tanh(Module):
    """``y = tanh(x)``, dL/dx = g ⊙ (1 − y²)."""

    def forward(self, *input):
        self.y = torch.tanh(input[0])
        self.x = input[0]
        return self.y

    def backward(self, *gradwrtoutput):
        return gradwrtoutput[0] * (1 - self.y ** 2)


class BuggyTanh(Tanh):
    """Tanh with a planted bug: the derivative ``1 − x`` (the input) instead of ``1 − y²``."""

    def backward(self, *gradwrtoutput):
        return gradwrtoutput[0] * (1 - self.x)


class ReLU(Module):
    """``y = max(0, x)``, dL/dx = g ⊙ [x > 0]."""

    def forward(self, *input):
        self.x = input[0]
        return self.x.clamp(min=0)

    def backward(self, *gradwrtoutput):
        return gradwrtoutput[0] * (self.x > 0).to(self.x.dtype)


class Sequential(Module):
    """Applies ``members`` in order; no check against an instance placed twice."""

    def __init__(self, *members):
        self.members = list(members)

    def forward(self, *input):
        x = input[0]
        for member in self.members:
            x = member.forward(x)
        return x

    def backward(self, *gradwrtoutput):
        gradient = gradwrtoutput[0]
        for member in reversed(self.members):
            gradient = member.backward(gradient)
        return gradient

    def param(self):
        return [pair for member in self.members for pair in member.param()]

    def train(self):
        for member in self.members:
            member.train()
        return super().train()

    def eval(self):
        for member in self.members:
            member.eval()
        return super().eval()


class LossMSE(Module):
    """``L = mean((x − t)²)``; ``backward()`` returns dL/dx = 2 (x − t) / N."""

    def forward(self, *input):
        prediction, target = input
        self.difference = prediction - target
        return self.difference.pow(2).mean()

    def backward(self, *gradwrtoutput):
        return 2 * self.difference / self.difference.numel()
