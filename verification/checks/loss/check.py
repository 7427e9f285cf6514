"""``check_loss``: a loss judged at every input of the grid and at its extreme inputs.

1. Each input evaluated once (``evaluation.py``) and the plain formula judged once at all of
   them (``judgement.py``: the normalisation, every value and gradient); only where that
   judgement fails for a binary cross-entropy, the stabiliser it follows is measured and its
   judgement reported instead (``stabilisers.py``).
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
from verification.checks.loss.evaluation import evaluate
from verification.checks.loss.formulas import KIND
from verification.checks.loss.inputs import checked_inputs
from verification.checks.loss.judgement import judge
from verification.checks.loss.normalisation import declared_reduction, normalisation_result
from verification.checks.loss.stabilisers import stabilised
from verification.checks.reference import guarded
from verification.targets.protocol import LossView, one_line_label
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
    judgements = []

    def measure():
        evaluated = [evaluate(view, kind, item, backward=True) for item in inputs]
        judgement = judge(view, kind, evaluated, declared, name)
        if not judgement.passed:
            judgement = stabilised(view, judgement, declared, name) or judgement
        judgements.append(judgement)
        return [normalisation_result(name, judgement.kind, judgement.fit, declared)]

    results = guarded(f"{KIND}/{name}/raised", name, KIND, measure)
    if not judgements:  # an input or the fit raised: the result above says so
        return results
    [judgement] = judgements
    for evaluated, compared in zip(judgement.evaluated, judgement.comparisons, strict=True):
        results += _consistency(view, evaluated.item, name, seed) + compared
    return results


def _consistency(view, item, name, seed):
    """``finite_difference/<name>/<tag>/input`` at a grid input (none at an extreme one)."""
    if item.extreme:
        return []
    group = f"{name}/{item.tag}"
    return guarded(f"finite_difference/{group}/raised", name, "finite_difference",
                   lambda: check_backward(LossAsModule(view, item.target), item.prediction,
                                          seed=seed, row_wise=False, name=group))
