"""K-step training trajectories: a framework's own network, loss and optimiser, each step
judged against torch (autograd and ``torch.optim``) from the same point.

The framework trains freely for K mini-batches drawn from ``seed``: forward, its loss,
zero_grad, backward, its optimiser's step (through the module protocol; the caller hands over
the framework's loss and optimiser). At every step k, from the framework's parameters θ_k
(read through ``param()``; float32 values are exact in float64), three things are compared:

- the loss at θ_k, against the twin (``torch_twin``: the structure, in float64) evaluating
  the loss normalised as the framework's (``"mean"``, ``"sum"``, ``"batch_mean"``, or one of
  these times a measured constant);
- dL/dy, the framework's loss gradient, against torch's at the framework's own prediction
  (``loss_gradient``);
- the gradient g_k of every parameter, as ``param()`` holds it after backward, against the
  twin's autograd gradient at θ_k given the framework's dL/dy (``grad_<parameter>``);
- the update Δ_k = θ_{k+1} − θ_k of every parameter, against ``torch.optim`` stepping from θ_k
  with the framework's own g_k (``<parameter>``). The torch optimiser keeps its state
  (moments) from step to step, fed the framework's gradients, as the framework's does.

Each link of the chain is judged on the framework's own input to it: a loss gradient error
shows in ``loss_gradient`` alone, a backward error in the gradients, and an optimiser that
steps with other values than the gradients the model holds (gradient tensors rebound by
``zero_grad``, copies, stale ones; a frozen network) in the updates. Each quantity yields one
``CheckResult``, that of its worst step (largest error/tolerance), whose detail names the step.
The model's parameter values are put back afterwards; the model is never copied.

Why each step from the same point, and not two free runs compared at step k: the error of a
free run compounds through every later step, and its bound (a growth factor times the largest
update sensitivity times the largest gradient, over different elements) was vacuous in float32:
1.4·10⁴ on Adam's parameters and 1.5·10⁶ on the loss, where parameters are of order 0.1–1 and a
network that does not train at all differs in loss by 0.07. A float32 framework whose weights
never moved passed 16 of its 18 checks. From the same point, each comparison is one
evaluation's round-off, whatever happened before; judged on the framework's own gradients,
Adam's update (which divides by √v̂, so amplifies a relative gradient error without bound where
gradients cancel) needs no bound on the gradient's error; and given the framework's dL/dy,
the gradients' bound does not carry the output's forward error through the loss (which, in
float32, put it above the largest gradient).

Tolerances. u is the unit round-off of the dtype the framework computed in, ε = ``SAFETY``·n·u
the autograd bound of one evaluation (verification/checks/reference.py: n the summation length
of the chain), η the learning rate.

- Loss: atol = ε·(|L| + Σ 2c(|y| + |t|)·E_y), rtol = ε, E_y the error scale of the output
  (``term_magnitudes``) and c the loss's factor: the loss's own (positive) terms and the
  output's error weighted by the Σ|terms| of its gradient, for the largest replica.
- dL/dy = 2c(y − t) at the same y on both sides: ``LOSS_GRADIENT_ROUNDINGS`` roundings of
  terms of size 2c(|y| + |t|): atol_i = ``SAFETY``·4·u·2c(|y_i| + |t_i|).
- Gradient of element i: atol_i = ε·E_i, E_i the error scale of dL/dθ_i (``term_magnitudes``
  given |dL/dy| exact, as both sides start from the same dL/dy); element by element, as the
  bound is.
- Update of element i, both sides stepping with the same g: the framework rounds its update
  and θ_k − step, the latter by at most 2u·|θ_{k+1,i}| (two roundings: a framework may
  subtract in a wider type and store in its own; measured, one rounding alone reaches 0.99 of
  u·|θ|), and torch by u₆₄·|θ_{k+1,i}|.
  SGD (Δ = −η·g): η·g rounds once: rtol = ``SAFETY``·u. Adam (Δ = −η·m̂/(√v̂ + ε_A)): its
  arithmetic rounds ``ADAM_ROUNDINGS`` times a step and the moments carry the roundings of the
  earlier steps, each relative to terms whose ratio to √v̂ is at most C_k (Cauchy–Schwarz:
  C_k² = (1−β₁)²(1−β₂ᵏ)/((1−β₁ᵏ)²(1−β₂))·Σ_{j<k}(β₁²/β₂)ʲ; C_1 = 1, C_20 ≈ 1.13; also
  |m̂|/√v̂ ≤ C_k): atol = ``SAFETY``·13·k·u·η·C_k.
- Every atol is at least n·σ, σ the dtype's smallest subnormal (2⁻¹⁴⁹ in float32): the
  standard model of a rounding with gradual underflow is fl(a ∘ b) = (a ∘ b)(1 + δ) + ζ,
  |ζ| ≤ σ/2, and the relative bounds above miss ζ; a float32 gradient whose float64 reference
  is −2e−51 is 0 at best (a ReLU network on SGD at rate 5 met it).

Divergence. From the first step where torch's reference itself leaves the dtype's range (a
correct framework diverging with torch), the steps are not judged and each result says so
("diverged: not judged from step k"); the first step always is.

Detection power (``CheckResult.detectable``: the relative error of the compared tensor's
largest element sure to fail; measured over every case of refnet and of the ``float32``
fixture, the README's table, asserted by tests/test_detection_power.py with an error of that
size planted): float64 4e-10, float32 0.17 (a training step's gradients, the steps taken as one
tensor); the loss gradient and the updates are far tighter.
"""

