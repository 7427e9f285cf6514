"""Every check kind on every component of a target: the same cases for refnet and any other.

``planned_cases(target)`` turns a ``Target`` (verification/targets/adapter.py) into ``Case``s,
one group per component the adapter provides, and lists as ``Skipped`` the cases that need a
component it lacks (only a linear layer and a loss are required). Each case builds FRESH
objects through the adapter (the harness never copies a target's object), writes its own
seeded parameter values through the parameters (so that every framework is checked at the same
point whatever its initialisation), and runs, with torch's default dtype set to the dtype it
checks from start to end. Every case is built once per dtype: float64, then float32, for a
target that declares no ``dtype`` (so a framework wrong only in float32 fails), the declared one
alone otherwise; ``dtypes=`` chooses (``refnet conform --dtype``). The float64 cases keep
their plain names and ids; those of the second dtype carry it (case ``"linear 3→4
[float32]"``, id ``"float32/finite_difference/…"``), while a target declaring float32 keeps
plain ones. A dtype other than a declared one is one failed check, ``dtype/<asked>``, naming
both (``_dtype_conflict``). The cases, for each dtype:

==========================  ===================================================================
component                   checks (kinds)
==========================  ===================================================================
``linear``                  finite differences, autograd twin, accumulation and zero_grad, side
                            effects; Linear 3→4 at batch 5 and 25→2 at batch 1
``relu``, ``tanh``,         finite differences, autograd twin, side effects (and accumulation
``sigmoid``, extra          for PReLU's slope); hand-picked points (±30, ±1e-3, …) and extreme
activations                 ones (±800: a Tanh written as an exp ratio returns NaN there), those
                            in the function's domain and off its kinks; the slope at each kink
                            (``kink``: a declared slope, torch's, or a valid other one as a
                            convention, not a failure)
``sequential``              the report's 2-25-25-25-2 network with each of ReLU and Tanh the
                            target has, ending with Sigmoid where it has one, and a nested
                            container (not for a container declared to return no dL/dx, which
                            cannot nest): finite differences, autograd twin, accumulation, side
                            effects (a factory handing out one instance fails here); instance
                            reuse, one activation and one Linear(3, 3) instance at two
                            positions, reported as a fact (``checks/reuse.py``)
``mse_loss``,               at each shape of ``LOSS_SHAPES`` (batch 1 and 6, 2 and 3
``cross_entropy_loss``,     outputs): consistency (finite differences), value and gradient
``bce_loss``, extra         against torch; at extreme inputs (logit gap 800, p = 1e-12 and
losses                      1 − 1e-12, magnitude 1e18): value and gradient; one
                            normalisation over all (a named reduction times a constant is a
                            convention, a declared one must hold, a varying ratio fails);
                            extra losses (``extra_losses``) against their torch function
``dropout``                 drop rate, fresh masks, rescale, backward under the mask, eval mode
                            (exactly the identity, after a training-mode pass)
``sgd``, ``adam``,          the target's optimiser against ``torch.optim`` on the same values
extra optimisers            and gradients, 20 steps (on a Linear's parameters for an optimiser
                            built on a module), at torch's defaults and at other values of
                            each setting it declares (``optimizer_settings``)
``training``                the report network (Tanh, else ReLU; Sigmoid output where there is
                            one) trained for 20 steps with the target's MSE loss, normalised as
                            measured, and SGD (and Adam); at each step, from the target's own
                            parameters, its loss, dL/dy, gradients and update against the twin
                            and ``torch.optim`` (``checks/trajectory.py``)
==========================  ===================================================================

Finite differences take the protocol path (one element at a time) for any framework but
refnet, whose own classes have a faster exact twin
(verification/checks/finite_difference/replica_path.py).
Every result carries its ``component``. A case that raises is one failed result; the run goes
on (``run_cases``).
"""

import sys
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch

import refnet
from verification.checks.accumulation import check_accumulation
from verification.checks.dropout import check_dropout
from verification.checks.figures import (
    activation_figure,
    activation_points,
    loss_slice_figure,
    with_figure,
)
from verification.checks.finite_difference import check_backward
from verification.checks.kink import check_kink, find_kinks
from verification.checks.loss import (
    check_loss,
    extreme_inputs,
    measure_normalisation,
)
from verification.checks.optimizer import check_optimizer
from verification.checks.reference import (
    check_against_reference,
    guarded,
    instance_pairs,
    torch_twin,
)
from verification.checks.result import CheckResult
from verification.checks.reuse import check_reuse
from verification.checks.side_effects import check_side_effects
from verification.checks.trajectory import ADAM_BETAS, ADAM_EPS, check_trajectory
from verification.course.rules import (
    REQUIRED,
    RULE,
    RULES_COMPONENT,
    required_rule,
    run_rules,
    source_rules,
)
from verification.targets import spec
from verification.targets.adapter import CHECK_DTYPES, POSITIONAL_SETTINGS
from verification.targets.protocol import ProtocolError
from verification.targets.state import torch_state_kept
from verification.vocabulary.losses import loss_kind
from verification.vocabulary.optimizer_settings import setting_cases, settings_label

