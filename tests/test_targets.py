"""Checking other frameworks: adapters, the fixture frameworks and their planted bugs.

Every correct fixture (and refnet) must pass every check; every planted bug must be flagged by a
check of its kind on its component, and nothing may fail on a component that does not use the
adapter factory the bug replaces.
"""

import ast
import copy
import importlib
import sys

import pytest
import torch
from check_helpers import FIXTURE_NAMES, FRAMEWORKS, fixture_spec
from hypothesis import given
from hypothesis import strategies as st

import refnet
from verification import (
    Target,
    TargetError,
    check_accumulation,
    check_against_reference,
    check_backward,
    check_kink,
    check_side_effects,
    check_target,
    load_target,
    target_cases,
)
from verification.checks.reference import canonical_pairs, upstream_gradient
from verification.suite.conformance import initialise, planned_cases, run_cases, uniform_input
from verification.targets import spec
from verification.targets.protocol import ModuleView
from verification.targets.refnet_target import RefnetAdapter
from verification.targets.state import torch_state_kept

NAMES = FIXTURE_NAMES
F64 = torch.float64


def _adapter_module(name):
    """The adapter module itself (for its PLANTED table), imported with torch's global state
    kept: ``handout`` switches autograd off at import, as the course handout asks."""
    sys.path.insert(0, str(FRAMEWORKS))
    try:
        with torch_state_kept():
            return importlib.import_module(f"{name}_adapter")
    finally:
        sys.path.remove(str(FRAMEWORKS))


def _target(name, variant=None):
    path = FRAMEWORKS / f"{name}_adapter.py"
    return load_target(f"{path}:{variant}" if variant else str(path))


def _failures(results):
    return [result for result in results if not result.passed]


def _planted():
    for name in NAMES:
        for variant, expected in _adapter_module(name).PLANTED.items():
            yield pytest.param(name, variant, expected, id=f"{name}-{variant}")


def _overridden_factory(name, variant):
    module = _adapter_module(name)
    buggy = getattr(module, variant)
    [factory] = [key for key in vars(buggy) if callable(getattr(buggy, key))
                 and not key.startswith("_") and not isinstance(vars(buggy)[key], type)]
    return factory


# --- correct frameworks pass, planted bugs are flagged by the right kind --------------------


@pytest.mark.parametrize("name", ("refnet", *NAMES))
def test_correct_framework_passes_every_check(name, in_process):
    spec = fixture_spec(name if name == "refnet" else f"{name}_adapter.py")
    target, results = load_target(spec), in_process(spec)
    assert len(results) > 100, f"{name}: only {len(results)} checks ran"
    assert not _failures(results), "\n".join(r.detail for r in _failures(results))
    assert all(result.component for result in results), "every result names its component"
    kinds = {result.kind for result in results}
    components = {result.component for result in results}
    assert {"finite_difference", "autograd", "accumulation", "side_effect"} <= kinds, kinds
    assert "sequential" in components, f"{name}: no container check ran"
    if target.has("sgd") or target.has("adam"):
        assert {"training"} <= components and "trajectory" in kinds, components
    blind = [f"{r.id}: tolerance {r.detectable:.3g} × the scale {r.scale:.3g}" for r in results
             if (r.scale > 0 or r.detectable > 0) and not r.detectable < 1]
    assert not blind, "checks that cannot fail (tolerance above the compared scale):\n" + (
        "\n".join(blind))


@pytest.mark.parametrize(("name", "variant", "expected"), list(_planted()))
def test_planted_bug_is_flagged_by_its_kind_and_only_where_it_is_used(name, variant, expected):
    target = _target(name, variant)
    cases = target_cases(target, dtypes=target.facts.dtypes[:1])  # each shows in its first
    results = run_cases(cases)
    flagged = {(result.component, result.kind) for result in _failures(results)}
    assert expected in flagged, f"{variant}: {expected} not flagged; flagged {sorted(flagged)}"
    factory = _overridden_factory(name, variant)
    users = {case.component for case in cases if factory in case.classes}
    stray = {component for component, _ in flagged} - users
    assert not stray, f"{variant} (replaces {factory}) fails components that do not use it: {stray}"


def test_every_fixture_is_independent_of_refnet_and_of_each_other():
    for path in FRAMEWORKS.glob("*.py"):
        imported = {node.names[0].name.split(".")[0] for node in ast.walk(ast.parse(
            path.read_text())) if isinstance(node, ast.Import)} | {
            node.module.split(".")[0] for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.ImportFrom) and node.module}
        allowed = {"math", "torch", path.stem.removesuffix("_adapter")}
        assert imported <= allowed, f"{path.name} imports {sorted(imported - allowed)}"


# --- loading targets ----------------------------------------------------------------------------


def test_refnet_is_a_target_like_any_other():
    target = load_target("refnet")
    assert isinstance(target, Target) and target.facts.relu_slope_at_zero == 0.0
    assert target.description()["components"][:6] == [
        "linear", "relu", "tanh", "sigmoid", "sequential", "mse_loss"]


