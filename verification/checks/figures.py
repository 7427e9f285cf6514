"""A failing component's picture, as plain data: the submission's curves beside torch's.

A failed check says where the worst element is; a picture says what the function does. For a
failing element-wise activation, a failing loss or a failing training case, the judge (which
holds the tensors) evaluates the submission and torch on a few points and attaches the curves
to the first failing result of the case (``CheckResult.figure``); the parent validates them
(``figure_problem``) and draws them (``verification/report/figures.py``). Nothing is computed
for a case whose checks all pass.

A figure is JSON: ``{"kind": "activation" | "loss" | "training", "caption": str, "panels":
[panel, ...]}`` (one or two panels), each panel ``{"title", "x_label", "y_label": str,
"x_window": [low, high] or None, "x": [float], "submission": [float or None], "torch": [float
or None], "failing": [int]}``: ``x`` finite, at most ``MAX_POINTS``, drawn within ``x_window``
where there is one (the failing points outside it listed); the two curves of ``x``'s
length, ``None`` where a value is not finite; ``failing`` the indices into ``x`` where the
submission is wrong, under the rule ``|got − torch| <= atol + rtol·|torch|`` (``compare``),
with rtol = ``SAFETY``·n·u of the dtype the submission computed in (n its summation length)
and atol = rtol·max |torch| over the panel: a point is marked where its error would fail a check
of that panel's scale.
"""

import math
from dataclasses import replace

import torch

from verification.checks.compare import computed_dtype, error_ratios, unit_roundoff
from verification.checks.loss import loss_terms
from verification.checks.reference import ELEMENTWISE_TERMS, SAFETY, torch_twin
from verification.checks.result import CheckResult

__all__ = ["FIGURE_KINDS", "MAX_POINTS", "MAX_TEXT", "ACTIVATION_RANGE", "activation_points",
           "activation_figure", "loss_slice_figure", "training_figure", "figure_problem",
           "with_figure", "panel"]

FIGURE_KINDS = ("activation", "loss", "training")
MAX_POINTS = 256
"""The most points a panel may hold (an activation's: 201 on [−6, 6] and the outer points)."""
MAX_PANELS = 2
MAX_TEXT = 600
"""The longest caption, title or label, characters."""
ACTIVATION_RANGE = 6.0
"""An activation's figure is drawn densely over [−6, 6]: the uniform inputs' range [−4, 4]
(``_activation_checks``) widened to every kink candidate (±6, ReLU6's corner)."""
_ACTIVATION_GRID = 201
_OUTER = (8.0, 12.0, 20.0, 30.0, 50.0, 80.0, 120.0, 200.0, 300.0, 500.0, 800.0)
"""Beyond ±6 up to the extreme points' ±800, log-spaced (with 30 and 50, the hand-picked and
extreme points): in the data, and outside the panel's window (a failing one is listed)."""
SLICE_POINTS = 61
"""Points along a loss's one-dimensional slice."""
_SLICE_SEED = 559
"""The seed of the slice's direction (fixed: the same slice for every submission)."""


def panel(title, x, submission, reference, failing=(), *, x_label="x", y_label="",
          x_window=None):
    """One panel's data from sequences (tensors or lists) of one length; non-finite values
    (and ``None``) become ``None``."""
    return {"title": title, "x_label": x_label, "y_label": y_label,
            "x_window": None if x_window is None else [float(bound) for bound in x_window],
            "x": [float(value) for value in _floats(x)],
            "submission": _json_values(submission), "torch": _json_values(reference),
            "failing": sorted(int(index) for index in failing)}


def _floats(values):
    return values.detach().reshape(-1).tolist() if torch.is_tensor(values) else list(values)


def _json_values(values):
    return [float(value) if value is not None and math.isfinite(value) else None
            for value in _floats(values)]