__all__ = ["Case", "Skipped", "target_cases", "planned_cases", "course_cases", "run_cases",
           "check_target", "rerun", "dtype_name",
           "uniform_input", "initialise", "ADAM_SETTINGS",
           "STEPS", "QUICK_STEPS", "COMPONENT_ORDER"]

ADAM_SETTINGS = {"lr": 0.01, "betas": ADAM_BETAS, "eps": ADAM_EPS}
"""The target's Adam is built with these, as the twin's ``torch.optim.Adam`` in trajectories."""
COMPONENT_ORDER = ("rules", "linear", "relu", "tanh", "sigmoid", "dropout", "mse_loss",
                   "cross_entropy_loss", "bce_loss", "sgd", "adam", "sequential", "training")
"""Components from the smallest to those built of others (reports list failures so)."""
STEPS = 20
"""Steps of the optimiser and training trajectories; ``QUICK_STEPS`` with ``quick=True``."""
QUICK_STEPS = 5
HAND_PICKED = (-30.0, -1.0, -1e-3, 0.5, 1.0, 30.0)
EXTREME = (-800.0, -50.0, 0.5, 50.0, 800.0)
"""Beyond exp's range in float64 (|x| > 709.8): a correct activation is still finite there.
0.5 gives the comparison its scale: every other derivative here underflows to about 0, so
without it the tolerance (a few units of round-off of the terms) would exceed the largest
expected value and the check could not fail on the derivative."""


@dataclass(frozen=True)
class Case:
    """One group of checks.

    Attributes:
        name: unique, e.g. ``"linear 3→4"``.
        classes: what it exercises: component names (``"linear"``, …), or for refnet's own
            cases its classes (the mutation self-test matches them with its mutants).
        kinds: the check kinds it produces.
        run: returns a list of ``CheckResult``.
        component: the component its results are filed under.
        dtype: torch's default dtype while it runs (the dtype it checks); ``None`` leaves it
            as it is.
        tag: the dtype's name where the case's ids carry it (``"float32"`` for a target
            checked in both dtypes: ids ``float32/…``), else empty.
    """

    name: str
    classes: tuple
    kinds: tuple
    run: Callable[[], list]
    component: str = ""
    dtype: torch.dtype | None = None
    tag: str = ""


def uniform_input(shape, seed, scale=2.0, dtype=torch.float64):
    """Uniform in [-scale, scale), drawn from ``seed`` (every check's input)."""
    generator = torch.Generator().manual_seed(seed)
    return (scale * (2 * torch.rand(shape, generator=generator, dtype=torch.float64) - 1)).to(dtype)


def initialise(component, seed):
    """Write seeded values into the target's parameters through ``param()``: weights normal
    with Xavier's std (eq. 16), biases normal with std 0.5 (nonzero, so a bias that is never
    added shows in the output), an extra activation's learned tensor (PReLU's slope) uniform
    in [0.05, 0.5] (distinct per feature, below 1 so the slopes on either side of the kink
    differ), in the target's own layout and dtype; each instance once."""
    generator = torch.Generator().manual_seed(seed)
    pairs = component.view.param()
    try:
        by_instance = instance_pairs(component, pairs)
    except ProtocolError:  # param() contradicts the structure: the checks that read it say so
        return component
    for leaf, leaf_pairs in by_instance:
        if leaf.kind != "linear":
            for value, _ in leaf_pairs:
                value.copy_((0.05 + 0.45 * torch.rand(value.shape, generator=generator,
                                                       dtype=torch.float64)).to(value.dtype))
            continue
        weight, bias = leaf_pairs[0][0], leaf_pairs[1][0]
        std = (2 / (leaf.in_features + leaf.out_features)) ** 0.5
        values = std * torch.randn(leaf.out_features, leaf.in_features,
                                   generator=generator, dtype=torch.float64)
        if component.weight_layout == "in_out":
            values = values.T
        if tuple(weight.shape) == tuple(values.shape):
            weight.copy_(values.to(weight.dtype))
        if bias.numel() == leaf.out_features:
            bias.copy_((0.5 * torch.randn(leaf.out_features, generator=generator,
                                          dtype=torch.float64)).view_as(bias).to(bias.dtype))
    _require_live_values(component, pairs)
    return component


def _require_live_values(component, written):
    """``param()`` must hand out the tensors the module computes with: an optimiser updates
    them in place. Values written through one call must be seen by the next."""
    for index, ((before, _), (after, _)) in enumerate(zip(written, component.view.param(),
                                                          strict=True)):
        if not torch.equal(before, after):
            raise ProtocolError(
                f"{component.name}.param()[{index}] returns a copy: values written into it "
                "are not seen by the next param() call, so an optimiser's in-place update "
                "would be lost; return the tensors the module itself uses")