import math
from dataclasses import dataclass, field, replace

import torch

from verification.checks.compare import (
    compare,
    comparison_power,
    computed_dtype,
    error_ratios,
    unit_roundoff,
)
from verification.checks.diagnosis import prediction_sizes
from verification.checks.figures import training_figure, with_figure
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
)
from verification.targets.protocol import LossView, call
from verification.targets.spec import as_component, leaves

__all__ = ["OPTIMIZERS", "ADAM_BETAS", "ADAM_EPS", "ADAM_ROUNDINGS", "check_trajectory"]

KIND = "trajectory"
ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8
LOSS_GRADIENT_ROUNDINGS = 4
"""Roundings in dL/dy = 2c·(y − t): the difference, the products by 2 and by c, c itself."""
ADAM_ROUNDINGS = 13
"""Roundings in one Adam step: 3 for m, 4 for v, 2 bias corrections, √, + ε, ÷ and × η."""
_UNIT_ROUNDOFF_64 = unit_roundoff(torch.float64)


def _sgd_rounding(step, unit, lr):
    """SGD's update −η·g rounds once: (atol, rtol) = (0, ``SAFETY``·u)."""
    return 0.0, SAFETY * unit


def _adam_ratio_bound(step):
    """C_k ≥ |m̂|/√v̂ for any gradients (the module docstring)."""
    beta1, beta2 = ADAM_BETAS
    ratio = beta1 ** 2 / beta2
    total = sum(ratio ** j for j in range(step))
    return math.sqrt((1 - beta1) ** 2 * (1 - beta2 ** step)
                     / ((1 - beta1 ** step) ** 2 * (1 - beta2)) * total)


def _adam_rounding(step, unit, lr):
    """Adam's update at step k: (atol, rtol) = (``SAFETY``·13·k·u·η·C_k, 0)."""
    return SAFETY * ADAM_ROUNDINGS * step * unit * lr * _adam_ratio_bound(step), 0.0


@dataclass(frozen=True)
class _Optimizer:
    """A torch.optim optimiser and the round-off of its update,
    ``rounding(step, u, lr) -> (atol, rtol)``."""

    build_torch: object
    rounding: object


