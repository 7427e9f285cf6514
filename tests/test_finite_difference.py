"""Tests of verification.checks.finite_difference: every refnet module, hand-picked points, kinks,
planted bugs, the batched paths and their cost."""

import pytest
import torch

import refnet
from refnet.network import report_network
from verification.checks.finite_difference import (
    assert_backward_matches,
    check_backward,
    finite_differences,
)
from verification.checks.finite_difference.directions import _Projections
from verification.checks.kink import Kinks, check_kink, find_kinks
from verification.checks.result import CheckFailure
from verification.targets.refnet_target import refnet_component

F64 = torch.float64


def _generator(seed=0):
    return torch.Generator().manual_seed(seed)


def _uniform(*shape, low=-2.0, high=2.0, seed=1):
    return low + (high - low) * torch.rand(shape, generator=_generator(seed), dtype=F64)


def _linear(inputs, outputs, **options):
    return refnet.Linear(inputs, outputs, dtype=F64, generator=_generator(), **options)


def _report(activation="tanh", **options):
    return report_network(activation, dtype=F64, generator=_generator(), **options)


class _Chain(refnet.Module):
    """A container without ``refnet.Sequential``'s check against an instance placed twice."""

    def __init__(self, *modules):
        self.modules = list(modules)

    def forward(self, x):
        for module in self.modules:
            x = module.forward(x)
        return x

    def backward(self, grad_output):
        for module in reversed(self.modules):
            grad_output = module.backward(grad_output)
        return grad_output

    def param(self):
        return [pair for module in self.modules for pair in module.param()]


class _FixedMaskDropout(refnet.Module):
    """Training-mode Dropout whose mask is redrawn from the same seed at every forward."""

    def __init__(self, p, seed):
        self.dropout, self.seed = refnet.Dropout(p, generator=torch.Generator()), seed

    def forward(self, x):
        self.dropout.generator.manual_seed(self.seed)
        return self.dropout.forward(x)

    def backward(self, grad_output):
        return self.dropout.backward(grad_output)


# --- every refnet module passes --------------------------------------------------------------

MODULES = {
    "Linear(2, 3), batch 4": (lambda: _linear(2, 3), (4, 2)),
    "Linear(5, 1), batch 1": (lambda: _linear(5, 1), (1, 5)),
    "Linear(1, 1), batch 1": (lambda: _linear(1, 1), (1, 1)),
    "Linear(25, 25), batch 7": (lambda: _linear(25, 25), (7, 25)),
    "Linear(2, 3, replicas=3)": (lambda: _linear(2, 3, replicas=3), (3, 4, 2)),
    "ReLU": (refnet.ReLU, (6, 4)),
    "Tanh": (refnet.Tanh, (6, 4)),
    "Sigmoid": (refnet.Sigmoid, (6, 4)),
    "Dropout, eval": (lambda: refnet.Dropout(0.5).eval(), (6, 4)),
    "report network, tanh": (_report, (8, 2)),
    "report network, relu": (lambda: _report("relu"), (8, 2)),
    "small report-style network, 2 replicas": (lambda: _report(replicas=2, sizes=(2, 6, 6, 2)),
                                               (2, 5, 2)),
}


@pytest.mark.parametrize(("build", "shape"), MODULES.values(), ids=MODULES.keys())
def test_backward_matches_central_differences(build, shape):
    module = build()
    results = assert_backward_matches(module, _uniform(*shape))
    assert len(results) == 1 + len(module.param()), "one result per tensor: input and params"


def test_dropout_with_a_fixed_mask_passes_one_element_at_a_time():
    results = assert_backward_matches(_FixedMaskDropout(0.5, seed=3), _uniform(5, 4),
                                      row_wise=False)
    assert "one element at a time" in results[0].detail, results[0].detail


def test_results_are_named_by_module_and_tensor():
    results = check_backward(_linear(2, 3), _uniform(4, 2))
    assert [r.id for r in results] == [
        "finite_difference/Linear(2, 3)/input",
        "finite_difference/Linear(2, 3)/param[0] (weight)",
        "finite_difference/Linear(2, 3)/param[1] (bias)",
    ], [r.id for r in results]
    assert {r.kind for r in results} == {"finite_difference"}


def test_same_seed_same_results_and_other_seed_other_numbers():
    net, x = _report(), _uniform(8, 2)
    first, again = check_backward(net, x, seed=5), check_backward(net, x, seed=5)
    other = check_backward(net, x, seed=6)
    assert first == again, "the same seed must give identical results"
    assert [r.detail for r in first] != [r.detail for r in other], "seed must change w"