class _Builder:
    """Builds a target's components at seeded values, in the dtype ``dtype``."""

    def __init__(self, target, seed, quick, dtype):
        self.target, self.seed, self.dtype = target, seed, dtype
        self.steps = QUICK_STEPS if quick else STEPS
        self.has = target.has

    def module(self, layer, name=None, seed_offset=0):
        return initialise(self.target.component(layer, self.seed + seed_offset, name=name,
                                                dtype=self.dtype), self.seed + seed_offset)

    def input(self, shape, scale=2.0, seed_offset=1):
        return uniform_input(shape, self.seed + seed_offset, scale, self.dtype)

    def points(self, values):
        return torch.tensor([values], dtype=torch.float64).to(self.dtype)


@dataclass(frozen=True)
class Skipped:
    """A case not built because the target lacks a component it needs.

    Attributes:
        name: the case's name, e.g. ``"report network (relu)"``.
        component: the component its results would be filed under.
        reason: why, e.g. ``"the adapter has no relu()"``.
    """

    name: str
    component: str
    reason: str

    def as_dict(self):
        return {"case": self.name, "component": self.component, "reason": self.reason}


class _Plan:
    """The cases of a target, and those skipped for a missing component; under a ``course``
    (``verification/course/profile.py``) only the cases of the components it plans, and only
    those skipped for lack of a component it requires."""

    def __init__(self, target, course=None):
        self.target, self.course, self.cases, self.skipped = target, course, [], []

    def add(self, case, needs=()):
        """Add ``case`` when the target has every component in ``needs`` (a name, or a tuple
        of names of which one will do), else skip it, naming what is missing."""
        if self.course is not None and not self.course.plans(case.classes[0]):
            return
        missing = [need if isinstance(need, tuple) else (need,) for need in needs]
        missing = [names for names in missing if not any(map(self.target.has, names))]
        if missing and self.course is not None and not any(
                name in self.course.required for names in missing for name in names):
            return
        if missing:
            self.skipped.append(Skipped(case.name, case.classes[0], "the adapter has no " + (
                " and no ".join(f"{name}()" for names in missing for name in names))))
        else:
            self.cases.append(case)


def _module_checks(build, layer, batch, kinds, name=None):
    """The named check kinds on a fresh module of ``layer`` each, at one input."""
    width = next(spec.leaves(layer)).in_features or 5
    x = build.input((batch, width))
    runs = {
        "finite_difference": lambda: check_backward(build.module(layer, name), x),
        "autograd": lambda: check_against_reference(build.module(layer, name), x),
        "accumulation": lambda: check_accumulation(build.module(layer, name), x),
        "side_effect": lambda: check_side_effects(build.module(layer, name), x),
    }
    return [result for kind in kinds for result in runs[kind]()]


_MODULE_KINDS = ("finite_difference", "autograd", "accumulation", "side_effect")
_ACTIVATION_KINDS = ("finite_difference", "autograd", "side_effect")
ACTIVATIONS = ("relu", "tanh", "sigmoid")
"""The report's element-wise modules, each optional; an adapter adds others by the torch
function they mirror (``extra_activations``, ``Target.activations``)."""
_REFERENCES = {"relu": torch.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid}
KINK_CANDIDATES = (0.0, 1.0, -1.0, 3.0, -3.0, 6.0, -6.0)
"""Where an activation's kinks are looked for (``find_kinks``): 0, torch's usual corners (ReLU6
at 6, Hardtanh at ±1, Hardsigmoid and Hardswish at ±3), and ± every number among its declared
keyword arguments (a Hardtanh's ``max_val``, a Threshold's ``threshold``)."""


def _activation_layer(build, kind, features):
    return spec.activation(kind, features, build.target.activations.get(kind))


def _reference_function(build, kind):
    """The float64 torch function of an activation (an extra one at its probe parameters):
    where its kinks are, which points are in its domain."""
    function = build.target.activations.get(kind)
    if function is None:
        return _REFERENCES[kind]
    return lambda x: function(x, *function.probe_parameters(1))


def _kink_candidates(build, kind):
    function = build.target.activations.get(kind)
    numbers = [value for _, value in (function.options if function else ())
               if isinstance(value, (int, float)) and not isinstance(value, bool)]
    return (*KINK_CANDIDATES, *numbers, *(-value for value in numbers))


def _comparable_points(reference, values, corners):
    """The points of ``values`` in the function's domain (f and f' finite in float64) and off
    its kinks and jumps, where the one-sided slopes are a convention (the kink check's)."""
    x = torch.tensor(values, dtype=torch.float64)
    with torch.enable_grad():
        leaf = x.clone().requires_grad_(True)
        y = reference(leaf)
        (slope,) = torch.autograd.grad(y.sum(), leaf)
    keep = torch.isfinite(y.detach()) & torch.isfinite(slope)
    return tuple(value for value, kept in zip(values, keep.tolist(), strict=True)
                 if kept and value not in corners)


