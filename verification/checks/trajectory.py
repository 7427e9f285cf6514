"""K-step training trajectories: a framework's own network, loss and optimiser against the
torch twin trained by autograd and ``torch.optim``.

The model and its float64 twin (``torch_twin``: the structure and the values ``param()``
lists) start from the same weights and take the same K mini-batches, drawn from ``seed``; each
step runs forward, the MSE loss, zero_grad, backward and the optimiser step on both sides (the
framework through the module protocol with ITS loss and optimiser, refnet's by default; the
twin through autograd and ``torch.optim``, with the loss normalised as the framework's:
``"mean"``, ``"sum"`` or ``"batch_mean"``, or one of these times a measured constant). The
model's parameter values are put back afterwards; the model is never copied (some frameworks
cannot be). The loss of every step and
every parameter after every step are compared; each quantity yields one ``CheckResult``, that
of its worst step (largest error/tolerance), whose detail names the step.

Tolerance at step k (``_step_tolerance``). One step's gradient agrees to the autograd bound
ε·G, with ε = ``SAFETY``·n·u and G the largest Σ|terms| of the gradient (``term_magnitudes``
in verification/reference.py, fed the bound 2(|t| + bound of y), divided by N for the mean, of
the loss gradient); the update turns that into a parameter error of at most ε·(Θ + A·η·G): Θ
the parameter's scale (its own rounding), η the learning rate and A the update's sensitivity
to its gradient. For SGD, A = 1. For Adam's update u = m̂ / (√v̂ + ε_Adam), the chain rule with
m̂ and v̂ weighting the newest gradient by at most 1 gives |∂u/∂g| ≤ (1 + |m̂|/√v̂) / (√v̂ + ε_Adam);
A is its largest value over the tensor's elements with v̂ > 0 (elements with v̂ = 0 have had
exactly zero gradients, so neither side moves them), with m̂, v̂ rebuilt from the twin's
gradients. An error δ already in the parameters grows by at most a factor (1 + η·L) per step,
L the Lipschitz constant of the update in θ, so after k steps
δ_k ≤ Σ_j (1 + ηL)^(k−j)·(per-step error) ≤ e·k·(per-step error) while η·L·K ≤ 1: growth is
linear in the step index, with ``GROWTH`` = 3 ≥ e. Hence, for a parameter, rtol_k = 3·k·ε and
atol_k = 3·k·ε·(Θ_k + A_k·η·G_k), where Θ_k is max|θ| after step k and A_k, G_k the largest A
and G of steps 1..k. The loss of step k is evaluated before the update; its error is bounded by
its own (positive) terms, the output's error weighted by |dL/dy|, and the parameter errors so
far weighted by |dL/dθ|: atol_k = 3·k·ε·(|L_k| + Σ|dL/dy|·Σ|terms of y|
+ Σ_θ ‖dL/dθ‖₁·(Θ_k + A_k·η·G_k)), gradients again replaced by their Σ|terms| bounds, per replica.
"""

import math
from dataclasses import dataclass, field, replace

import torch

import refnet
from verification.checks.compare import compare, computed_dtype, error_ratios
from verification.checks.loss import as_normalisation, torch_mse
from verification.checks.reference import (
    EXACT_ATOL,
    SAFETY,
    Tolerance,
    canonical_pairs,
    guarded,
    parameter_labels,
    summation_length,
    term_magnitudes,
    torch_twin,
    unit_roundoff,
)
from verification.targets.protocol import LossView, call
from verification.targets.refnet_target import as_component

__all__ = ["GROWTH", "OPTIMIZERS", "ADAM_BETAS", "ADAM_EPS", "check_trajectory"]

KIND = "trajectory"
GROWTH = 3
"""Bound on the error growth factor e^{η·L·K} ≤ e, for runs short enough that η·L·K ≤ 1."""
ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8


def _sgd_sensitivity(grads_by_step):
    """SGD: the update η·g moves one for one with g."""
    return [[1.0] * len(grads) for grads in grads_by_step]


def _adam_sensitivity(grads_by_step):
    """Adam: the largest (1 + |m̂|/√v̂) / (√v̂ + ε) of each tensor, over elements with v̂ > 0.

    m̂ and v̂ are rebuilt from the twin's gradients. Elements with v̂ = 0 had an exactly zero
    gradient at every step so far, hence no update on either side.
    """
    beta1, beta2 = ADAM_BETAS
    first = [torch.zeros_like(grad) for grad in grads_by_step[0]]
    second = [torch.zeros_like(grad) for grad in grads_by_step[0]]
    by_step = []
    for step, grads in enumerate(grads_by_step, start=1):
        first = [beta1 * m + (1 - beta1) * g for m, g in zip(first, grads, strict=True)]
        second = [beta2 * v + (1 - beta2) * g * g for v, g in zip(second, grads, strict=True)]
        by_step.append([
            _largest_adam_slope(m / (1 - beta1 ** step), (v / (1 - beta2 ** step)).sqrt())
            for m, v in zip(first, second, strict=True)])
    return by_step


