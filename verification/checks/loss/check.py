"""``check_loss``: a loss judged at every input of the grid and at its extreme inputs.

1. Each input evaluated once (``evaluation.py``); the stabiliser a binary cross-entropy
   follows measured where the plain formula fails (``stabilisers.py``).
2. **Normalisation** (``autograd/<name>/loss``): one L = k·c·S over all inputs
   (``normalisation.py``).
3. Per grid input ``<tag>`` (``6x3`` for a prediction [6, 3]), a group of three results:
   **consistency** (``finite_difference/<name>/<tag>/input``: the loss as a module of its
   prediction, ``LossAsModule``, through the central-difference check, samples coupled:
   ``backward`` must be the derivative of ``forward`` whatever the normalisation), **value**
   (``autograd/<name>/<tag>/loss``, against k·c·S) and **gradient**
   (``autograd/<name>/<tag>/grad_prediction``, against k·c times autograd's gradient of S, in
   float64) (``comparisons.py``). Each input stands alone: a loss written for 2 classes is
   measured at C = 2 (its sign, its 1/N) while C = 3 shows its own failure (raised, wrong
   shape).
4. Per extreme input (``extreme-…``, ``inputs.py``): value and gradient as above; no finite
   differences (a step from p = 1e-12 leaves (0, 1)).
"""

from verification.checks.finite_difference import check_backward
from verification.checks.loss.comparisons import value_and_gradient
from verification.checks.loss.evaluation import evaluate, weighed
from verification.checks.loss.formulas import KIND
from verification.checks.loss.inputs import checked_inputs
from verification.checks.loss.normalisation import (
    declared_reduction,
    fit_normalisation,
    normalisation_result,
)
from verification.checks.loss.stabilisers import stabilised_kind
from verification.checks.reference import guarded
from verification.targets.protocol import LossView
from verification.targets.refnet_target import one_line_label
from verification.vocabulary.losses import loss_kind

__all__ = ["LossAsModule", "check_loss"]


class LossAsModule:
    """``prediction ↦ loss(prediction, target)``: a loss seen through the module protocol, so
    that the finite-difference check can judge its backward (samples are coupled by the
    reduction: check it with ``row_wise=False``)."""

    def __init__(self, loss, target):
        self.loss, self.target = loss, target

    def forward(self, x):
        return self.loss.forward(x, self.target)

    def backward(self, grad_output):
        gradient = self.loss.backward()
        return grad_output.reshape(grad_output.shape + (1,) * (gradient.ndim - grad_output.ndim)
                                   ) * gradient

    def param(self):
        return []

    def zero_grad(self):
        pass

    def __repr__(self):
        return repr(self.loss)


def check_loss(loss, prediction, target, *, kind="mse", options=None, reduction=None,
               per_sample=False, name=None, seed=0, also_at=(), extremes=()):
    """Check a loss as a function: at every input of the grid and at extreme inputs, its
    backward against its forward, both against torch, one normalisation over all (module
    docstring).

    Args:
        loss: an object with ``forward(prediction, target)`` and ``backward()`` (or a
            ``LossView``), e.g. ``refnet.MSELoss("sum")``.
        prediction: [batch, outputs], or [R, batch, outputs] with replicas (MSE only);
            probabilities in (0, 1) for BCE, logits for cross-entropy.
        target: same shape (one-hot or 0/1), or int64 class indices [batch] for
            cross-entropy.
        kind: ``"mse"``, ``"cross_entropy"``, ``"bce"``, a ``torch.nn.functional`` loss's
            name, or a ``LossKind``.
        options: the torch function's keyword arguments (``{"delta": 1.0}``).
        reduction: the declared normalisation, ``"mean"``, ``"sum"`` or ``"batch_mean"``;
            when ``None``, the loss's ``reduction`` attribute if it has one, else measured.
        per_sample: the loss takes one sample at a time (the view sums the rows).
        name: the loss's name in the ids; its ``repr`` when ``None``.
        seed: seed of the finite-difference check's random weight.
        also_at: more grid inputs, ``(prediction, target)`` pairs (or ``LossInput``s) at
            other shapes, each checked fully.
        extremes: extreme ``LossInput``s (``extreme_inputs``), checked by value and gradient.

    Returns:
        ``autograd/<name>/loss`` (the normalisation; its ``convention`` states one other than
        torch's), then per grid input ``finite_difference/<name>/<tag>/input``,
        ``autograd/<name>/<tag>/loss`` and ``autograd/<name>/<tag>/grad_prediction``, per
        extreme input the last two; a failed ``…/<tag>/raised`` for a part that raised.
    """
    kind = loss_kind(kind, options)
    view = loss if isinstance(loss, LossView) else LossView(loss, name or one_line_label(loss),
                                                            per_sample=per_sample)
    name = view.name if name is None else name
    declared = declared_reduction(view.loss, reduction)
    inputs = checked_inputs(prediction, target, also_at, extremes)
    evaluated, fits = [], []

    def measure():
        evaluated.extend(evaluate(view, kind, item, backward=True) for item in inputs)
        stabilised = stabilised_kind(view, kind, evaluated, declared, name)
        if stabilised is not None:
            kinds[0] = stabilised
            evaluated[:] = [weighed(stabilised, e) for e in evaluated]
        fits.append(fit_normalisation(evaluated, kinds[0], declared, view.per_sample))
        return [normalisation_result(name, kinds[0], fits[0], declared)]

    kinds = [kind]
    results = guarded(f"{KIND}/{name}/raised", name, KIND, measure)
    if not fits:  # an input or the fit raised: the result above says so
        return results
    for item in evaluated:
        results += _input_checks(view, kinds[0], item, fits[0], name, seed)
    return results


def _input_checks(view, kind, evaluated, fit, name, seed):
    """The group of one input: consistency (grid inputs only), value, gradient."""
    item = evaluated.item
    group = f"{name}/{item.tag}"
    results = []
    if not item.extreme:
        results += guarded(f"finite_difference/{group}/raised", name, "finite_difference",
                           lambda: check_backward(LossAsModule(view, item.target),
                                                  item.prediction, seed=seed, row_wise=False,
                                                  name=group))
    return results + guarded(f"{KIND}/{group}/raised", name, KIND,
                             lambda: value_and_gradient(view, kind, evaluated, fit, name, group))
