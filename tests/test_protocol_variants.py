"""Protocol variants met in real frameworks: parameter structures, hooks, optional components,
the check dtype held for the whole check, and losses normalised by any constant factor.

The fixture frameworks (``tests/frameworks/``) exercise each variant end to end
(``tests/test_targets.py``); these tests pin the harness's side of each one on small
frameworks written here.
"""

import io
import sys
from pathlib import Path

import pytest
import torch

from verification import Target, check_loss, load_target
from verification.checks.loss import measure_normalisation
from verification.suite.conformance import planned_cases, run_cases
from verification.targets import spec
from verification.targets.protocol import (
    GradientProbe,
    Hooks,
    LossView,
    ModuleView,
    ProtocolError,
    read_pairs,
)

FRAMEWORKS = Path(__file__).parent / "frameworks"
F64, F32 = torch.float64, torch.float32


def _handout():
    """The handout fixture framework, imported with torch's grad mode kept."""
    sys.path.insert(0, str(FRAMEWORKS))
    try:
        return load_target(str(FRAMEWORKS / "handout_adapter.py")).adapter
    finally:
        sys.path.remove(str(FRAMEWORKS))


# --- parameters in any structure ------------------------------------------------------------


class _Parameter:
    def __init__(self, value):
        self.data, self.grad = value, torch.zeros_like(value)


def test_nested_dict_and_parameter_objects_are_read_in_order():
    w, b = torch.ones(2, 3), torch.zeros(2)
    dw, db = torch.full((2, 3), 2.0), torch.full((2,), 3.0)
    objects = [_Parameter(w), _Parameter(b)]
    for structure in ([[(w, dw)], [], [(b, db)]], {"w": (w, dw), "b": (b, db)},
                      [objects[:1], objects[1:]]):
        pairs = read_pairs(structure, "m")
        assert [value for value, _ in pairs] == [w, b] or all(
            torch.equal(got, want) for (got, _), want in zip(pairs, (w, b), strict=True)), pairs
        assert len(pairs) == 2 and all(value.shape == grad.shape for value, grad in pairs)


@pytest.mark.parametrize(("structure", "message"), [
    ([torch.ones(2)], "a tensor alone .* params hook"),
    ([(torch.ones(2), torch.ones(3))], "value shape \\[2\\] but gradient shape \\[3\\]"),
    ([[[[[[[[[[(torch.ones(1), torch.ones(1))]]]]]]]]]], "is list, not a"),
    ([object()], "is object, not a"),
])
def test_unreadable_parameter_structures_are_protocol_errors(structure, message):
    with pytest.raises(ProtocolError, match=message):
        read_pairs(structure, "m")


def test_params_hook_views_write_through_to_a_folded_bias():
    weight = torch.zeros(2, 4)   # [out, in + 1], the bias as the last column
    grad = torch.zeros(2, 4)

    class Folded:
        def param(self):
            return [(weight, grad)]

    hooks = Hooks(params=lambda m: [half for w, g in m.param()
                                    for half in ((w[:, :-1], g[:, :-1]), (w[:, -1], g[:, -1]))])
    view = ModuleView(Folded(), "folded", hooks=hooks)
    (value, _), (bias, _) = view.param()
    value.copy_(torch.ones(2, 3))
    bias.copy_(torch.tensor([5.0, 6.0]))
    assert torch.equal(weight, torch.tensor([[1.0, 1, 1, 5], [1, 1, 1, 6]]))


# --- hooks on the calls -----------------------------------------------------------------------


class _KeepsOutput:
    """forward returns None and keeps y = 2x in ``out``; mode is an attribute ``eval``."""

    eval = False

    def forward(self, x):
        self.out = 2 * x

    def backward(self, gradient):
        return 2 * gradient


def test_output_and_set_training_hooks():
    hooks = Hooks(output=lambda m, returned: m.out,
                  set_training=lambda m, training: setattr(m, "eval", not training))
    view = ModuleView(_KeepsOutput(), "keeps", hooks=hooks)
    assert torch.equal(view.forward(torch.ones(2, 3)), torch.full((2, 3), 2.0))
    view.mode(False)
    assert view.module.eval is True
    bare = ModuleView(_KeepsOutput(), "keeps")
    with pytest.raises(ProtocolError, match="returned NoneType, not a tensor"):
        bare.forward(torch.ones(2, 3))
    with pytest.raises(ProtocolError, match="set_training"):
        bare.mode(False)