# --- hand-picked points and kinks ------------------------------------------------------------

POINTS = {
    "ReLU at -1, 0, 1": (refnet.ReLU, [[-1.0, 0.0, 1.0]], 1),
    # half a step h = 1e-6 either side of the kink: the stencil t ± h straddles it, and only
    # the five points' second differences see it (those of four points cancel at h/2); the
    # random dL/dy gives the jumps both signs
    "ReLU at ±h/2, ±1": (refnet.ReLU, [[-5e-7, 5e-7, 1.0], [5e-7, -5e-7, -1.0]], 4),
    "Tanh at -30, 0, 30": (refnet.Tanh, [[-30.0, 0.0, 30.0]], 0),
    "Sigmoid at -30, 0, 30": (refnet.Sigmoid, [[-30.0, 0.0, 30.0]], 0),
    "Linear at large inputs": (lambda: _linear(3, 2), [[1e3, -1e3, 3e2]], 0),
}


@pytest.mark.parametrize(("build", "rows", "kinks"), POINTS.values(), ids=POINTS.keys())
def test_hand_picked_points(build, rows, kinks):
    [result, *_] = assert_backward_matches(build(), torch.tensor(rows, dtype=F64))
    assert result.excluded == kinks, f"expected {kinks} element(s) at a kink: {result.detail}"
    assert ("kink" in result.detail) == bool(kinks), f"kinks are named: {result.detail}"


@pytest.mark.parametrize("seed", range(10))
def test_relu_network_at_its_kinks_is_never_flaky(seed):
    # Zero biases and a zero input row put every first-layer unit exactly at its kink.
    net = refnet.Sequential(_linear(2, 6), refnet.ReLU(), _linear(6, 2))
    x = torch.cat([torch.zeros(1, 2, dtype=F64), _uniform(3, 2, seed=seed)])
    results = assert_backward_matches(net, x, seed=seed)
    assert sum(r.excluded for r in results) > 0, "the kink elements must be left out, counted"


def test_relu_derivative_at_zero_is_torch_convention():
    result = check_kink(refnet.ReLU())
    assert result.passed and result.kind == "kink", result.detail


def test_a_global_state_change_at_the_kink_fails_the_kink_check():
    """The slope is right, but the backward switches autograd off: the one result the kink
    check returns is that failure, not the slope's pass."""

    class Silencing(refnet.ReLU):
        def backward(self, gradient):
            torch.set_grad_enabled(False)
            return super().backward(gradient)

    result = check_kink(Silencing())
    assert torch.is_grad_enabled(), "the harness restores grad mode"
    assert not result.passed and result.id.endswith("/global-state"), result


def test_kink_check_catches_the_other_convention(monkeypatch):
    monkeypatch.setattr(refnet.ReLU, "_apply", lambda self, x: (x.clamp_min(0),
                                                                (x >= 0).to(x.dtype)))
    at_zero = torch.tensor([[-1.0, 0.0, 1.0]], dtype=F64)
    [finite_difference] = assert_backward_matches(refnet.ReLU(), at_zero)
    assert finite_difference.excluded > 0, "finite differences cannot see the kink value"
    result = check_kink(refnet.ReLU(), declared_slope=0.0)
    assert not result.passed and "kink" in result.detail, result.detail
    undeclared = check_kink(refnet.ReLU())
    assert undeclared.passed and "derivative 1 at x = 0" in undeclared.convention, (
        undeclared.convention)


U = torch.finfo(F64).eps / 2
"""float64's unit round-off, 2⁻⁵³; the kink check's rtol is 4u."""


class _Bent(refnet.ReLU):
    """The element-wise ``function`` with torch's slope everywhere but exactly at ``at``,
    where the backward uses ``slope`` (a number, or one per element of the input)."""

    def __init__(self, function=torch.relu, slope=1.0, at=0.0):
        super().__init__()
        self.function, self.slope, self.at = function, slope, at

    def _apply(self, x):
        return self.function(x), x

    def _slope(self, x):
        with torch.enable_grad():
            leaf = x.detach().requires_grad_(True)
            (own,) = torch.autograd.grad(self.function(leaf).sum(), leaf)
        return torch.where(x == self.at, torch.as_tensor(self.slope, dtype=x.dtype), own)


def _falling_relu(x):
    return torch.relu(-x)


