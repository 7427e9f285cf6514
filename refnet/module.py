"""The module protocol every layer, activation and container follows (CONTRACT.md).

A module computes ``y = f(x)`` in ``forward`` and keeps what its backward needs; ``backward``
receives dL/dy and returns dL/dx, *adding* dL/dθ into the gradient tensors listed by ``param``.
Shapes are ``[B, features]``, or ``[R, B, features]`` for a model with ``R`` replicas.
"""

import torch

__all__ = ["Module"]


class Module:
    """Base class: parameter-free defaults for ``param``, ``zero_grad``, ``train`` and ``eval``."""

    training = True

    def forward(self, x):
        """Return the output for input ``x`` and cache what ``backward`` needs."""
        raise NotImplementedError(f"{type(self).__name__} does not implement forward")

    def backward(self, grad_output):
        """Given dL/dy, accumulate dL/dθ and return dL/dx."""
        raise NotImplementedError(f"{type(self).__name__} does not implement backward")

    def param(self):
        """Return ``(value, gradient)`` pairs in a stable order; ``[]`` without parameters."""
        return []

    def zero_grad(self):
        """Set every parameter gradient to zero (the report's ``zerograd``), in one call of
        torch's multi-tensor ``_foreach_zero_`` (what ``torch.optim`` uses) rather than one
        call per tensor."""
        gradients = [gradient for _, gradient in self.param()]
        if gradients:
            torch._foreach_zero_(gradients)

    def train(self):
        """Switch to training mode (Dropout drops units) and return the module."""
        self.training = True
        return self

    def eval(self):
        """Switch to evaluation mode (Dropout is the identity) and return the module."""
        self.training = False
        return self

    def __call__(self, x):
        return self.forward(x)

    def __repr__(self):
        return f"{type(self).__name__}()"
