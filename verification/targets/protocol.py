"""Calling a target's module or loss through the protocol, whatever variant it implements.

``ModuleView`` and ``LossView`` are what every check calls. They never hand the target a tensor
the harness keeps: inputs and incoming gradients are cloned before the call and outputs cloned
after it, so a target that writes into a tensor it did not create cannot move the point of a
check (``checks/side_effects.py`` reports such writes as failures of their own). They accept the
variants met in frameworks written to the course protocol:

- ``param`` as a property (a list) instead of a method;
- no ``zero_grad``: the gradients listed by ``param()`` are zeroed in place instead (a note says
  so; the ``zero_grad`` check is then not run);
- one sample at a time (``per_sample``): a batch ``[B, in]`` is fed row by row and stacked; for
  ``backward`` each row's forward is rerun just before its backward, so that the module's cached
  state is that row's;
- a container whose ``backward`` returns ``None`` (``returns_grad=False``): dL/dx is then
  ``None`` and the input-gradient checks say "not available" instead of failing.

Anything else the target does wrong (it raises, returns a non-tensor, returns ``None`` where dL/dx
is due) raises ``ProtocolError`` with a message that names the object and the call, which the
checks turn into a failed result.
"""

import torch

__all__ = ["ProtocolError", "ModuleView", "LossView", "param_pairs", "call"]


class ProtocolError(RuntimeError):
    """The target raised or broke the protocol; the message names the object and the call."""


def call(name, stage, function, *args):
    """``function(*args)``; any exception, ``SystemExit`` included (a target's ``sys.exit``
    must not end the harness), becomes a ``ProtocolError`` naming ``name.stage``."""
    try:
        return function(*args)
    except ProtocolError:
        raise
    except (Exception, SystemExit) as error:
        raise ProtocolError(f"{name}.{stage} raised {type(error).__name__}: {error}") from error


def _tensor(name, stage, value):
    if not isinstance(value, torch.Tensor):
        raise ProtocolError(f"{name}.{stage} returned {type(value).__name__}, not a tensor")
    return value


def param_pairs(module, name):
    """``module.param()`` (or the ``param`` property) as a list of ``(value, gradient)`` tensors.

    Raises:
        ProtocolError: ``param`` is missing, raises, or is not a list of tensor pairs.
    """
    attribute = getattr(module, "param", None)
    if attribute is None:
        raise ProtocolError(f"{name} has no param()")
    pairs = call(name, "param", attribute) if callable(attribute) else attribute
    try:
        pairs = [tuple(pair) for pair in pairs]
    except TypeError:
        raise ProtocolError(f"{name}.param() returned {type(pairs).__name__}, not a list of "
                            "(value, gradient) pairs") from None
    for index, pair in enumerate(pairs):
        if len(pair) != 2 or not all(isinstance(t, torch.Tensor) for t in pair):
            raise ProtocolError(f"{name}.param()[{index}] is not a (value, gradient) pair of "
                                "tensors")
        if pair[0].shape != pair[1].shape:
            raise ProtocolError(f"{name}.param()[{index}]: value shape {list(pair[0].shape)} "
                                f"but gradient shape {list(pair[1].shape)}")
    return pairs


