"""An EE-559 framework that computes in float32 only, written from scratch as a fixture.

Protocol variants: every forward (and backward) casts its input with ``.float()`` and the
parameters are created float32 whatever torch's default dtype. Weights are [out, in].
Components: Linear, ReLU, Tanh, Sigmoid, Sequential, MSE (mean), Dropout (p = drop
probability, a fresh mask per training forward from the given generator, kept units scaled
by 1/(1 − p), identity in eval), SGD, Adam (bias-corrected) and Adagrad (torch's rule at its
defaults: sum += g², value −= lr g / (√sum + 1e-10)).

Planted bugs: ``NoBiasCorrectionAdam``, ``KeepDropSwappedDropout`` (p used as the keep
probability), ``NoRescaleDropout`` (kept units not divided by 1 − p, in forward or backward)
and ``MaskReusedDropout`` (one mask drawn at the first forward, reused for every later one).
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
    """``s = x wᵀ + b`` in float32, ``w`` shaped [out, in], uniform in ±1/√in."""

    def __init__(self, in_features, out_features, generator=None):
        bound = 1 / math.sqrt(in_features)
        self.w = torch.empty(out_features, in_features, dtype=torch.float32)
        self.w.uniform_(-bound, bound, generator=generator)
        self.b = torch.empty(out_features, dtype=torch.float32)
        self.b.uniform_(-bound, bound, generator=generator)
        self.dw = torch.zeros_like(self.w)
        self.db = torch.zeros_like(self.b)

    def forward(self, x):
        self.x = x.float()
        return self.x @ self.w.t() + self.b

    def backward(self, grad):
        grad = grad.float()
        self.dw.add_(grad.t() @ self.x)
        self.db.add_(grad.sum(0))
        return grad @ self.w

    def param(self):
        return [(self.w, self.dw), (self.b, self.db)]


class ZeroGradRebindsLinear(Linear):
    """Bug: ``zero_grad`` binds new zero tensors, so an optimiser built earlier keeps
    stepping with the old ones (zeros): the weights never move."""

    def zero_grad(self):
        self.dw = torch.zeros_like(self.w)
        self.db = torch.zeros_like(self.b)


class ReLU(Module):
    def forward(self, x):
        self.x = x.float()
        return self.x.clamp(min=0)

    def backward(self, grad):
        return grad.float() * (self.x > 0).float()


class Tanh(Module):
    def forward(self, x):
        self.y = torch.tanh(x.float())
        return self.y

    def backward(self, grad):
        return grad.float() * (1 - self.y ** 2)


class Sigmoid(Module):
    def forward(self, x):
        self.y = torch.sigmoid(x.float())
        return self.y

    def backward(self, grad):
        return grad.float() * self.y * (1 - self.y)


class Dropout(Module):
    """Zeroes each unit with probability p in training and scales the kept ones by 1/(1 − p)."""

    def __init__(self, p, generator=None):
        self.p = p
        self.generator = generator

    def uniform(self, x):
        return torch.rand(x.shape, generator=self.generator, dtype=torch.float32)

    def draw_mask(self, x):
        keep = self.uniform(x) >= self.p
        return keep.float() / (1 - self.p) if self.p < 1 else torch.zeros_like(x)

    def forward(self, x):
        x = x.float()
        if not self.training:
            self.mask = None
            return x.clone()
        self.mask = self.draw_mask(x)
        return x * self.mask

    def backward(self, grad):
        grad = grad.float()
        return grad.clone() if self.mask is None else grad * self.mask


class KeepDropSwappedDropout(Dropout):
    """Planted bug: p is taken as the probability to KEEP a unit (scaled by 1/p)."""

    def draw_mask(self, x):
        keep = self.uniform(x) < self.p
        return keep.float() / self.p if self.p > 0 else torch.zeros_like(x)


class NoRescaleDropout(Dropout):
    """Planted bug: kept units are not divided by 1 − p (so neither is the gradient)."""

    def draw_mask(self, x):
        return (self.uniform(x) >= self.p).float()


class MaskReusedDropout(Dropout):
    """Planted bug: the first mask drawn is reused by every later forward of that shape."""

    def draw_mask(self, x):
        saved = getattr(self, "saved_mask", None)
        if saved is None or saved.shape != x.shape:
            self.saved_mask = super().draw_mask(x)
        return self.saved_mask


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

    def zero_grad(self):
        for module in self.modules:
            module.zero_grad()

    def train(self):
        for module in self.modules:
            module.train()
        return super().train()

    def eval(self):
        for module in self.modules:
            module.eval()
        return super().eval()


class MSE:
    """``L = mean((x − t)²)`` in float32; ``backward()`` returns 2 (x − t) / N."""

    def forward(self, prediction, target):
        self.diff = prediction.float() - target.float()
        return (self.diff ** 2).mean()

    def backward(self):
        return 2 * self.diff / self.diff.numel()


class SGD:
    def __init__(self, params, lr):
        self.params = list(params)
        self.lr = lr

    def step(self):
        for value, gradient in self.params:
            value.sub_(self.lr * gradient)


class Adam:
    """torch.optim.Adam's rule (no weight decay, no amsgrad), with bias correction."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        self.params = list(params)
        self.lr, self.betas, self.eps = lr, betas, eps
        self.m = [torch.zeros_like(value) for value, _ in self.params]
        self.v = [torch.zeros_like(value) for value, _ in self.params]
        self.t = 0

    def direction(self, m, v):
        beta1, beta2 = self.betas
        m_hat = m / (1 - beta1 ** self.t)
        v_hat = v / (1 - beta2 ** self.t)
        return m_hat / (v_hat.sqrt() + self.eps)

    def step(self):
        beta1, beta2 = self.betas
        self.t += 1
        for (value, gradient), m, v in zip(self.params, self.m, self.v, strict=True):
            m.mul_(beta1).add_((1 - beta1) * gradient)
            v.mul_(beta2).add_((1 - beta2) * gradient * gradient)
            value.sub_(self.lr * self.direction(m, v))


class NoBiasCorrectionAdam(Adam):
    """Planted bug: the moments are used without dividing by 1 − βᵗ."""

    def direction(self, m, v):
        return m / (v.sqrt() + self.eps)


class Adagrad:
    """torch.optim.Adagrad at its defaults: sum += g², value −= lr g / (√sum + 1e-10)."""

    def __init__(self, params, lr=1e-2, eps=1e-10):
        self.params = list(params)
        self.lr, self.eps = lr, eps
        self.sums = [torch.zeros_like(value) for value, _ in self.params]

    def step(self):
        for (value, gradient), total in zip(self.params, self.sums, strict=True):
            total.add_(gradient * gradient)
            value.sub_(self.lr * gradient / (total.sqrt() + self.eps))