def test_importable_name_and_attribute(monkeypatch):
    monkeypatch.syspath_prepend(str(FRAMEWORKS))
    target = load_target("convention_adapter:SGDAscent")
    assert target.name == "convention:SGDAscent" and target.facts.relu_slope_at_zero == 1.0


def test_a_framework_that_disables_autograd_at_import_leaves_grad_mode_alone():
    assert torch.is_grad_enabled()
    target = _target("handout")
    assert torch.is_grad_enabled(), "loading a target must restore torch's grad mode"
    assert target.facts.declared() == {}


@pytest.mark.parametrize(("spec_text", "message"), [
    ("no/such/adapter.py", "does not exist"),
    ("", "target spec '': expected a non-empty string"),
    (3, "target spec 3: expected a non-empty string"),
    ("no_such_module_anywhere", "failed to import: ModuleNotFoundError"),
])
def test_unloadable_target_is_a_clear_error(spec_text, message):
    with pytest.raises(TargetError, match=message):
        load_target(spec_text)


def test_import_that_raises_is_reported_with_its_message(tmp_path):
    broken = tmp_path / "broken_adapter.py"
    broken.write_text("raise RuntimeError('planted import failure')\n")
    with pytest.raises(TargetError, match="failed to import: RuntimeError: planted import"):
        load_target(str(broken))


def test_adapter_without_required_factories_is_refused():
    class Half:
        def linear(self, in_features, out_features, generator):
            raise AssertionError("never called")

    with pytest.raises(TargetError, match=r"lacks the required factories \['mse_loss or "
                       r"cross_entropy_loss or bce_loss'\]"):
        Target.from_adapter(Half)

    class NoLinear:
        def mse_loss(self):
            raise AssertionError("never called")

    with pytest.raises(TargetError, match=r"lacks the required factories \['linear'\]"):
        Target.from_adapter(NoLinear)


@pytest.mark.parametrize(("fact", "value", "message"), [
    ("weight_layout", "rows", r"weight_layout='rows': expected one of \('out_in', 'in_out'\)"),
    ("weight_layout", None, r"weight_layout=None: expected one of"),
    ("mse_reduction", "median", r"mse_reduction='median': expected one of"),
    ("loss_flat", "mse_loss", r"loss_flat='mse_loss': expected True, False or a tuple"),
])
def test_malformed_fact_is_refused(fact, value, message):
    """Only ``mse_reduction`` may be left undeclared (``None``), and ``loss_flat`` names
    losses in a tuple, not in a string."""
    odd = type("Odd", (_adapter_module("handout").Adapter,), {fact: value})
    with pytest.raises(TargetError, match=message):
        Target.from_adapter(odd)


def test_optimizers_must_map_a_torch_optim_class_to_a_factory():
    odd = type("Odd", (_adapter_module("handout").Adapter,), {"optimizers": {"Adamm": "sgd"}})
    with pytest.raises(TargetError, match=r"adapter optimizers\['Adamm'\] = 'sgd': needs a "
                                          "torch.optim class name"):
        Target.from_adapter(odd)


def test_a_targets_name_adapter_and_version_come_from_the_adapter_when_not_given():
    versioned = type("Versioned", (_adapter_module("handout").Adapter,),
                     {"__version__": "1.2", "NAME": "course handout"})
    described = Target.from_adapter(versioned).description()
    assert (described["name"], described["adapter"], described["version"]) == (
        "course handout", "Versioned", "1.2")
    assert Target.from_adapter(versioned, name="mine").name == "mine"
    assert Target.from_adapter(_adapter_module("handout").Adapter).name == "Adapter"


# --- the cases of points 2-9 of the issue, one test each -----------------------------------------


class Linear:
    """A foreign layer that happens to look like refnet's (same class name and attributes)
    while its forward reads other tensors: recognising modules by name must not matter."""

    def __init__(self):
        generator = torch.Generator().manual_seed(0)
        self.in_features, self.out_features, self.replicas = 3, 2, None
        self.w = torch.randn(2, 3, generator=generator, dtype=F64)
        self.b = torch.randn(2, generator=generator, dtype=F64)
        self.weight, self.bias = self.w.clone(), self.b.clone()  # decoys the forward ignores
        self.dw, self.db = torch.zeros_like(self.w), torch.zeros_like(self.b)

    def forward(self, x):
        self.x = x
        return x @ self.w.T + self.b

    def backward(self, gradient):
        self.dw += gradient.T @ self.x
        self.db += gradient.sum(0)
        return gradient @ self.w

    def param(self):
        return [(self.w, self.dw), (self.b, self.db)]

    def zero_grad(self):
        self.dw.zero_()
        self.db.zero_()


def _x(*shape, seed=1):
    return 2 * torch.rand(shape, generator=torch.Generator().manual_seed(seed), dtype=F64) - 1


def test_point2_a_foreign_class_named_linear_is_no_false_alarm():
    results = check_backward(Linear(), _x(4, 3))
    assert not _failures(results), [r.detail for r in _failures(results)]
    assert all("protocol, one element at a time" in r.detail for r in results[1:]), (
        results[1].detail)