def _activation_cases(build, kind):
    reference = _reference_function(build, kind)
    corners = find_kinks(reference, _kink_candidates(build, kind))
    off = (*corners.kinks, *corners.jumps)

    def at_points(values, what):
        values = _comparable_points(reference, values, off)
        layer = _activation_layer(build, kind, len(values))
        return check_against_reference(build.module(layer, f"{spec.describe(layer)} at {what}"),
                                       build.points(values)) if values else []

    def at_kink(at):
        component = build.module(_activation_layer(build, kind, 3))
        declared = build.target.facts.relu_slope_at_zero if kind == "relu" else None
        return [check_kink(component, torch_twin(component), at=at, declared_slope=declared,
                           dtype=build.dtype)]

    def pictured(results):
        return with_figure(results, lambda: _activation_figure(build, kind, reference, off))

    kinds = _ACTIVATION_KINDS + (("accumulation",) if _has_parameters(build, kind) else ())
    cases = [
        Case(f"{kind}", (kind,), kinds, lambda: pictured(_activation_checks(build, kind))),
        Case(f"{kind} at hand-picked and extreme points", (kind,), ("autograd",),
             lambda: pictured([*at_points(HAND_PICKED, "hand-picked points"),
                               *at_points(EXTREME, "extreme points")])),
    ]
    cases += [Case(f"{kind} at its kink x={at:g}" if at else f"{kind} at its kink", (kind,),
                   ("kink",), lambda at=at: at_kink(at)) for at in corners.kinks]
    return cases


def _activation_figure(build, kind, reference, off):
    """The picture of a failing activation (``checks/figures.py``): a fresh module of one
    feature on ``activation_points``, the points of [−6, 6] and out to the extreme ones in
    the function's domain and off its kinks and jumps ``off``, one point a row."""
    points = activation_points(lambda values: _comparable_points(reference, values, off))
    layer = _activation_layer(build, kind, 1)
    component = build.module(layer, f"{spec.describe(layer)} on the figure's points")
    return activation_figure(component, build.points(points).reshape(-1, 1), name=kind,
                             dtype=dtype_name(build.dtype))


def _has_parameters(build, kind):
    function = build.target.activations.get(kind)
    return function is not None and bool(function.parameters)


def _activation_checks(build, kind):
    x = build.input((7, 5), scale=4.0)
    layer = _activation_layer(build, kind, 5)
    return [*check_backward(build.module(layer), x),
            *check_against_reference(build.module(layer), x),
            *(check_accumulation(build.module(layer), x) if _has_parameters(build, kind)
              else []),
            *check_side_effects(build.module(layer), x)]


def _loss_inputs(kind, facts, dtype, seed, shape=None):
    """A prediction and target for a loss of ``kind`` (a ``LossKind``) at ``shape``
    ([batch, outputs]; the first of ``LOSS_SHAPES`` when ``None``): logits with class targets
    (one-hot, or indices as declared) for cross-entropy, probabilities in [0.05, 0.95] with
    0/1 targets for BCE, logits with 0/1 targets for ``*_with_logits`` losses, real values
    for regression losses (predictions spread over 2τ, τ the loss's threshold, so that both
    sides of Huber's δ are met)."""
    generator = torch.Generator().manual_seed(seed)
    batch, outputs = shape or LOSS_SHAPES[0]

    def normal(scale):
        return scale * torch.randn(batch, outputs, generator=generator, dtype=torch.float64)

    def binary():
        return (torch.rand(batch, outputs, generator=generator) > 0.5).to(torch.float64)

    if kind.inputs == "probabilities":
        prediction = 0.05 + 0.9 * torch.rand(batch, outputs, generator=generator,
                                             dtype=torch.float64)
        return prediction.to(dtype), binary().to(dtype)
    if kind.inputs == "logits":
        return normal(3.0).to(dtype), binary().to(dtype)
    if kind.inputs == "real":
        prediction = normal(1.0 if kind.name == "mse" else 2 * kind.threshold)
        return prediction.to(dtype), torch.rand(batch, outputs, generator=generator,
                                                dtype=torch.float64).to(dtype)
    prediction = normal(3.0).to(dtype)
    labels = torch.randint(outputs, (batch,), generator=generator)
    if facts.cross_entropy_target == "index":
        return prediction, labels
    return prediction, torch.nn.functional.one_hot(labels, outputs).to(dtype)


LOSS_SHAPES = ((6, 3), (1, 2), (1, 3), (6, 2))
"""The grid every loss is checked at, fully: batch 1 and more, 2 and 3 outputs (so that
mean, sum and batch mean differ, and a loss written for 2 classes is measured at 2)."""
_LOSS_KINDS = {"mse_loss": loss_kind("mse"), "cross_entropy_loss": loss_kind("cross_entropy"),
               "bce_loss": loss_kind("bce")}


def _loss_samples(build, component, shapes, seed_offset=0):
    """``(prediction, target)`` at each of ``shapes`` for the loss ``component``."""
    facts = build.target.facts
    kind = _loss_kinds(build.target)[component]
    return [_loss_inputs(kind, facts, build.dtype, build.seed + seed_offset + index, shape)
            for index, shape in enumerate(shapes)]


