"""Every refnet module against its torch.autograd twin (verification/reference.py)."""

import math

import pytest
import torch
from check_helpers import assert_all_pass, failed_ids
from hypothesis import given
from hypothesis import strategies as st

import refnet
from refnet.network import report_network
from verification import check_against_reference, torch_twin
from verification.checks.reference import (
    EXACT_ATOL,
    autograd_tolerance,
    describe,
    instance_pairs,
    last_scaled_mask,
    summation_length,
    term_magnitudes,
    upstream_gradient,
)
from verification.targets import spec
from verification.targets.protocol import ProtocolError
from verification.targets.refnet_target import refnet_component

F32, F64 = torch.float32, torch.float64


def _generator(seed=0):
    return torch.Generator().manual_seed(seed)


def _linear(inputs, outputs, dtype, replicas=None):
    generator = _generator() if replicas is None else refnet.generators(range(replicas))
    return refnet.Linear(inputs, outputs, generator=generator, dtype=dtype, replicas=replicas)


# name: (module factory taking a dtype, input features, replicas)
CASES = {
    "Linear": (lambda dtype: _linear(3, 4, dtype), 3, None),
    "Linear-replicas": (lambda dtype: _linear(3, 4, dtype, replicas=3), 3, 3),
    "ReLU": (lambda dtype: refnet.ReLU(), 5, None),
    "Tanh": (lambda dtype: refnet.Tanh(), 5, None),
    "Sigmoid": (lambda dtype: refnet.Sigmoid(), 5, None),
    "Dropout": (lambda dtype: refnet.Dropout(0.4, generator=_generator()), 5, None),
    "Tanh-replicas": (lambda dtype: refnet.Tanh(), 5, 2),
    "Sequential": (lambda dtype: refnet.Sequential(
        _linear(3, 6, dtype), refnet.Tanh(), _linear(6, 2, dtype), refnet.Sigmoid()), 3, None),
    "report-relu": (lambda dtype: report_network("relu", generator=_generator(), dtype=dtype),
                    2, None),
    "report-tanh-replicas": (lambda dtype: report_network(
        "tanh", generator=refnet.generators(range(4)), replicas=4, dtype=dtype), 2, 4),
}


def _input(features, batch, dtype, replicas=None, seed=1):
    shape = (batch, features) if replicas is None else (replicas, batch, features)
    return 4 * torch.rand(shape, generator=_generator(seed), dtype=dtype) - 2


def _case(name, dtype, batch, label=None):
    """``(Component, input)``: the module of ``CASES[name]`` as the checks receive it."""
    factory, features, replicas = CASES[name]
    return refnet_component(factory(dtype), label), _input(features, batch, dtype, replicas)