def test_point3_checks_run_with_autograd_switched_off_globally():
    with torch.no_grad():
        results = [*check_against_reference(Linear(), _x(4, 3), layer=spec.linear(3, 2)),
                   check_kink(ModuleView(_adapter_module("handout").fw.ReLU(), "ReLU"))]
        assert not torch.is_grad_enabled(), "the caller's grad mode is restored"
    assert not _failures(results), [r.detail for r in _failures(results)]


def test_point5_overwritten_gradients_are_flagged_by_the_exported_check():
    class Overwriting(Linear):
        def backward(self, gradient):
            self.dw.copy_(gradient.T @ self.x)
            self.db.copy_(gradient.sum(0))
            return gradient @ self.w

    assert not _failures(check_accumulation(Linear(), _x(4, 3)))
    failed = _failures(check_accumulation(Overwriting(), _x(4, 3)))
    assert [r.id for r in failed] == ["accumulation/Overwriting/param[0]",
                                      "accumulation/Overwriting/param[1]"], failed
    assert "overwritten instead of added" in failed[0].detail, failed[0].detail


class _PerSample(Linear):
    """A correct Linear 3→1 that adds its gradients one sample at a time, in ``dtype``."""

    def __init__(self, dtype):
        super().__init__()
        self.w, self.b = self.w[:1].to(dtype), self.b[:1].to(dtype)
        self.dw, self.db = torch.zeros_like(self.w), torch.zeros_like(self.b)

    def backward(self, gradient):
        for row in range(gradient.shape[0]):
            self.dw += gradient[row:row + 1].T @ self.x[row:row + 1]
            self.db += gradient[row]
        return gradient @ self.w


def _cancelling_batch(seed, dtype):
    """A batch of 8 samples, its columns of sizes 1e3, 1 and 1e-3, whose weight-gradient sum
    under the check's g (drawn from ``seed``) is about 1e-3: the last row cancels the others'
    Σ g_i x_i."""
    generator = torch.Generator().manual_seed(100 + seed)
    x = torch.randn(8, 3, generator=generator, dtype=F64) * torch.tensor([1e3, 1.0, 1e-3])
    g = upstream_gradient(torch.zeros(8, 1, dtype=dtype), seed).to(F64)[:, 0]
    x[-1] = -(g[:-1] @ x[:-1]) / g[-1] + 1e-3 * torch.randn(3, generator=generator, dtype=F64)
    return x.to(dtype)


class _NegatedMSE:
    """refnet's MSE with value and gradient negated: consistent, and maximised by training."""

    def __init__(self):
        self.loss = refnet.MSELoss("mean")

    def forward(self, prediction, target):
        return -self.loss.forward(prediction, target)

    def backward(self):
        return -self.loss.backward()


def test_a_negated_mse_fails_its_normalisation_and_training_as_a_negated_loss():
    """L = −1 × the mean is no convention: the loss normalisation fails, and the training
    case, which trains at the measured normalisation, fails for the same reason."""
    adapter = type("Negated", (RefnetAdapter,), {"mse_reduction": None,
                                                 "mse_loss": lambda self: _NegatedMSE()})
    target = Target.from_adapter(adapter, name="negated", source="test")
    cases = [case for case in planned_cases(target, dtypes=(F64,))[0]
             if case.name in ("mse_loss", "training")]
    failed = {result.id: result.detail for result in run_cases(cases) if not result.passed}
    negated = ("a negated loss: L = -1 × the mean of the loss terms (the MSE's terms), so "
               "gradient descent on it maximises the loss it negates")
    assert set(failed) == {"autograd/mse_loss/loss", "error/training"}, sorted(failed)
    assert all(negated in detail for detail in failed.values()), failed


@pytest.mark.parametrize("dtype", [F64, torch.float32], ids=["float64", "float32"])
def test_a_per_sample_framework_whose_batch_sum_cancels_is_no_false_alarm(dtype):
    """Its second backward sums the batch onto G, another order than G's own sum: the
    difference from 2G is of the contributions' size (up to 1e3), not of G's (1e-3). A
    tolerance scaled by max|2G| alone failed it by up to 4.8e4 times its tolerance in float64,
    1.5e4 in float32; scaled by S, the sum of the per-sample contributions' sizes, it
    passes."""
    results = [result for seed in range(20) for result in check_accumulation(
        spec.as_component(_PerSample(dtype), spec.linear(3, 1)), _cancelling_batch(seed, dtype),
        seed=seed)]
    assert not _failures(results), [r.detail for r in _failures(results)][:2]
    assert max(result.error_ratio for result in results) > 0, "no rounding was exercised"
    assert all("S = Σ|per-sample contribution|" in result.detail for result in results
               if "/zero_grad/" not in result.id), results[0].detail


class _ZeroesItsInput(Linear):
    def forward(self, x):
        y = super().forward(x)
        self.x = x.clone()
        x.zero_()
        return y


class _OverwritesItsOutput(Linear):
    def forward(self, x):
        self.y = super().forward(x)
        return self.y

    def backward(self, gradient):
        grad_input = super().backward(gradient)
        self.y.zero_()
        return grad_input


@pytest.mark.parametrize(("module", "tensor"), [(_ZeroesItsInput, "input"),
                                                 (_OverwritesItsOutput, "output")])