def _loss_kinds(target):
    """Every loss component of ``target`` → its ``LossKind``: the built-in ones, then the
    adapter's ``extra_losses``."""
    return {**_LOSS_KINDS, **target.extra_losses}


def _loss_case(build, component):
    """Every check of ``check_loss`` on the loss ``component``: the ``LOSS_SHAPES`` grid and
    the extreme inputs of its kind, in the check dtype."""
    facts = build.target.facts
    kind = _loss_kinds(build.target)[component]

    def run():
        grid = _loss_samples(build, component, LOSS_SHAPES)
        declared = facts.mse_reduction if component == "mse_loss" else None
        extremes = extreme_inputs(kind, build.dtype, index_targets=(
            kind.name == "cross_entropy" and facts.cross_entropy_target == "index"))
        view = build.target.loss(component, dtype=build.dtype)
        results = check_loss(view, *grid[0], kind=kind, reduction=declared, name=component,
                             seed=build.seed, also_at=grid[1:], extremes=extremes)
        return with_figure(results, lambda: _loss_figure(build, view, kind, grid, declared,
                                                         component))

    return Case(component, (component,), ("finite_difference", "autograd"), run)


def _loss_figure(build, view, kind, grid, declared, component):
    """The picture of a failing loss (``checks/figures.py``) along a slice through the first
    grid input where the loss returns a number and a gradient (a loss written for 2 classes
    raises at 3), torch's side normalised as the loss measures over the grid (torch's mean
    where no normalisation fits)."""
    try:
        normalisation = measure_normalisation(view, grid, kind=kind, declared=declared)
    except ValueError:  # no normalisation fits: the caption says torch's mean is drawn
        normalisation = None
    figures = (loss_slice_figure(view, kind, prediction, target, normalisation,
                                 name=component, dtype=dtype_name(build.dtype))
               for prediction, target in grid)
    return next(filter(None, figures), None)


def _dropout_case(build):
    def run():
        x = build.input((6, 5))
        dropout = build.module(spec.dropout(0.3, features=x.shape[1]), "Dropout(p=0.3)")
        return check_dropout(dropout, x, p=0.3, seed=build.seed, samples=20_000)

    return Case("dropout", ("dropout",), ("statistical", "property"), run)


def _optimizer_host(build):
    """The module an optimiser built on a module is stepped on (``optimizer_takes_module``):
    the target's Linear 3→4, whose weight and bias are the tensors stepped; else ``None``."""
    if not build.target.facts.optimizer_takes_module:
        return None
    return build.module(spec.linear(3, 4), "Linear(3, 4) holding the optimiser's parameters"
                        ).view


_OPTIMIZER_LR = {"sgd": 0.1, "adam": ADAM_SETTINGS["lr"]}
"""The learning rate of each optimiser's check; 0.05 for the extra ones."""


def _optimizer_cases(build):
    """One case per optimiser and setting (``setting_cases``): ``sgd``, ``adam`` and the
    extra optimisers at torch's defaults, then e.g. ``sgd[momentum=0.9,nesterov=True]``."""
    target, cases = build.target, []
    for factory, torch_class in target.optimizer_classes().items():
        contract = POSITIONAL_SETTINGS.get(factory, ())
        declared = target.optimizer_settings[factory]
        component = factory if factory in POSITIONAL_SETTINGS else torch_class.__name__.lower()
        lr = _OPTIMIZER_LR.get(factory, 0.05)
        for settings in setting_cases(torch_class, (*contract, *declared)):
            name = settings_label(component, torch_class, settings)

            def run(factory=factory, torch_class=torch_class, settings=settings, name=name,
                    lr=lr, contract=contract):
                def construct(params):
                    return target.build(factory, params, lr,
                                        *(settings[k] for k in contract), dtype=build.dtype,
                                        settings={k: v for k, v in settings.items()
                                                  if k not in contract})

                return check_optimizer(construct, torch_class, lr=lr, options=settings,
                                       dtype=build.dtype, seed=build.seed, name=name,
                                       steps=build.steps, host=_optimizer_host(build))

            needs = (factory,) if factory in POSITIONAL_SETTINGS else ()
            cases.append((Case(name, (component,), ("trajectory",), run), needs))
    return cases


TRAINING_BATCH = 10
"""Rows per step of the training trajectories."""


def _training_network(build):
    """The report network the training case trains: Tanh hidden layers (ReLU without Tanh),
    and a Sigmoid output where the target has one."""
    hidden = "tanh" if build.has("tanh") else "relu"
    output = "sigmoid" if build.has("sigmoid") else None
    return spec.report_network(hidden, output=output), hidden, output


