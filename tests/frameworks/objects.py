"""An EE-559 framework built on parameter objects, written from scratch as a verification fixture.

Protocol variants: every parameter is a ``Parameter`` holding two tensors, ``.data`` and
``.grad``; modules list them with ``parameters()`` (no ``param()``), a Sequential as a NESTED
list, one list per layer (``[[w, b], [], [w2, b2]]``). ``zero_grad()`` REBINDS every ``.grad``
to a fresh ``torch.zeros(shape)``, and other tensors too are allocated without a dtype
(``torch.empty``, ``torch.zeros``), so everything follows torch's default dtype. Optimisers take
the MODEL, ``SGD(model, lr)``, ``Adam(model, lr, betas, eps)``, and re-read
``model.parameters()`` at every step. The mode is a boolean attribute, ``module.eval``
(``False``: training), which a Sequential hands to its modules at every forward. Weights are
[out, in]. Components: Linear, ReLU, Tanh, Sequential, MSELoss (mean over all elements),
Dropout, SGD and Adam (bias-corrected); no Sigmoid.

Planted bugs: ``RebindingGradientLinear`` (backward assigns ``.grad`` instead of adding to it),
``EvalIgnoredDropout`` (drops units whatever ``eval``), ``StaleGradientSGD`` (steps with the
gradient tensors of construction time, orphaned by the first ``zero_grad``) and
``StepPerParameterAdam`` (the step count t advances once per parameter, not once per step).
"""

import math

import torch


def flatten(parameters):
    """The ``Parameter`` objects of a ``parameters()`` list, nested or not, in order."""
    flat = []
    for item in parameters:
        if isinstance(item, Parameter):
            flat.append(item)
        else:
            flat.extend(flatten(item))
    return flat


class Parameter:
    """A value and its gradient: ``data`` and ``grad``, two tensors of the same shape."""

    def __init__(self, data):
        self.data = data
        self.grad = torch.zeros(data.shape)


class Module:
    """Base class: ``eval`` is the mode (``False`` while training), read by Dropout."""

    eval = False

    def parameters(self):
        return []

    def zero_grad(self):
        """A fresh zero gradient per parameter: ``p.grad = 0`` (rebound, not zeroed in place)."""
        for parameter in flatten(self.parameters()):
            parameter.grad = torch.zeros(parameter.data.shape)


class Linear(Module):
    """``s = x wᵀ + b``, ``w`` shaped [out, in]; weights and biases uniform in ±1/√in.

    Backward ADDS ``gᵀ x`` to ``w.grad`` and ``Σ_rows g`` to ``b.grad``, and returns ``g w``.
    """

    def __init__(self, in_features, out_features, generator=None):
        bound = 1 / math.sqrt(in_features)
        self.weight = Parameter(torch.empty(out_features, in_features).uniform_(
            -bound, bound, generator=generator))
        self.bias = Parameter(torch.empty(out_features).uniform_(-bound, bound,
                                                                 generator=generator))

    def forward(self, x):
        self.x = x
        return x @ self.weight.data.t() + self.bias.data

    def backward(self, grad):
        self.weight.grad += grad.t() @ self.x
        self.bias.grad += grad.sum(0)
        return grad @ self.weight.data

    def parameters(self):
        return [self.weight, self.bias]


class RebindingGradientLinear(Linear):
    """Planted bug: backward assigns ``p.grad = …`` instead of adding, so gradients of several
    backwards without ``zero_grad`` do not accumulate (the last one wins)."""

    def backward(self, grad):
        self.weight.grad = grad.t() @ self.x
        self.bias.grad = grad.sum(0)
        return grad @ self.weight.data


class ReLU(Module):
    """``y = max(0, x)``, derivative [x > 0] (0 at x = 0), built as a zeros tensor set to 1."""

    def forward(self, x):
        self.x = x
        return x.clamp(min=0)

    def backward(self, grad):
        slope = torch.zeros(self.x.shape)
        slope[self.x > 0] = 1
        return grad * slope


class Tanh(Module):
    """``y = tanh(x)`` written into a fresh ``torch.empty``; derivative 1 − y²."""

    def forward(self, x):
        self.y = torch.empty(x.shape)
        self.y.copy_(torch.tanh(x))
        return self.y

    def backward(self, grad):
        return grad * (1 - self.y ** 2)