class _ColumnDouble:
    """y = 2x on column samples [n, 1] only."""

    def forward(self, x):
        assert x.shape[-1] == 1, f"a column, not {list(x.shape)}"
        return 2 * x

    def backward(self, gradient):
        assert gradient.shape[-1] == 1
        return 2 * gradient


def test_column_vectors_per_sample_are_fed_as_columns_and_read_back_as_rows():
    view = ModuleView(_ColumnDouble(), "col", hooks=Hooks(per_sample=True, column_vectors=True))
    x = torch.arange(6.0).reshape(2, 3)
    assert torch.equal(view.forward(x), 2 * x)
    assert torch.equal(view.backward(torch.ones(2, 3)), torch.full((2, 3), 2.0))


class _DrivingMSE:
    """½·Σ(y − t)²/B over 1-D predictions, returning (loss, per-sample) and driving a model."""

    def __init__(self, model):
        self.model = model

    def forward(self, prediction, target):
        assert prediction.ndim == 1
        self.difference = prediction - target
        return self.difference.square().sum() / 2, self.difference.square()

    def backward(self):
        self.model.backward(self.difference)


def test_a_loss_that_drives_its_model_returns_a_tuple_and_takes_flat_predictions():
    probe = GradientProbe()
    view = LossView(_DrivingMSE(probe), "driving", probe=probe,
                    hooks=Hooks(loss_value=lambda returned: returned[0], loss_flat=True,
                                loss_takes_model=True))
    generator = torch.Generator().manual_seed(0)
    prediction, target = (torch.randn(4, 2, generator=generator, dtype=F64) for _ in range(2))
    results = check_loss(view, prediction, target, name="driving",
                         also_at=[(torch.randn(1, 3, dtype=F64), torch.randn(1, 3, dtype=F64))])
    assert all(result.passed for result in results), [r.detail for r in results]
    value = next(result for result in results if result.id == "autograd/driving/loss")
    assert "0.5 × the sum of the loss terms" in value.convention, value.convention


def test_a_loss_that_never_calls_its_model_is_named():
    class Silent(_DrivingMSE):
        def backward(self):
            return None

    probe = GradientProbe()
    view = LossView(Silent(probe), "silent", probe=probe,
                    hooks=Hooks(loss_value=lambda returned: returned[0], loss_flat=True))
    view.forward(torch.ones(2, 2, dtype=F64), torch.zeros(2, 2, dtype=F64))
    with pytest.raises(ProtocolError, match="did not call model.backward"):
        view.backward()


# --- loss normalisation as a measured factor ---------------------------------------------------


class _ScaledMSE:
    """c(shape)·Σ(x − t)² with its gradient; ``scale(prediction)`` gives c."""

    def __init__(self, scale):
        self.scale = scale

    def forward(self, prediction, target):
        self.prediction, self.difference = prediction, prediction - target
        return self.scale(prediction) * self.difference.square().sum()

    def backward(self):
        return 2 * self.scale(self.prediction) * self.difference


