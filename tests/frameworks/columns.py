"""A "maths course" EE-559 framework on column vectors, written from scratch as a fixture.

Protocol variants: one sample at a time, as a COLUMN: x is [in, 1] and ``y = W x + b`` with W
[out, in] and b [out, 1]; ``backward(g)`` takes g = dL/dy [out, 1], adds dW += g xᵀ and
db += g, and returns dL/dx = Wᵀ g [in, 1]. Activations map [n, 1] to [n, 1]. ``param()``
lists the parameter VALUES only and ``grad()`` the matching gradients, in the same order (a
Sequential concatenates its children's). A Sequential ENDS WITH ITS LOSS,
``Sequential(*modules, loss)``: ``forward(x)`` runs the modules before the loss and returns
the prediction, ``backward(g)`` runs back through them and returns dL/dx. The MSE takes one
sample's prediction and target ([n, 1]) and returns a ``LossValue`` whose ``.value`` is
L = (1/n) Σ_i (y_i − t_i)², computed in float32 whatever it is given; its ``backward()``
returns dL/dy = 2 (y − t) / n, computed in float64 and given back in the prediction's dtype.
Components: Linear, ReLU, Tanh, Sigmoid, Sequential, MSE and SGD over (value, gradient) pairs.

Planted bugs: ``BiasSummedOverOutputsLinear`` (db += Σ_i g_i in every row: the sum over the
wrong axis of the column), ``ForgetsOneOverNMSE`` (backward 2 (y − t), without the 1/n),
``SigmoidOfOutputSigmoid`` (derivative σ(y) (1 − σ(y)) of the output y = σ(x) instead of
y (1 − y)) and ``CopiedGradLinear`` (``grad()`` returns copies, so an optimiser holding them
never sees a later backward).
"""

import math

import torch


def _column(x, who, rows=None):
    """``x`` unchanged when it is a column [n, 1] (with n = ``rows`` when given), else
    ValueError: this framework takes one sample at a time."""
    if x.ndim != 2 or x.shape[1] != 1 or (rows is not None and x.shape[0] != rows):
        wanted = f"[{rows}, 1]" if rows is not None else "[n, 1]"
        raise ValueError(f"{who} takes one sample as a column {wanted}, got shape "
                         f"{list(x.shape)}")
    return x


class Module:
    """The course's base class: no parameters, training mode on."""

    training = True

    def param(self):
        return []

    def grad(self):
        return []

    def zero_grad(self):
        for gradient in self.grad():
            gradient.zero_()

    def train(self):
        self.training = True
        return self

    def eval(self):
        self.training = False
        return self


class Linear(Module):
    """``y = W x + b``, x [in, 1], W [out, in], b [out, 1], both uniform in ±1/√in.

    Backward: dW += g xᵀ, db += g, dL/dx = Wᵀ g.
    """

    def __init__(self, in_features, out_features, generator=None):
        bound = 1 / math.sqrt(in_features)
        self.W = torch.empty(out_features, in_features).uniform_(-bound, bound,
                                                                 generator=generator)
        self.b = torch.empty(out_features, 1).uniform_(-bound, bound, generator=generator)
        self.dW = torch.zeros_like(self.W)
        self.db = torch.zeros_like(self.b)

    def forward(self, x):
        self.x = _column(x, "Linear.forward", self.W.shape[1])
        return self.W @ self.x + self.b

    def backward(self, grad):
        _column(grad, "Linear.backward", self.W.shape[0])
        self.dW.add_(grad @ self.x.T)
        self.db.add_(grad)
        return self.W.T @ grad

    def param(self):
        return [self.W, self.b]

    def grad(self):
        return [self.dW, self.db]


class BiasSummedOverOutputsLinear(Linear):
    """Planted bug: db += Σ_i g_i (``grad.sum(0, keepdim=True)``, broadcast to every row)."""

    def backward(self, grad):
        _column(grad, "Linear.backward", self.W.shape[0])
        self.dW.add_(grad @ self.x.T)
        self.db.add_(grad.sum(0, keepdim=True))
        return self.W.T @ grad


class CopiedGradLinear(Linear):
    """Planted bug: ``grad()`` returns copies of dW and db, so an optimiser that keeps the
    list it was given updates with the gradients of the moment it was built (zeros)."""

    def grad(self):
        return [self.dW.clone(), self.db.clone()]

    def zero_grad(self):
        self.dW.zero_()
        self.db.zero_()


