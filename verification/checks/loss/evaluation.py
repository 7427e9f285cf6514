"""A loss called at one input, once: its value (float64, one per replica), S and T there
(``formulas.py``), the value's rtol, and the protocol pass (forward, then backward) as the loss
returned it, or the exception it raised. The normalisation, the value and gradient checks and
the stabiliser search all judge these passes; none calls the loss again. Returned tensors are
copied, since a loss may write later calls into the same buffers.
"""

from dataclasses import dataclass, replace

import torch

from verification.checks.loss.formulas import loss_rtol, sums_and_magnitudes
from verification.checks.loss.inputs import LossInput
from verification.targets.protocol import ProtocolError

__all__ = ["LossPass", "protocol_pass", "Evaluated", "evaluate", "weighed"]


@dataclass(frozen=True)
class LossPass:
    """A loss value (0-d, or [R]) and its gradient (shaped like the prediction)."""

    value: torch.Tensor
    gradient: torch.Tensor


def protocol_pass(loss, prediction, target):
    """The loss under test, through its protocol: forward, then backward."""
    value = loss.forward(prediction, target)
    return LossPass(value, loss.backward())


@dataclass(frozen=True)
class Evaluated:
    """A loss's forward at one input: its value (float64, one per replica; ``None`` when the
    forward raised), S and T there (``magnitude``), the value's rtol, and the protocol
    pass (forward then backward) as the loss returned it, or the exception it raised (``None``
    where the backward was not asked for)."""

    item: LossInput
    value: torch.Tensor | None
    sums: torch.Tensor
    magnitudes: torch.Tensor
    rtol: float
    protocol_pass: LossPass | Exception | None = None

    def replayed_pass(self):
        """The protocol pass at this input, raising what it raised."""
        if isinstance(self.protocol_pass, Exception):
            raise self.protocol_pass
        return self.protocol_pass

    @property
    def finite(self):
        """Whether the loss returned finite values here, where S is not 0 (a ratio exists)."""
        return (self.value is not None and self.value.shape == self.sums.shape
                and bool(torch.isfinite(self.value).all()) and bool((self.sums != 0).all()))

    @property
    def ratio_rtol(self):
        """The relative error of L / (c·S) here: rtol·(1 + T / S) (``normalisation.py``)."""
        return self.rtol * float((1 + self.magnitudes / self.sums.abs()).max())


def evaluate(view, kind, item, *, backward=False):
    """The loss's forward at ``item`` (a raise leaves ``value`` None: its own result names it)
    with S and T from float64 copies; with ``backward``, its backward right after, kept as the
    protocol pass the value and gradient checks judge (the forward is not run twice)."""
    sums, magnitudes = sums_and_magnitudes(kind, item)
    try:
        value = view.forward(item.prediction, item.target)
    except ProtocolError as error:
        return Evaluated(item, None, sums, magnitudes, loss_rtol(item.prediction, None), error)
    return Evaluated(item, value.detach().to(torch.float64).reshape(-1), sums, magnitudes,
                     loss_rtol(item.prediction, value),
                     _backward_after(view, value) if backward else None)


def _backward_after(view, value):
    """The protocol pass whose forward gave ``value``: its backward now, or what it raised.
    Tensors are copied: the checks judge them after later calls, which a loss may write into
    the same buffers."""
    try:
        return LossPass(_copied(value), _copied(view.backward()))
    except Exception as error:  # judged where the pass is: value_and_gradient' guard
        return error


def _copied(value):
    return value.clone() if isinstance(value, torch.Tensor) else value


def weighed(kind, evaluated):
    """``evaluated`` with S and T of ``kind`` (the loss's own value and pass kept)."""
    sums, magnitudes = sums_and_magnitudes(kind, evaluated.item)
    return replace(evaluated, sums=sums, magnitudes=magnitudes)
