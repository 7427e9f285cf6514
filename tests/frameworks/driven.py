"""An EE-559 framework whose losses drive the model, written from scratch as a fixture.

Protocol variants:

- a loss is built with the model it trains, ``MSE(model)``: ``forward(prediction, target)``
  returns the loss and ``backward()`` computes dL/dprediction and itself calls
  ``self.model.backward(gradient)`` (returning what that returns);
- a loss's ``forward`` returns a TUPLE ``(loss, per_sample_losses)``;
- losses take FLAT (1-D) predictions and targets and raise ``ValueError`` on anything else; a
  network ends with ``Flatten()`` to feed them ([B, C] → [B·C], the gradient reshaped back);
- MSE is HALF the mean, L = (1/(2n)) Σ (y − t)², gradient (y − t)/n, n the length of the
  flat vector; BCE is the mean over the n elements;
- ``param()`` returns one ``(w, b, dw, db)`` 4-tuple per Linear (a Sequential the list of its
  members' tuples, an activation []); ``SGD`` takes ``(value, gradient)`` pairs.

Components: Linear (w [out, in]), ReLU, Tanh, Sigmoid, Flatten, Sequential, MSE, BCE, SGD.

Planted bugs: ``HalfMSEWithoutHalfGradient`` (forward ½ × mean, backward 2 (y − t)/n, the
derivative of the mean without its ½), ``BCEWithoutOneOverN`` (the gradient lacks the 1/n),
``StaleGradientMSE`` (backward drives the model with the PREVIOUS forward's gradient) and
``DbNotSummedLinear`` (db accumulates the first row of g instead of the batch sum).
"""

import math

import torch


class Module:
    training = True

    def param(self):
        return []

    def zero_grad(self):
        for _, _, dw, db in self.param():
            dw.zero_()
            db.zero_()

    def train(self):
        self.training = True
        return self

    def eval(self):
        self.training = False
        return self


class Linear(Module):
    """``s = x wᵀ + b``, ``w`` [out, in], uniform in ±1/√in; dw += gᵀ x, db += Σ_b g_b."""

    def __init__(self, in_features, out_features, generator=None):
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
        return [(self.w, self.b, self.dw, self.db)]


class DbNotSummedLinear(Linear):
    """Planted bug: db accumulates the first sample's g only, not the sum over the batch."""

    def backward(self, grad):
        self.dw.add_(grad.t() @ self.x)
        self.db.add_(grad[0])
        return grad @ self.w


class ReLU(Module):
    """``y = max(0, x)``, derivative [x > 0]."""

    def forward(self, x):
        self.x = x
        return x.clamp(min=0)

    def backward(self, grad):
        return grad * (self.x > 0).to(grad.dtype)


class Tanh(Module):
    """``y = tanh(x)``, derivative 1 − y²."""

    def forward(self, x):
        self.y = torch.tanh(x)
        return self.y

    def backward(self, grad):
        return grad * (1 - self.y ** 2)


class Sigmoid(Module):
    """``y = σ(x)``, derivative y (1 − y)."""

    def forward(self, x):
        self.y = torch.sigmoid(x)
        return self.y

    def backward(self, grad):
        return grad * self.y * (1 - self.y)


class Flatten(Module):
    """``[B, C] → [B·C]`` for the losses; backward reshapes the flat gradient back."""

    def forward(self, x):
        self.shape = x.shape
        return x.reshape(-1)

    def backward(self, grad):
        return grad.reshape(self.shape)


class Sequential(Module):
    """Runs its members forwards, then backwards; ``param()`` lists their 4-tuples."""

    def __init__(self, *members):
        self.members = list(members)

    def forward(self, x):
        for member in self.members:
            x = member.forward(x)
        return x

    def backward(self, grad):
        for member in reversed(self.members):
            grad = member.backward(grad)
        return grad

    def param(self):
        return [quadruple for member in self.members for quadruple in member.param()]

    def train(self):
        for member in self.members:
            member.train()
        return super().train()

    def eval(self):
        for member in self.members:
            member.eval()
        return super().eval()


def _flat(loss, prediction, target):
    if prediction.ndim != 1 or target.shape != prediction.shape:
        raise ValueError(f"{loss} takes 1-D predictions and targets of one length, got "
                         f"{list(prediction.shape)} and {list(target.shape)}: flatten them")


class MSE:
    """Half the mean: ``L = (1/(2n)) Σ (y − t)²`` over flat [n] vectors, per-sample losses
    ½ (y − t)²; ``backward()`` drives the model with dL/dy = (y − t)/n."""

    def __init__(self, model):
        self.model = model

    def forward(self, prediction, target):
        _flat("MSE", prediction, target)
        self.diff = prediction - target
        per_sample = self.diff ** 2 / 2
        return per_sample.mean(), per_sample

    def backward(self):
        return self.model.backward(self.diff / self.diff.numel())


class HalfMSEWithoutHalfGradient(MSE):
    """Planted bug: forward is ½ × mean, backward 2 (y − t)/n (the mean's, the ½ forgotten)."""

    def backward(self):
        return self.model.backward(2 * self.diff / self.diff.numel())


class StaleGradientMSE(MSE):
    """Planted bug: forward prepares the model's gradient BEFORE storing the new difference,
    so backward drives the model with the previous forward's gradient (zeros at first)."""

    def forward(self, prediction, target):
        previous = getattr(self, "diff", None)
        if previous is None or previous.shape != prediction.shape:
            self.gradient = torch.zeros_like(prediction)
        else:
            self.gradient = previous / previous.numel()
        return super().forward(prediction, target)

    def backward(self):
        return self.model.backward(self.gradient)


class BCE:
    """``L = −(1/n) Σ [t log p + (1 − t) log(1 − p)]`` over flat [n] vectors, p in (0, 1);
    ``backward()`` drives the model with dL/dp = (p − t) / (p (1 − p) n)."""

    def __init__(self, model):
        self.model = model

    def forward(self, probability, target):
        _flat("BCE", probability, target)
        self.p, self.t = probability, target
        per_sample = -(target * probability.log() + (1 - target) * (1 - probability).log())
        return per_sample.mean(), per_sample

    def gradient(self):
        return (self.p - self.t) / (self.p * (1 - self.p)) / self.p.numel()

    def backward(self):
        return self.model.backward(self.gradient())


class BCEWithoutOneOverN(BCE):
    """Planted bug: the gradient is (p − t) / (p (1 − p)), without the mean's 1/n."""

    def gradient(self):
        return (self.p - self.t) / (self.p * (1 - self.p))


class SGD:
    """Plain gradient descent over ``(value, gradient)`` pairs: ``value ← value − lr · g``."""

    def __init__(self, params, lr):
        self.params = list(params)
        self.lr = lr

    def step(self):
        for value, gradient in self.params:
            value.sub_(self.lr * gradient)

    def zero_grad(self):
        for _, gradient in self.params:
            gradient.zero_()