def _failing(expected, got, rtol):
    """Indices where ``got`` fails ``expected`` under rtol and atol = rtol·max|expected|
    (module docstring); a non-finite ``got`` where ``expected`` is finite fails."""
    expected = expected.detach().reshape(-1).to(torch.float64)
    got = got.detach().reshape(-1).to(torch.float64)
    finite = torch.isfinite(expected)
    scale = float(expected[finite].abs().max()) if bool(finite.any()) else 0.0
    ratios = error_ratios(expected, got, max(rtol * scale, torch.finfo(torch.float64).tiny),
                          rtol)
    return (finite & (ratios > 1)).nonzero().reshape(-1).tolist()


def activation_points(comparable):
    """The x of an activation's figure: 201 points on [−6, 6] (``ACTIVATION_RANGE``) and
    ±``_OUTER`` to the extreme points' ±800, filtered by ``comparable`` (a function of a
    tuple of values returning those in the function's domain and off its kinks), sorted."""
    step = 2 * ACTIVATION_RANGE / (_ACTIVATION_GRID - 1)
    grid = [-ACTIVATION_RANGE + index * step for index in range(_ACTIVATION_GRID)]
    grid += [sign * value for value in _OUTER for sign in (-1.0, 1.0)]
    return sorted(set(comparable(tuple(grid))))


def activation_figure(component, x, *, name, dtype):
    """The forward and derivative of an activation ``component`` (a ``Component``) at the
    points ``x`` ([N, 1], one point a row, so a learned slope has one feature) against its
    float64 torch twin's, the derivative as dL/dx for an upstream gradient of ones.

    Returns:
        A figure (module docstring) with two panels, or ``None`` where the submission's
        forward or backward raises or returns a tensor of another shape (its checks say so).
    """
    view = component.view
    twin = torch_twin(component)
    try:
        y = view.forward(x)
        derivative = view.backward(torch.ones_like(y))
    except Exception:  # noqa: BLE001 - the failing checks already name what it raised
        return None
    if not (torch.is_tensor(y) and torch.is_tensor(derivative)
            and y.shape == x.shape == derivative.shape):
        return None
    with torch.enable_grad():
        wide = x.detach().to(torch.float64).requires_grad_()
        expected = twin(wide)
        expected.backward(torch.ones_like(expected))
    rtol = SAFETY * ELEMENTWISE_TERMS * unit_roundoff(computed_dtype(x, y, derivative))
    window = (-ACTIVATION_RANGE, ACTIVATION_RANGE)
    caption = (f"{name} ({dtype}): your forward and derivative (dL/dx for an upstream gradient "
               f"of ones) against torch's over [−{ACTIVATION_RANGE:g}, {ACTIVATION_RANGE:g}], "
               f"where the uniform inputs and every kink candidate lie; failing points marked "
               f"(those beyond it, among the points out to ±{float(x.abs().max()):g} that the "
               f"hand-picked and extreme checks reach, listed under each panel)")
    return {"kind": "activation", "caption": caption, "panels": [
        panel("forward", x, y, expected, _failing(expected, y, rtol), y_label="y",
              x_window=window),
        panel("derivative", x, derivative, wide.grad, _failing(wide.grad, derivative, rtol),
              y_label="dy/dx", x_window=window)]}


def _slice_span(prediction, direction, kind):
    """Half-width T of the slice p + t·d, t in [−T, T]: 3 for logits, 2τ (at least 1) for a
    regression loss of threshold τ; for probabilities, the widest symmetric T keeping every
    element in [0.02, 0.98]."""
    if kind.inputs != "probabilities":
        return 3.0 if kind.inputs in ("logits", "classes") else max(1.0, 2 * kind.threshold)
    room = torch.minimum(0.98 - prediction, prediction - 0.02).clamp(min=0.0)
    return float((room / direction.abs().clamp(min=1e-12)).min())


