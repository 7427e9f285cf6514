"""An EE-559 framework whose objects keep their attributes in a dict, written as a fixture.

Protocol variants: every object stores its attributes in ``self._store`` through a custom
``__setattr__`` and reads them back through a ``__getattr__`` that assumes ``_store`` exists,
so ``copy.deepcopy`` (and pickle round trips) of any of its objects recurse until
RecursionError; a missing attribute still raises AttributeError. Sequential's backward runs its
members backwards but returns None. MSE is the batch mean of each sample's sum of squares
(gradient 2 (x − t) / B). Components: Linear (weights [out, in]), ReLU, Tanh, Sigmoid,
Sequential, MSE, CrossEntropy (one-hot targets, stable log-softmax), BCE (mean over all
elements) and SGD.

Planted bugs: ``OverBatchOnlyMSE`` (forward is the mean over all elements, backward divides by
B only), ``OverwritingSigmoid`` (backward computes y (1 − y) in place into the output it
returned) and ``ExpRatioTanh`` ((eˣ − e⁻ˣ)/(eˣ + e⁻ˣ), NaN once |x| exceeds about 710).
"""

import math

import torch


class Dynamic:
    """Attributes live in ``self._store``. ``__getattr__`` does not guard against a missing
    ``_store``: on a copy made without ``__init__`` it calls itself until RecursionError."""

    def __init__(self):
        object.__setattr__(self, "_store", {})

    def __getattr__(self, name):
        try:
            return self._store[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name, value):
        self._store[name] = value


class Module(Dynamic):
    def __init__(self):
        super().__init__()
        self.training = True

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
    """``s = x wᵀ + b``, ``w`` shaped [out, in], uniform in ±1/√in."""

    def __init__(self, in_features, out_features, generator=None):
        super().__init__()
        bound = 1 / math.sqrt(in_features)
        self.w = torch.empty(out_features, in_features).uniform_(-bound, bound,
                                                                 generator=generator)
        self.b = torch.empty(out_features).uniform_(-bound, bound, generator=generator)
        self.dw = torch.zeros_like(self.w)
        self.db = torch.zeros_like(self.b)

    def forward(self, x):
        self.x = x
        return x @ self.w.t() + self.b

    def backward(self, grad):
        self.dw.add_(grad.t() @ self.x)
        self.db.add_(grad.sum(0))
        return grad @ self.w

    def param(self):
        return [(self.w, self.dw), (self.b, self.db)]


class ReLU(Module):
    def forward(self, x):
        self.x = x
        return x.clamp(min=0)

    def backward(self, grad):
        return grad * (self.x > 0).to(grad.dtype)


class Tanh(Module):
    def forward(self, x):
        self.y = torch.tanh(x)
        return self.y

    def backward(self, grad):
        return grad * (1 - self.y ** 2)


class ExpRatioTanh(Tanh):
    """Planted bug: tanh from exponentials, inf/inf = NaN for |x| above about 710."""

    def forward(self, x):
        self.y = (torch.exp(x) - torch.exp(-x)) / (torch.exp(x) + torch.exp(-x))
        return self.y


class Sigmoid(Module):
    def forward(self, x):
        self.y = torch.sigmoid(x)
        return self.y

    def backward(self, grad):
        return grad * self.y * (1 - self.y)


class OverwritingSigmoid(Sigmoid):
    """Planted bug: backward turns the returned output y into y (1 − y), in place."""

    def backward(self, grad):
        self.y.mul_(1 - self.y)
        return grad * self.y


class Sequential(Module):
    """Runs members forwards, then backwards; its backward returns None."""

    def __init__(self, *members):
        super().__init__()
        self.members = list(members)

    def forward(self, x):
        for member in self.members:
            x = member.forward(x)
        return x

    def backward(self, grad):
        for member in reversed(self.members):
            grad = member.backward(grad)

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


class MSE(Dynamic):
    """``L = Σ (x − t)² / B`` (batch mean of per-sample sums); gradient 2 (x − t) / B."""

    def forward(self, prediction, target):
        self.diff = prediction - target
        return (self.diff ** 2).sum() / self.diff.shape[0]

    def backward(self):
        return 2 * self.diff / self.diff.shape[0]


class OverBatchOnlyMSE(MSE):
    """Planted bug: forward is the mean over ALL elements, backward divides by B only."""

    def forward(self, prediction, target):
        self.diff = prediction - target
        return (self.diff ** 2).mean()


class CrossEntropy(Dynamic):
    """``L = −mean_b Σ_c t log softmax(z)`` with one-hot t [B, C]; stable (max subtracted)."""

    def forward(self, logits, target):
        shifted = logits - logits.max(dim=1, keepdim=True).values
        log_softmax = shifted - shifted.exp().sum(dim=1, keepdim=True).log()
        self.softmax = log_softmax.exp()
        self.target = target
        return -(target * log_softmax).sum() / logits.shape[0]

    def backward(self):
        mass = self.target.sum(dim=1, keepdim=True)
        return (self.softmax * mass - self.target) / self.target.shape[0]


class BCE(Dynamic):
    """``L = −mean(t log p + (1 − t) log(1 − p))`` over all elements, p in (0, 1)."""

    def forward(self, probability, target):
        self.p, self.t = probability, target
        losses = target * probability.log() + (1 - target) * (1 - probability).log()
        return -losses.mean()

    def backward(self):
        return (self.p - self.t) / (self.p * (1 - self.p)) / self.p.numel()


class SGD(Dynamic):
    def __init__(self, params, lr):
        super().__init__()
        self.params = list(params)
        self.lr = lr

    def step(self):
        for value, gradient in self.params:
            value.sub_(self.lr * gradient)
