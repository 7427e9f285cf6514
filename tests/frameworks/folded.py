"""An EE-559 framework with the bias folded into the weights and named modules, a fixture.

Protocol variants:

- Linear keeps ONE matrix ``W`` shaped [out, in + 1] whose last column is the bias: with
  ``x̃ = [x, 1]``, ``y = x̃ Wᵀ = x W[:, :-1]ᵀ + W[:, -1]`` and ``dW += gᵀ x̃`` (so the bias
  column gathers ``Σ_b g_b``). ``param()`` returns a dict ``{name: (W, dW)}``; a Sequential
  merges its members' dicts, in order.
- Activations are built for a width: ``ReLU(features, name)``, ``Sigmoid(features, name)``
  raise ValueError on an input whose last dimension is not ``features``.
- Every module has a name. Names must be unique within a Sequential, nested ones included
  (``param()``'s dict is keyed by them): a duplicate raises ValueError when the Sequential is
  built. There is no global registry, so two separate networks may reuse names.
- ``forward`` returns None and keeps its output in ``self.out``; a Sequential reads its
  members' ``.out``. ``backward(dL/dy)`` returns dL/dx and ADDS into the gradients.

There is no Tanh. Components: Linear, ReLU, Sigmoid, Sequential, MSELoss (mean over all
elements: ``L = Σ (x − t)² / N``, gradient ``2 (x − t) / N``; its forward returns L) and SGD
over (value, gradient) pairs, e.g. views into ``W`` and ``dW``.

Planted bugs: ``AssignedBiasColumnLinear`` (backward assigns the bias column of dW instead of
adding to it), ``CachedOutputReLU`` (``.out`` computed at the first forward only) and
``DerivativeIntoOutputSigmoid`` (backward turns ``.out`` into y (1 − y), in place).
"""

import math

import torch


class Module:
    """A named module; ``forward`` leaves its result in ``self.out``."""

    def __init__(self, name):
        self.name = name
        self.out = None
        self.training = True

    def names(self):
        """The names of this module and of every module inside it."""
        return [self.name]

    def param(self):
        return {}

    def zero_grad(self):
        for _, gradient in self.param().values():
            gradient.zero_()

    def train(self):
        self.training = True
        return self

    def eval(self):
        self.training = False
        return self


class Linear(Module):
    """``y = x̃ Wᵀ`` with ``x̃ = [x, 1]``, W [out, in + 1] (bias last), uniform in ±1/√in."""

    def __init__(self, in_features, out_features, name, generator=None):
        super().__init__(name)
        bound = 1 / math.sqrt(in_features)
        self.W = torch.empty(out_features, in_features + 1).uniform_(-bound, bound,
                                                                     generator=generator)
        self.dW = torch.zeros_like(self.W)

    @staticmethod
    def augmented(x):
        return torch.cat([x, x.new_ones(x.shape[0], 1)], dim=1)

    def forward(self, x):
        self.x = x
        self.out = self.augmented(x) @ self.W.t()

    def backward(self, grad):
        self.dW.add_(grad.t() @ self.augmented(self.x))
        return grad @ self.W[:, :-1]

    def param(self):
        return {self.name: (self.W, self.dW)}


class AssignedBiasColumnLinear(Linear):
    """Planted bug: the bias column of dW is assigned ``Σ_b g_b``, not added to."""

    def backward(self, grad):
        self.dW[:, :-1].add_(grad.t() @ self.x)
        self.dW[:, -1] = grad.sum(0)
        return grad @ self.W[:, :-1]


class Activation(Module):
    """An element-wise module built for inputs whose last dimension is ``features``."""

    def __init__(self, features, name):
        super().__init__(name)
        self.features = features

    def checked(self, x):
        if x.shape[-1] != self.features:
            raise ValueError(f"{type(self).__name__} {self.name!r} was built for "
                             f"{self.features} features, got an input of shape {list(x.shape)}")
        return x


class ReLU(Activation):
    """``y = max(0, x)``, derivative [x > 0] (0 at x = 0)."""

    def forward(self, x):
        self.x = self.checked(x)
        self.out = x.clamp(min=0)

    def backward(self, grad):
        return grad * (self.x > 0).to(grad.dtype)


class CachedOutputReLU(ReLU):
    """Planted bug: ``.out`` is computed at the first forward only; later calls keep it."""

    def forward(self, x):
        self.x = self.checked(x)
        if self.out is None:
            self.out = x.clamp(min=0)


class Sigmoid(Activation):
    """``y = σ(x)``, derivative y (1 − y)."""

    def forward(self, x):
        self.out = torch.sigmoid(self.checked(x))

    def backward(self, grad):
        return grad * self.out * (1 - self.out)


class DerivativeIntoOutputSigmoid(Sigmoid):
    """Planted bug: backward turns ``.out`` (the output readers still hold) into y (1 − y)."""

    def backward(self, grad):
        self.out.mul_(1 - self.out)
        return grad * self.out


class Sequential(Module):
    """Runs its members forwards (each reads the previous one's ``.out``), then backwards."""

    def __init__(self, *members, name):
        super().__init__(name)
        self.members = list(members)
        seen = set()
        for taken in self.names():
            if taken in seen:
                raise ValueError(f"Sequential {name!r}: the name {taken!r} is used twice")
            seen.add(taken)

    def names(self):
        return [self.name, *(taken for member in self.members for taken in member.names())]

    def forward(self, x):
        for member in self.members:
            member.forward(x)
            x = member.out
        self.out = x

    def backward(self, grad):
        for member in reversed(self.members):
            grad = member.backward(grad)
        return grad

    def param(self):
        return {key: pair for member in self.members for key, pair in member.param().items()}

    def train(self):
        for member in self.members:
            member.train()
        return super().train()

    def eval(self):
        for member in self.members:
            member.eval()
        return super().eval()


class MSELoss(Module):
    """``L = Σ (x − t)² / N`` over all N elements (returned); ``backward()`` gives 2 (x − t)/N."""

    def forward(self, prediction, target):
        self.difference = prediction - target
        self.out = (self.difference ** 2).mean()
        return self.out

    def backward(self):
        return 2 * self.difference / self.difference.numel()


class SGD:
    """``value ← value − lr · gradient`` in place, over a list of (value, gradient) pairs or a
    ``param()`` dict."""

    def __init__(self, params, lr):
        self.params = list(params.values() if isinstance(params, dict) else params)
        self.lr = lr

    def step(self):
        for value, gradient in self.params:
            value.sub_(self.lr * gradient)

    def zero_grad(self):
        for _, gradient in self.params:
            gradient.zero_()