def test_point6_side_effects_are_failures_of_their_own_and_move_no_check(module, tensor):
    failed = _failures(check_side_effects(module(), _x(4, 3)))
    assert [r.id.rsplit("/", 1)[-1] for r in failed] == [tensor], [r.id for r in failed]
    assert "must not write into a tensor it did not create" in failed[0].detail
    results = check_backward(module(), _x(4, 3))
    assert not _failures(results) and not any(r.excluded for r in results), (
        "the harness works on its own copies: the point of the check does not move")


def test_point7_param_property_missing_zero_grad_and_in_out_layout_work():
    target = _target("transposed")
    component = spec.build(target, spec.report_network("tanh"), torch.Generator())
    assert not callable(component.view.module.param), "param is a property here"
    assert not component.view.has_zero_grad
    assert not _failures(check_backward(component, _x(5, 2)))
    assert "param is an attribute, not a method" in component.view.notes
    assert any("no zero_grad()" in note for note in component.view.notes)
    assert canonical_pairs(component)[0][0].shape == (25, 2), "weights read as [out, in]"


def test_point7_wrong_layout_declaration_is_told_what_to_declare():
    class Undeclared(_adapter_module("transposed").Adapter):
        weight_layout = "out_in"

    results = check_target(Target.from_adapter(Undeclared))
    linear = next(r for r in results if r.id.startswith("autograd/Linear(3, 4)"))
    assert not linear.passed and "declare weight_layout = 'in_out'" in linear.detail, (
        linear.detail)


def test_point7_container_returning_none_without_the_declaration_is_a_clear_message():
    class Undeclared(_adapter_module("dynamic").Adapter):
        sequential_returns_grad = True

    results = check_target(Target.from_adapter(Undeclared))
    failed = [r for r in _failures(results) if r.module.startswith("report network")]
    assert failed and all("declare sequential_returns_grad = False" in r.detail
                          for r in failed), [r.detail for r in failed]


def test_point7_per_sample_and_float32_frameworks_are_checked_not_refused(in_process):
    per_sample = in_process(fixture_spec("per_sample_adapter.py"))
    float32 = in_process(fixture_spec("float32_adapter.py"))
    assert not _failures(per_sample) and not _failures(float32)
    assert any("torch.float32" in r.detail for r in float32 if r.kind == "finite_difference")


def test_point8_nan_is_named_and_an_exact_match_reads_zero(in_process):
    results = in_process(fixture_spec("dynamic_adapter.py:ExpRatioTanh"))
    failed = [r for r in _failures(results) if r.component == "tanh"]
    assert any("the module returned nan at element" in r.detail for r in failed), (
        [r.detail for r in failed])
    kink = check_kink(ModuleView(_adapter_module("handout").fw.ReLU(), "ReLU"))
    assert kink.passed and kink.error_ratio == 0.0 and "exact" in kink.detail, kink.detail


def test_point9_a_target_that_cannot_be_copied_is_checked_without_copying():
    target = _target("dynamic")
    module = target.build("linear", 2, 3, torch.Generator())
    with pytest.raises(RecursionError):
        copy.deepcopy(module)
    training = [case for case in target_cases(target) if case.name == "training"]
    assert not _failures(run_cases(training))


def test_a_target_that_changes_global_state_during_a_check_fails_it_and_is_undone():
    class Silencer(Linear):
        def forward(self, x):
            torch.set_grad_enabled(False)
            return super().forward(x)

    results = check_against_reference(Silencer(), _x(4, 3), layer=spec.linear(3, 2))
    assert torch.is_grad_enabled(), "the harness restores grad mode"
    [changed] = [r for r in results if r.id.endswith("global-state")]
    assert not changed.passed and "grad mode True → False" in changed.detail, changed.detail


def test_a_target_that_raises_or_returns_none_gives_failed_checks_with_its_message():
    class Raising(Linear):
        def forward(self, x):
            raise RuntimeError("planted failure")

    class ReturnsNone(Linear):
        def forward(self, x):
            return None

    class Exits(Linear):
        def forward(self, x):
            sys.exit(3)

    for module, message in ((Raising(), "forward raised RuntimeError: planted failure"),
                            (ReturnsNone(), "forward returned NoneType, not a tensor"),
                            (Exits(), "forward raised SystemExit: 3")):
        for results in (check_backward(module, _x(4, 3)),
                        check_against_reference(module, _x(4, 3), layer=spec.linear(3, 2)),
                        check_accumulation(module, _x(4, 3)),
                        check_side_effects(module, _x(4, 3))):
            assert results and all(not r.passed and message in r.detail for r in results), (
                [r.detail for r in results])


def test_the_same_seed_gives_the_same_results_and_another_seed_other_points(in_process):
    first, again = in_process("refnet"), check_target("refnet", seed=0)  # seed 0: the default
    assert [r.as_dict() for r in first] == [r.as_dict() for r in again]
    other = check_target("refnet", seed=4)
    assert [r.max_abs_error for r in first] != [r.max_abs_error for r in other]


def test_check_ids_are_unique_within_a_target(in_process):
    for target in ("refnet", fixture_spec("dynamic_adapter.py")):
        ids = [result.id for result in in_process(target)]
        assert len(ids) == len(set(ids)), sorted({i for i in ids if ids.count(i) > 1})