def _training_case(build):
    target = build.target
    optimizers = [name for name in ("sgd", "adam") if target.has(name)]
    layer, hidden, output = _training_network(build)
    label = f"report network ({hidden}{', no sigmoid' if output is None else ''})"

    def run():
        generator = torch.Generator().manual_seed(build.seed)
        x, labels = refnet.disk_dataset(40, generator=generator, dtype=torch.float64)
        x, targets = x.to(build.dtype), refnet.one_hot(labels, dtype=torch.float64).to(
            build.dtype)
        shapes = ((TRAINING_BATCH, targets.shape[-1]), *LOSS_SHAPES)
        normalisation = measure_normalisation(
            target.loss("mse_loss", dtype=build.dtype), _loss_samples(build, "mse_loss", shapes),
            kind="mse", declared=target.facts.mse_reduction)
        results = []
        for optimizer in optimizers:
            lr = (_stable_sgd_rate(normalisation, (TRAINING_BATCH, targets.shape[-1]))
                  if optimizer == "sgd" else ADAM_SETTINGS["lr"])
            model = build.module(layer, label)
            results += check_trajectory(
                model, x, targets, optimizer=optimizer, lr=lr, steps=build.steps,
                batch_size=TRAINING_BATCH, reduction=normalisation, seed=build.seed,
                loss=target.loss("mse_loss", dtype=build.dtype),
                build_optimizer=_optimizer_factory(target, optimizer, build.dtype))
        return results

    classes = ("training", "sequential", "linear", hidden, *([output] if output else []),
               "mse_loss", *optimizers)
    return Case("training", classes, ("trajectory",), run)


TRAINING_SGD_LR = 0.05
"""SGD's rate in the training case for a loss normalised as the mean (torch's MSELoss)."""


def _stable_sgd_rate(normalisation, shape):
    """SGD's rate for a loss normalised as ``normalisation`` (measured from the target's own
    loss) at batches of ``shape``: ``TRAINING_SGD_LR`` times c_mean / c, so that every
    normalisation takes the step a mean would (a summed MSE, c = 1 at a 10 × 2 batch, trains
    at 0.05 / 20 = 0.0025: at 0.05 its steps are 20 times a mean's, and a correct framework
    diverged, to a loss of 5e39 by step 16 in float32). Adam's step does not scale with the
    loss, and keeps its rate."""
    mean = 1.0 / (shape[0] * shape[1])
    return TRAINING_SGD_LR * mean / normalisation.factor(shape)


def _optimizer_factory(target, optimizer, dtype):
    if optimizer == "sgd":
        return lambda params, lr: target.build("sgd", params, lr, dtype=dtype)
    return lambda params, lr: target.build("adam", params, lr, ADAM_SETTINGS["betas"],
                                           ADAM_SETTINGS["eps"], dtype=dtype)


def _container_cases(build):
    """The report network with each hidden activation the target has, and a nested
    container; each ends with a Sigmoid where the target has one."""
    output = "sigmoid" if build.has("sigmoid") else None
    tail = (output,) if output else ()
    cases = []
    for hidden in ("relu", "tanh"):
        name = f"report network ({hidden})"
        cases.append((Case(name, ("sequential", "linear", hidden, *tail), _MODULE_KINDS,
                           lambda hidden=hidden, name=name: _module_checks(
                               build, spec.report_network(hidden, output=output), 8,
                               _MODULE_KINDS, name=name)),
                      ("sequential", hidden)))
    hidden = next((kind for kind in ("tanh", "relu") if build.has(kind)), None)
    inner = [spec.linear(3, 4), *([spec.activation(hidden, 4)] if hidden else [])]
    outer = [spec.linear(4, 2), *([spec.activation(output, 2)] if output else [])]
    nested = spec.sequential(spec.sequential(*inner), spec.sequential(*outer))
    cases += _reuse_cases(build, hidden)
    if build.target.facts.sequential_returns_grad:
        cases.append((Case("nested sequential",
                           ("sequential", "linear", *([hidden] if hidden else []), *tail),
                           ("finite_difference", "autograd"),
                           lambda: _module_checks(build, nested, 5,
                                                  ("finite_difference", "autograd"))),
                      ("sequential",)))
    return cases


def _reuse_cases(build, hidden):
    """The instance-reuse facts (``checks/reuse.py``): one activation instance at two
    positions, and one Linear(3, 3) instance at two positions."""
    hidden = hidden or next((kind for kind in ACTIVATIONS if build.has(kind)), None)
    act = [spec.activation(hidden, 3)] if hidden else []
    shared_linear = spec.shared("linear", spec.linear(3, 3))
    layers = {"linear": spec.sequential(spec.linear(2, 3), *act, shared_linear, *act,
                                        shared_linear, spec.linear(3, 2))}
    if hidden:
        shared_act = spec.shared("act", spec.activation(hidden, 3))
        layers = {hidden: spec.sequential(spec.linear(2, 3), shared_act, spec.linear(3, 3),
                                          shared_act, spec.linear(3, 2)), **layers}
    x = build.input((5, 2))
    classes = ("sequential", "linear", *([hidden] if hidden else []))
    return [(Case(f"instance reuse ({reused})", classes,
                  ("autograd",),
                  lambda layer=layer, reused=reused: [check_reuse(
                      build.module, layer, x, seed=build.seed,
                      name=f"{spec.describe(layer)} reusing one {reused}")]),
             ("sequential",)) for reused, layer in layers.items()]