class Dropout(Module):
    """Zeroes each unit with probability p while training and scales the kept ones by 1/(1 − p):
    ``y = x ⊙ m``, ``m = keep / (1 − p)``, keep ~ Bernoulli(1 − p) drawn afresh at every forward
    from ``generator``; backward ``g ⊙ m``. With ``eval`` it is the identity, both ways."""

    def __init__(self, p, generator=None):
        self.p = p
        self.generator = generator
        self.mask = None

    def draw_mask(self, x):
        keep = torch.empty(x.shape).bernoulli_(1 - self.p, generator=self.generator)
        return keep * (1 / (1 - self.p) if self.p < 1 else 0.0)

    def forward(self, x):
        if self.eval:
            self.mask = None
            return x
        self.mask = self.draw_mask(x)
        return x * self.mask

    def backward(self, grad):
        return grad if self.mask is None else grad * self.mask


class EvalIgnoredDropout(Dropout):
    """Planted bug: the ``eval`` flag is never read, so units are dropped in evaluation too."""

    def forward(self, x):
        self.mask = self.draw_mask(x)
        return x * self.mask


class Sequential(Module):
    """Runs its modules in order (handing each its own ``eval``), backwards in reverse order;
    ``parameters()`` is one list per module."""

    def __init__(self, *modules):
        self.modules = list(modules)

    def forward(self, x):
        for module in self.modules:
            module.eval = self.eval
            x = module.forward(x)
        return x

    def backward(self, grad):
        for module in reversed(self.modules):
            grad = module.backward(grad)
        return grad

    def parameters(self):
        return [module.parameters() for module in self.modules]

    def zero_grad(self):
        for module in self.modules:
            module.zero_grad()


class MSELoss:
    """``L = mean((x − t)²)`` over all N elements; ``backward()`` returns 2 (x − t) / N."""

    def forward(self, prediction, target):
        self.difference = prediction - target
        return (self.difference ** 2).mean()

    def backward(self):
        return 2 * self.difference / self.difference.numel()


class SGD:
    """Plain gradient descent on the model's parameters, re-read at every step:
    ``p.data ← p.data − lr · p.grad``."""

    def __init__(self, model, lr):
        self.model = model
        self.lr = lr

    def step(self):
        for parameter in flatten(self.model.parameters()):
            parameter.data.sub_(self.lr * parameter.grad)


class StaleGradientSGD(SGD):
    """Planted bug: keeps the ``(data, grad)`` tensors seen at construction; once ``zero_grad``
    has rebound the gradients it steps with the orphaned zeros and the weights never move."""

    def __init__(self, model, lr):
        super().__init__(model, lr)
        self.pairs = [(p.data, p.grad) for p in flatten(model.parameters())]

    def step(self):
        for value, gradient in self.pairs:
            value.sub_(self.lr * gradient)


class Adam:
    """torch.optim.Adam's rule (no weight decay, no amsgrad) on the model's parameters, re-read
    at every step: t ← t + 1 once per step, then per parameter
    ``m ← β₁ m + (1 − β₁) g``, ``v ← β₂ v + (1 − β₂) g²``,
    ``p ← p − lr · (m / (1 − β₁ᵗ)) / (√(v / (1 − β₂ᵗ)) + ε)``; m and v start at zero, allocated
    at the first step."""

    def __init__(self, model, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        self.model = model
        self.lr, self.betas, self.eps = lr, betas, eps
        self.m, self.v = [], []
        self.t = 0

    def moments(self):
        """The model's parameters, and their moments (created on the first call)."""
        parameters = flatten(self.model.parameters())
        if not self.m:
            self.m = [torch.zeros(p.data.shape) for p in parameters]
            self.v = [torch.zeros(p.data.shape) for p in parameters]
        return zip(parameters, self.m, self.v, strict=True)

    def update(self, parameter, m, v, t):
        beta1, beta2 = self.betas
        gradient = parameter.grad
        m.mul_(beta1).add_((1 - beta1) * gradient)
        v.mul_(beta2).add_((1 - beta2) * gradient * gradient)
        m_hat = m / (1 - beta1 ** t)
        v_hat = v / (1 - beta2 ** t)
        parameter.data.sub_(self.lr * m_hat / (v_hat.sqrt() + self.eps))

    def step(self):
        self.t += 1
        for parameter, m, v in self.moments():
            self.update(parameter, m, v, self.t)


class StepPerParameterAdam(Adam):
    """Planted bug: t advances inside the loop over ``model.parameters()``, once per parameter,
    so every bias correction but the very first uses a wrong t."""

    def step(self):
        for parameter, m, v in self.moments():
            self.t += 1
            self.update(parameter, m, v, self.t)