def _negated_relu(x):
    return -torch.relu(x)


def _elu2(x):
    return torch.nn.functional.elu(x, alpha=2.0)


def _leaky_relu_falling_left(x):
    return torch.nn.functional.leaky_relu(x, negative_slope=-0.5)


def _hardtanh2(x):
    return torch.nn.functional.hardtanh(x, -2.0, 2.0)


def test_a_slope_just_outside_the_valid_interval_at_the_kink_fails():
    """The kink check's rtol (4u) from above: a slope 10u beyond [0, 1] is no convention."""
    result = check_kink(_Bent(slope=1 + 10 * U))
    assert not result.passed and not result.convention, (result.detail, result.convention)


@pytest.mark.parametrize(("function", "slope", "used"), [
    (torch.relu, 0.5, "0.5 at x = 0, where torch.autograd's relu uses 0"),
    # within rtol = 4u of the steeper one-sided slope, whatever its sign: g·s/g rounds s = 1 + 2u
    # to 1 + 2u or 1 + 4u, never to 1, so the margin rtol·max(|L|, |R|) is what admits it
    (torch.relu, 1 + 2 * U, "1 at x = 0, where torch.autograd's relu uses 0"),
    (_falling_relu, -1 - 2 * U, "-1 at x = 0, where torch.autograd's _falling_relu uses -0"),
    (_negated_relu, -1 - 2 * U, "-1 at x = 0, where torch.autograd's _negated_relu uses 0"),
    # torch's value is the larger one-sided slope here, the module's the smaller one
    (_elu2, 1.0, "1 at x = 0, where torch.autograd's _elu2 uses 2"),
    # one-sided slopes of both signs (-0.5 and 1): the module's 0 lies between them
    (_leaky_relu_falling_left, 0.0,
     "0 at x = 0, where torch.autograd's _leaky_relu_falling_left uses -0.5"),
], ids=["relu-half", "relu-2u-above-one", "falling-left", "falling-right", "elu-right-hand",
        "leaky-negative-slope-zero"])
def test_a_single_slope_between_the_one_sided_ones_is_a_named_convention(function, slope,
                                                                         used):
    result = check_kink(_Bent(function, slope), function)
    assert result.passed, result.detail
    assert result.convention == f"derivative {used} (both valid subgradients)", (
        result.convention)


@pytest.mark.parametrize(("module", "reference", "at", "dtype", "said"), [
    (_Bent(_hardtanh2, 2.0, at=-2.0), _hardtanh2, -2.0, F64,
     "(x = -2 ∓ 0.00195), wrong only at the kink x = -2: slope 2, where the one-sided slopes "
     "are 0 and 1"),
    # the first element is the largest: the others all lie below it
    (_Bent(slope=torch.tensor([[2.0, 1.5, 1.75], [1.5, 2.0, 1.6]])), torch.relu, 0.0, F64,
     "(x = 0 ∓ 0.000977), wrong only at the kink x = 0: slopes varying from 1.5 to 2, where "
     "the one-sided slopes are 0 and 1"),
    # float32's rtol (4·2⁻²⁴) times the left-hand slope -1 is larger than the 1e-12 floor
    (_Bent(_falling_relu, 2.0), _falling_relu, 0.0, torch.float32,
     "(x = 0 ∓ 0.000977), wrong only at the kink x = 0: slope 2, where the one-sided slopes "
     "are -1 and -0"),
], ids=["hardtanh-at-minus-2", "relu-varying", "falling-float32"])
def test_a_module_wrong_only_at_the_kink_is_told_so(module, reference, at, dtype, said):
    result = check_kink(module, reference, at=at, dtype=dtype)
    assert not result.passed, result.detail
    assert result.diagnosis == f"right on both sides of the kink {said}", result.diagnosis


def test_a_module_also_wrong_beside_the_kink_is_not_said_right_on_both_sides():
    """Half torch's slope right of the kink, 2 at it: the comparison's own diagnosis stands."""
    result = check_kink(_Bent(lambda x: torch.relu(x) / 2, 2.0), torch.relu)
    assert not result.passed, result.detail
    assert result.diagnosis.startswith("no recognisable pattern"), result.diagnosis


