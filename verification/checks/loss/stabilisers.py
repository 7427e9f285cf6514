"""The stabiliser a binary cross-entropy follows, measured where the plain formula fails.

Only after the plain formula's judgement failed (``judgement.py``: its normalisation, value
or gradient check fails at some input), each of ``STABILISERS``
(verification/vocabulary/losses.py) is tried at each of ``EPSILONS``, smallest ε first, from
the passes already made (no new call of the loss), and the first under which every
normalisation, value and gradient check passes becomes the kind checked, its judgement the one
reported, with the stabiliser as a convention. A wrong gradient fits none.
"""

from dataclasses import replace

import torch

from verification.checks.loss.evaluation import weighed
from verification.checks.loss.judgement import judge
from verification.vocabulary.losses import STABILISERS

__all__ = ["EPSILONS", "stabilised"]


EPSILONS = tuple(10.0 ** -power for power in range(16, 2, -1))
"""The ε a stabiliser is looked for at: every power of ten from 1e-16 to 1e-3."""


def stabilised(view, judgement, declared, name):
    """The judgement of the stabilised kind a binary cross-entropy follows, measured
    (``STABILISERS`` at each of ``EPSILONS``, smallest ε first) where ``judgement``, the plain
    formula's, failed: the first under which every check passes at every input, from the
    passes already made (no new call of the loss); else ``None``. A wrong gradient fits no
    stabiliser."""
    kind, evaluated = judgement.kind, judgement.evaluated
    if kind.name != "bce" or kind.stabiliser:
        return None
    dtype = evaluated[0].item.prediction.dtype
    for power in EPSILONS:  # each also as a float32 constant (torch's 1e-12f: 9.99999996e-13)
        for epsilon in dict.fromkeys((power, float(torch.tensor(power, dtype=torch.float32)))):
            rounded = torch.tensor(epsilon, dtype=dtype)
            low, high = float(rounded), float(1 - rounded)
            for family in STABILISERS:
                candidate = replace(kind, stabiliser=(family, epsilon, low, high))
                found = judge(view, candidate, [weighed(candidate, e) for e in evaluated],
                              declared, name, passing_only=True)
                if found is not None:
                    return found
    return None