class ReLU(Module):
    """``y = max(0, x)``, derivative [x > 0] (0 at x = 0)."""

    def forward(self, x):
        self.x = _column(x, "ReLU.forward")
        return self.x.clamp(min=0)

    def backward(self, grad):
        return grad * (self.x > 0).to(grad.dtype)


class Tanh(Module):
    """``y = tanh(x)``, derivative 1 − y²."""

    def forward(self, x):
        self.y = torch.tanh(_column(x, "Tanh.forward"))
        return self.y

    def backward(self, grad):
        return grad * (1 - self.y ** 2)


class Sigmoid(Module):
    """``y = σ(x) = 1 / (1 + e⁻ˣ)``, derivative y (1 − y)."""

    def forward(self, x):
        self.y = torch.sigmoid(_column(x, "Sigmoid.forward"))
        return self.y

    def backward(self, grad):
        return grad * self.y * (1 - self.y)


class SigmoidOfOutputSigmoid(Sigmoid):
    """Planted bug: the derivative σ(y) (1 − σ(y)) applies σ once more to the output y."""

    def backward(self, grad):
        again = torch.sigmoid(self.y)
        return grad * again * (1 - again)


class Loss:
    """A loss of one sample: ``forward(prediction, target)`` returns a ``LossValue``,
    ``backward()`` dL/dprediction."""


class LossValue:
    """What a loss's forward returns: ``.value``, the loss (a 0-d float32 tensor), and
    ``.per_output``, each output's term (y_i − t_i)² [n, 1] in float32."""

    def __init__(self, per_output):
        self.per_output = per_output
        self.value = per_output.mean()

    def __float__(self):
        return float(self.value)

    def __repr__(self):
        return f"LossValue({float(self.value):.6g})"


class MSE(Loss):
    """One sample: ``L = (1/n) Σ_i (y_i − t_i)²`` over its n outputs, y and t [n, 1].

    The value is computed in float32 whatever the inputs' dtype; ``backward()`` returns
    dL/dy = 2 (y − t) / n, computed in float64 from the inputs kept by ``forward`` and given
    back in the prediction's dtype.
    """

    def forward(self, prediction, target):
        self.prediction = _column(prediction, "MSE.forward (prediction)")
        self.target = _column(target, "MSE.forward (target)", prediction.shape[0])
        difference = prediction.to(torch.float32) - target.to(torch.float32)
        return LossValue(difference ** 2)

    def backward(self):
        difference = self.prediction.to(torch.float64) - self.target.to(torch.float64)
        return (2 * difference / difference.shape[0]).to(self.prediction.dtype)


class ForgetsOneOverNMSE(MSE):
    """Planted bug: backward returns 2 (y − t), the gradient of the sum, not of the mean."""

    def backward(self):
        difference = self.prediction.to(torch.float64) - self.target.to(torch.float64)
        return (2 * difference).to(self.prediction.dtype)


class Sequential(Module):
    """``Sequential(m_1, …, m_k, loss)``: the modules in order, then the loss they feed.

    ``forward(x)`` = m_k(… m_1(x)), the prediction (the loss is not applied);
    ``backward(g)`` runs g back through m_k, …, m_1 and returns dL/dx. The loss itself is
    ``self.loss``: ``model.backward(model.loss.backward())`` after
    ``model.loss.forward(model.forward(x), t)``.
    """

    def __init__(self, *modules_then_loss):
        if not modules_then_loss or not isinstance(modules_then_loss[-1], Loss):
            last = type(modules_then_loss[-1]).__name__ if modules_then_loss else "nothing"
            raise TypeError(f"Sequential must end with its loss (e.g. Sequential(Linear(2, 3), "
                            f"ReLU(), MSE())), but its last element is {last}")
        *modules, self.loss = modules_then_loss
        for module in modules:
            if not isinstance(module, Module):
                raise TypeError(f"Sequential: {type(module).__name__} before the loss is not "
                                "a Module (only the last element may be a loss)")
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
        return [value for module in self.modules for value in module.param()]

    def grad(self):
        return [gradient for module in self.modules for gradient in module.grad()]

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


class SGD:
    """``θ ← θ − lr · dθ`` in place, for the (value, gradient) pairs it was given."""

    def __init__(self, params, lr):
        self.params = [(value, gradient) for value, gradient in params]
        self.lr = lr

    def step(self):
        for value, gradient in self.params:
            value.sub_(self.lr * gradient)

    def zero_grad(self):
        for _, gradient in self.params:
            gradient.zero_()
