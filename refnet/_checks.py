"""Input validation shared by every module: each failure names the module and what it expected.

Errors are raised before any arithmetic, so a caller sees ``Linear(2, 25).forward: expected ...``
instead of a broadcast that silently succeeds or a traceback from deep inside torch.
"""

import math
import numbers
from typing import NamedTuple

import torch

__all__ = []


class Where(NamedTuple):
    """A module and method, formatted as ``Linear(2, 25).forward`` only when an error needs it

    (building the ``repr`` on every call would cost more than the check itself)."""

    module: object
    method: str

    def __str__(self):
        return f"{self.module!r}.{self.method}"


def describe_shape(shape):
    """Format a shape as ``[10, 2]``."""
    return "[" + ", ".join(str(size) for size in shape) + "]"


def check_tensor(where, value, name="input"):
    """Raise ``TypeError`` unless ``value`` is a floating-point tensor."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(
            f"{where}: expected {name} to be a torch.Tensor, got {type(value).__name__}"
        )
    if not value.is_floating_point():
        raise TypeError(f"{where}: expected a floating-point {name}, got dtype {value.dtype}")


def check_same_dtype_device(where, value, reference, name="input", reference_name="parameters"):
    """Raise ``TypeError`` when ``value`` and ``reference`` differ in dtype or device."""
    if value.dtype != reference.dtype:
        raise TypeError(
            f"{where}: {name} dtype {value.dtype} does not match {reference_name} dtype "
            f"{reference.dtype}; convert one of them (e.g. x.to({reference.dtype}))"
        )
    if value.device != reference.device:
        raise TypeError(
            f"{where}: {name} is on {value.device} but {reference_name} are on {reference.device}"
        )


def check_shape(where, value, expected, name="input"):
    """Raise ``ValueError`` unless ``value.shape`` matches ``expected``.

    Args:
        where: the module and method (a ``Where`` or a string such as ``"train"``).
        value: the tensor to check.
        expected: a sequence of ints and strings; a string (``"B"``) matches any size.
        name: what the tensor is, for the message.
    """
    shape = value.shape
    if shape == tuple(expected):
        return
    if len(shape) == len(expected):
        for size, actual in zip(expected, shape, strict=True):
            if size != actual and not isinstance(size, str):
                break
        else:
            return
    raise ValueError(
            f"{where}: expected {name} of shape {describe_shape(expected)}, "
            f"got {describe_shape(value.shape)}"
        )


def check_cached(where, cached):
    """Raise ``RuntimeError`` when backward runs before forward has cached its state."""
    if cached is None:
        raise RuntimeError(f"{where}: backward called before forward")


def check_positive_int(where, name, value, minimum):
    """Raise ``ValueError`` unless ``value`` is an int of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{where}: expected {name} to be an integer >= {minimum}, got {value!r}")


def check_number(where, name, value, *, above=None, below=None):
    """Return ``value`` as a float; raise ``ValueError`` unless it is a finite real number (not
    a bool), greater than ``above`` and less than ``below`` where they are given."""
    bounds = "".join(f" {sign} {bound:g}" for sign, bound in ((">", above), ("<", below))
                     if bound is not None)
    if (isinstance(value, bool) or not isinstance(value, numbers.Real)
            or not math.isfinite(value) or (above is not None and not value > above)
            or (below is not None and not value < below)):
        raise ValueError(f"{where}: expected {name} to be a finite number{bounds}, "
                         f"got {value!r}")
    return float(value)


def check_numbers(where, name, values, count, *, above=None, below=None):
    """Return ``values`` as a tuple of ``count`` floats, each checked by ``check_number``;
    raise ``ValueError`` unless ``values`` is a tuple or list of that length."""
    if not isinstance(values, (tuple, list)) or len(values) != count:
        raise ValueError(f"{where}: expected {name} to be a tuple of {count} numbers, "
                         f"got {values!r}")
    return tuple(check_number(where, f"{name}[{index}]", value, above=above, below=below)
                 for index, value in enumerate(values))
