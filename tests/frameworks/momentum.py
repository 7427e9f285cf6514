"""An EE-559 framework whose optimisers take settings, written from scratch as a fixture.

Its SGD has momentum 0.9 by default (as several frameworks in the wild do), dampening,
Nesterov momentum and an L2 weight decay; Adam has weight decay and AMSGrad; RMSprop has its
smoothing α, ε, weight decay, momentum and the centred variant. Each follows torch.optim's
rule, buffers included (a momentum buffer starts as the first gradient, undamped). Modules:
Linear (weights [out, in]), Tanh, Sequential, MSE (mean).

Planted bugs: ``ScaledMomentumSGD`` (θ −= η·μ·b: the buffer scaled by μ once more) and
``UndampedSGD`` (dampening ignored).
"""

import torch


class Module:
    def param(self):
        return []

    def zero_grad(self):
        for _, gradient in self.param():
            gradient.zero_()

    def train(self):
        return self

    def eval(self):
        return self


class Linear(Module):
    """``s = x wᵀ + b``, ``w`` shaped [out, in], normal with std 1/√in."""

    def __init__(self, in_features, out_features, generator=None):
        self.w = torch.randn(out_features, in_features, generator=generator) / in_features ** 0.5
        self.b = torch.zeros(out_features)
        self.dw, self.db = torch.zeros_like(self.w), torch.zeros_like(self.b)

    def forward(self, x):
        self.x = x
        return x @ self.w.t() + self.b

    def backward(self, grad):
        self.dw += grad.t() @ self.x
        self.db += grad.sum(0)
        return grad @ self.w

    def param(self):
        return [(self.w, self.dw), (self.b, self.db)]


class Tanh(Module):
    def forward(self, x):
        self.y = torch.tanh(x)
        return self.y

    def backward(self, grad):
        return grad * (1 - self.y * self.y)


class Sequential(Module):
    def __init__(self, *modules):
        self.modules = modules

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


class MSE:
    """``L = mean((x − t)²)``; ``backward()`` returns 2 (x − t) / N."""

    def forward(self, prediction, target):
        self.diff = prediction - target
        return (self.diff * self.diff).mean()

    def backward(self):
        return 2 * self.diff / self.diff.numel()


class Optimizer:
    """Steps each ``(value, gradient)`` pair with ``update``; ``state[i]`` is pair i's."""

    def __init__(self, params, lr, weight_decay):
        self.params = list(params)
        self.lr, self.weight_decay = lr, weight_decay
        self.state = [{} for _ in self.params]
        self.t = 0

    def step(self):
        self.t += 1
        for (value, gradient), state in zip(self.params, self.state, strict=True):
            self.update(value, gradient + self.weight_decay * value, state)


class SGD(Optimizer):
    """``b ← μ b + (1 − d) g`` (b = g at the first step), ``θ ← θ − η (g + μ b)`` with Nesterov,
    ``θ ← θ − η b`` without; g includes λθ. Momentum 0.9 unless told otherwise."""

    def __init__(self, params, lr, momentum=0.9, dampening=0.0, nesterov=False,
                 weight_decay=0.0):
        super().__init__(params, lr, weight_decay)
        self.momentum, self.dampening, self.nesterov = momentum, dampening, nesterov

    def buffer(self, g, state):
        if "b" not in state:
            state["b"] = g.clone()
        else:
            state["b"] = self.momentum * state["b"] + (1 - self.dampening) * g
        return state["b"]

    def update(self, value, g, state):
        if self.momentum == 0:
            value -= self.lr * g
            return
        b = self.buffer(g, state)
        value -= self.lr * (g + self.momentum * b if self.nesterov else b)


class ScaledMomentumSGD(SGD):
    """Planted bug: the step is η·μ·b, the buffer scaled by μ once more (and no step at all
    without momentum)."""

    def update(self, value, g, state):
        value -= self.lr * self.momentum * self.buffer(g, state)


class UndampedSGD(SGD):
    """Planted bug: the buffer ignores dampening, ``b ← μ b + g``."""

    def buffer(self, g, state):
        state["b"] = self.momentum * state["b"] + g if "b" in state else g.clone()
        return state["b"]


class Adam(Optimizer):
    """torch.optim.Adam: bias-corrected moments, ε outside the root, L2 weight decay in g,
    and with AMSGrad the running maximum of v in the denominator."""

    def __init__(self, params, lr, betas, eps, weight_decay=0.0, amsgrad=False):
        super().__init__(params, lr, weight_decay)
        self.betas, self.eps, self.amsgrad = betas, eps, amsgrad

    def update(self, value, g, state):
        beta1, beta2 = self.betas
        m = state["m"] = beta1 * state.get("m", 0) + (1 - beta1) * g
        v = state["v"] = beta2 * state.get("v", 0) + (1 - beta2) * g * g
        if self.amsgrad:
            v = state["v_max"] = torch.maximum(state.get("v_max", v), v)
        denominator = (v / (1 - beta2 ** self.t)).sqrt() + self.eps
        value -= self.lr / (1 - beta1 ** self.t) * m / denominator


class RMSprop(Optimizer):
    """torch.optim.RMSprop: ``v ← α v + (1 − α) g²``; centred, ``v − ḡ²`` with ḡ the running
    mean of g; ``d = g / (√v + ε)``; with momentum ``b ← μ b + d``, θ −= η b, else θ −= η d."""

    def __init__(self, params, lr, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0,
                 centered=False):
        super().__init__(params, lr, weight_decay)
        self.alpha, self.eps, self.momentum, self.centered = alpha, eps, momentum, centered

    def update(self, value, g, state):
        v = state["v"] = self.alpha * state.get("v", 0) + (1 - self.alpha) * g * g
        if self.centered:
            mean = state["mean"] = self.alpha * state.get("mean", 0) + (1 - self.alpha) * g
            v = v - mean * mean
        direction = g / (v.sqrt() + self.eps)
        if self.momentum > 0:
            direction = state["b"] = self.momentum * state.get("b", 0) + direction
        value -= self.lr * direction
