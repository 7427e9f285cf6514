"""A loss kind judged at every evaluated input, once: the normalisation fit over all of them
and each input's value and gradient results (``comparisons.py``).

``check_loss`` judges the plain formula (``judge``) and reports that judgement, unless it
failed for a binary cross-entropy and a stabilised formula passes everywhere
(``stabilisers.py``, which judges each candidate with ``judge(…, passing_only=True)``:
the same results, built input by input and given up at the first failure). Either way no kind is
judged twice and the loss is never called again: every judgement reads the protocol passes
of ``evaluation.py``.
"""

from dataclasses import dataclass

from verification.checks.loss.comparisons import value_and_gradient
from verification.checks.loss.formulas import KIND
from verification.checks.loss.normalisation import Fit, fit_normalisation
from verification.checks.reference import guarded
from verification.vocabulary.losses import LossKind

__all__ = ["Judgement", "judge"]


@dataclass(frozen=True)
class Judgement:
    """``kind`` judged at ``evaluated`` (each with S and T of ``kind``): the normalisation
    ``fit`` and, per input, its value and gradient results (``comparisons``; a failed
    ``autograd/<name>/<tag>/raised`` where they raised)."""

    kind: LossKind
    evaluated: list
    fit: Fit
    comparisons: list

    @property
    def passed(self):
        """Whether every input gave a finite loss and a backward, a normalisation fits, and
        every value and gradient check passes."""
        return (_complete(self.evaluated) and self.fit.normalisation is not None
                and all(result.passed for results in self.comparisons for result in results))


def judge(view, kind, evaluated, declared, name, *, passing_only=False):
    """``kind`` judged at every input of ``evaluated`` (``Evaluated``, weighed for ``kind``).

    With ``passing_only`` the judgement is given up, and ``None`` returned, at the first thing
    that fails (an input without a finite loss or a backward, no normalisation that fits, an
    input whose value or gradient check fails): a stabiliser's candidate is only of use where
    it passes everywhere.
    """
    if passing_only and not _complete(evaluated):
        return None
    fit = fit_normalisation(evaluated, kind, declared, view.per_sample)
    if passing_only and fit.normalisation is None:
        return None
    comparisons = []
    for e in evaluated:
        comparisons.append(_compared(view, kind, e, fit, name))
        if passing_only and not all(result.passed for result in comparisons[-1]):
            return None
    return Judgement(kind, evaluated, fit, comparisons)


def _complete(evaluated):
    """Every input gave a finite loss (with S ≠ 0) and its backward returned."""
    return all(e.finite and not isinstance(e.protocol_pass, Exception) for e in evaluated)


def _compared(view, kind, evaluated, fit, name):
    """Value and gradient at one input, a failed ``…/raised`` result where they raise."""
    group = f"{name}/{evaluated.item.tag}"
    return guarded(f"{KIND}/{group}/raised", name, KIND,
                   lambda: value_and_gradient(view, kind, evaluated, fit, name, group))
