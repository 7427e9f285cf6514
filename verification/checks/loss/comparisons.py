"""Value and gradient of a loss at one input, against the normalisation's k·c times S and
times autograd's gradient of S (float64): ``autograd/<name>/<tag>/loss`` and
``autograd/<name>/<tag>/grad_prediction``.

Tolerances (u, rtol and T as ``formulas.py`` derives them):

- Value: ``rtol = SAFETY·(N + ELEMENTWISE_TERMS)·u``, ``atol = rtol·k·c·T``.
- Gradient at a grid input: ``atol = rtol·max|expected|`` (random inputs: elements of
  comparable size, so an element's cancellation is within the largest one's scale). At an
  extreme input the elements span orders of magnitude (BCE: 1 and 1e12), where that atol would
  exceed the small ones; each element there is computed to a relative accuracy (p − t with
  t ∈ {0, 1}; 1 − p exact for p ≥ ½, Sterbenz; the softmax of integer logits, whose
  e⁻⁸⁰⁰ underflows to an exact 0 on both sides; 2(x − t) of exact differences), so rtol alone
  (``atol = EXACT_ATOL``: zeros must be exact). A NaN or an infinity is named with the input.
"""

import torch

from verification.checks.compare import compare, computed_dtype
from verification.checks.diagnosis import prediction_sizes
from verification.checks.loss.formulas import (
    KIND,
    elements,
    loss_rtol,
    unnormalised,
    wide,
)
from verification.checks.loss.normalisation import DIVISOR, candidates
from verification.checks.reference import ELEMENTWISE_TERMS, EXACT_ATOL, autograd_tolerance

__all__ = ["value_and_gradient"]


def value_and_gradient(view, kind, evaluated, fit, name, group):
    """Value and gradient at one input against k·c·S and k·c·dS/dprediction."""
    item = evaluated.item
    got = evaluated.replayed_pass()
    factor = fit.scale * candidates(kind, item.prediction.shape, view.per_sample)[fit.name]
    reference = (f"L = {fit.normalisation.describe()}" if fit.normalisation is not None else
                 f"no normalisation fits (see {KIND}/{name}/loss): compared with "
                 f"{fit.scale:.6g} × {DIVISOR[fit.name]}, the ratio most inputs agree on")
    context = f"at {item.description}{_flat(view)}; {kind.label} loss, {reference}"
    value_tolerance = autograd_tolerance(computed_dtype(item.prediction, got.value),
                                         elements(item.prediction) + ELEMENTWISE_TERMS,
                                         abs(factor) * float(evaluated.magnitudes.max()))
    sizes = prediction_sizes(item.prediction.shape,
                             "classes" if kind.inputs == "classes" else "outputs")
    where = item.description if item.extreme else ""
    value = compare(check_id=f"{KIND}/{group}/loss", module=name, kind=KIND,
                    expected=factor * evaluated.sums.reshape(got.value.shape),
                    got=got.value, atol=value_tolerance.atol, rtol=value_tolerance.rtol,
                    what="loss value", context=context, sizes=sizes, where=where)
    wide_prediction, wide_target = wide(item.prediction, item.target)
    with torch.enable_grad():
        leaf = wide_prediction.clone().requires_grad_()
        (factor * unnormalised(kind, leaf, wide_target)).sum().backward()
    rtol = loss_rtol(item.prediction, got.gradient)
    scale = 0.0 if item.extreme else float(leaf.grad.abs().max())
    gradient = compare(check_id=f"{KIND}/{group}/grad_prediction", module=name, kind=KIND,
                       expected=leaf.grad, got=got.gradient, atol=max(rtol * scale, EXACT_ATOL),
                       rtol=rtol, what="dL/dprediction",
                       context=context + ("; rtol alone: the elements of an extreme input "
                                          "span orders of magnitude" if item.extreme else ""),
                       sizes=sizes, inputs=item.prediction, input_name="prediction",
                       where=where)
    return [value, gradient]


def _flat(view):
    hooks = getattr(view, "hooks", None)
    return " (fed 1-D, declared loss_flat)" if hooks is not None and hooks.loss_flat else ""