def loss_slice_figure(view, kind, prediction, target, normalisation, *, name, dtype):
    """A loss ``view`` (a ``LossView``) along the slice p(t) = p₀ + t·d, d a seeded direction
    with max |d| = 1: its value and dL/dt = ⟨dL/dp, d⟩ against torch's (``kind``'s terms,
    times ``normalisation``'s factor, by autograd in float64).

    Args:
        view: the loss under test.
        kind: its ``LossKind``.
        prediction: p₀, [batch, outputs], in the dtype checked.
        target: its target.
        normalisation: a ``Normalisation`` (the torch side's factor), or ``None`` for torch's
            mean (the caption says so).
        name: the loss's name in the caption.
        dtype: the dtype's name, for the caption.

    Returns:
        A figure with two panels, or ``None`` where the loss raises or returns no number.
    """
    generator = torch.Generator().manual_seed(_SLICE_SEED)
    direction = torch.randn(prediction.shape, generator=generator, dtype=torch.float64)
    direction = direction / direction.abs().max()
    start = prediction.detach().to(torch.float64)
    span = _slice_span(start, direction, kind)
    steps = [span * (2 * index / (SLICE_POINTS - 1) - 1) for index in range(SLICE_POINTS)]
    wide_target = target if target.dtype == torch.int64 else target.to(torch.float64)
    values, slopes, expected_values, expected_slopes = [], [], [], []
    factor = (normalisation.factor(prediction.shape) if normalisation is not None
              else 1.0 / kind.count(prediction.shape, False))
    for t in steps:
        point = start + t * direction
        try:
            value = view.forward(point.to(prediction.dtype), target)
            gradient = view.backward()
        except Exception:  # noqa: BLE001 - the failing checks already name what it raised
            return None
        if not (torch.is_tensor(value) and value.numel() == 1 and torch.is_tensor(gradient)
                and gradient.shape == prediction.shape):
            return None
        values.append(float(value))
        slopes.append(float((gradient.to(torch.float64) * direction).sum()))
        with torch.enable_grad():
            leaf = point.clone().requires_grad_()
            loss = factor * loss_terms(kind, leaf, wide_target).sum()
            (grad,) = torch.autograd.grad(loss, leaf)
        expected_values.append(float(loss.detach()))
        expected_slopes.append(float((grad * direction).sum()))
    computed = computed_dtype(prediction, value, gradient)
    rtol = SAFETY * (prediction.numel() + ELEMENTWISE_TERMS) * unit_roundoff(computed)
    values, slopes = torch.tensor(values), torch.tensor(slopes)
    expected_values, expected_slopes = torch.tensor(expected_values), torch.tensor(expected_slopes)
    reference = (f"torch's {kind.label}, {normalisation.describe()}" if normalisation is not None
                 else f"torch's mean {kind.label} (no normalisation fits yours)")
    shape = "×".join(map(str, prediction.shape))
    caption = (f"{name} ({dtype}): your loss and its slope dL/dt = ⟨dL/dprediction, d⟩ along "
               f"prediction₀ + t·d (prediction₀ a checked input, {shape}, d a fixed random "
               f"direction, "
               f"t in [−{span:.3g}, {span:.3g}]) against {reference}; failing points marked")
    return {"kind": "loss", "caption": caption, "panels": [
        panel("loss value", steps, values, expected_values,
              _failing(expected_values, values, rtol), x_label="t", y_label="L"),
        panel("slope along the slice", steps, slopes, expected_slopes,
              _failing(expected_slopes, slopes, rtol), x_label="t", y_label="dL/dt")]}