@st.composite
def _architectures(draw):
    """A random structure (1-4 Linear layers of width 1-8, each maybe followed by an
    activation), a batch size, an input scale 10^U(-2, 1.5) and a seed."""
    widths = draw(st.lists(st.integers(1, 8), min_size=2, max_size=5))
    layers = []
    for inputs, outputs in zip(widths[:-1], widths[1:], strict=True):
        layers.append(spec.linear(inputs, outputs))
        activation = draw(st.sampled_from(["relu", "tanh", "sigmoid", None]))
        if activation:
            layers.append(spec.Layer(activation))
    return (spec.sequential(*layers), draw(st.integers(1, 6)),
            10 ** draw(st.floats(-2, 1.5)), draw(st.integers(0, 2 ** 16)))


@pytest.mark.parametrize("name", ["handout", "float32"])
@given(architecture=_architectures())
def test_no_false_alarm_on_random_architectures_of_another_framework(name, architecture):
    layer, batch, scale, seed = architecture
    target = _target(name)
    component = initialise(spec.build(target, layer, torch.Generator()), seed)
    x = uniform_input((batch, layer.children[0].in_features), seed, scale,
                      target.facts.dtypes[0])
    results = check_backward(component, x, seed=seed) + check_against_reference(component, x,
                                                                                 seed=seed)
    assert not _failures(results), "\n".join(r.detail for r in _failures(results))


def test_param_returning_copies_is_named_as_such():
    class Copies(_adapter_module("handout").Adapter):
        def linear(self, in_features, out_features, generator):
            layer = super().linear(in_features, out_features, generator)
            original = layer.param
            layer.param = lambda: [(value.clone(), grad) for value, grad in original()]
            return layer

    results = run_cases([case for case in target_cases(Target.from_adapter(Copies))
                         if case.name == "linear 3→4"])
    [failure] = _failures(results)
    assert "param()[0] returns a copy" in failure.detail, failure.detail


def test_a_float32_relu_with_slope_one_at_zero_is_a_convention_not_a_failure():
    class ReLU32:
        def forward(self, x):
            self.x = x.float()
            return self.x.clamp(min=0)

        def backward(self, gradient):
            return gradient.float() * (self.x >= 0).float()

        def param(self):
            return []

        def zero_grad(self):
            pass

    result = check_kink(ReLU32())
    assert result.passed and "derivative 1 at x = 0" in result.convention, result.detail
    assert not check_kink(ReLU32(), declared_slope=0.0).passed


# --- extra activations, instance reuse, eval-mode Dropout (issue 19, points 5-7) --------------


def _extras(**overrides):
    """The extras Adapter with some attributes replaced (declarations or factories)."""
    return type("Declared", (_adapter_module("extras").Adapter,), overrides)


@pytest.mark.parametrize(("declaration", "message"), [
    ({"leaky_relu": ("leaky_rellu", {})}, "torch has no function 'leaky_rellu'"),
    ({"leaky_relu": ("leaky_relu", {"slope": 0.01})},
     "unexpected keyword argument 'slope'"),
    ({"leaky_relu": ("softmax", {"dim": 1})}, "softmax is not element-wise"),
    ({"leaky_relu": ("log", {})}, r"torch.log\(x, \*\*\{\}\) is not finite at x = -3, "
                                  r"-2.5, .*, -0.5, 0: an activation is checked on inputs "
                                  r"throughout \[-3, 3\]"),
    ({"leaky_relu": ("leaky_relu", 0.01)}, r"expected a torch function name, or a pair"),
    ({"leaky_relu": (3, {})}, r"expected a torch function name and a dict of keyword "
                              r"arguments, got 3, \{\}"),
    ({"leaky_relu": ("leaky_relu", {1: 0.01})}, r"expected a torch function name and a dict"),
    ({"swish": "silu"}, r"must name a factory of the adapter \(a method swish\(\)\)"),
    ({"relu": "relu"}, "other than the standard"),
])
def test_a_bad_extra_activation_is_refused_at_load_naming_the_declaration(declaration,
                                                                           message):
    with pytest.raises(TargetError, match=message) as raised:
        Target.from_adapter(_extras(extra_activations=declaration))
    assert "adapter extra_activations[" in str(raised.value), str(raised.value)


def test_every_elementwise_torch_activation_is_accepted():
    names = ("relu", "relu6", "elu", "selu", "celu", "leaky_relu", "prelu", "gelu",
             "logsigmoid", "hardshrink", "tanhshrink", "softsign", "softplus", "tanh", "sigmoid",
             "hardsigmoid", "silu", "mish", "hardswish", "hardtanh", "softshrink")
    for name in names:
        assert spec.Function.declared(name).name == name


def test_a_leaky_relu_slope_off_by_1e_10_is_flagged_at_the_hand_picked_points():
    fw = _adapter_module("extras").fw
    slightly_off = _extras(leaky_relu=lambda self: fw.LeakyReLU(0.01 * (1 + 1e-10)))
    results = check_target(Target.from_adapter(slightly_off))
    flagged = {r.id for r in _failures(results)}
    name = "leaky_relu: leaky_relu(negative_slope=0.01) at hand-picked points"
    assert f"autograd/{name}/output" in flagged, sorted(flagged)


