"""Element-wise modules: ReLU, Tanh, Sigmoid (report section 2.2) and Dropout (section 2.7.2).

Each computes ``y = σ(x)`` element by element and, in backward, ``dL/dx = dL/dy ⊙ σ'(x)``
(eqs. 6 and 7). They have no parameters and accept any shape, replicas included.
"""

import torch

from refnet._checks import Where, check_cached, check_shape, check_tensor
from refnet._random import draw
from refnet.module import Module

__all__ = ["ReLU", "Tanh", "Sigmoid", "Dropout"]

_ONE = torch.ones((), dtype=torch.float64)
"""The 1 of the slopes below, as a 0-d tensor: torch runs ``_ONE - t`` in half the time of
``1 - t`` (a Python number goes through a slower scalar path), with the same result, in t's
dtype and on t's device (a 0-d CPU tensor combines with a tensor of any dtype and device)."""


class _Elementwise(Module):
    """Shared forward/backward. A subclass defines ``_apply(x) -> (y, cache)``, giving σ(x) and
    what σ' needs, and ``_slope(cache) -> σ'(x)``."""

    _cache = None

    def forward(self, x):
        """Return ``σ(x)`` (eq. 6), keeping what the derivative needs."""
        check_tensor(Where(self, "forward"), x)
        y, self._cache = self._apply(x)
        self._shape = x.shape
        return y

    def backward(self, grad_output):
        """Return ``dL/dy ⊙ σ'(x)`` (eq. 7)."""
        where = Where(self, "backward")
        check_cached(where, self._cache)
        check_shape(where, grad_output, self._shape, "grad_output")
        return grad_output * self._slope(self._cache)


class ReLU(_Elementwise):
    """``σ(x) = max(0, x)`` (eq. 8), ``σ'(x) = 1 if x > 0 else 0`` (eq. 9).

    At the kink x = 0 the derivative is 0, as eq. 9 says and as torch.autograd does. The
    slope is read off the output as sign(max(0, x)), which is 1 where x > 0 and 0 elsewhere:
    the same numbers as the comparison ``x > 0``, at a tenth of its cost on the CPU (torch's
    comparisons and bool-to-float conversions are slow kernels there).
    """

    def _apply(self, x):
        y = x.clamp_min(0)
        return y, y

    def _slope(self, y):
        return torch.sign(y)


class Tanh(_Elementwise):
    """``σ(x) = 2 / (1 + e^{-2x}) - 1 = tanh(x)`` (eq. 10), ``σ'(x) = 1 - σ(x)²`` (eq. 11).

    Computed with ``torch.tanh``, which equals eq. 10 without its overflow for large |x|.
    """

    def _apply(self, x):
        y = torch.tanh(x)
        return y, y

    def _slope(self, y):
        return _ONE - y * y


class Sigmoid(_Elementwise):
    """``σ(x) = 1 / (1 + e^{-x})`` (eq. 12), ``σ'(x) = σ(x)(1 - σ(x))`` (eq. 13)."""

    def _apply(self, x):
        y = torch.sigmoid(x)
        return y, y

    def _slope(self, y):
        return y * (_ONE - y)


class Dropout(_Elementwise):
    """Inverted dropout (section 2.7.2): in training, ``y = x ⊙ m / (1 - p)`` with
    ``m ~ Bernoulli(1 - p)`` drawn afresh at each forward; in evaluation, ``y = x``.

    Backward multiplies by the same ``m / (1 - p)`` that forward used.

    Args:
        p: probability of dropping a unit, in [0, 1).
        generator: the ``torch.Generator`` the masks are drawn from (one generator for all
            replicas; torch's global generator when ``None``).
    """

    def __init__(self, p, *, generator=None):
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p < 1:
            raise ValueError(f"Dropout: expected p in [0, 1), got {p!r}")
        self.p = float(p)
        self.generator = generator

    def _apply(self, x):
        if not self.training:
            return x, torch.ones((), dtype=x.dtype, device=x.device)
        uniform = draw(torch.rand, x.shape, generator=self.generator, replicas=None,
                       dtype=x.dtype, device=x.device)
        scaled_mask = (uniform >= self.p).to(x.dtype) / (1 - self.p)
        return x * scaled_mask, scaled_mask

    def _slope(self, scaled_mask):
        return scaled_mask

    @property
    def last_mask(self):
        """What the last forward multiplied its input by: ``m / (1 - p)`` (shaped like that
        input) in training mode, a 0-d tensor 1 in evaluation mode; ``None`` before any
        forward. A reference implementation reuses it to check backward under a fixed mask."""
        return self._cache

    def __repr__(self):
        return f"Dropout(p={self.p})"
