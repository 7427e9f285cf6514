"""The stabiliser a binary cross-entropy follows, measured where the plain formula fails.

Where the plain formula's value or gradient check fails at some input, each of
``STABILISERS`` (verification/vocabulary/losses.py) is tried at each of ``EPSILONS``,
smallest ε first, from the passes already made (no new call of the loss), and the first under
which every normalisation, value and gradient check passes becomes the kind checked, reported
as a convention. A wrong gradient fits none.
"""

from dataclasses import replace

import torch

from verification.checks.loss.comparisons import value_and_gradient
from verification.checks.loss.evaluation import weighed
from verification.checks.loss.normalisation import fit_normalisation
from verification.vocabulary.losses import STABILISERS

__all__ = ["EPSILONS", "stabilised_kind"]


EPSILONS = tuple(10.0 ** -power for power in range(16, 2, -1))
"""The ε a stabiliser is looked for at: every power of ten from 1e-16 to 1e-3."""


def stabilised_kind(view, kind, evaluated, declared, name):
    """The stabilised kind a binary cross-entropy follows, measured (``STABILISERS`` at each
    of ``EPSILONS``, smallest ε first), where the plain formula's value or gradient checks
    fail at some input and the stabilised one's pass at every input, from the passes already
    made (no new call of the loss); else ``None``. A wrong gradient fits no stabiliser."""
    if kind.name != "bce" or kind.stabiliser or _all_pass(view, kind, evaluated, declared, name):
        return None
    dtype = evaluated[0].item.prediction.dtype
    for power in EPSILONS:  # each also as a float32 constant (torch's 1e-12f: 9.99999996e-13)
        for epsilon in dict.fromkeys((power, float(torch.tensor(power, dtype=torch.float32)))):
            rounded = torch.tensor(epsilon, dtype=dtype)
            low, high = float(rounded), float(1 - rounded)
            for family in STABILISERS:
                candidate = replace(kind, stabiliser=(family, epsilon, low, high))
                if _all_pass(view, candidate, [weighed(candidate, e) for e in evaluated],
                             declared, name):
                    return candidate
    return None


def _all_pass(view, kind, evaluated, declared, name):
    """Whether the normalisation, value and gradient checks of ``kind`` pass at every
    input already evaluated (every one finite, with its backward)."""
    if not all(e.finite and not isinstance(e.protocol_pass, Exception) for e in evaluated):
        return False
    fit = fit_normalisation(evaluated, kind, declared, view.per_sample)
    return fit.normalisation is not None and all(
        result.passed for e in evaluated
        for result in value_and_gradient(view, kind, e, fit, name, e.item.tag))