def planned_cases(target, seed=0, quick=False, dtypes=None, course=None):
    """``(cases, skipped)``: the cases built for ``target`` in a fixed order (module
    docstring), and the ``Skipped`` ones, for lack of a component they need.

    Args:
        target: a ``Target``.
        seed: the seed of every input, parameter value and upstream gradient.
        quick: ``QUICK_STEPS`` steps in the trajectories.
        dtypes: the dtypes to check in, each its full set of cases, in this order; ``None``:
            the course's, else the target's own (``Facts.dtypes``). A dtype the target does
            not compute in (it declares another) gives the one failing case of
            ``_dtype_conflict`` instead.
        course: a ``Course`` (``verification/course/``): its rules first (the source, and
            each required component), the cases of the components it plans, and, for a
            target whose calls are watched (``Target.forbidden_calls``), the rules of the
            run last.

    Raises:
        ValueError: ``dtypes`` is empty, repeats one, or holds other than float64 and float32.
    """
    if dtypes is None and course is not None and course.dtypes:
        dtypes = tuple(getattr(torch, name) for name in course.dtypes)
    dtypes = target.facts.dtypes if dtypes is None else tuple(dtypes)
    if not dtypes or len(set(dtypes)) < len(dtypes) or not set(dtypes) <= set(CHECK_DTYPES):
        raise ValueError(f"dtypes {dtypes!r}: expected one or both of {CHECK_DTYPES}, "
                         "each once")
    cases, skipped = course_cases(target, course) if course is not None else [], None
    for dtype in dtypes:
        if target.facts.dtype not in (None, dtype):
            cases.append(_dtype_conflict(target, dtype))
            continue
        planned, missing = _dtype_cases(target, seed, quick, dtype, course)
        cases += planned
        skipped = missing if skipped is None else skipped
    if course is not None and course.forbidden and target.forbidden_calls() is not None:
        cases.append(Case("course rules (run)", (RULES_COMPONENT,), (RULE,), lambda: run_rules(
            course, target.forbidden_calls(), target.name), component=RULES_COMPONENT))
    return cases, skipped or []


def course_cases(target, course):
    """The cases that judge ``course``'s rules before any other: the source of the target
    (``rule/<namespace>/source``), then each required component (``required/<component>``,
    filed under that component)."""
    cases = []
    if course.forbidden:
        cases.append(Case("course rules (source)", (RULES_COMPONENT,), (RULE,),
                          lambda: source_rules(course, target.source, target.name),
                          component=RULES_COMPONENT))
    for component in course.required:
        cases.append(Case(f"requires {component}", (component,), (REQUIRED,),
                          lambda component=component: [required_rule(
                              course, component, target.has(component), target.name)],
                          component=component))
    return cases


def _dtype_cases(target, seed, quick, dtype, course=None):
    """``planned_cases`` in the one ``dtype``: ``(cases, skipped)``, the names and ids
    tagged with the dtype unless it is the target's first (``Facts.dtypes``)."""
    build = _Builder(target, seed, quick, dtype)
    linear, tiny = spec.linear(3, 4), spec.linear(25, 2)
    plan = _Plan(target, course)
    plan.add(Case("linear 3→4", ("linear",), _MODULE_KINDS,
                  lambda: _module_checks(build, linear, 5, _MODULE_KINDS)))
    plan.add(Case("linear 25→2, batch 1", ("linear",), ("finite_difference", "autograd"),
                  lambda: _module_checks(build, tiny, 1, ("finite_difference", "autograd"))))
    for kind in (*ACTIVATIONS, *target.activations):
        for case in _activation_cases(build, kind):
            plan.add(case, (kind,))
    for case, needs in _container_cases(build):
        if course is None or course.instance_reuse or "instance reuse" not in case.name:
            plan.add(case, needs)
    for component in _loss_kinds(target):
        plan.add(_loss_case(build, component), (component,))
    plan.add(_dropout_case(build), ("dropout",))
    for case, needs in _optimizer_cases(build):
        plan.add(case, needs)
    plan.add(_training_case(build), ("sequential", "mse_loss", ("tanh", "relu"),
                                     ("sgd", "adam")))
    tag = "" if dtype == target.facts.dtypes[0] else dtype_name(dtype)
    cases = [replace(case, name=f"{case.name} [{tag}]" if tag else case.name,
                     component=case.component or case.classes[0], dtype=dtype, tag=tag)
             for case in plan.cases]
    return cases, plan.skipped


def dtype_name(dtype):
    """``"float32"`` for ``torch.float32``: a dtype as ids, records and ``--dtype`` write it."""
    return str(dtype).removeprefix("torch.")