def _samples(*shapes, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return [(torch.randn(shape, generator=generator, dtype=F64),
             torch.rand(shape, generator=generator, dtype=F64)) for shape in shapes]


def test_half_batch_mean_is_a_convention_and_a_varying_factor_is_not():
    half = measure_normalisation(_ScaledMSE(lambda p: 0.5 / p.shape[0]),
                                 _samples((6, 3), (1, 3), (4, 2)))
    assert (half.name, half.scale) == ("batch_mean", 0.5), half
    assert half.factor((10, 2)) == 0.05
    with pytest.raises(ValueError, match="not a scaled MSE: the ratio L / S .* varies from"):
        measure_normalisation(_ScaledMSE(lambda p: 1.0 / (p.shape[0] + 1)),
                              _samples((6, 3), (1, 3), (4, 2)))


def test_a_loss_that_is_no_scaled_mse_fails_its_value_check():
    """A 'cross-entropy' with a sigmoid inside has a ratio L / S that depends on the input."""

    class SigmoidInside:
        def forward(self, logits, target):
            self.logits, self.target = logits, target
            return -(target * torch.sigmoid(logits).log()).sum() / logits.shape[0]

        def backward(self):
            return -self.target * (1 - torch.sigmoid(self.logits)) / self.logits.shape[0]

    generator = torch.Generator().manual_seed(0)
    logits = 3 * torch.randn(6, 3, generator=generator, dtype=F64)
    target = torch.nn.functional.one_hot(torch.randint(3, (6,), generator=generator), 3)
    more = [(3 * torch.randn(4, 2, generator=generator, dtype=F64),
             torch.nn.functional.one_hot(torch.randint(2, (4,), generator=generator), 2))]
    results = check_loss(SigmoidInside(), logits, target.to(F64), kind="cross_entropy",
                         name="ce", also_at=[(p, t.to(F64)) for p, t in more])
    value = next(result for result in results if result.id == "autograd/ce/loss")
    assert not value.passed and "not a scaled cross-entropy" in value.detail, value.detail


def test_a_float32_loss_in_a_float64_check_gets_float32_tolerances():
    class Float32MSE:
        def forward(self, prediction, target):
            self.difference = prediction - target
            return self.difference.float().square().mean()

        def backward(self):
            return 2 * self.difference / self.difference.numel()

    prediction, target = _samples((6, 3))[0]
    results = check_loss(Float32MSE(), prediction, target, name="f32",
                         also_at=_samples((1, 3), (4, 2), seed=1))
    assert all(result.passed for result in results), [r.detail for r in results]
    value = next(result for result in results if result.id == "autograd/f32/loss")
    assert value.tolerance > 1e-9, "the value is held to float32's round-off, not float64's"


# --- optional components and the check dtype ---------------------------------------------


def _without(*components):
    """The handout adapter without ``components``, as a new adapter class."""
    base = type(_handout())
    body = {name: getattr(base, name) for name in ("linear", "relu", "tanh", "sigmoid",
                                                    "sequential", "mse_loss", "sgd")
            if name not in components}
    return type("Without", (), body)


def test_a_target_without_sigmoid_gets_container_network_and_training_checks():
    target = Target.from_adapter(_without("sigmoid"), name="no-sigmoid")
    cases, skipped = planned_cases(target)
    built = {case.name for case in cases}
    assert {"report network (relu)", "report network (tanh)", "nested sequential",
            "training"} <= built, built
    assert {(s.name, s.reason) for s in skipped} >= {
        ("sigmoid", "the adapter has no sigmoid()")}, skipped
    assert all("sigmoid" not in case.classes for case in cases), "no case may use sigmoid()"
    results = run_cases(cases)
    assert results and all(result.passed for result in results), [
        r.detail for r in results if not r.passed]
    assert {"sequential", "training"} <= {result.component for result in results}


def test_a_target_without_tanh_or_sequential_skips_what_needs_them():
    target = Target.from_adapter(_without("tanh", "sequential"), name="bare")
    cases, skipped = planned_cases(target)
    reasons = {s.name: s.reason for s in skipped}
    assert reasons["tanh"] == "the adapter has no tanh()"
    assert reasons["report network (tanh)"] == "the adapter has no sequential() and no tanh()"
    assert "training" in reasons and not any(case.component == "sequential" for case in cases)


class _AllocatingTanh:
    """A handout-style Tanh that computes into buffers allocated at call time in torch's
    default dtype (``torch.empty``) and returns them in its input's dtype: under a float32
    default its float64 results carry float32 round-off that no returned dtype shows."""

    def forward(self, x):
        buffer = torch.empty(x.shape)
        buffer.copy_(torch.tanh(x))
        self.y = buffer.to(x.dtype)
        return self.y

    def backward(self, gradient):
        buffer = torch.empty(gradient.shape)
        buffer.copy_(gradient * (1 - self.y * self.y))
        return buffer.to(gradient.dtype)

    def param(self):
        return []


def test_the_check_dtype_holds_for_the_whole_check_and_is_restored():
    adapter = _without("tanh")
    adapter.tanh = lambda self: _AllocatingTanh()
    target = Target.from_adapter(adapter, name="allocating")
    default = torch.get_default_dtype()
    torch.set_default_dtype(F32)  # what a fresh interpreter has
    try:
        results = run_cases([case for case in planned_cases(target)[0] if case.name == "tanh"])
        assert torch.get_default_dtype() == F32, "restored after the check"
    finally:
        torch.set_default_dtype(default)
    assert results and all(result.passed for result in results), [
        r.detail for r in results if not r.passed]


def test_factories_get_the_input_width_and_a_unique_name_when_they_ask():
    seen = []
    base = _without()

    class Asking(base):
        def relu(self, features, name):
            seen.append((features, name))
            return base.relu(self)

    target = Target.from_adapter(Asking, name="asking")
    run_cases([case for case in planned_cases(target)[0] if case.name == "relu"])
    assert seen and {features for features, _ in seen} == {5}, seen
    assert len({name for _, name in seen}) == len(seen), "names are unique"


def test_dropout_gets_the_input_width_when_it_asks():
    """As any factory may (the README's adapter contract): issue 26, point 2."""
    seen = []
    base = type(load_target(str(FRAMEWORKS / "float32_adapter.py")).adapter)

    class Asking(base):
        def dropout(self, p, generator, features):
            seen.append(features)
            return base.dropout(self, p, generator)

    target = Target.from_adapter(Asking, name="asking")
    results = run_cases([case for case in planned_cases(target)[0] if case.name == "dropout"])
    assert seen and set(seen) == {5}, seen
    assert results and all(result.passed for result in results), [
        r.detail for r in results if not r.passed]


class _ClampsInputInBackward:
    """y = x; its backward clamps the input it kept, in place (a write during backward)."""

    def forward(self, x):
        self.x = x
        return x.clone()

    def backward(self, gradient):
        self.x.clamp_(min=0)
        return gradient

    def param(self):
        return []


class _ClampsInputInForward(_ClampsInputInBackward):
    """The same write, made by forward."""

    def forward(self, x):
        self.x = x.clamp_(min=0)
        return x.clone()

    def backward(self, gradient):
        return gradient


@pytest.mark.parametrize(("stage", "module"), [("backward", _ClampsInputInBackward()),
                                               ("forward", _ClampsInputInForward())])
def test_a_write_into_the_input_names_the_call_that_made_it(stage, module):
    from verification import check_side_effects

    x = torch.linspace(-1, 1, 6, dtype=F64).reshape(2, 3)
    [result] = [r for r in check_side_effects(module, x, name="m") if r.id.endswith("/input")]
    assert not result.passed and f"(written during {stage})" in result.detail, result.detail


def test_a_boolean_training_attribute_is_set_without_a_hook():
    class Flagged:
        training = True

    view = ModuleView(Flagged(), "flagged")
    view.mode(False)
    assert view.module.training is False and "boolean attribute training" in view.notes[0]
    with pytest.raises(ProtocolError, match="no eval\\(\\) method and no boolean attribute"):
        ModuleView(object(), "bare").mode(False)


def test_rerun_of_a_check_the_case_does_not_have_is_an_error():
    from verification import rerun

    with pytest.raises(ValueError, match="has no check 'autograd/nothing'; its checks: \\["):
        rerun(str(FRAMEWORKS / "handout_adapter.py"), "relu at its kink", "autograd/nothing")


def test_rerun_of_one_check_returns_and_prints_it_alone():
    from verification import rerun

    printed = io.StringIO()
    (result,) = rerun(str(FRAMEWORKS / "handout_adapter.py"), "relu at its kink",
                      "kink/ReLU()/x=0", stream=printed)
    assert result.id == "kink/ReLU()/x=0" and result.passed
    assert printed.getvalue() == f"PASS {result.detail}\n"


def test_a_targets_description_lists_its_hooks_and_declared_facts():
    sys.path.insert(0, str(FRAMEWORKS))
    try:
        description = load_target(str(FRAMEWORKS / "objects_adapter.py")).description()
    finally:
        sys.path.remove(str(FRAMEWORKS))
    assert description["hooks"] == ["params", "set_training"], description
    assert description["declared_facts"] == {"optimizer_takes_module": True}, description
    assert "sigmoid" not in description["components"], description


def test_a_normalisation_that_does_not_fit_names_the_input_where_it_breaks():
    """Divided by B everywhere but at a batch of 1, where it is divided by 2: the fit most
    inputs agree on (the batch mean) holds at the others and breaks at that one."""
    broken = _ScaledMSE(lambda p: 1.0 / p.shape[0] if p.shape[0] > 1 else 0.5)
    with pytest.raises(ValueError) as raised:
        measure_normalisation(broken, _samples((6, 3), (1, 3), (4, 2)))
    message = str(raised.value)
    assert ("the closest fit, the sum of the loss terms divided by the batch size only, holds "
            "at 6x3, 4x2 and breaks at 1x3 (ratio 0.5 where it needs 1)") in message, message


def test_a_loss_that_raises_at_every_input_shows_its_own_exception():
    class Raising:
        def forward(self, prediction, target):
            raise KeyError("planted: no such buffer")

        def backward(self):
            raise AssertionError("never reached")

    with pytest.raises(ValueError, match="the loss raised at every input; at 6x3: Raising.forward "
                                         "raised KeyError: 'planted: no such buffer'"):
        measure_normalisation(Raising(), _samples((6, 3), (1, 3)))


def test_a_loss_that_raises_at_one_input_names_it_with_its_exception():
    class RaisingAtOneSample(_ScaledMSE):
        def forward(self, prediction, target):
            if prediction.shape[0] == 1:
                raise IndexError("planted: a batch of one")
            return super().forward(prediction, target)

    with pytest.raises(ValueError, match="at 1x3 it raised: .*IndexError: planted: a batch"):
        measure_normalisation(RaisingAtOneSample(lambda p: 1.0 / p.numel()),
                              _samples((6, 3), (1, 3), (4, 2)))


# --- the calls themselves, by hook: module_forward, module_backward, loss_forward, … --------

def _handout_module():
    """The handout framework's module (``fw``), imported as its adapter imports it."""
    return type(_handout()).linear.__globals__["fw"]


def _variant_results(adapter):
    """Every check of ``adapter`` in float64, quick: the failures' ids."""
    results = run_cases(planned_cases(Target.from_adapter(adapter), quick=True,
                                      dtypes=(F64,))[0])
    return {result.id for result in results if not result.passed}


def _odd_calls(fw):
    """A framework called otherwise: its container's forward takes ``(x, target)`` and its
    backward a loss object; its loss has ``compute((prediction, target))`` and ``grad()``."""

    class Container(fw.Sequential):
        def forward(self, x, target):
            for module in self.modules:
                x = module.forward(x, target) if isinstance(module, Container) else (
                    module.forward(x))
            return x

        def backward(self, loss):
            gradient = loss.backward()
            for module in reversed(self.modules):
                gradient = module.backward(_InnerLoss(gradient)) if isinstance(
                    module, Container) else module.backward(gradient)
            return gradient

    class _InnerLoss:  # what the container hands an inner container: a loss of its gradient
        def __init__(self, gradient):
            self.gradient = gradient

        def backward(self):
            return self.gradient

    class Loss(fw.LossMSE):
        def compute(self, pair):
            return self.forward(*pair)

        def grad(self):
            return fw.LossMSE.backward(self)

        def forward(self, *input):
            return fw.LossMSE.forward(self, *input)

        def backward(self, *_):
            raise TypeError("call grad()")

    return Container, Loss


def test_hooks_of_one_line_call_a_framework_called_otherwise():
    from verification.targets.protocol import GradientAsLoss

    fw = _handout_module()
    container, loss = _odd_calls(fw)
    base = type(_handout())

    class Bare(base):
        def sequential(self, *modules):
            return container(*modules)

        def mse_loss(self):
            return loss()

    class Hooked(Bare):
        def module_forward(self, module, x):
            return module.forward(x, None) if isinstance(module, container) else module.forward(x)

        def module_backward(self, module, g):
            return module.backward(GradientAsLoss(g) if isinstance(module, container) else g)

        def loss_forward(self, loss, prediction, target):
            return loss.compute((prediction, target))

        def loss_backward(self, loss):
            return loss.grad()

    assert not _variant_results(Hooked()), _variant_results(Hooked())
    failing = _variant_results(Bare())
    assert any("sequential" in name or "report network" in name for name in failing)
    assert any(name.startswith("autograd/mse_loss") for name in failing), sorted(failing)


def test_loss_flat_may_name_the_losses_that_take_1d_predictions():
    fw = _handout_module()

    class FlatMSE(fw.LossMSE):
        def forward(self, *input):
            prediction, target = input
            if prediction.ndim != 1:
                raise ValueError("1-D predictions only")
            return super().forward(prediction, target)

    class Adapter(type(_handout())):
        loss_flat = ("mse_loss",)

        def mse_loss(self):
            return FlatMSE()

    target = Target.from_adapter(Adapter())
    assert target.loss("mse_loss").hooks.loss_flat and target.facts.flat("mse_loss")
    assert not target.facts.flat("cross_entropy_loss")
    assert not _variant_results(Adapter())


# --- gradients created by the first backward; a container that takes its own name -----------

def _lazy_linear(fw, gradient_factor=1.0):
    """A handout Linear whose gradients are created by its first backward: until then
    ``grad()``, and ``param()`` through it, raise. ``gradient_factor`` scales dL/dW (a planted
    bug when it is not 1)."""

    class LazyLinear(fw.Linear):
        def __init__(self, *args):
            super().__init__(*args)
            self.dw = self.db = None

        def backward(self, *gradwrtoutput):
            if self.dw is None:
                self.dw, self.db = torch.zeros_like(self.w), torch.zeros_like(self.b)
            gradient = gradwrtoutput[0]
            self.dw.add_(gradient_factor * gradient.t() @ self.x)
            self.db.add_(gradient.sum(0))
            return gradient @ self.w

        def grad(self):
            if self.dw is None:
                raise RuntimeError("no gradient before the first backward")
            return [self.dw, self.db]

        def param(self):
            return list(zip([self.w, self.b], self.grad(), strict=True))

    return LazyLinear


def _lazy_adapter(gradient_factor=1.0):
    lazy = _lazy_linear(_handout_module(), gradient_factor)

    class Adapter(type(_handout())):
        def linear(self, in_features, out_features, generator):
            return lazy(in_features, out_features, generator)

    return Adapter()


def test_gradients_created_by_the_first_backward_are_allocated_by_a_pass_of_zeros():
    target = Target.from_adapter(_lazy_adapter())
    component = target.component(spec.report_network("tanh"), seed=0, dtype=F64)
    weight = component.view.module.modules[0].w.clone()
    pairs = component.view.param()
    assert len(pairs) == 8 and all(not gradient.any() for _, gradient in pairs)
    assert torch.equal(pairs[0][0], weight)  # the values did not move
    assert any("before the first backward failed" in note and "no gradient before" in note
               for note in component.view.notes), component.view.notes
    assert not _variant_results(_lazy_adapter())


def test_a_planted_bug_is_still_caught_behind_gradients_created_by_the_first_backward():
    failing = _variant_results(_lazy_adapter(gradient_factor=2.0))
    assert any(name.startswith("finite_difference/Linear") for name in failing), sorted(failing)


def test_parameters_unreadable_even_after_a_pass_of_zeros_name_both_failures():
    fw = _handout_module()

    class NeverReadable(fw.Linear):
        def param(self):
            raise RuntimeError("no parameters today")

    view = ModuleView(NeverReadable(3, 2), "Linear(3, 2)", zero_sample=torch.zeros(1, 3, dtype=F32))
    with pytest.raises(ProtocolError, match="no parameters today") as raised:
        view.param()
    assert "forward and backward of zeros" not in str(raised.value)  # read twice, same error
    too_wide = torch.zeros(1, 4, dtype=F32)
    broken = ModuleView(_lazy_linear(fw)(3, 2), "Linear(3, 2)", zero_sample=too_wide)
    with pytest.raises(ProtocolError, match="no gradient before .* of zeros, to create the "
                       "gradients, failed too"):
        broken.param()


def test_a_container_that_takes_its_own_name_gets_a_unique_one():
    fw = _handout_module()
    names = []

    class Named(fw.Sequential):
        def __init__(self, name, *modules):
            names.append(name)
            super().__init__(*modules)

    class Adapter(type(_handout())):
        def sequential(self, *modules, name):
            return Named(name, *modules)

    assert not _variant_results(Adapter())
    assert names and len(set(names)) == len(names) and all(
        name.startswith("sequential_") for name in names), names
