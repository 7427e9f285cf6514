"""Fully connected layer (report section 2.1)."""

import math

import torch

from refnet._checks import (
    Where,
    check_cached,
    check_positive_int,
    check_same_dtype_device,
    check_shape,
    check_tensor,
)
from refnet._random import draw
from refnet.module import Module

__all__ = ["Linear", "NORMAL_INIT_STD"]

NORMAL_INIT_STD = 1e-6
"""Standard deviation of ``init="normal"``: the report's "order of 10⁻⁶" (section 2.7.1)."""


def _product(a, b):
    """``a @ b`` for matrices (rank 2) or stacks of matrices (rank 3), calling ``mm`` or
    ``bmm`` directly: the same kernels ``matmul`` would reach, without its shape dispatch."""
    return a.mm(b) if a.ndim == 2 else a.bmm(b)


def _product_add_(out, a, b):
    """``out += a @ b`` in place, for matrices (rank 2) or stacks of matrices (rank 3)."""
    if out.ndim == 2:
        out.addmm_(a, b)
    else:
        out.baddbmm_(a, b)


class Linear(Module):
    """Fully connected layer ``s = x wᵀ + b``, one row per sample.

    Forward (eq. 1, written for a batch of row vectors): ``s = x wᵀ + b``.
    Backward, given g = dL/ds:

    - dL/dx = g w                  (eq. 2)
    - dL/dw += gᵀ x, summed over the batch (eq. 3)
    - dL/db += Σ_batch g          (eq. 4)

    The weight is shaped ``[out, in]`` as in the report (``[R, out, in]`` with replicas) and
    starts as N(0, std²) with ``std = sqrt(2 / (in + out))`` (Xavier, eq. 16) or, with
    ``init="normal"``, ``std = NORMAL_INIT_STD`` = 10⁻⁶. Biases start at zero in both cases:
    the report does not say how it initialised them, and zero is Glorot & Bengio's choice.

    Args:
        in_features: size of each input sample.
        out_features: size of each output sample.
        init: ``"xavier"`` (default) or ``"normal"``.
        generator: a ``torch.Generator``, or with replicas a sequence of R generators (one
            per replica, so replica r's weights equal a single layer built with generator r).
        dtype: parameter dtype; torch's default dtype (float32) when ``None``.
        device: parameter device.
        replicas: ``None`` for one network, or R independent networks on a leading axis.
    """

    def __init__(self, in_features, out_features, *, init="xavier", generator=None,
                 dtype=None, device=None, replicas=None):
        where = f"Linear({in_features!r}, {out_features!r})"
        check_positive_int(where, "in_features", in_features, 1)
        check_positive_int(where, "out_features", out_features, 1)
        if replicas is not None:
            check_positive_int(where, "replicas", replicas, 1)
        if init == "xavier":
            std = math.sqrt(2.0 / (in_features + out_features))
        elif init == "normal":
            std = NORMAL_INIT_STD
        else:
            raise ValueError(f"{where}: init must be 'xavier' or 'normal', got {init!r}")
        dtype = torch.get_default_dtype() if dtype is None else dtype
        self.in_features, self.out_features, self.replicas = in_features, out_features, replicas
        self.weight = std * draw(torch.randn, (out_features, in_features), generator=generator,
                                 replicas=replicas, dtype=dtype, device=device)
        self.bias = torch.zeros(self.weight.shape[:-1], dtype=dtype, device=device)
        self.grad_weight = torch.zeros_like(self.weight)
        self.grad_bias = torch.zeros_like(self.bias)
        self._input = None

    def forward(self, x):
        """Return ``x wᵀ + b`` for ``x`` shaped ``[B, in]`` (``[R, B, in]`` with replicas)."""
        self._check_input(x)
        self._input = x
        weight_t = self.weight.transpose(-1, -2)
        if x.ndim == 2:
            return torch.addmm(self.bias, x, weight_t)  # the bias broadcasts over the batch
        return torch.baddbmm(self.bias.unsqueeze(-2), x, weight_t)

    def backward(self, grad_output):
        """Accumulate dL/dw (eq. 3) and dL/db (eq. 4); return dL/dx (eq. 2)."""
        where = Where(self, "backward")
        check_cached(where, self._input)
        check_tensor(where, grad_output, "grad_output")
        check_shape(where, grad_output, (*self._input.shape[:-1], self.out_features),
                    "grad_output")
        check_same_dtype_device(where, grad_output, self.weight, "grad_output")
        _product_add_(self.grad_weight, grad_output.transpose(-1, -2), self._input)
        self.grad_bias.add_(grad_output.sum(dim=-2))
        return _product(grad_output, self.weight)

    def param(self):
        """``[(weight, grad_weight), (bias, grad_bias)]``."""
        return [(self.weight, self.grad_weight), (self.bias, self.grad_bias)]

    def _check_input(self, x):
        where = Where(self, "forward")
        check_tensor(where, x)
        if self.replicas is None:
            expected = ("B", self.in_features)
        else:
            expected = (self.replicas, "B", self.in_features)
        check_shape(where, x, expected)
        check_same_dtype_device(where, x, self.weight)

    def __repr__(self):
        replicas = "" if self.replicas is None else f", replicas={self.replicas}"
        return f"Linear({self.in_features}, {self.out_features}{replicas})"