class ModuleView:
    """A target module as the harness calls it (see the module docstring).

    Attributes:
        module: the target's own object.
        name: its label in messages.
        per_sample: feed one row at a time.
        returns_grad: whether ``backward`` is due to return dL/dx.
        notes: the protocol variants met, one sentence each (for reports).
    """

    def __init__(self, module, name, *, per_sample=False, returns_grad=True):
        self.module, self.name = module, name
        self.per_sample, self.returns_grad = per_sample, returns_grad
        self.notes = []
        self._rows = None

    def __repr__(self):
        return self.name

    def _note(self, text):
        if text not in self.notes:
            self.notes.append(text)

    def forward(self, x):
        """The output for ``x`` ([B, in]; any leading axes without ``per_sample``)."""
        if not self.per_sample:
            return _tensor(self.name, "forward",
                           call(self.name, "forward", self.module.forward, x.clone())).clone()
        self._rows = x.detach().clone()
        return torch.stack([self._forward_row(row) for row in self._rows])

    def _forward_row(self, row):
        return _tensor(self.name, "forward",
                       call(self.name, "forward", self.module.forward, row.clone())).clone()

    def backward(self, grad_output):
        """dL/dx for the last forward (``None`` for a container declared not to return it)."""
        if not self.per_sample:
            return self._checked_gradient(call(self.name, "backward", self.module.backward,
                                               grad_output.clone()))
        if self._rows is None:
            raise ProtocolError(f"{self.name}: backward before forward")
        rows = []
        for row, gradient in zip(self._rows, grad_output, strict=True):
            self._forward_row(row)
            rows.append(self._checked_gradient(call(self.name, "backward", self.module.backward,
                                                    gradient.clone())))
        return None if rows[0] is None else torch.stack(rows)

    def _checked_gradient(self, gradient):
        if gradient is None and not self.returns_grad:
            self._note("backward returns None (declared): dL/dx is not checked")
            return None
        if gradient is None:
            raise ProtocolError(f"{self.name}.backward returned None, not dL/dx (a container "
                                "that returns nothing: declare sequential_returns_grad = False)")
        return _tensor(self.name, "backward", gradient).clone()

    def param(self):
        """The ``(value, gradient)`` pairs, whether ``param`` is a method or a property."""
        if not callable(getattr(self.module, "param", None)):
            self._note("param is an attribute, not a method")
        return param_pairs(self.module, self.name)

    @property
    def has_zero_grad(self):
        return callable(getattr(self.module, "zero_grad", None))

    def zero_grad(self):
        """The target's ``zero_grad``, or zeroing every ``param()`` gradient in place."""
        if self.has_zero_grad:
            call(self.name, "zero_grad", self.module.zero_grad)
            return
        self._note("no zero_grad(): the harness zeroes the param() gradients itself")
        for _, gradient in self.param():
            gradient.zero_()

    def mode(self, training):
        """``train()`` or ``eval()``; ``ProtocolError`` when the target has neither."""
        stage = "train" if training else "eval"
        method = getattr(self.module, stage, None)
        if not callable(method):
            raise ProtocolError(f"{self.name} has no {stage}() method")
        call(self.name, stage, method)
        return self


class LossView:
    """A target loss as the harness calls it: ``forward(prediction, target)``, ``backward()``.

    With ``per_sample`` the batch loss is the SUM of the per-row losses, and ``backward`` reruns
    each row's forward before its backward; the measured normalisation is then per sample.
    """

    def __init__(self, loss, name, *, per_sample=False):
        self.loss, self.name, self.per_sample = loss, name, per_sample
        self._last = None

    def __repr__(self):
        return self.name

    def forward(self, prediction, target):
        """The loss, a 0-d tensor (a Python number is accepted and converted)."""
        self._last = (prediction.detach().clone(), target.detach().clone())
        if not self.per_sample:
            return self._value(prediction, target)
        return torch.stack([self._value(p, t) for p, t in zip(*self._last, strict=True)]).sum()

    def _value(self, prediction, target):
        value = call(self.name, "forward", self.loss.forward, prediction.clone(), target.clone())
        if isinstance(value, (int, float)):
            value = torch.tensor(float(value), dtype=prediction.dtype)
        value = _tensor(self.name, "forward", value)
        if prediction.ndim == 3 and tuple(value.shape) == prediction.shape[:1]:
            return value.clone()  # one loss per replica (refnet's replica axis)
        if value.numel() != 1:
            raise ProtocolError(f"{self.name}.forward returned shape {list(value.shape)}, not "
                                "one number")
        return value.reshape(()).clone()

    def backward(self):
        """dL/dprediction for the last forward, shaped like the prediction."""
        if not self.per_sample:
            return self._gradient()
        rows = []
        for prediction, target in zip(*self._last, strict=True):
            self._value(prediction, target)
            rows.append(self._gradient())
        return torch.stack(rows)

    def _gradient(self):
        return _tensor(self.name, "backward", call(self.name, "backward", self.loss.backward)
                       ).clone()