@pytest.mark.parametrize(("function", "candidates", "kinks", "jumps"), [
    (lambda x: torch.nn.functional.threshold(x, 0.0, -1.0), [0.0], (), (0.0,)),
    (lambda x: -torch.nn.functional.hardshrink(x, 0.5), [-0.5, 0.5], (), (-0.5, 0.5)),
    (_falling_relu, [0.0], (0.0,), ()),
    (_negated_relu, [0.0], (0.0,), ()),
    (_hardtanh2, [-2.0, 2.0], (-2.0, 2.0), ()),
    # smooth, with slopes σ(∓βδ) that differ by βδ/2 = 7e-6 > 1e-6: their change between δ
    # and 2δ (βδ/4 each side, of either sign) is what tells the bend from a kink
    (lambda x: torch.nn.functional.softplus(x, beta=1000.0), [0.0], (), ()),
    (lambda x: -torch.nn.functional.softplus(x, beta=1000.0), [0.0], (), ()),
], ids=["jump-at-zero", "downward-jumps", "falling-left", "falling-right", "hardtanh",
        "steep-bend", "steep-bend-negated"])
def test_find_kinks_tells_kinks_from_jumps_and_from_steep_smooth_bends(function, candidates,
                                                                       kinks, jumps):
    assert find_kinks(function, candidates) == Kinks(kinks, jumps)


def test_slopes_within_a_curved_sides_slack_are_its_one_sided_slope():
    """ELU (α = 2) has slope 2·e^x left of 0: read at -δ it is 2(1 - δ), and it moves by
    2δ ≈ 3e-8 between δ and 2δ (the slack). Slopes scattered within that band (2(1 - 0.1δ)
    and 2(1 - 1.9δ), 1.8δ from the slope read) are the left-hand one, held to the slack
    times the largest |dL/dy|: seed 0's is -2.18 (the largest positive one is 1.54), where
    the error is 0.9 of that tolerance."""
    scatter = torch.tensor([[0.1, 1.9, 0.1], [1.9, 0.1, 1.9]], dtype=F64)
    result = check_kink(_Bent(_elu2, 2 * (1 - 2.0 ** -26 * scatter)), _elu2)
    assert result.passed, result.detail
    assert "is the left-hand slope" in result.convention, result.convention


# --- planted bugs fail, naming module, tensor and element --------------------------------

def _linear_backward_then(change):
    original = refnet.Linear.backward

    def backward(self, grad_output):
        grad_input = original(self, grad_output)
        return change(self, grad_output, grad_input)
    return backward


def _transposed_weight_in_grad_input(self, grad_output, grad_input):
    return grad_output.matmul(self.weight.transpose(-1, -2))


def _negated_bias_gradient(self, grad_output, grad_input):
    self.grad_bias.neg_()
    return grad_input


def _transposed_weight_gradient(self, grad_output, grad_input):
    self.grad_weight.copy_(self.grad_weight.transpose(-1, -2).clone())
    return grad_input


BUGS = {
    "dL/dx uses wᵀ": (_transposed_weight_in_grad_input, lambda: _linear(3, 3), (4, 3),
                      "dL/d input"),
    "bias gradient sign": (_negated_bias_gradient, lambda: _linear(2, 3), (4, 2),
                           "dL/d param[1] (bias)"),
    "weight gradient transposed": (_transposed_weight_gradient, lambda: _linear(3, 3), (4, 3),
                                   "dL/d param[0] (weight)"),
    "bias gradient sign, replicas": (_negated_bias_gradient, lambda: _linear(2, 3, replicas=2),
                                     (2, 4, 2), "dL/d param[1] (bias)"),
    "bias gradient sign, network": (_negated_bias_gradient, _report, (8, 2),
                                    "dL/d param[7] (modules[6].bias)"),
}


@pytest.mark.parametrize(("change", "build", "shape", "tensor"), BUGS.values(), ids=BUGS.keys())
def test_planted_linear_bug_fails_naming_the_tensor(monkeypatch, change, build, shape, tensor):
    module = build()
    monkeypatch.setattr(refnet.Linear, "backward", _linear_backward_then(change))
    with pytest.raises(CheckFailure) as failure:
        assert_backward_matches(module, _uniform(*shape))
    message = str(failure.value)
    for fact in (tensor, "worst element [", "expected", "got", "atol=", "rtol=",
                 "max rel error", "eps=1e-06", "seed=0", "reproduce:"):
        assert fact in message, f"{fact!r} missing from the failure message:\n{message}"