@pytest.mark.parametrize("batch", [1, 7])
@pytest.mark.parametrize("dtype", [F64, F32], ids=["float64", "float32"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_module_matches_autograd_twin(name, dtype, batch):
    assert_all_pass(check_against_reference(*_case(name, dtype, batch)))


def test_one_result_per_tensor_with_stable_ids():
    module, x = _case("Sequential", F64, 4, label="net")
    ids = [result.id for result in check_against_reference(module, x)]
    expected = [f"autograd/net/{tensor}" for tensor in (
        "output", "grad_input", "grad_0.weight", "grad_0.bias", "grad_2.weight", "grad_2.bias")]
    assert ids == expected, f"ids {ids} differ from {expected}"


@pytest.mark.parametrize("module, x", [
    (refnet.ReLU(), torch.tensor([[-1.0, 0.0, 1.0]], dtype=F64)),
    (refnet.Sigmoid(), torch.tensor([[-300.0, -30.0, 0.0, 30.0, 300.0]], dtype=F64)),
    (refnet.Tanh(), torch.tensor([[-300.0, -20.0, 0.0, 20.0, 300.0]], dtype=F64)),
    (refnet.Sigmoid(), torch.tensor([[-80.0, 0.0, 80.0]], dtype=F32)),
], ids=["relu-kink", "sigmoid-extreme", "tanh-extreme", "sigmoid-extreme-float32"])
def test_hand_picked_points(module, x):
    assert_all_pass(check_against_reference(refnet_component(module), x))


@st.composite
def _nested_sequentials(draw, depth=0):
    """A random Sequential (nested up to two levels deep) and its input width."""
    width = draw(st.integers(1, 5))
    modules, current = [], width
    leaves = ["linear", "relu", "tanh", "sigmoid", "dropout"]
    kinds = leaves + (["nested"] if depth < 2 else [])
    for kind in draw(st.lists(st.sampled_from(kinds), min_size=1, max_size=4)):
        if kind == "linear":
            outputs = draw(st.integers(1, 5))
            modules.append(refnet.Linear(current, outputs, dtype=F64,
                                         generator=_generator(draw(st.integers(0, 99)))))
            current = outputs
        elif kind == "nested":
            inner, inner_width, inner_output = draw(_nested_sequentials(depth=depth + 1))
            modules.extend([refnet.Linear(current, inner_width, dtype=F64,
                                          generator=_generator()), inner])
            current = inner_output
        elif kind == "dropout":
            modules.append(refnet.Dropout(0.5, generator=_generator(draw(st.integers(0, 99)))))
        else:
            modules.append({"relu": refnet.ReLU, "tanh": refnet.Tanh,
                            "sigmoid": refnet.Sigmoid}[kind]())
    return refnet.Sequential(*modules), width, current


@given(_nested_sequentials(), st.integers(1, 6), st.sampled_from([1.0, 50.0]),
       st.integers(0, 2**16))
def test_random_nested_sequential_matches_twin(model, batch, input_scale, seed):
    sequential, width, _ = model
    x = input_scale * _input(width, batch, F64, seed=seed)
    assert_all_pass(check_against_reference(refnet_component(sequential), x, seed=seed))


@pytest.mark.parametrize("component", [
    refnet_component, lambda linear: spec.as_component(linear, spec.linear(2, 1))],
    ids=["leaves-known", "structure-only"])
def test_term_magnitudes_hand_worked_linear(component):
    """The same bounds whether the target's leaf objects are known or only its structure
    (a model checked with ``layer=``, whose ``Component.leaves`` is ``None``)."""
    linear = _linear(2, 1, F64)
    linear.weight.copy_(torch.tensor([[1.0, -1.0]]))
    linear.bias.fill_(0.5)
    bounds = term_magnitudes(component(linear), torch.tensor([[2.0, -3.0]], dtype=F64),
                             lambda _output, _bound: torch.tensor([[4.0]], dtype=F64))
    # dL/dW = g xᵀ: the error of g times |x| (4·[2, 3]) plus the terms of g times the
    # error scale of x, which is |x| for an input (4·[2, 3] again).
    _assert_bounds(bounds, {"output": [[5.5]], "grad_input": [[4.0, 4.0]],
                            "weight": [[16.0, 24.0]], "bias": [4.0]})


def _assert_bounds(bounds, worked):
    weight, bias, *activation = bounds.grad_params
    got = {"output": bounds.output, "grad_output": bounds.grad_output,
           "grad_input": bounds.grad_input, "weight": weight,
           "bias": bias, "activation": activation[0] if activation else None}
    for key, value in worked.items():
        assert torch.allclose(got[key], torch.tensor(value, dtype=F64), rtol=1e-15), (
            f"{key}: {got[key].tolist()}, worked by hand {value}")


def test_term_magnitudes_hand_worked_linear_given_dl_dy_terms_and_error_apart():
    """dL/dy of terms 4 and error scale 1 (``grad_output_bound_of`` returning the pair): dL/dx
    gets the error through |W|, dL/dW the error times |x| plus the terms times x's error
    scale |x| ([1·2 + 4·2, 1·3 + 4·3]); dL/dy's own bound is the larger, 4."""
    linear = _linear(2, 1, F64)
    linear.weight.copy_(torch.tensor([[1.0, -1.0]]))
    bounds = term_magnitudes(refnet_component(linear), torch.tensor([[2.0, -3.0]], dtype=F64),
                             lambda _output, _bound: (torch.tensor([[4.0]], dtype=F64),
                                                      torch.tensor([[1.0]], dtype=F64)))
    _assert_bounds(bounds, {"grad_output": [[4.0]], "grad_input": [[1.0, 1.0]],
                            "weight": [[10.0, 15.0]], "bias": [1.0]})


def _unit_then(activation, weight, bias, x, upstream):
    """The bounds of Linear(1, 1) (``weight``, ``bias``) then ``activation``, at the column
    ``x`` with dL/dy = ``upstream``."""
    linear = _linear(1, 1, F64)
    linear.weight.fill_(weight)
    linear.bias.fill_(bias)
    return term_magnitudes(refnet_component(refnet.Sequential(linear, activation)),
                           torch.tensor(x, dtype=F64),
                           lambda _output, _bound: torch.tensor(upstream, dtype=F64))


def test_term_magnitudes_hand_worked_relu_pass_the_positive_inputs_gradient_alone():
    """x = 2 and −3 through w = 1, b = 0, then ReLU, g = 1: only the sample at 2 carries a
    gradient back, dL/dx's bound [1, 0], dL/dw's 1·2 (error of g times |x|) + 1·2 (terms of g
    times x's error scale); the output's bound is the pre-activation's, [2, 3]."""
    bounds = _unit_then(refnet.ReLU(), 1.0, 0.0, [[2.0], [-3.0]], [[1.0], [1.0]])
    _assert_bounds(bounds, {"output": [[2.0], [3.0]], "grad_input": [[1.0], [0.0]],
                            "weight": [[4.0]], "bias": [1.0]})


def test_term_magnitudes_hand_worked_tanh_of_a_negative_sum_charge_its_sizes():
    """x = −1 through w = 1, b = −1: v = −2, of error scale |x|·|w| + |b| = 2; tanh charges
    its own size |y| = tanh 2 plus its slope 1 − y² times that scale."""
    bounds = _unit_then(refnet.Tanh(), 1.0, -1.0, [[-1.0]], [[1.0]])
    y = math.tanh(2.0)
    _assert_bounds(bounds, {"output": [[y + (1 - y * y) * 2.0]]})


def _unit_then_function(name, parameters):
    """Linear(1, 1) (w = 1, b = 0) then the extra activation ``name`` of learned values
    ``parameters``, as a ``Component`` listing those values (a stub of any framework)."""
    pairs = [(torch.tensor(value, dtype=F64),) * 2 for value in [[[1.0]], [0.0], *parameters]]
    view = type("View", (), {"name": "net", "param_source": "param()",
                             "param": lambda self: pairs})()
    function = spec.Function.declared(name)
    return spec.Component(view, spec.sequential(spec.linear(1, 1),
                                                spec.activation(name, 1, function)))


S2, C2 = math.sin(2.0), abs(math.cos(2.0))


@pytest.mark.parametrize("name, parameters, worked", [
    # |y| + |f′|·E_x forward; backward s = |f′|, error E·s + T·|f″|·(|x| + E_x), f″ = −sin x;
    # dL/dw = Σ E·|x| + T·E_x over the two samples, all at x = ∓2, E_x = 2, g = 1.
    ("sin", [], {"output": [[S2 + 2 * C2]] * 2, "grad_input": [[C2 + 4 * S2]] * 2,
                 "weight": [[2 * (2 * (C2 + 4 * S2) + 2 * C2)]], "bias": [2 * (C2 + 4 * S2)]}),
    # PReLU at a = 0.25: y = [−0.5, 2], f′ = [0.25, 1]; dL/da: ∂y/∂a = min(x, 0) = [−2, 0],
    # charged |∂y/∂a|·(E + T) + T·E_x where it is not 0: 2 + 2 + 2.
    ("prelu", [[0.25]], {"output": [[1.0], [4.0]], "grad_input": [[0.25], [1.0]],
                         "weight": [[5.0]], "bias": [1.25], "activation": [6.0]}),
], ids=["sin", "prelu"])
def test_term_magnitudes_hand_worked_extra_activation_charge_sizes_and_slopes(
        name, parameters, worked):
    """An extra activation at x = −2 and 2: its value, slope and curvature of either sign are
    charged by their sizes (the module docstring's rule for a formula the harness does not
    know)."""
    x = torch.tensor([[-2.0], [2.0]], dtype=F64)
    bounds = term_magnitudes(_unit_then_function(name, parameters), x,
                             lambda _output, _bound: torch.ones_like(x))
    _assert_bounds(bounds, worked)


def test_summation_length_charges_an_activations_parameter_a_batch_sum_per_feature():
    """PReLU of 3 features over a batch of 10: its 2 ulps and the 10·3 terms of its weight's
    gradient; of an unknown width (0), one feature."""
    prelu = spec.Function.declared("prelu")
    lengths = [summation_length(spec.activation("prelu", features, prelu), batch=10)
               for features in (3, 0)]
    assert lengths == [2 + 30, 2 + 10], lengths


def test_term_magnitudes_bound_every_value():
    module, x = _case("report-tanh-replicas", F64, 6)
    twin = torch_twin(module)
    upstream = upstream_gradient(twin(x), seed=0)
    bounds = term_magnitudes(module, x, lambda _output, _bound: upstream.abs())
    x = x.clone().requires_grad_()
    output = twin(x)
    output.backward(upstream)
    values = [output, x.grad] + [parameter.grad for parameter in twin.parameters()]
    for index, (value, bound) in enumerate(zip(values, [bounds.output, bounds.grad_input,
                                                        *bounds.grad_params], strict=True)):
        assert bool((value.detach().abs() <= bound).all()), f"tensor {index} exceeds its bound"


def test_the_summation_length_of_replicated_inputs_counts_the_samples_of_one_replica():
    """Linear(3, 4) with 3 replicas on [3, 5, 3]: n = 3 + 4 + 5, the batch sums of 5."""
    module, x = _case("Linear-replicas", F64, 5)
    results = check_against_reference(module, x)
    assert_all_pass(results)
    assert all("summation length n=12" in result.detail for result in results), results


def test_twin_parameters_follow_param_order():
    module = report_network("relu", generator=_generator(), dtype=F64)
    twin_values = [parameter.detach()
                   for parameter in torch_twin(refnet_component(module)).parameters()]
    values = [value for value, _ in module.param()]
    assert len(twin_values) == len(values), "twin and param() differ in parameter count"
    for index, (twin_value, value) in enumerate(zip(twin_values, values, strict=True)):
        assert torch.equal(twin_value, value), f"twin parameter {index} differs from param()"


def test_check_leaves_parameter_values_unchanged():
    component, x = _case("report-relu", F64, 5)
    before = [value.clone() for value, _ in component.view.param()]
    check_against_reference(component, x)
    after = [value for value, _ in component.view.param()]
    assert all(torch.equal(a, b) for a, b in zip(before, after, strict=True)), (
        "check_against_reference changed parameter values")


def test_foreign_module_without_structure_is_told_to_pass_it():
    with pytest.raises(ValueError, match="structure of object is unknown.*layer="):
        torch_twin(object())


def test_bare_refnet_module_is_told_where_its_structure_is_read():
    with pytest.raises(ValueError, match="structure of .* unknown.*refnet_component"):
        check_against_reference(refnet.Tanh(), _input(5, 2, F64))


def test_same_seed_same_upstream_gradient_and_different_seed_differs():
    output = torch.zeros(4, 3, dtype=F64)
    assert torch.equal(upstream_gradient(output, 5), upstream_gradient(output, 5)), (
        "the same seed gave different upstream gradients")
    assert not torch.equal(upstream_gradient(output, 5), upstream_gradient(output, 6)), (
        "different seeds gave the same upstream gradient")


def test_upstream_gradient_ignores_global_generator():
    output = torch.zeros(4, 3, dtype=F32)
    torch.manual_seed(1)
    first = upstream_gradient(output, 0)
    torch.manual_seed(2)
    assert torch.equal(first, upstream_gradient(output, 0)), "the global RNG leaked in"


def test_tolerance_formula_and_exact_floor():
    tolerance = autograd_tolerance(F64, terms=10, scale=2.0)
    assert tolerance.rtol == 4 * 10 * 2.0**-53, f"rtol {tolerance.rtol} is not 4·n·u"
    assert tolerance.atol == tolerance.rtol * 2.0, f"atol {tolerance.atol} is not rtol·scale"
    assert autograd_tolerance(F32, 10, 0.0).atol == EXACT_ATOL, "a zero scale must floor atol"


def test_summation_length_counts_linear_sums_and_elementwise_ulps():
    module = refnet.Sequential(_linear(2, 3, F64), refnet.ReLU(),
                               refnet.Sequential(_linear(3, 4, F64)))
    assert summation_length(refnet_component(module), batch=5) == (2 + 3 + 5) + 2 + (3 + 4 + 5), (
        "summation length is not Σ(in + out + batch) + 2 per element-wise module")


def test_describe_is_one_line():
    module = refnet.Sequential(_linear(2, 3, F64), refnet.Sequential(refnet.ReLU()))
    assert describe(refnet_component(module)) == "Sequential(Linear(2, 3), Sequential(ReLU()))"


def test_last_scaled_mask_before_forward_raises():
    with pytest.raises(RuntimeError, match="has not run forward"):
        last_scaled_mask(refnet.Dropout(0.5))


# --- planted bugs: each must fail exactly the tensors it touches, naming them ------------------


def _linear_backward_bias_mean(self, grad_output):
    """Linear backward with dL/db averaged over the batch instead of summed (eq. 4 broken)."""
    self.grad_weight.add_(grad_output.transpose(-1, -2).matmul(self._input))
    self.grad_bias.add_(grad_output.mean(dim=-2))
    return grad_output.matmul(self.weight)


def _linear_backward_weight_mean(self, grad_output):
    """Linear backward with dL/dw averaged over the batch (eq. 3 broken)."""
    batch = grad_output.shape[-2]
    self.grad_weight.add_(grad_output.transpose(-1, -2).matmul(self._input) / batch)
    self.grad_bias.add_(grad_output.sum(dim=-2))
    return grad_output.matmul(self.weight)


def test_planted_bias_gradient_not_summed_fails_every_bias_only(monkeypatch):
    monkeypatch.setattr(refnet.Linear, "backward", _linear_backward_bias_mean)
    results = check_against_reference(*_case("report-relu", F64, 6, label="net"))
    expected = {f"autograd/net/grad_{layer}.bias" for layer in (0, 2, 4, 6)}
    assert failed_ids(results) == expected, f"failed {failed_ids(results)}, not {expected}"
    failure = next(result for result in results if result.id == "autograd/net/grad_2.bias")
    assert "2.bias of Linear(25, 25)" in failure.detail, failure.detail


def test_planted_weight_gradient_mean_fails_weights_with_replicas(monkeypatch):
    monkeypatch.setattr(refnet.Linear, "backward", _linear_backward_weight_mean)
    results = check_against_reference(*_case("Linear-replicas", F64, 5, label="lin"))
    assert failed_ids(results) == {"autograd/lin/grad_weight"}, failed_ids(results)


def test_planted_tanh_derivative_fails_input_gradient(monkeypatch):
    monkeypatch.setattr(refnet.Tanh, "_slope", lambda self, y: 1 - y)
    results = check_against_reference(*_case("Tanh", F64, 4))
    assert failed_ids(results) == {"autograd/Tanh()/grad_input"}, failed_ids(results)
    assert "dL/dx" in results[1].detail, results[1].detail


def test_planted_relu_kink_derivative_points_at_zero_input(monkeypatch):
    monkeypatch.setattr(refnet.ReLU, "_apply", lambda self, x: (x.clamp_min(0), (x >= 0) * 1.0))
    results = check_against_reference(refnet_component(refnet.ReLU()),
                                      torch.tensor([[-1.0, 1.0, 0.0]], dtype=F64))
    assert failed_ids(results) == {"autograd/ReLU()/grad_input"}, failed_ids(results)
    assert "worst element [0, 2]" in results[1].detail, results[1].detail


def test_planted_sigmoid_forward_fails_output(monkeypatch):
    monkeypatch.setattr(refnet.Sigmoid, "_apply", lambda self, x: (torch.tanh(x),) * 2)
    results = check_against_reference(*_case("Sigmoid", F32, 3))
    assert "autograd/Sigmoid()/output" in failed_ids(results), failed_ids(results)


def test_planted_unscaled_dropout_backward_fails_input_gradient(monkeypatch):
    monkeypatch.setattr(refnet.Dropout, "_slope", lambda self, mask: (mask != 0) * 1.0)
    results = check_against_reference(*_case("Dropout", F64, 8))
    assert failed_ids(results) == {"autograd/Dropout(p=0.4)/grad_input"}, failed_ids(results)


def test_refnet_error_becomes_failed_result_with_its_message():
    results = check_against_reference(refnet_component(_linear(3, 4, F64)), _input(3, 2, F32))
    assert len(results) == 1 and not results[0].passed, results
    assert results[0].id == "autograd/Linear(3, 4)/raised", results[0].id
    assert "TypeError" in results[0].detail and "dtype" in results[0].detail, results[0].detail


def _shared_network(pairs):
    """Linear a, b, c, then a again: a ``Component`` whose ``param()`` is ``pairs``."""
    a = spec.linear(2, 2)
    layer = spec.sequential(spec.shared("a", a), spec.linear(2, 3), spec.linear(3, 2),
                            spec.shared("a", a))
    view = type("View", (), {"name": "net", "param_source": "param()",
                             "param": lambda self: pairs})()
    return spec.Component(view, layer)


def _pairs(*names):
    return [(f"{name}.{kind}", None) for name in names for kind in ("weight", "bias")]


@pytest.mark.parametrize("listed", ["abc", "abca"], ids=["per-instance", "per-position"])
def test_a_shared_instance_is_read_once_whether_listed_once_or_at_each_position(listed):
    """param() may list the shared ``a`` at each of its positions: it is read at the first,
    and each of the other instances (b, c) once, in order."""
    pairs = instance_pairs(_shared_network(_pairs(*listed)))
    assert [taken for _, taken in pairs] == [_pairs(name) for name in "abc"], pairs


def test_a_shared_network_listing_neither_way_is_a_protocol_error():
    """9 pairs: neither 6 (each instance once) nor 8 (each position)."""
    with pytest.raises(ProtocolError, match=r"net.param\(\) lists 9 pairs; its structure has 6 "):
        instance_pairs(_shared_network(_pairs(*"abca") + _pairs("d")[:1]))


class _MaskKeptInEvaluation(refnet.Dropout):
    """A Dropout whose ``last_mask`` stays that of its last training forward."""

    @property
    def last_mask(self):
        if self.training:
            self.kept = self._cache
        return self.kept


def test_an_evaluation_mode_dropout_is_the_identity_whatever_mask_it_kept():
    dropout = _MaskKeptInEvaluation(0.5, generator=_generator())
    x = _input(5, 4, F64)
    dropout.forward(x)
    assert (dropout.last_mask == 0).any(), "the training forward dropped no unit"
    dropout.eval()
    assert_all_pass(check_against_reference(refnet_component(dropout), x))