def _largest_adam_slope(first, root_second):
    active = root_second > 0
    if not bool(active.any()):
        return 0.0
    slope = (1 + first[active].abs() / root_second[active]) / (root_second[active] + ADAM_EPS)
    return float(slope.max())


@dataclass(frozen=True)
class _Optimizer:
    """A refnet optimiser, its torch.optim counterpart, and the update's gradient sensitivity."""

    build_refnet: object
    build_torch: object
    sensitivity: object


OPTIMIZERS = {
    "sgd": _Optimizer(lambda params, lr: refnet.SGD(params, lr),
                      lambda params, lr: torch.optim.SGD(params, lr=lr), _sgd_sensitivity),
    "adam": _Optimizer(
        lambda params, lr: refnet.Adam(params, lr=lr, betas=ADAM_BETAS, eps=ADAM_EPS),
        lambda params, lr: torch.optim.Adam(params, lr=lr, betas=ADAM_BETAS, eps=ADAM_EPS),
        _adam_sensitivity),
}
"""The optimisers ``check_trajectory`` accepts, by name."""


@dataclass(frozen=True)
class _Settings:
    """What both sides train with, and the round-off budget ε of one evaluation."""

    optimizer: str
    lr: float
    reduction: object
    epsilon: float = 0.0
    loss_epsilon: float = 0.0


@dataclass
class _Trajectory:
    """Per step: the loss (0-d, or [R]) and the parameters after the update; on the twin's
    side the gradients (for Adam's sensitivity), on refnet's the step's Σ|terms| bounds
    (``term_magnitudes``, taken before the update)."""

    losses: list = field(default_factory=list)
    params: list = field(default_factory=list)
    grads: list = field(default_factory=list)
    bounds: list = field(default_factory=list)
    loss_gradients: list = field(default_factory=list)