def test_planted_tanh_bug_is_caught_in_the_network_worst_tensor_first(monkeypatch):
    monkeypatch.setattr(refnet.Tanh, "_slope", lambda self, y: 1 - y)
    results = check_backward(_report(), _uniform(8, 2))
    assert not any(r.passed for r in results[:-2]), "every tensor below the last Tanh is wrong"
    with pytest.raises(CheckFailure) as failure:
        assert_backward_matches(_report(), _uniform(8, 2))
    ratios = [r.error_ratio for r in check_backward(_report(), _uniform(8, 2)) if not r.passed]
    assert failure.value.result.error_ratio == max(ratios), "the worst tensor comes first"
    assert str(failure.value).startswith("check_backward failed for Sequential(Linear(2, 25)")


def test_module_that_raises_gives_a_failed_result():
    class Broken(refnet.Module):
        def forward(self, x):
            raise ValueError("boom")

    [result] = check_backward(Broken(), _uniform(2, 2))
    assert not result.passed and "forward raised ValueError: boom" in result.detail, result.detail
    with pytest.raises(CheckFailure, match="boom"):
        assert_backward_matches(Broken(), _uniform(2, 2))


def test_module_mixing_samples_is_told_to_pass_row_wise_false():
    class BatchSum(refnet.Module):
        def forward(self, x):
            return x.sum(dim=0, keepdim=True)

        def backward(self, grad_output):
            return grad_output.expand(4, -1)

    [result] = check_backward(BatchSum(), _uniform(4, 3))
    assert not result.passed and "row_wise=False" in result.detail, result.detail
    assert "returned [1, 3], not one row per input row" in result.detail, result.detail
    assert_backward_matches(BatchSum(), _uniform(4, 3), row_wise=False)


def test_float32_module_is_checked_in_float32_and_its_bugs_still_show(monkeypatch):
    network = refnet.report_network("tanh", generator=torch.Generator().manual_seed(0))
    results = assert_backward_matches(network, _uniform(6, 2))
    assert all("torch.float32" in r.detail and "eps=0.01" in r.detail for r in results), (
        results[0].detail)
    monkeypatch.setattr(refnet.Tanh, "_slope", lambda self, y: 1 - y)
    failed = [r.id for r in check_backward(network, _uniform(6, 2)) if not r.passed]
    assert "finite_difference/" + results[0].module + "/input" in failed, failed


# --- a whole network catches what no single module shows ----------------------------------

def _reused_tanh(container):
    tanh = refnet.Tanh()
    return container(_linear(2, 5), tanh, _linear(5, 5), tanh, _linear(5, 2))


def _sequential_with_a_reused_tanh(*modules):
    net = refnet.Sequential(*(refnet.Tanh() if isinstance(m, refnet.Tanh) else m
                              for m in modules))
    net.modules = list(modules)  # bypasses the constructor's check against duplicates
    return net


@pytest.mark.parametrize("container", [_Chain, _sequential_with_a_reused_tanh],
                         ids=["minimal container", "Sequential with its check bypassed"])
def test_activation_reused_at_two_positions_fails_the_network_check(container):
    net = _reused_tanh(container)
    for module, width in zip(net.modules, (2, 5, 5, 5, 5), strict=True):
        assert_backward_matches(module, _uniform(4, width))
    results = check_backward(net, _uniform(4, 2))
    failed = [r.id.rsplit("/", 1)[-1] for r in results if not r.passed]
    assert "param[0] (modules[0].weight)" in failed, f"first layer must be wrong: {failed}"


# --- the batched paths ---------------------------------------------------------------------

def test_replica_twin_gives_the_protocol_path_numbers():
    net, x = refnet_component(_report()), _uniform(8, 2)
    fast = finite_differences(net, x, param_path="replica")
    generic = finite_differences(net, x, param_path="protocol")
    # Both evaluate the same function, at most in another summation order: two roundings of
    # L apart, 2δ/eps, which is a fifth of the check's atol (10δ/eps + ...).
    atol = check_backward(net, x)[0].tolerance / 5
    for name in generic:
        torch.testing.assert_close(fast[name], generic[name], rtol=0, atol=atol,
                                   msg=lambda m, name=name: f"{name}: {m}")


def test_row_wise_input_gives_the_one_at_a_time_numbers():
    net, x = _report(replicas=3, sizes=(2, 6, 2)), _uniform(3, 4, 2)
    tall = finite_differences(net, x)["input"]
    single = finite_differences(net, x, row_wise=False)["input"]
    [result, *_] = check_backward(net, x)
    assert "one tall batch of perturbed rows (1 forward call)" in result.detail, result.detail
    torch.testing.assert_close(tall, single, rtol=0, atol=result.tolerance / 5)