def test_a_leaky_relu_using_the_right_hand_slope_at_zero_is_a_convention():
    fw = _adapter_module("extras").fw

    class RightSlope(fw.LeakyReLU):
        def backward(self, gradient):
            return gradient * torch.where(self.x >= 0, 1.0, self.slope).to(gradient.dtype)

    results = check_target(Target.from_adapter(_extras(leaky_relu=lambda self: RightSlope())))
    kinks = [r for r in results if r.kind == "kink" and r.component == "leaky_relu"]
    assert len(kinks) == 2, "one per dtype checked"
    for kink in kinks:
        assert kink.passed and "derivative 1 at x = 0" in kink.convention, kink.detail


def _reuse_facts(target):
    return {r.case: r for r in run_cases([c for c in target_cases(target, dtypes=(F64,))
                                          if c.name.startswith("instance reuse")])}


def test_instance_reuse_is_a_fact_in_both_directions():
    supported = _reuse_facts(_target("extras"))
    assert set(supported) == {"instance reuse (tanh)", "instance reuse (linear)"}
    assert all(r.passed and r.convention == "supports one module instance at several "
               "positions of a container" for r in supported.values()), supported
    unsupported = _reuse_facts(_target("handout"))
    for case, result in unsupported.items():
        assert result.passed and result.convention.startswith(
            "does not support one module instance at several positions: "), (case, result)
    assert "grad_2.weight differs" in unsupported["instance reuse (linear)"].convention


def test_eval_mode_dropout_backward_with_the_stale_mask_is_named():
    results = check_target(_target("extras", "DropoutEvalStaleMask"), dtypes=(F64,))
    [failed] = _failures(results)
    assert failed.id.endswith("/eval-backward") and "stale training mask" in failed.detail, (
        failed.detail)


@pytest.mark.parametrize("corner", [-1.5, 2.5])
def test_a_wrong_slope_at_any_declared_corner_fails_its_kink_check(corner):
    """A Hardtanh declared with asymmetric corners (min_val −1.5, max_val 2.5), right
    everywhere but exactly at one corner, where its slope is 2 (outside the one-sided slopes
    0 and 1): every declared number is a kink point, so the kink check there fails, whichever
    corner it is."""

    class WrongSlopeAtCorner(_Elementwise):
        def backward(self, gradient):
            slope = ((self.x > -1.5) & (self.x < 2.5)).to(gradient.dtype)
            return gradient * torch.where(self.x == corner, 2.0, slope)

    adapter = _extras(extra_activations={"hardtanh": ("hardtanh", {"min_val": -1.5,
                                                                    "max_val": 2.5})},
                      hardtanh=lambda self: WrongSlopeAtCorner(
                          lambda x: x.clamp(-1.5, 2.5)))
    results = check_target(Target.from_adapter(adapter), dtypes=(torch.float64,), quick=True)
    kinks = {r.id: r for r in results if r.kind == "kink" and r.component == "hardtanh"}
    failed = [check_id for check_id, result in kinks.items() if not result.passed]
    assert failed == [next(i for i in kinks if i.endswith(f"x={corner:g}"))], sorted(kinks)


def test_a_dtype_other_than_the_declared_one_is_one_failed_check_in_this_process():
    """The float32 fixture asked for float64: nothing is checked, and that is a failure
    (``dtype/float64``), never a pass (through ``refnet conform``: test_conform.py)."""
    target = _target("float32")
    results = run_cases(planned_cases(target, dtypes=(torch.float64,))[0])
    (conflict,) = [result for result in results if result.id == "dtype/float64"]
    assert not conflict.passed and "declares dtype float32" in conflict.detail, conflict


# --- the plan: which cases, in which order, at which points ---------------------------------


def _names(cases):
    return [case.name for case in cases]


def test_refnets_plan_is_every_case_in_float64_then_each_again_in_float32():
    """The exact plan of a target with every standard component but the two classification
    losses: a case dropped, renamed or filed under another component shows here."""
    cases, skipped = planned_cases(load_target("refnet"))
    first = ["linear 3→4", "linear 25→2, batch 1",
             "relu", "relu at hand-picked and extreme points", "relu at its kink",
             "tanh", "tanh at hand-picked and extreme points",
             "sigmoid", "sigmoid at hand-picked and extreme points",
             "report network (relu)", "report network (tanh)", "instance reuse (tanh)",
             "instance reuse (linear)", "nested sequential", "mse_loss", "dropout", "sgd",
             "adam", "adam[betas=(0.8,0.99)]", "adam[eps=0.001]",
             "adam[betas=(0.8,0.99),eps=0.001]", "training"]
    assert _names(cases) == first + [f"{name} [float32]" for name in first]
    components = ["linear"] * 2 + ["relu"] * 3 + ["tanh"] * 2 + ["sigmoid"] * 2 + [
        "sequential"] * 5 + ["mse_loss", "dropout", "sgd"] + ["adam"] * 4 + ["training"]
    assert [case.component for case in cases] == components * 2
    assert [(case.dtype, case.tag) for case in cases] == (
        [(F64, "")] * len(first) + [(torch.float32, "float32")] * len(first))
    assert [case.kinds for case in cases[2:5]] == [
        ("finite_difference", "autograd", "side_effect"), ("autograd",), ("kink",)]
    assert [(s.name, s.component, s.reason) for s in skipped] == [
        (loss, loss, f"the adapter has no {loss}()") for loss in ("cross_entropy_loss",
                                                                 "bce_loss")]


