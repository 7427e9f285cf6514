"""The losses by name, as adapters declare them and the loss check judges them: the built-in
kinds, any element-wise loss of ``torch.nn.functional`` with its keyword arguments, the
stabilisers a binary cross-entropy may follow, and the labels and facts read from a kind.

A kind (``LossKind``) is MSE, cross-entropy (logits, one-hot or index targets), binary
cross-entropy (probabilities, 0/1 targets), or a torch function named with its options
(``loss_kind("huber_loss", {"delta": 1.0})``, an adapter's ``extra_losses``). Torch's default
reduction, ``"mean"``, divides the sum of the loss terms by their number (``LossKind.count``):
B for cross-entropy (one term per row), B × outputs for the others (one per element).

Shared by the adapter contract (``verification/targets/adapter.py``: an adapter's
``extra_losses`` are refused here, before any case) and the checks
(``verification/checks/loss/``, ``verification/checks/figures.py``,
``verification/suite/conformance.py``), below both. The formulas a kind must equal, its terms
and their round-off, are the loss check's (``verification/checks/loss/formulas.py``).
"""

import inspect
from dataclasses import dataclass

from torch.nn import functional

__all__ = ["LOSS_KINDS", "STABILISERS", "LossKind", "loss_kind"]

LOSS_KINDS = ("mse", "cross_entropy", "bce")
"""The built-in losses ``check_loss`` knows; any other kind names a ``torch.nn.functional``
loss (``loss_kind``)."""

_LABELS = {"mse": "MSE", "cross_entropy": "cross-entropy", "bce": "binary cross-entropy"}
_NOT_OPTIONS = ("input", "target", "reduction", "size_average", "reduce")
"""Parameters of a torch loss function that the check sets itself (never options)."""

STABILISERS = {"add": "log(p + {epsilon}) and log(1 − p + {epsilon})",
               "clamp": "p clamped to [{epsilon}, 1 − {epsilon}]",
               "denominator": "p(1 − p) clamped below at {epsilon} in the gradient"}
"""The ways a binary cross-entropy is commonly kept finite near p = 0 and 1, each with its ε:
inside the logs; clamping p; clamping the gradient's denominator p(1 − p) (torch's BCELoss
does this at ε = 1e-12, and clamps its logs at −100, which no input here reaches)."""


@dataclass(frozen=True)
class LossKind:
    """What a loss must equal: a built-in kind (``LOSS_KINDS``) or the ``torch.nn.functional``
    function ``name`` with the keyword arguments ``options`` (``(key, value)`` pairs).

    Attributes:
        name: ``"mse"``, ``"cross_entropy"``, ``"bce"``, or a torch function's name.
        options: the torch function's keyword arguments, as sorted pairs.
        stabiliser: a binary cross-entropy's stabiliser, ``(family, ε, low, high)``: a family
            of ``STABILISERS``, its ε, and the clamp's bounds ε and 1 − ε as the checked dtype
            rounds them; ``()`` for none.
    """

    name: str
    options: tuple = ()
    stabiliser: tuple = ()

    @property
    def label(self):
        """The loss's name in messages: ``"cross-entropy"``, ``"huber_loss(delta=1.0)"``,
        ``"binary cross-entropy, log(p + 1e-12)"`` with a stabiliser."""
        if self.name in _LABELS:
            return _LABELS[self.name] + (f", {self.stabilised}" if self.stabiliser else "")
        return f"{self.name}({', '.join(f'{key}={value!r}' for key, value in self.options)})"

    @property
    def stabilised(self):
        """The stabiliser as a formula (``STABILISERS``), ``""`` for none."""
        if not self.stabiliser:
            return ""
        family, epsilon, *_ = self.stabiliser
        return STABILISERS[family].format(epsilon=f"{epsilon:g}")

    @property
    def inputs(self):
        """What its predictions and targets are: ``"classes"`` (logits, one class per row),
        ``"probabilities"`` or ``"logits"`` (with 0/1 targets), or ``"real"`` (regression)."""
        if self.name == "cross_entropy":
            return "classes"
        if self.name in ("bce", "binary_cross_entropy"):
            return "probabilities"
        return "logits" if self.name.endswith("_with_logits") else "real"

    @property
    def threshold(self):
        """τ of a regression loss: its ``delta`` or ``beta`` (its formula switches there),
        else 1."""
        options = dict(self.options)
        return float(options.get("delta", options.get("beta", 1.0)))

    def count(self, shape, per_sample):
        """The number of terms ``"mean"`` divides by at a prediction of ``shape``."""
        batch = 1 if per_sample else shape[-2]
        return batch if self.name == "cross_entropy" else batch * shape[-1]


def loss_kind(kind, options=None):
    """A ``LossKind`` from a built-in kind or a torch function's name and its options.

    Args:
        kind: one of ``LOSS_KINDS``, a ``torch.nn.functional`` loss's name
            (``"huber_loss"``), or a ``LossKind``.
        options: that function's keyword arguments (``{"delta": 1.0}``); none for a
            built-in kind.

    Raises:
        ValueError: an unknown name, a function without a ``reduction`` argument (not a
            loss), or an option it does not take; the message says which.
    """
    if isinstance(kind, LossKind):
        return kind
    options = dict(options or {})
    if kind in LOSS_KINDS:
        if options:
            raise ValueError(f"the built-in loss kind {kind!r} takes no options, got {options}")
        return LossKind(kind)
    function = getattr(functional, kind, None) if isinstance(kind, str) else None
    if not callable(function):
        raise ValueError(f"{kind!r} is neither a built-in loss kind {LOSS_KINDS} nor a "
                         "function of torch.nn.functional")
    parameters = inspect.signature(function).parameters
    if "reduction" not in parameters:
        raise ValueError(f"torch.nn.functional.{kind} takes no reduction: not a loss")
    unknown = sorted(key for key in options if key not in parameters or key in _NOT_OPTIONS)
    if unknown:
        takes = [key for key in parameters if key not in _NOT_OPTIONS][2:]
        raise ValueError(f"torch.nn.functional.{kind} takes no option(s) {unknown}; its "
                         f"options are {takes}")
    return LossKind(kind, tuple(sorted(options.items())))