def test_random_directions_are_scaled_by_each_elements_size():
    """d = s ⊙ v / √n, s = max(1, |t|): a negative element moves as far as a positive one."""
    tensor = torch.tensor([[-4.0, 0.5], [2.0, -1.0]], dtype=F64)
    directions = _Projections(tensor, 1e-6, 3, _generator()).directions
    assert torch.equal(directions.abs(), torch.tensor([[4.0, 1.0, 2.0, 1.0]] * 3) / 2)


def test_twin_whose_later_chunk_computes_another_loss_is_not_used(monkeypatch):
    """Every chunk's unperturbed replica must give the module's loss, not only the first's:
    a twin right in its first chunk and doubled after it is refused."""
    original, calls = refnet.Linear.forward, []

    def forward(self, x):
        y = original(self, x)
        if x.ndim == 3:
            calls.append(x.shape[0])
            return y if len(calls) <= 4 else 2 * y
        return y
    monkeypatch.setattr(refnet.Linear, "forward", forward)
    results = assert_backward_matches(refnet_component(_report()), _uniform(8, 2),
                                      chunk_elements=256)
    assert "its unperturbed replica computes another loss" in results[1].detail, (
        results[1].detail)


def test_twin_whose_replica_path_differs_is_not_used(monkeypatch):
    original = refnet.Linear.forward

    def forward(self, x):
        return original(self, x) + (1.0 if x.ndim == 3 else 0.0)
    monkeypatch.setattr(refnet.Linear, "forward", forward)
    results = assert_backward_matches(refnet_component(_report()), _uniform(8, 2))
    assert "its unperturbed replica computes another loss" in results[1].detail, (
        results[1].detail)


def test_replica_path_on_an_unsupported_module_is_refused():
    with pytest.raises(ValueError, match="replica twin not used"):
        check_backward(refnet_component(_reused_tanh(_Chain)), _uniform(4, 2),
                       param_path="replica")


def test_replica_path_needs_a_view_with_twins():
    """A bare refnet module is viewed as any module: the twins are refnet_component's."""
    with pytest.raises(ValueError, match="replica twin not used"):
        check_backward(_report(), _uniform(4, 2), param_path="replica")
    assert "replica twin," in check_backward(refnet_component(_report()), _uniform(4, 2))[1].detail


def test_random_projections_pass_and_catch_a_bug(monkeypatch):
    results = assert_backward_matches(_report(), _uniform(8, 2), projections=8)
    assert "along 8 signed random directions" in results[1].detail, results[1].detail
    monkeypatch.setattr(refnet.Linear, "backward",
                        _linear_backward_then(_negated_bias_gradient))
    with pytest.raises(CheckFailure, match=r"dL/d param\[\d\] \(modules\[\d\]\.bias\)"):
        assert_backward_matches(_report(), _uniform(8, 2), projections=8)


def _count_calls(monkeypatch, owner, method):
    calls = []
    original = getattr(owner, method)

    def counted(self, *args):
        calls.append(1)
        return original(self, *args)
    monkeypatch.setattr(owner, method, counted)
    return calls


def _torch_copy(net):
    """The same network in torch.nn: Linear weights copied, same activations."""
    layers = []
    for module in net.modules:
        if isinstance(module, refnet.Linear):
            layer = torch.nn.Linear(module.in_features, module.out_features, dtype=F64)
            layer.weight.data.copy_(module.weight)
            layer.bias.data.copy_(module.bias)
            layers.append(layer)
        else:
            layers.append({"Tanh": torch.nn.Tanh, "Sigmoid": torch.nn.Sigmoid}[
                type(module).__name__]())
    return torch.nn.Sequential(*layers)


def test_whole_network_needs_far_fewer_forward_calls_than_gradcheck(monkeypatch):
    net, x = _report(), _uniform(8, 2)
    calls = _count_calls(monkeypatch, refnet.Sequential, "forward")
    assert_backward_matches(refnet_component(net), x)
    model = _torch_copy(net)
    gradcheck_calls = _count_calls(monkeypatch, torch.nn.Sequential, "forward")
    leaf = x.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda v, *_: model(v), (leaf, *model.parameters()))
    assert len(calls) <= 3, f"analytic pass, tall input batch, twin: got {len(calls)} calls"
    assert 100 * len(calls) < len(gradcheck_calls), (len(calls), len(gradcheck_calls))

