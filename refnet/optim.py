"""Optimisers that update a model's ``param()`` pairs in place.

Each parameter tensor holds every replica, so one update serves all R networks at once.
"""

import math

import torch

from refnet._checks import check_number, check_numbers

__all__ = ["SGD", "Adam"]


def _check_params(where, params):
    params = list(params)
    for index, pair in enumerate(params):
        if not (isinstance(pair, tuple) and len(pair) == 2
                and all(isinstance(tensor, torch.Tensor) for tensor in pair)):
            raise TypeError(f"{where}: params[{index}] must be a (value, gradient) pair of "
                            f"tensors as returned by param(), got {type(pair).__name__}")
        value, gradient = pair
        if value.shape != gradient.shape:
            raise ValueError(f"{where}: params[{index}] value shape {list(value.shape)} differs "
                             f"from gradient shape {list(gradient.shape)}")
    return params


def _check_lr(where, lr, params, largest_step=1.0):
    """Return ``lr`` as a float: finite, > 0, and small enough that the largest step factor
    ``lr * largest_step`` fits every parameter's dtype (torch cannot pass a larger factor to a
    float32 update, and a step that large could only overflow the parameters anyway)."""
    lr = check_number(where, "lr", lr, above=0)
    for value, _ in params:
        largest = torch.finfo(value.dtype).max if value.is_floating_point() else math.inf
        if lr * largest_step > largest:
            raise ValueError(f"{where}: lr {lr:g} gives steps of {lr * largest_step:g} times the "
                             f"gradient, beyond the largest {value.dtype} ({largest:.4g}) of "
                             "the parameters; expected a far smaller lr")
    return lr


class SGD:
    """Plain gradient descent (eq. 5): ``θ ← θ - η dL/dθ``.

    Args:
        params: ``(value, gradient)`` pairs, as returned by a module's ``param()``.
        lr: the learning rate η > 0.
    """

    def __init__(self, params, lr):
        self.params = _check_params("SGD", params)
        self.lr = _check_lr("SGD", lr, self.params)

    def step(self):
        """Apply one update with the gradients currently accumulated: ``value.add_(gradient,
        alpha=-lr)`` for every pair, in one call of torch's multi-tensor ``_foreach_add_``
        (what ``torch.optim.SGD`` uses) rather than one call per tensor."""
        if self.params:
            values, gradients = zip(*self.params, strict=True)
            torch._foreach_add_(list(values), list(gradients), alpha=-self.lr)


class Adam:
    """Adam (Kingma & Ba, 2015), written as ``torch.optim.Adam`` computes it.

    With g the gradient and t the step count::

        m ← β₁ m + (1 - β₁) g          v ← β₂ v + (1 - β₂) g²
        θ ← θ - (η / (1 - β₁ᵗ)) · m / (sqrt(v) / sqrt(1 - β₂ᵗ) + ε)

    Args:
        params: ``(value, gradient)`` pairs, as returned by a module's ``param()``.
        lr: the learning rate η > 0.
        betas: decay rates (β₁, β₂), each in (0, 1).
        eps: ε > 0, added to the denominator.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        self.params = _check_params("Adam", params)
        self.betas = check_numbers("Adam", "betas", betas, 2, above=0, below=1)
        # the first step is the largest: lr / (1 - β₁¹)
        self.lr = _check_lr("Adam", lr, self.params, largest_step=1 / (1 - self.betas[0]))
        self.eps = check_number("Adam", "eps", eps, above=0)
        self.steps = 0
        self._first_moments = [torch.zeros_like(value) for value, _ in self.params]
        self._second_moments = [torch.zeros_like(value) for value, _ in self.params]

    def step(self):
        """Apply one update with the gradients currently accumulated."""
        self.steps += 1
        beta1, beta2 = self.betas
        step_size = self.lr / (1 - beta1 ** self.steps)
        second_correction = math.sqrt(1 - beta2 ** self.steps)
        for (value, gradient), first, second in zip(
                self.params, self._first_moments, self._second_moments, strict=True):
            first.mul_(beta1).add_(gradient, alpha=1 - beta1)
            second.mul_(beta2).addcmul_(gradient, gradient, value=1 - beta2)
            denominator = (second.sqrt() / second_correction).add_(self.eps)
            value.addcdiv_(first, denominator, value=-step_size)