@pytest.mark.parametrize("dtypes", [(), (F64, F64), (torch.float16,)])
def test_dtypes_other_than_float64_and_float32_each_once_are_refused(dtypes):
    with pytest.raises(ValueError, match=r"expected one or both of \(torch.float64, "
                                         r"torch.float32\), each once"):
        planned_cases(load_target("refnet"), dtypes=dtypes)


class _Elementwise:
    """A module computing the torch function ``function`` and its autograd derivative: the
    factory of an extra activation declared as that function."""

    def __init__(self, function):
        self.function = function

    def param(self):
        return []

    def zero_grad(self):
        pass

    def forward(self, x):
        self.x = x
        return self.function(x)

    def backward(self, gradient):
        with torch.enable_grad():
            x = self.x.detach().requires_grad_(True)
            return torch.autograd.grad(self.function(x), x, gradient)[0]


def _with_activations(**functions):
    """The extras adapter with the extra activations ``{factory: (torch name, options)}``
    alone, each built as ``_Elementwise``."""
    factories = {name: lambda self, function=function, options=options: _Elementwise(
        lambda x: getattr(torch.nn.functional, function)(x, **options))
        for name, (function, options) in functions.items()}
    return _extras(extra_activations=functions, **factories)


def test_an_extra_activation_gets_a_kink_case_at_each_candidate_where_it_has_one():
    """ReLU6 bends at 0 and 6, Hardtanh at ±1 and Hardsigmoid at ±3 (torch's corners among
    ``KINK_CANDIDATES``), a Softplus of β = −2 at −6 (it returns x where βx exceeds its
    threshold 12: a corner no declared number names); GELU's string argument is no candidate,
    and it has no kink."""
    target = Target.from_adapter(_with_activations(
        relu6=("relu6", {}), hardtanh=("hardtanh", {}), hardsigmoid=("hardsigmoid", {}),
        softplus=("softplus", {"beta": -2.0, "threshold": 12.0}),
        gelu=("gelu", {"approximate": "tanh"})))
    kinks = [name for name in _names(planned_cases(target, dtypes=(F64,))[0])
             if " at its kink" in name]
    assert kinks == [
        "relu6 at its kink", "relu6 at its kink x=6", "hardtanh at its kink x=-1",
        "hardtanh at its kink x=1", "hardsigmoid at its kink x=-3",
        "hardsigmoid at its kink x=3", "softplus at its kink x=-6"]


def test_the_points_checked_one_by_one_are_the_hand_picked_and_extreme_ones_off_the_kinks(
        monkeypatch):
    """Tanh is checked at every hand-picked and extreme point; Hardtanh at those that are not
    its kinks ±1 (where its slope is a convention, the kink check's)."""
    checked = {}

    def record(component, x):
        checked[component.name] = x.flatten().tolist()
        return []

    monkeypatch.setattr("verification.suite.conformance.check_against_reference", record)
    target = Target.from_adapter(_with_activations(hardtanh=("hardtanh", {})))
    run_cases([case for case in planned_cases(target, dtypes=(F64,))[0]
               if case.name.endswith("at hand-picked and extreme points")])
    extreme = [-800.0, -50.0, 0.5, 50.0, 800.0]
    assert checked == {
        "Tanh() at hand-picked points": [-30.0, -1.0, -1e-3, 0.5, 1.0, 30.0],
        "Tanh() at extreme points": extreme,
        "hardtanh: hardtanh() at hand-picked points": [-30.0, -1e-3, 0.5, 30.0],
        "hardtanh: hardtanh() at extreme points": extreme}


def _given_to_check_loss(monkeypatch, target, component):
    """``(shapes, extreme targets)``: the predictions' shapes of the grid ``check_loss`` is
    given for the loss ``component`` of ``target`` in float64, and its extreme inputs'
    targets."""
    given = {}

    def record(view, prediction, target, *, also_at, extremes, **_):
        given["shapes"] = [tuple(p.shape) for p, _ in [(prediction, target), *also_at]]
        given["extremes"] = [extreme.target for extreme in extremes]
        return []

    monkeypatch.setattr("verification.suite.conformance.check_loss", record)
    run_cases([case for case in planned_cases(target, dtypes=(F64,))[0]
               if case.name == component])
    return given["shapes"], given["extremes"]


def test_each_loss_is_checked_on_its_grid_of_batch_sizes_and_widths(monkeypatch):
    """Batches of 6 and 1 at 3 and 2 outputs: a mean, a sum and a batch mean all differ
    there, and a loss written for two classes is met at two."""
    shapes, _ = _given_to_check_loss(monkeypatch, load_target("refnet"), "mse_loss")
    assert shapes == [(6, 3), (1, 2), (1, 3), (6, 2)]


