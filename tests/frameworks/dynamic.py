"""An EE-559 framework whose objects keep their attributes in a dict, written as a fixture.

Protocol variants: every object stores its attributes in ``self._store`` through a custom
``__setattr__`` and reads them back through a ``__getattr__`` that assumes ``_store`` exists,
so ``copy.deepcopy`` (and pickle round trips) of any of its objects recurse until
RecursionError; a missing attribute still raises AttributeError. Sequential's backward runs its
members backwards but returns None. MSE is the batch mean of each sample's sum of squares
(gradient 2 (x − t) / B). Components: Linear (weights [out, in]), ReLU, Tanh, Sigmoid,
Sequential, MSE, CrossEntropy (one-hot targets, stable log-softmax), BCE (mean over all
elements), BCEWithLogits, Huber, L1 and SmoothL1 (means over all elements) and SGD.

Planted bugs: ``OverBatchOnlyMSE`` (forward is the mean over all elements, backward divides by
B only), ``OverwritingSigmoid`` (backward computes y (1 − y) in place into the output it
returned), ``ExpRatioTanh`` ((eˣ − e⁻ˣ)/(eˣ + e⁻ˣ), NaN once |x| exceeds about 710),
``SigmoidCrossEntropy`` (−Σ t log σ(z): not a softmax), ``TwoClassWrongSign`` and
``TwoClassNoMean`` (cross-entropy written for 2 classes, σ(z₁ − z₀), with the gradient's sign
flipped or its 1/B missing), ``UnstableCrossEntropy`` (eᶻ / Σ eᶻ without subtracting the
maximum: NaN at a logit gap of 800) and ``BCEWithLogitsNoMean`` (gradient without its 1/N).
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


class SigmoidCrossEntropy(Dynamic):
    """Planted bug: ``−mean_b Σ_c t log σ(z)``, a sigmoid where the softmax belongs (its
    backward is its own derivative: consistent, but not a cross-entropy)."""

    def forward(self, logits, target):
        self.logits, self.target = logits, target
        return -(target * torch.sigmoid(logits).log()).sum() / logits.shape[0]

    def backward(self):
        return -self.target * (1 - torch.sigmoid(self.logits)) / self.logits.shape[0]


def _softplus(x):
    """log(1 + eˣ) without overflow."""
    return x.clamp(min=0) + torch.log1p(torch.exp(-x.abs()))


def _stable_sigmoid(x):
    """σ(x) without overflow: 1/(1 + e⁻ˣ) for x ≥ 0, eˣ/(1 + eˣ) below."""
    negative = torch.exp(-x.abs())
    return torch.where(x >= 0, 1 / (1 + negative), negative / (1 + negative))


class TwoClassCrossEntropy(Dynamic):
    """Cross-entropy written for 2 classes: p₁ = σ(z₁ − z₀), ``L = −mean_b [t₁ log p₁ +
    t₀ log(1 − p₁)]``; its backward fills a [B, 2] gradient (the planted subclasses)."""

    def forward(self, logits, target):
        self.target = target
        difference = logits[:, 1] - logits[:, 0]
        self.p1 = _stable_sigmoid(difference)
        losses = target[:, 1] * _softplus(-difference) + target[:, 0] * _softplus(difference)
        return losses.sum() / logits.shape[0]

    def _sum_gradient(self):
        """d/dz of the unnormalised sum: [p₀ − t₀, p₁ − t₁] per row, [B, 2]."""
        gradient = torch.empty(self.target.shape[0], 2)
        gradient[:, 1] = self.p1 - self.target[:, 1]
        gradient[:, 0] = (1 - self.p1) - self.target[:, 0]
        return gradient


class TwoClassWrongSign(TwoClassCrossEntropy):
    """Planted bug: the gradient's sign is flipped."""

    def backward(self):
        return -self._sum_gradient() / self.target.shape[0]


class TwoClassNoMean(TwoClassCrossEntropy):
    """Planted bug: the forward's 1/B is missing from the gradient."""

    def backward(self):
        return self._sum_gradient()


class UnstableCrossEntropy(CrossEntropy):
    """Planted bug: softmax as eᶻ / Σ eᶻ without subtracting the maximum (inf/inf = NaN once
    a logit exceeds about 709)."""

    def forward(self, logits, target):
        exponentials = logits.exp()
        self.softmax = exponentials / exponentials.sum(dim=1, keepdim=True)
        self.target = target
        return -(target * self.softmax.log()).sum() / logits.shape[0]


class BCEWithLogits(Dynamic):
    """``L = mean(max(x, 0) − x t + log(1 + e⁻|x|))`` over all elements, x logits."""

    def forward(self, logits, target):
        self.logits, self.target = logits, target
        return (logits.clamp(min=0) - logits * target
                + torch.log1p(torch.exp(-logits.abs()))).mean()

    def backward(self):
        return (_stable_sigmoid(self.logits) - self.target) / self.logits.numel()


class BCEWithLogitsNoMean(BCEWithLogits):
    """Planted bug: the forward's 1/N is missing from the gradient."""

    def backward(self):
        return _stable_sigmoid(self.logits) - self.target


class Huber(Dynamic):
    """``L = mean(½ d² if |d| ≤ δ else δ (|d| − ½ δ))``, d = x − t."""

    def __init__(self, delta):
        super().__init__()
        self.delta = delta

    def forward(self, prediction, target):
        self.d = prediction - target
        quadratic = 0.5 * self.d ** 2
        linear = self.delta * (self.d.abs() - 0.5 * self.delta)
        return torch.where(self.d.abs() <= self.delta, quadratic, linear).mean()

    def backward(self):
        return self.d.clamp(-self.delta, self.delta) / self.d.numel()


class SmoothL1(Dynamic):
    """``L = mean(½ d² / β if |d| < β else |d| − ½ β)``, d = x − t."""

    def __init__(self, beta):
        super().__init__()
        self.beta = beta

    def forward(self, prediction, target):
        self.d = prediction - target
        quadratic = 0.5 * self.d ** 2 / self.beta
        return torch.where(self.d.abs() < self.beta, quadratic,
                           self.d.abs() - 0.5 * self.beta).mean()

    def backward(self):
        return (self.d / self.beta).clamp(-1, 1) / self.d.numel()


class L1(Dynamic):
    """``L = mean |x − t|``; gradient sign(x − t) / N (0 at x = t, as torch)."""

    def forward(self, prediction, target):
        self.d = prediction - target
        return self.d.abs().mean()

    def backward(self):
        return self.d.sign() / self.d.numel()


class SGD(Dynamic):
    def __init__(self, params, lr):
        super().__init__()
        self.params = list(params)
        self.lr = lr

    def step(self):
        for value, gradient in self.params:
            value.sub_(self.lr * gradient)