OPTIMIZERS = {
    "sgd": _Optimizer(lambda params, lr: torch.optim.SGD(params, lr=lr), _sgd_rounding),
    "adam": _Optimizer(
        lambda params, lr: torch.optim.Adam(params, lr=lr, betas=ADAM_BETAS, eps=ADAM_EPS),
        _adam_rounding),
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
    unit: float = 0.0
    loss_unit: float = 0.0
    underflow: float = EXACT_ATOL


@dataclass
class _Trajectory:
    """Per step: the loss (0-d, or [R]), dL/dy, the gradients after backward and the
    parameters after the update (float64, the report's layout); on the framework's side also
    the parameters before the update and the prediction (where torch starts the step), the
    Σ|terms| of dL/dy and the step's bounds (``term_magnitudes``, given the framework's dL/dy)."""

    losses: list = field(default_factory=list)
    loss_gradients: list = field(default_factory=list)
    grads: list = field(default_factory=list)
    params: list = field(default_factory=list)
    starts: list = field(default_factory=list)
    predictions: list = field(default_factory=list)
    loss_gradient_terms: list = field(default_factory=list)
    bounds: list = field(default_factory=list)


def _draw_batches(samples, steps, batch_size, seed):
    """``steps`` index tensors of ``batch_size`` rows each, drawn with replacement from ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(samples, (steps, batch_size), generator=generator)


def _mse_factor(targets, reduction):
    """c of L = c·Σ (y − t)² (a ``Normalisation``'s): 1/N (mean), 1 (sum), 1/B (batch_mean),
    or any of these times a constant."""
    return reduction.factor(targets.shape)


def _mse_gradient_terms(prediction, targets, reduction):
    """Σ|terms| of dL/dy = 2c·(y − t): 2|c|·(|y| + |t|) (c < 0 for a negated MSE given to
    the check directly; the loss checks refuse it as a negated loss)."""
    size = prediction.detach().to(torch.float64).abs() + targets.to(torch.float64).abs()
    return 2 * abs(_mse_factor(targets, reduction)) * size


def _torch_mse_loss(prediction, targets, reduction):
    """The MSE loss normalised as the framework's, in float64 (per replica with replicas)."""
    wide_targets = targets.to(torch.float64)
    if reduction.named and not reduction.per_sample and reduction.name in ("mean", "sum"):
        return torch_mse(prediction, wide_targets, reduction.name)
    return torch_mse(prediction, wide_targets, "sum") * _mse_factor(targets, reduction)


def _target_step(component, loss, optimizer, x, targets, reduction, record):
    view = component.view
    record.starts.append([value for value, _ in canonical_pairs(component)])
    prediction = view.forward(x)
    record.predictions.append(prediction.detach().clone())
    record.loss_gradient_terms.append(_mse_gradient_terms(prediction, targets, reduction))
    record.losses.append(loss.forward(prediction, targets).clone())
    view.zero_grad()
    gradient = loss.backward()
    record.loss_gradients.append(gradient)
    record.bounds.append(term_magnitudes(component, x, lambda _output, _bound: gradient.abs()))
    view.backward(gradient)
    record.grads.append([grad for _, grad in canonical_pairs(component)])
    call("optimizer", "step", optimizer.step)
    record.params.append([value for value, _ in canonical_pairs(component)])


def _torch_step(twin, got, reduction, optimizer, x, targets, record):
    """Torch from the framework's point of the step (``got``'s latest entries): the twin's
    loss; torch's dL/dy at the framework's prediction; the twin's autograd gradients given the
    framework's dL/dy; ``torch.optim``'s step given the framework's gradients."""
    with torch.no_grad():
        for parameter, value in zip(twin.parameters(), got.starts[-1], strict=True):
            parameter.copy_(value)
    optimizer.zero_grad()
    with torch.enable_grad():
        prediction = twin(x.to(torch.float64))
        record.losses.append(_torch_mse_loss(prediction.detach(), targets, reduction))
        prediction.backward(got.loss_gradients[-1].to(torch.float64))
        at_prediction = got.predictions[-1].to(torch.float64).requires_grad_()
        _torch_mse_loss(at_prediction, targets, reduction).sum().backward()
    record.loss_gradients.append(at_prediction.grad)
    record.grads.append([parameter.grad.clone() for parameter in twin.parameters()])
    for parameter, grad in zip(twin.parameters(), got.grads[-1], strict=True):
        parameter.grad.copy_(grad)
    optimizer.step()
    record.params.append([parameter.detach().clone() for parameter in twin.parameters()])


def _train_side_by_side(component, twin, x, targets, batches, settings, loss, build):
    """The framework's training, and torch's step from the framework's point at each step
    (after the framework's: a Dropout twin needs the module's mask of the step)."""
    choice = OPTIMIZERS[settings.optimizer]
    target_optimizer = call("optimizer", "construction", build,
                            component.view.optimizer_argument(), settings.lr)
    torch_optimizer = choice.build_torch(twin.parameters(), settings.lr)
    got, expected = _Trajectory(), _Trajectory()
    for rows in batches:
        batch_x, batch_targets = x[..., rows, :], targets[..., rows, :]
        _target_step(component, loss, target_optimizer, batch_x, batch_targets,
                     settings.reduction, got)
        _torch_step(twin, got, settings.reduction, torch_optimizer, batch_x, batch_targets,
                    expected)
    return got, expected


def _replica_sums(tensor, replicated):
    """Σ over each replica's elements: shape [R] with replicas, else 0-d."""
    return tensor.flatten(1).sum(dim=1) if replicated else tensor.sum()


def _loss_tolerance(loss, gradient_terms, bounds, epsilon):
    """atol = ε·(|L| + Σ|dL/dy|·E_y) of the largest replica, rtol = ε."""
    replicated = loss.ndim == 1
    scale = loss.abs() + _replica_sums(gradient_terms * bounds.output, replicated)
    return Tolerance(atol=max(epsilon * float(scale.max()), EXACT_ATOL), rtol=epsilon)


def _loss_gradient_tolerance(gradient_terms, settings):
    """atol_i = ``SAFETY``·``LOSS_GRADIENT_ROUNDINGS``·u·2c(|y_i| + |t_i|), rtol = 0."""
    atol = SAFETY * LOSS_GRADIENT_ROUNDINGS * settings.loss_unit * gradient_terms
    return Tolerance(atol=atol.clamp_min(settings.underflow), rtol=0.0)


def _gradient_tolerance(error_scale, settings):
    """atol_i = ε·E_i, element by element (``term_magnitudes``'s error scale)."""
    return Tolerance(atol=(settings.epsilon * error_scale).clamp_min(settings.underflow),
                     rtol=0.0)


def _update_tolerance(step, after, settings):
    """The update's round-off (``_Optimizer.rounding``) plus θ_{k+1}'s own, (2u + u₆₄)·|θ|."""
    atol, rtol = OPTIMIZERS[settings.optimizer].rounding(step, settings.unit, settings.lr)
    own_rounding = (2 * settings.unit + _UNIT_ROUNDOFF_64) * after.abs()
    return Tolerance(atol=(atol + own_rounding).clamp_min(settings.underflow), rtol=rtol)


def _error_ratio(expected, got, tolerance):
    """The largest error/tolerance of one step (``error_ratios``, as ``compare`` judges it),
    without building ``compare``'s message."""
    expected, got = expected.detach().to(torch.float64), got.detach().to(torch.float64)
    if expected.shape != got.shape:
        return math.inf
    if not expected.numel():
        return 0.0
    return float(error_ratios(expected, got, tolerance.atol, tolerance.rtol).max())


def _worst_step(check_id, name, what, expected_by_step, got_by_step, tolerances, context,
                **diagnosis):
    """Compare each step under its tolerance; return ``compare``'s result for the step with
    the largest error ratio (the first such step), with the scale and detection power of the
    steps stacked as one tensor (which step errs most depends on round-off; these do not),
    and the first failing step (``None`` when every step passes). A failing result's diagnosis
    is that of its first failing step ("from step 3: ×2.00: …"), ``diagnosis`` being
    ``compare``'s ``sizes`` and ``update``."""
    ratios = [_error_ratio(*step) for step in zip(expected_by_step, got_by_step, tolerances,
                                                  strict=True)]

    def at(step):
        return compare(check_id=check_id, module=name, kind=KIND,
                       expected=expected_by_step[step], got=got_by_step[step],
                       atol=tolerances[step].atol, rtol=tolerances[step].rtol,
                       what=f"{what} at step {step + 1}", context=context, **diagnosis)

    worst = ratios.index(max(ratios))
    result = at(worst)
    wide = [expected.detach().to(torch.float64) for expected in expected_by_step]
    allowed = [(tolerance.atol + tolerance.rtol * expected.abs()).expand_as(expected)
               for expected, tolerance in zip(wide, tolerances, strict=True)]
    result = replace(result, **comparison_power(torch.cat([e.flatten() for e in wide]),
                                                torch.cat([a.flatten() for a in allowed])))
    if result.passed:
        return result, None
    first = next(step for step, ratio in enumerate(ratios) if ratio > 1.0)
    found = result.diagnosis if first == worst else at(first).diagnosis
    return replace(result, diagnosis=f"from step {first + 1}: {found}"), first


def _chain_diagnoses(links):
    """Each failing result's diagnosis, followed by the first wrong link of the chain where
    that is at an earlier step or an earlier stage (loss, dL/dy, gradients, updates): the
    earliest step at which any link fails, and the first link failing there. ``links``:
    ``(result, first failing step, stage, link's name)``, in the order of the chain."""
    failing = [(first, stage, order, label) for order, (_, first, stage, label)
               in enumerate(links) if first is not None]
    if not failing:
        return [result for result, *_ in links]
    first, stage, _, label = min(failing)
    chain = f"; the chain first goes wrong at step {first + 1}, at {label}"
    return [replace(result, diagnosis=result.diagnosis + chain)
            if here is not None and (here, its_stage) > (first, stage) else result
            for result, here, its_stage, _ in links]


def _updates(trajectory, starts):
    """Per step and parameter, Δ = θ after − θ before (exact in float64 for float32 values)."""
    return [[after - before for after, before in zip(params, start, strict=True)]
            for params, start in zip(trajectory.params, starts, strict=True)]


def _compare_trajectories(name, labels, expected, got, settings, context):
    prefix = f"{KIND}/{settings.optimizer}/{name}"
    sizes = prediction_sizes(got.loss_gradients[0].shape)
    links = [
        (*_worst_step(f"{prefix}/loss", name, "loss", expected.losses, got.losses,
                      [_loss_tolerance(*step, settings.loss_epsilon) for step in zip(
                          got.losses, got.loss_gradient_terms, got.bounds, strict=True)],
                      context, sizes=sizes), 0, "the loss value"),
        (*_worst_step(f"{prefix}/loss_gradient", name, "dL/dy at the model's prediction",
                      expected.loss_gradients, got.loss_gradients,
                      [_loss_gradient_tolerance(terms, settings)
                       for terms in got.loss_gradient_terms], context, sizes=sizes),
         1, "dL/dy")]
    expected_updates, got_updates = _updates(expected, got.starts), _updates(got, got.starts)
    gradients, moves = [], []
    for index, label in enumerate(labels):
        gradients.append((*_worst_step(
            f"{prefix}/grad_{label.name}", name, f"dL/d {label} after backward",
            [grads[index] for grads in expected.grads], [grads[index] for grads in got.grads],
            [_gradient_tolerance(bounds.grad_params[index], settings) for bounds in got.bounds],
            context), 2, f"dL/d {label}"))
        moves.append((*_worst_step(
            f"{prefix}/{label.name}", name,
            f"update of {label} (torch.optim given the model's own gradients)",
            [updates[index] for updates in expected_updates],
            [updates[index] for updates in got_updates],
            [_update_tolerance(step, params[index], settings)
             for step, params in enumerate(got.params, start=1)], context, update=True),
            3, f"the update of {label}"))
    results = _chain_diagnoses(links + gradients + moves)
    order = [0, 1] + [position for index in range(len(labels))
                      for position in (2 + index, 2 + len(labels) + index)]
    return [results[position] for position in order]


def check_trajectory(model, x, targets, *, optimizer, lr, loss, build_optimizer, steps=20,
                     batch_size=10, reduction="sum", seed=0, name=None, layer=None,
                     weight_layout="out_in"):
    """Train ``model`` for ``steps`` steps; judge each step against torch from the same
    parameters.

    Steps: build the twin; draw the batches; train the model, torch taking each step from the
    model's parameters (autograd for the loss and gradients, ``torch.optim`` on the model's
    gradients for the update); compare the losses, gradients and updates, step by step, under
    the tolerances of the module docstring; put the model's parameter values back.

    Args:
        model: a ``Component`` of any framework (``refnet_target.refnet_component`` for a
            refnet module), or any module with ``layer`` given.
        x: inputs, [N, features] or [R, N, features] with replicas.
        targets: targets, [N, outputs] or [R, N, outputs].
        optimizer: ``"sgd"`` or ``"adam"`` (see ``OPTIMIZERS``): torch's side.
        lr: the learning rate.
        loss: the framework's MSE loss object, normalised as ``reduction``, or a ``LossView``
            of it (as ``Target.loss`` builds it).
        build_optimizer: the framework's ``optimizer``, ``build(params, lr)`` (``params`` is
            the module itself for a view with ``optimizer_takes_module``).
        steps: number of updates K.
        batch_size: rows per batch, drawn with replacement (the same rows for every replica).
        reduction: the loss's normalisation: ``"sum"`` (the report's eq. 15, refnet's
            training default), ``"mean"`` or ``"batch_mean"``, or a ``Normalisation`` (any of
            these times a constant, as ``measure_normalisation`` found it).
        seed: seed of the batch draw.
        name: the model's name in the ids; its description when ``None``.
        layer: the structure of a model that is no ``Component`` (``verification.targets.spec``).
        weight_layout: ``"out_in"`` or ``"in_out"`` for such a model.

    Returns:
        One ``CheckResult`` for the loss (``trajectory/<optimizer>/<name>/loss``), and two per
        parameter: its gradient (``…/grad_0.weight``) and its update (``…/0.weight``), each
        at its worst step; one failed ``…/raised`` result when the framework raises.
    """
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"check_trajectory: optimizer must be one of {sorted(OPTIMIZERS)}, "
                         f"got {optimizer!r}")
    component = as_component(model, layer, weight_layout=weight_layout, name=name)
    name = component.name
    normalisation = as_normalisation(reduction)
    if not isinstance(loss, LossView):
        loss = LossView(loss, "loss")
    batches = _draw_batches(x.shape[-2], steps, batch_size, seed)
    settings = _Settings(optimizer, lr, normalisation)

    def run():
        return _train_and_compare(component, x, targets, batches, settings, name, loss,
                                  build_optimizer,
                                  f"worst of {steps} steps, each from the model's own "
                                  f"parameters; {optimizer} lr={lr:.6g}, loss "
                                  f"{normalisation.describe()}, batch {batch_size}, batch "
                                  f"seed {seed}")

    return guarded(f"{KIND}/{optimizer}/{name}/raised", name, KIND, run)


def _train_and_compare(component, x, targets, batches, settings, name, loss, build, context):
    """The training and comparison steps of ``check_trajectory``; values put back after.

    Each round-off budget is in the dtype of what it compares: the updates' from the input,
    the parameters and the loss's gradients; the loss's from the input, the parameters and the
    loss values (a loss computed in float32 in a float64 check gets float32's u).
    """
    twin = torch_twin(component)
    initial = {key: value.clone() for key, value in twin.state_dict().items()}
    saved = [value.detach().clone() for value, _ in component.view.param()]
    try:
        got, expected = _train_side_by_side(component, twin, x, targets, batches, settings,
                                            loss, build)
    finally:
        for (value, _), kept in zip(component.view.param(), saved, strict=True):
            value.copy_(kept)
    length = SAFETY * summation_length(component.layer, batches.shape[-1])
    dtype = computed_dtype(x, *saved, *got.loss_gradients)
    unit = unit_roundoff(dtype)
    loss_unit = unit_roundoff(computed_dtype(x, *saved, *got.losses, *got.loss_gradients))
    settings = replace(settings, epsilon=length * unit, loss_epsilon=length * loss_unit,
                       unit=unit, loss_unit=loss_unit,
                       underflow=max(EXACT_ATOL, length * _smallest_subnormal(dtype)))
    context += f", ε={settings.epsilon:.3g} (loss ε={settings.loss_epsilon:.3g})"
    judged = _steps_before_divergence(expected, computed_dtype(x, *saved, *got.losses))
    if judged < len(expected.losses):
        expected, got = _first_steps(expected, judged), _first_steps(got, judged)
        context += (f"; diverged: not judged from step {judged + 1}, where torch's own "
                    f"reference is no longer finite in the dtype checked")
    results = _compare_trajectories(name, parameter_labels(twin), expected, got, settings,
                                    context)
    return with_figure(results, lambda: _figure(component, twin, initial, x, targets, batches,
                                                settings, name, got, expected))


def _smallest_subnormal(dtype):
    """σ = tiny·eps, the dtype's smallest positive subnormal (2⁻¹⁴⁹ in float32)."""
    info = torch.finfo(dtype)
    return info.tiny * info.eps


def _steps_before_divergence(expected, dtype):
    """How many steps torch's reference stays finite in ``dtype`` (the dtype the framework
    computed in): its loss, dL/dy, gradients and parameters each within ``dtype``'s range.
    From the first step where it is not, the framework cannot be held to it (a correct
    framework diverging with torch is no failure of its own): those steps are not judged. At
    least the first step is always judged (the seeded start is finite)."""
    largest = torch.finfo(dtype).max

    def finite(tensors):
        return all(bool((tensor.abs() <= largest).all()) for tensor in tensors)

    for step in range(len(expected.losses)):
        if not finite([expected.losses[step], expected.loss_gradients[step],
                       *expected.grads[step], *expected.params[step]]):
            return max(step, 1)
    return len(expected.losses)


def _first_steps(trajectory, count):
    """``trajectory`` cut to its first ``count`` steps."""
    return _Trajectory(**{key: value[:count] for key, value in vars(trajectory).items()})


def _figure(component, twin, initial, x, targets, batches, settings, name, got, expected):
    """The picture of a failing trajectory (``checks/figures.py``'s ``training_figure``),
    from the tensors already held: the model's losses, torch's at the model's parameters, and
    the twin trained on its own from ``initial`` (no request to the model; none for a model
    with Dropout, whose twin reads the model's masks); ``None`` with replicas."""
    if got.losses[0].ndim:
        return None
    tolerances = [_loss_tolerance(*step, settings.loss_epsilon) for step in zip(
        got.losses, got.loss_gradient_terms, got.bounds, strict=True)]
    failing = [step for step, (want, have, tolerance) in enumerate(zip(
        expected.losses, got.losses, tolerances, strict=True))
        if _error_ratio(want, have, tolerance) > 1]
    free = None
    if not any(leaf.kind == "dropout" for leaf in leaves(component.layer)):
        twin.load_state_dict(initial)
        free = _free_run(twin, x, targets, batches, settings)
    return training_figure(name, settings.optimizer, [float(loss) for loss in got.losses], free,
                           [float(loss) for loss in expected.losses], failing)


def _free_run(twin, x, targets, batches, settings):
    """The twin's loss per step, trained by ``torch.optim`` on its own from its current
    parameters on ``batches``, in float64."""
    optimizer = OPTIMIZERS[settings.optimizer].build_torch(twin.parameters(), settings.lr)
    losses = []
    for rows in batches:
        optimizer.zero_grad()
        with torch.enable_grad():
            loss = _torch_mse_loss(twin(x[..., rows, :].to(torch.float64)),
                                   targets[..., rows, :], settings.reduction)
            loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    return losses