@pytest.mark.parametrize(("name", "dtype"), [("dynamic", F64), ("convention", torch.int64)])
def test_the_extreme_cross_entropy_targets_are_written_as_the_target_declares(
        monkeypatch, name, dtype):
    """One-hot float rows by default, int64 class indices where ``cross_entropy_target`` is
    ``"index"`` (the convention fixture)."""
    _, targets = _given_to_check_loss(monkeypatch, _target(name), "cross_entropy_loss")
    assert [target.dtype for target in targets] == [dtype, dtype]


class _Watched(Target):
    """A target whose calls are watched (as ``remote.RemoteTarget``'s are), none forbidden."""

    def forbidden_calls(self):
        return {}


def test_under_a_course_the_plan_is_its_rules_then_the_components_it_plans():
    """Its source rule and each required component first, then only the components it
    requires or lists as optional, in its dtypes, without the instance-reuse facts; skipped
    only what a missing required component (Adam) leaves out, not the missing optional
    Dropout; the rules of the run last."""
    from verification.course.profile import Course

    course = Course(name="narrow", required=("linear", "tanh", "sequential", "mse_loss",
                                             "adam"),
                    optional=("relu", "dropout"), forbidden=("torch.nn",),
                    dtypes=("float32",), instance_reuse=False)
    target = _Watched.from_adapter(_target("handout").adapter, name="handout")
    cases, skipped = planned_cases(target, course=course)
    planned = ["linear 3→4", "linear 25→2, batch 1", "relu",
               "relu at hand-picked and extreme points", "relu at its kink", "tanh",
               "tanh at hand-picked and extreme points", "report network (relu)",
               "report network (tanh)", "nested sequential", "mse_loss"]
    assert _names(cases) == [
        "course rules (source)", *(f"requires {name}" for name in course.required),
        *(f"{name} [float32]" for name in planned), "course rules (run)"]
    assert {case.dtype for case in cases[6:-1]} == {torch.float32}
    assert [s.name for s in skipped] == [
        "adam", "adam[betas=(0.8,0.99)]", "adam[eps=0.001]", "adam[betas=(0.8,0.99),eps=0.001]"]


def test_the_report_network_is_figure_1s():
    """Two inputs, three hidden layers of 25, two outputs, a Sigmoid at the end (left out
    with ``output=None``)."""
    hidden = "Linear(2, 25), Tanh(), Linear(25, 25), Tanh(), Linear(25, 25), Tanh(), " \
             "Linear(25, 2)"
    assert spec.describe(spec.report_network("tanh")) == f"Sequential({hidden}, Sigmoid())"
    assert spec.describe(spec.report_network("tanh", output=None)) == f"Sequential({hidden})"


def test_instances_are_the_leaves_each_shared_one_once():
    layer = spec.sequential(spec.linear(2, 3), spec.shared("act", spec.tanh(3)),
                            spec.linear(3, 3), spec.shared("act", spec.tanh(3)),
                            spec.linear(3, 2))
    assert [spec.describe(leaf) for leaf in spec.instances(layer)] == [
        "Linear(2, 3)", "Tanh() [act]", "Linear(3, 3)", "Linear(3, 2)"]


def test_a_component_is_named_as_given_else_by_its_structure_else_by_its_module():
    import refnet

    assert [spec.as_component(refnet.Tanh(), *layer, **name).name for layer, name in (
        ((), {"name": "mine"}), ((spec.shared("act", spec.tanh()),), {}), ((), {}))] == [
        "mine", "Tanh() [act]", "Tanh()"]


def test_a_loss_view_is_named_after_its_component_unless_named():
    target = load_target("refnet")
    assert (target.loss("mse_loss").name, target.loss("mse_loss", name="L").name) == (
        "mse_loss", "L")


def test_only_the_container_is_excused_from_returning_dl_dx():
    """``sequential_returns_grad = False`` (the dynamic fixture) lets the container's
    ``backward`` return nothing; its leaves' dL/dx are still due, and checked."""
    target, generator = _target("dynamic"), torch.Generator().manual_seed(0)
    built = {layer.kind: spec.build(target, layer, generator).view.returns_grad
             for layer in (spec.tanh(3), spec.sequential(spec.linear(3, 2)))}
    assert built == {"tanh": True, "sequential": False}


def test_a_failure_keeps_its_diagnosis_and_one_without_says_no_pattern_was_recognised():
    from verification import CheckResult
    from verification.suite.conformance import Case

    def result(passed, diagnosis):
        return CheckResult(f"property/{passed}-{diagnosis}", "M", "property", passed, 0.0, 0.0,
                           0.0, 0.0, "detail", diagnosis=diagnosis)

    outcomes = [(True, ""), (False, "opposite sign"), (False, "")]
    case = Case("facts", ("linear",), ("property",),
                lambda: [result(*outcome) for outcome in outcomes])
    assert [r.diagnosis for r in run_cases([case])] == [
        "", "opposite sign", "no recognisable pattern (no tensors compared: see the detail)"]
