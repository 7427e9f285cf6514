"""An EE-559 framework with other conventions, written from scratch as a fixture.

Protocol variants: ReLU's derivative at exactly 0 is 1 (``x >= 0``), a convention rather
than a bug; cross-entropy takes int64 class indices [B] (mean over the batch). Weights are
[out, in]. Components: Linear, ReLU, Tanh, Sigmoid, Sequential, MSE (mean), CrossEntropy,
SGD and Adam (bias-corrected).

Planted bugs: ``NoSoftmaxCrossEntropy`` (backward returns (z − onehot(t)) / B, the softmax
forgotten), ``BiasGradientMeanLinear`` (db accumulates the batch mean of g, not its sum) and
``AscentSGD`` (value += lr g).
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
    """``s = x wᵀ + b``, ``w`` shaped [out, in], uniform in ±1/√in."""

    def __init__(self, in_features, out_features, generator=None):
        bound = 1 / math.sqrt(in_features)
        self.weight = torch.empty(out_features, in_features).uniform_(-bound, bound,
                                                                      generator=generator)
        self.bias = torch.empty(out_features).uniform_(-bound, bound, generator=generator)
        self.weight_grad = torch.zeros_like(self.weight)
        self.bias_grad = torch.zeros_like(self.bias)

    def forward(self, x):
        self.input = x
        return x @ self.weight.t() + self.bias

    def bias_gradient(self, grad):
        return grad.sum(0)

    def backward(self, grad):
        self.weight_grad.add_(grad.t() @ self.input)
        self.bias_grad.add_(self.bias_gradient(grad))
        return grad @ self.weight

    def param(self):
        return [(self.weight, self.weight_grad), (self.bias, self.bias_grad)]


class BiasGradientMeanLinear(Linear):
    """Planted bug: the bias gradient is the batch mean of g instead of its sum."""

    def bias_gradient(self, grad):
        return grad.mean(0)


class ReLU(Module):
    """``y = max(0, x)`` with derivative 1 for x >= 0 (so 1 at exactly 0)."""

    def forward(self, x):
        self.input = x
        return x.clamp(min=0)

    def backward(self, grad):
        return grad * (self.input >= 0).to(grad.dtype)


class Tanh(Module):
    def forward(self, x):
        self.output = x.tanh()
        return self.output

    def backward(self, grad):
        return grad * (1 - self.output.square())


class Sigmoid(Module):
    def forward(self, x):
        self.output = x.sigmoid()
        return self.output

    def backward(self, grad):
        return grad * self.output * (1 - self.output)


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

    def train(self):
        for module in self.modules:
            module.train()
        return super().train()

    def eval(self):
        for module in self.modules:
            module.eval()
        return super().eval()


class MSE:
    """``L = mean((x − t)²)``; ``backward()`` returns 2 (x − t) / N."""

    def forward(self, prediction, target):
        self.diff = prediction - target
        return self.diff.square().mean()

    def backward(self):
        return 2 * self.diff / self.diff.numel()


class CrossEntropy:
    """``L = −mean_b log softmax(z)[b, t_b]`` for int64 labels t [B]; stable log-softmax."""

    def forward(self, logits, target):
        shifted = logits - logits.max(dim=1, keepdim=True).values
        log_softmax = shifted - shifted.exp().sum(dim=1, keepdim=True).log()
        self.logits = logits
        self.softmax = log_softmax.exp()
        self.one_hot = torch.zeros_like(logits).scatter_(1, target.view(-1, 1), 1.0)
        return -(self.one_hot * log_softmax).sum() / logits.shape[0]

    def backward(self):
        return (self.softmax - self.one_hot) / self.one_hot.shape[0]


class NoSoftmaxCrossEntropy(CrossEntropy):
    """Planted bug: backward uses the logits where the softmax belongs."""

    def backward(self):
        return (self.logits - self.one_hot) / self.one_hot.shape[0]


class SGD:
    def __init__(self, params, lr):
        self.params = list(params)
        self.lr = lr

    def update(self, value, gradient):
        value.sub_(self.lr * gradient)

    def step(self):
        for value, gradient in self.params:
            self.update(value, gradient)


class AscentSGD(SGD):
    """Planted bug: steps up the gradient, ``value += lr g``."""

    def update(self, value, gradient):
        value.add_(self.lr * gradient)


class Adam:
    """torch.optim.Adam's rule (no weight decay, no amsgrad), with bias correction."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        self.params = list(params)
        self.lr, self.betas, self.eps = lr, betas, eps
        self.state = [(torch.zeros_like(v), torch.zeros_like(v)) for v, _ in self.params]
        self.steps = 0

    def step(self):
        beta1, beta2 = self.betas
        self.steps += 1
        correction1 = 1 - beta1 ** self.steps
        correction2 = 1 - beta2 ** self.steps
        for (value, gradient), (m, v) in zip(self.params, self.state, strict=True):
            m.mul_(beta1).add_(gradient, alpha=1 - beta1)
            v.mul_(beta2).addcmul_(gradient, gradient, value=1 - beta2)
            denominator = (v / correction2).sqrt().add_(self.eps)
            value.addcdiv_(m, denominator, value=-self.lr / correction1)