def _dtype_conflict(target, dtype):
    """The case standing for ``dtype`` asked of a target that declares another: one failed
    check ``dtype/<asked>`` (component ``target``) naming both, so the run neither checks it in
    a dtype it was not asked for nor reports nothing."""
    asked, declared = dtype_name(dtype), dtype_name(target.facts.dtype)
    inf = float("inf")
    detail = (f"{target.name} declares dtype {declared} (it computes only in {declared}), but "
              f"the checks were asked to run in {asked} (--dtype {asked}); nothing was checked "
              f"in {asked}: ask for --dtype {declared}, or leave --dtype out")

    def run():
        return [CheckResult(f"dtype/{asked}", target.name, "error", False, inf, inf, 0.0, inf,
                            detail)]

    return Case(f"dtype {asked}", ("target",), ("error",), run, component="target")


def target_cases(target, seed=0, quick=False, dtypes=None, course=None):
    """Every case for ``target``, in a fixed order (module docstring); optional components
    only where the adapter provides them (``planned_cases`` also lists the skipped ones).
    ``quick`` shortens the trajectories to ``QUICK_STEPS`` steps (every other check is the
    same); ``dtypes`` and ``course`` as ``planned_cases``'s."""
    return planned_cases(target, seed, quick, dtypes, course)[0]


def run_cases(selected, progress=None):
    """Run ``selected`` cases; a case that raises becomes one failed result.

    Each result is filed under its case's ``component`` and records its case's ``dtype``;
    its id is prefixed with the case's ``tag`` (``float32/…``) where it has one. A case with a
    ``dtype`` runs with torch's default dtype set to it from start to end (a framework that
    allocates with ``torch.empty(n)`` inside ``forward`` gets the dtype checked), restored
    afterwards.

    Args:
        selected: a list of ``Case``.
        progress: optional callable ``progress(case_name)`` called before each case.

    Returns:
        The concatenated ``CheckResult`` list.
    """
    results = []
    for case in selected:
        if progress is not None:
            progress(case.name)
        with torch_state_kept():
            if case.dtype is not None:
                torch.set_default_dtype(case.dtype)
            outcome = guarded(f"error/{case.name}", case.name, "error", case.run)
        dtype = dtype_name(case.dtype) if case.dtype is not None else ""
        results += [replace(result, id=f"{case.tag}/{result.id}" if case.tag else result.id,
                            component=case.component, case=case.name, dtype=dtype,
                            diagnosis=_diagnosis(result))
                    for result in outcome]
    return results


def _diagnosis(result):
    """A failing result's diagnosis (``checks/diagnosis.py``; a course rule's is its
    sentence): its own, else, for a failure no comparison diagnosed (a check that measures no
    tensor against another), that no pattern was recognised; ``""`` for a pass."""
    if result.passed or result.diagnosis:
        return result.diagnosis
    return "no recognisable pattern (no tensors compared: see the detail)"


def check_target(target, *, seed=0, quick=False, dtypes=None, progress=None, course=None):
    """Run every case of ``target`` (a ``Target``, or a spec for ``load_target``) in
    ``dtypes`` (``planned_cases``'s: by default float64 and float32 unless it declares one),
    under ``course`` (``planned_cases``'s: here, in this process, its source rules and
    required components; what the target calls while it runs is watched only by ``refnet
    conform``).

    This runs the target's code in YOUR process, with your permissions and nothing confining
    it: use it for code you trust; ``refnet conform`` runs it confined.

    Returns:
        The ``CheckResult``s, each with its ``component``, ``case`` and ``dtype``.
    """
    return run_cases(target_cases(_loaded(target), seed, quick, dtypes, course), progress)


def rerun(target, case, check_id=None, *, seed=0, quick=False, stream=None):
    """Rerun one case of a target in your own process.

    The target's code runs here, unconfined (no judge, executor or sandbox): for code you
    trust. A report's reproducers do not use this; they are ``refnet conform SPEC --case NAME
    --check ID`` (``verification.conform.reproducer``), which runs the case confined.

    Args:
        target: a ``Target`` or a spec for ``load_target``.
        case: the case's name (a result's ``case``), e.g. ``"tanh"``.
        check_id: keep only this check's result.
        seed: the seed of the run being reproduced.
        quick: whether it was a ``--quick`` run.
        stream: where each result's detail is printed; ``sys.stdout`` when ``None``.

    Returns:
        The results (of ``check_id`` alone when given).

    Raises:
        ValueError: no case of that name, or no check ``check_id`` in it.
    """
    target = _loaded(target)
    cases = [c for c in target_cases(target, seed, quick) if c.name == case]
    if not cases:
        names = [c.name for c in target_cases(target, seed, quick)]
        raise ValueError(f"rerun: {target.name} has no case {case!r}; its cases: {names}")
    results = [r for r in run_cases(cases) if check_id is None or r.id == check_id]
    if not results:
        ids = [r.id for r in run_cases(cases)]
        raise ValueError(f"rerun: case {case!r} of {target.name} has no check {check_id!r}; "
                         f"its checks: {ids}")
    for result in results:
        print(("PASS " if result.passed else "FAIL ") + result.detail, file=stream or sys.stdout)
    return results


def _loaded(target):
    if isinstance(target, str):
        from verification.targets.adapter import load_target
        return load_target(target)
    return target