def _draw_batches(samples, steps, batch_size, seed):
    """``steps`` index tensors of ``batch_size`` rows each, drawn with replacement from ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(samples, (steps, batch_size), generator=generator)


def _mse_factor(targets, reduction):
    """c of L = c·Σ (y − t)² (a ``Normalisation``'s): 1/N (mean), 1 (sum), 1/B (batch_mean),
    or any of these times a constant."""
    return reduction.factor(targets.shape)


def _mse_gradient_bound(output_bound, targets, reduction):
    """Σ|terms| of dL/dy = 2c·(y − t): 2c·(bound of y + |t|)."""
    return 2 * _mse_factor(targets, reduction) * (output_bound + targets.to(torch.float64).abs())


def _target_step(component, loss, optimizer, x, targets, reduction, record):
    view = component.view
    prediction = view.forward(x)
    record.bounds.append(term_magnitudes(
        component, x, lambda bound: _mse_gradient_bound(bound, targets, reduction)))
    record.losses.append(loss.forward(prediction, targets).clone())
    view.zero_grad()
    gradient = loss.backward()
    record.loss_gradients.append(gradient)
    view.backward(gradient)
    call("optimizer", "step", optimizer.step)
    record.params.append([value for value, _ in canonical_pairs(component)])


def _torch_step(twin, reduction, optimizer, x, targets, record):
    optimizer.zero_grad()
    with torch.enable_grad():
        prediction = twin(x.to(torch.float64))
        wide_targets = targets.to(torch.float64)
        if reduction.named and not reduction.per_sample and reduction.name in ("mean", "sum"):
            loss = torch_mse(prediction, wide_targets, reduction.name)
        else:
            loss = torch_mse(prediction, wide_targets, "sum") * _mse_factor(targets, reduction)
        loss.sum().backward()
    record.losses.append(loss.detach())
    record.grads.append([parameter.grad.clone() for parameter in twin.parameters()])
    optimizer.step()
    record.params.append([parameter.detach().clone() for parameter in twin.parameters()])


def _train_side_by_side(component, twin, x, targets, batches, settings, loss, build):
    """Both trainings, step by step (a Dropout twin needs the module's forward of the step)."""
    choice = OPTIMIZERS[settings.optimizer]
    target_optimizer = call("optimizer", "construction", build,
                            component.view.optimizer_argument(), settings.lr)
    torch_optimizer = choice.build_torch(twin.parameters(), settings.lr)
    got, expected = _Trajectory(), _Trajectory()
    for rows in batches:
        batch_x, batch_targets = x[..., rows, :], targets[..., rows, :]
        _target_step(component, loss, target_optimizer, batch_x, batch_targets,
                     settings.reduction, got)
        _torch_step(twin, settings.reduction, torch_optimizer, batch_x, batch_targets, expected)
    return got, expected


def _running_max(values_by_step):
    """Per step and tensor, the largest value of the steps so far."""
    running, result = values_by_step[0], []
    for values in values_by_step:
        running = [max(old, new) for old, new in zip(running, values, strict=True)]
        result.append(running)
    return result


def _parameter_scales(expected, bounds, settings):
    """Θ_k + A_k·η·G_k for every step k and parameter (see the module docstring)."""
    sensitivities = _running_max(OPTIMIZERS[settings.optimizer].sensitivity(expected.grads))
    largest_grads = _running_max([[float(bound.max()) for bound in step.grad_params]
                                  for step in bounds])
    return [[float(param.abs().max()) + slope * settings.lr * grad
             for param, slope, grad in zip(params, slopes, grads, strict=True)]
            for params, slopes, grads in zip(expected.params, sensitivities, largest_grads,
                                             strict=True)]


def _replica_sums(tensor, replicated):
    """Σ over each replica's elements: shape [R] with replicas, else 0-d."""
    return tensor.flatten(1).sum(dim=1) if replicated else tensor.sum()


def _loss_scale(loss, bounds, scales):
    """|L_k| + Σ|dL/dy|·(bound of y) + Σ_θ ‖dL/dθ‖₁·(Θ_k + A_k·η·G_k), the largest replica's.

    The loss's own terms (squares, all positive), the forward error of the output, and the
    parameter errors so far, each weighted by the bound of its gradient.
    """
    replicated = loss.ndim == 1
    scale = loss.abs() + _replica_sums(bounds.grad_output * bounds.output, replicated)
    for grad_bound, parameter_scale in zip(bounds.grad_params, scales, strict=True):
        scale = scale + _replica_sums(grad_bound, replicated) * parameter_scale
    return float(scale.max())


def _step_tolerance(step, epsilon, scale):
    """rtol = GROWTH·k·ε, atol = rtol·scale (never below ``EXACT_ATOL``); ``step`` k is 1-based."""
    rtol = GROWTH * step * epsilon
    return Tolerance(atol=max(rtol * scale, EXACT_ATOL), rtol=rtol)


def _error_ratio(expected, got, tolerance):
    """The largest error/tolerance of one step (``error_ratios``, as ``compare`` judges it),
    without building ``compare``'s message."""
    expected, got = expected.detach().to(torch.float64), got.detach().to(torch.float64)
    if expected.shape != got.shape:
        return math.inf
    if not expected.numel():
        return 0.0
    return float(error_ratios(expected, got, tolerance.atol, tolerance.rtol).max())


def _worst_step(check_id, name, what, expected_by_step, got_by_step, scales, epsilon, context):
    """Compare each step under its tolerance; return ``compare``'s result for the step with
    the largest error ratio (the first such step)."""
    tolerances = [_step_tolerance(step, epsilon, scale)
                  for step, scale in enumerate(scales, start=1)]
    ratios = [_error_ratio(expected, got, tolerance) for expected, got, tolerance
              in zip(expected_by_step, got_by_step, tolerances, strict=True)]
    worst = ratios.index(max(ratios))
    return compare(check_id=check_id, module=name, kind=KIND, expected=expected_by_step[worst],
                   got=got_by_step[worst], atol=tolerances[worst].atol,
                   rtol=tolerances[worst].rtol, what=f"{what} at step {worst + 1}",
                   context=context)


def _compare_trajectories(name, labels, expected, got, settings, context):
    prefix = f"{KIND}/{settings.optimizer}/{name}"
    scales = _parameter_scales(expected, got.bounds, settings)
    loss_scales = [_loss_scale(loss, bounds, step_scales) for loss, bounds, step_scales
                   in zip(expected.losses, got.bounds, scales, strict=True)]
    results = [_worst_step(f"{prefix}/loss", name, "loss", expected.losses, got.losses,
                           loss_scales, settings.loss_epsilon, context)]
    for index, label in enumerate(labels):
        results.append(_worst_step(
            f"{prefix}/{label.name}", name, f"{label} after the update",
            [params[index] for params in expected.params],
            [params[index] for params in got.params],
            [step_scales[index] for step_scales in scales], settings.epsilon, context))
    return results


def check_trajectory(model, x, targets, *, optimizer, lr, steps=20, batch_size=10,
                     reduction="sum", seed=0, name=None, loss=None, build_optimizer=None,
                     layer=None, weight_layout="out_in"):
    """Train ``model`` and its torch twin side by side; compare every step.

    Steps: build the twin; draw the batches; train both for ``steps`` steps; compare the
    losses and each parameter, step by step, under the step-dependent tolerance of the module
    docstring; put the model's parameter values back.

    Args:
        model: a refnet module (any ``Sequential`` of Linear, activations and Dropout), or a
            ``Component`` of any framework.
        x: inputs, [N, features] or [R, N, features] with replicas.
        targets: targets, [N, outputs] or [R, N, outputs].
        optimizer: ``"sgd"`` or ``"adam"`` (see ``OPTIMIZERS``).
        lr: the learning rate.
        steps: number of updates K.
        batch_size: rows per batch, drawn with replacement (the same rows for every replica).
        reduction: the loss's normalisation: ``"sum"`` (the report's eq. 15, refnet's
            training default), ``"mean"`` or ``"batch_mean"``, or a ``Normalisation`` (any of
            these times a constant, as ``measure_normalisation`` found it).
        seed: seed of the batch draw.
        name: the model's name in the ids; its description when ``None``.
        loss: the framework's MSE loss object, or a ``LossView`` of it (as
            ``Target.loss`` builds it); ``refnet.MSELoss(reduction)`` when ``None``.
        build_optimizer: the framework's optimiser, ``build(params, lr)`` (``params`` is the
            module itself for a view with ``optimizer_takes_module``); refnet's
            ``optimizer`` when ``None``.
        layer: the structure of a model that is not refnet's (``verification.targets.spec``).
        weight_layout: ``"out_in"`` or ``"in_out"`` for such a model.

    Returns:
        One ``CheckResult`` for the loss (``trajectory/<optimizer>/<name>/loss``) and one per
        parameter (``…/0.weight``, …), each at its worst step; one failed ``…/raised`` result
        when the framework raises.
    """
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"check_trajectory: optimizer must be one of {sorted(OPTIMIZERS)}, "
                         f"got {optimizer!r}")
    component = as_component(model, layer, weight_layout=weight_layout, name=name)
    name = component.name
    normalisation = as_normalisation(reduction)
    if not isinstance(loss, LossView):
        loss = LossView(refnet.MSELoss(reduction) if loss is None else loss, "loss")
    build = OPTIMIZERS[optimizer].build_refnet if build_optimizer is None else build_optimizer
    batches = _draw_batches(x.shape[-2], steps, batch_size, seed)
    settings = _Settings(optimizer, lr, normalisation)

    def run():
        return _train_and_compare(component, x, targets, batches, settings, name, loss, build,
                                  f"worst of {steps} steps; {optimizer} lr={lr}, loss "
                                  f"{normalisation.describe()}, batch {batch_size}, batch "
                                  f"seed {seed}")

    return guarded(f"{KIND}/{optimizer}/{name}/raised", name, KIND, run)


def _epsilon(component, batch_size, *tensors):
    """ε = ``SAFETY``·n·u of one evaluation, u that of the dtype ``tensors`` were computed in."""
    return (SAFETY * summation_length(component.layer, batch_size)
            * unit_roundoff(computed_dtype(*tensors)))


def _train_and_compare(component, x, targets, batches, settings, name, loss, build, context):
    """The training and comparison steps of ``check_trajectory``; values put back after.

    Each tolerance is in the dtype of what it compares: the parameters' from the input, the
    parameters and the loss's gradients; the loss's from the input, the parameters and the
    loss values (a loss computed in float32 in a float64 check gets float32's u).
    """
    twin = torch_twin(component)
    saved = [value.detach().clone() for value, _ in component.view.param()]
    try:
        got, expected = _train_side_by_side(component, twin, x, targets, batches, settings,
                                            loss, build)
    finally:
        for (value, _), kept in zip(component.view.param(), saved, strict=True):
            value.copy_(kept)
    batch_size = batches.shape[-1]
    epsilon = _epsilon(component, batch_size, x, *saved, *got.loss_gradients)
    loss_epsilon = _epsilon(component, batch_size, x, *saved, *got.losses)
    settings = replace(settings, epsilon=epsilon, loss_epsilon=loss_epsilon)
    context += f", ε={epsilon:.3g} (loss ε={loss_epsilon:.3g})"
    return _compare_trajectories(name, parameter_labels(twin), expected, got, settings, context)
