"""The number types of the command lines: ``refnet``'s options and the pytest plugin's.

Kept free of torch and refnet: the pytest plugin, loaded by every pytest run, parses its
options with it (``verification/__init__``'s docstring says why it must import nothing more).
"""

import argparse
import math

__all__ = ["number", "CONFORM_DTYPES"]

CONFORM_DTYPES = ("float64", "float32")
"""The values of ``refnet conform --dtype`` and ``pytest --conform-dtype``: the names of
``verification.targets.adapter.CHECK_DTYPES`` (not imported here, to keep both light)."""


def number(convert=float, *, minimum=None, above=None, unit=None):
    """An argparse type: ``convert(text)`` (``int`` or ``float``), finite, at least
    ``minimum`` and greater than ``above`` where they are given.

    A refusal is an ``argparse.ArgumentTypeError`` (argparse prints it after the option's name
    and exits with status 2): ``expected a number, got 'abc'``, ``expected a finite number, got
    inf`` or ``expected a value > 0, got 0``; with a ``unit``, every refusal states the whole
    expectation: ``expected a finite number of seconds > 0, got -5``.
    """
    bound = "".join(f" {sign} {value:g}" for sign, value in ((">=", minimum), (">", above))
                    if value is not None)
    whole = f"expected a finite number of {unit}{bound}" if unit else None

    def parse(text):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{whole or 'expected a number'}, got {text!r}") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{whole or 'expected a finite number'}, got {text}")
        if ((minimum is not None and not value >= minimum)
                or (above is not None and not value > above)):
            raise argparse.ArgumentTypeError(f"{whole or f'expected a value{bound}'}, got {text}")
        return value

    return parse