def training_figure(name, optimizer, losses, free_losses, expected_losses, failing_steps):
    """The training case's picture: the submission's loss per step beside the twin's free run
    (torch.optim from the same initial weights on the same batches), and beside torch's loss
    at the submission's own parameters of each step, the steps whose loss check fails marked.

    Args:
        name: the network's name.
        optimizer: ``"sgd"`` or ``"adam"``.
        losses: the submission's loss per step (floats).
        free_losses: the twin's free run's loss per step, or ``None`` (no free twin run, as for
            a network with Dropout, whose twin needs the module's masks).
        expected_losses: torch's loss at the submission's parameters of each step.
        failing_steps: indices of the steps whose loss fails its tolerance.
    """
    steps = list(range(1, len(losses) + 1))
    panels = [] if free_losses is None else [
        panel("each training on its own", steps, losses, free_losses, x_label="step",
              y_label="loss")]
    panels.append(panel("from your parameters at each step", steps, losses, expected_losses,
                        failing_steps, x_label="step", y_label="loss"))
    caption = (f"training {name} with {optimizer}: your loss per step beside torch's"
               + (" (left: torch training its twin from the same weights on the same batches; "
                  "right: " if free_losses is not None else " (")
               + "torch's loss at your parameters of each step, the steps whose loss check "
                 "fails marked)")
    return {"kind": "training", "caption": caption, "panels": panels}


def with_figure(results, draw):
    """``results`` with the figure ``draw()`` returns on the first failing one; unchanged,
    and ``draw`` not called, when every result passes (or it returns ``None`` or raises: the
    failing checks already name what the submission raised; ``ExecutorGone``, a
    ``BaseException``, goes through)."""
    failing = next((index for index, result in enumerate(results)
                    if isinstance(result, CheckResult) and not result.passed), None)
    if failing is None:
        return results
    try:
        figure = draw()
    except Exception:  # noqa: BLE001 - a picture never costs a case its verdicts
        figure = None
    if figure is None:
        return results
    return [replace(result, figure=figure) if index == failing else result
            for index, result in enumerate(results)]


def figure_problem(figure):
    """Why ``figure`` (a record's ``figure``, from another process) is not one of the shape
    of the module docstring, or ``None`` when it is."""
    if not isinstance(figure, dict) or set(figure) != {"kind", "caption", "panels"}:
        return "a figure is a dict of kind, caption and panels"
    if figure["kind"] not in FIGURE_KINDS:
        return f"figure kind {figure['kind']!r}"
    if not _text(figure["caption"]):
        return f"the figure's caption is not text of at most {MAX_TEXT} characters"
    panels = figure["panels"]
    if not (isinstance(panels, list) and 1 <= len(panels) <= MAX_PANELS):
        return f"a figure has 1 to {MAX_PANELS} panels"
    return next(filter(None, map(_panel_problem, panels)), None)


_PANEL_KEYS = {"title", "x_label", "y_label", "x_window", "x", "submission", "torch", "failing"}


def _text(value):
    return isinstance(value, str) and len(value) <= MAX_TEXT


def _number(value):
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


def _panel_problem(data):
    if not isinstance(data, dict) or set(data) != _PANEL_KEYS:
        return f"a panel has exactly the keys {sorted(_PANEL_KEYS)}"
    if not all(_text(data[key]) for key in ("title", "x_label", "y_label")):
        return "a panel's title and labels are text"
    window = data["x_window"]
    if window is not None and not (isinstance(window, list) and len(window) == 2
                                   and all(map(_number, window)) and window[0] < window[1]):
        return "a panel's x_window is null or [low, high], finite numbers"
    x = data["x"]
    if not (isinstance(x, list) and 1 <= len(x) <= MAX_POINTS and all(map(_number, x))):
        return f"a panel's x is 1 to {MAX_POINTS} finite numbers"
    for key in ("submission", "torch"):
        curve = data[key]
        if not (isinstance(curve, list) and len(curve) == len(x)
                and all(value is None or _number(value) for value in curve)):
            return f"a panel's {key} is as long as x, finite numbers or null"
    failing = data["failing"]
    if not (isinstance(failing, list) and len(failing) <= len(x) and all(
            isinstance(index, int) and not isinstance(index, bool) and 0 <= index < len(x)
            for index in failing)):
        return "a panel's failing points are indices into x"
    return None
