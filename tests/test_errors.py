"""Bad input gets a clear error naming the module and expected vs received shape/dtype/value."""

import json
import re
from pathlib import Path

import pytest
import torch

import refnet
from refnet._random import permutations
from verification import Target, TargetError, load_target
from verification.report.results import (
    CONFORM_SCOREBOARD,
    CONFORM_TARGET,
    VERIFY,
    BaselineError,
    load_baseline,
)
from verification.suite.conformance import run_cases, target_cases

HANDOUT = Path(__file__).parent / "frameworks" / "handout_adapter.py"

F32, F64 = torch.float32, torch.float64


def _layer(**kwargs):
    return refnet.Linear(2, 3, generator=torch.Generator().manual_seed(0), **kwargs)


def _raises(error_type, *fragments):
    """pytest.raises that requires every fragment to appear in the message."""
    pattern = "".join(f"(?=.*{re.escape(fragment)})" for fragment in fragments)
    return pytest.raises(error_type, match=re.compile(pattern, re.DOTALL))


def test_wrong_number_of_features():
    with _raises(ValueError, "Linear(2, 3).forward", "[B, 2]", "[4, 5]"):
        _layer().forward(torch.zeros(4, 5))


@pytest.mark.parametrize("shape", [(2,), (1, 4, 2), (1, 1, 4, 2)])
def test_wrong_rank(shape):
    with _raises(ValueError, "Linear(2, 3).forward", "expected input of shape [B, 2]"):
        _layer().forward(torch.zeros(shape))


def test_wrong_replica_count():
    with _raises(ValueError, "replicas=4", "[4, B, 2]", "[3, 5, 2]"):
        _layer(replicas=4).forward(torch.zeros(3, 5, 2))


def test_dtype_mismatch_between_input_and_parameters():
    with _raises(TypeError, "Linear(2, 3).forward", "torch.float64", "torch.float32"):
        _layer().forward(torch.zeros(4, 2, dtype=F64))


def test_integer_input():
    with _raises(TypeError, "Tanh().forward", "floating-point", "torch.int64"):
        refnet.Tanh().forward(torch.zeros(3, dtype=torch.int64))


def test_non_tensor_input():
    with _raises(TypeError, "ReLU().forward", "torch.Tensor", "list"):
        refnet.ReLU().forward([1.0, 2.0])


def test_target_shape_differs_from_prediction():
    with _raises(ValueError, "MSELoss", "[4, 2]", "[4, 3]"):
        refnet.MSELoss().forward(torch.zeros(4, 2), torch.zeros(4, 3))


def test_target_dtype_differs_from_prediction():
    with _raises(TypeError, "MSELoss", "target dtype torch.float64", "torch.float32"):
        refnet.MSELoss().forward(torch.zeros(4, 2), torch.zeros(4, 2, dtype=F64))


def test_prediction_of_wrong_rank():
    with _raises(ValueError, "MSELoss", "[B, C] or [R, B, C]", "[4]"):
        refnet.MSELoss().forward(torch.zeros(4), torch.zeros(4))


def test_unknown_reduction():
    with _raises(ValueError, "MSELoss", "'mean' or 'sum'", "'max'"):
        refnet.MSELoss("max")


@pytest.mark.parametrize("module", [_layer(), refnet.ReLU(), refnet.Tanh(), refnet.Sigmoid(),
                                    refnet.Dropout(0.5)], ids=repr)
def test_backward_before_forward(module):
    with _raises(RuntimeError, repr(module), "backward called before forward"):
        module.backward(torch.zeros(4, 3))


def test_loss_backward_before_forward():
    with _raises(RuntimeError, "MSELoss", "backward called before forward"):
        refnet.MSELoss().backward()


def test_backward_with_wrong_gradient_shape():
    layer = _layer()
    layer.forward(torch.zeros(4, 2))
    with _raises(ValueError, "Linear(2, 3).backward", "grad_output", "[4, 3]", "[4, 2]"):
        layer.backward(torch.zeros(4, 2))
    activation = refnet.Sigmoid()
    activation.forward(torch.zeros(4, 2))
    with _raises(ValueError, "Sigmoid().backward", "[4, 2]", "[2, 4]"):
        activation.backward(torch.zeros(2, 4))


@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5, float("nan"), "0.5", True])
def test_dropout_p_outside_unit_interval(p):
    with _raises(ValueError, "Dropout", "[0, 1)", repr(p)):
        refnet.Dropout(p)


def _training_inputs():
    generator = torch.Generator().manual_seed(0)
    model = refnet.report_network("relu", generator=generator)
    x, labels = refnet.disk_dataset(20, generator=generator)
    return model, x, refnet.one_hot(labels), labels


@pytest.mark.parametrize("batch_size", [0, -3, 2.5])
def test_batch_size_must_be_positive(batch_size):
    model, x, targets, _ = _training_inputs()
    with _raises(ValueError, "train", "batch_size", ">= 1", repr(batch_size)):
        refnet.train(model, x, targets, lr=0.1, batch_size=batch_size, epochs=1)


def test_epochs_must_not_be_negative():
    model, x, targets, _ = _training_inputs()
    with _raises(ValueError, "train", "epochs", ">= 0", "-1"):
        refnet.train(model, x, targets, lr=0.1, batch_size=5, epochs=-1)


def test_targets_must_match_samples():
    model, x, targets, _ = _training_inputs()
    with _raises(ValueError, "train", "[20, C]", "[19, 2]"):
        refnet.train(model, x, targets[:19], lr=0.1, batch_size=5, epochs=1)


def test_train_input_rank():
    model, x, targets, _ = _training_inputs()
    with _raises(ValueError, "train", "[N, features] or [R, N, features]", "[20]"):
        refnet.train(model, x[:, 0], targets, lr=0.1, batch_size=5, epochs=1)


def test_learning_rate_or_optimizer_required_once():
    model, x, targets, _ = _training_inputs()
    with _raises(ValueError, "train", "pass lr"):
        refnet.train(model, x, targets, batch_size=5, epochs=1)
    with _raises(ValueError, "train", "pass lr to the optimizer"):
        refnet.train(model, x, targets, lr=0.1, batch_size=5, epochs=1,
                     optimizer=refnet.SGD(model.param(), lr=0.1))


@pytest.mark.parametrize("labels", [torch.tensor([0, 1, 2]), torch.tensor([-1, 0, 1])])
def test_labels_outside_classes(labels):
    with _raises(ValueError, "one_hot", "[0, 1]"):
        refnet.one_hot(labels)
    model = refnet.Sequential(refnet.Linear(2, 2, generator=torch.Generator().manual_seed(0)))
    with _raises(ValueError, "error", "[0, 1]"):
        refnet.error(model, torch.zeros(3, 2), labels)


def test_labels_must_be_integers():
    with _raises(TypeError, "one_hot", "int64", "torch.float32"):
        refnet.one_hot(torch.tensor([0.0, 1.0]))
    model = refnet.Sequential(refnet.Linear(2, 2, generator=torch.Generator().manual_seed(0)))
    with _raises(TypeError, "error", "int64", "torch.float32"):
        refnet.error(model, torch.zeros(2, 2), torch.tensor([0.0, 1.0]))


def test_error_labels_shape():
    model = refnet.Sequential(refnet.Linear(2, 2, generator=torch.Generator().manual_seed(0)))
    with _raises(ValueError, "error", "[3]", "[4]"):
        refnet.error(model, torch.zeros(3, 2), torch.zeros(4, dtype=torch.int64))


def test_same_instance_twice_in_sequential():
    activation = refnet.Tanh()
    with _raises(ValueError, "Sequential", "Tanh()", "positions 1 and 3"):
        refnet.Sequential(_layer(), activation, refnet.Linear(3, 3), activation)


def test_same_instance_twice_across_nested_sequentials():
    layer = _layer()
    with _raises(ValueError, "Sequential", "Linear(2, 3)", "positions 0 and 1"):
        refnet.Sequential(refnet.Sequential(layer), layer)


def test_sequential_rejects_non_modules():
    with _raises(TypeError, "Sequential", "item 1", "not a module"):
        refnet.Sequential(_layer(), "tanh")


def test_non_finite_loss_stops_training_naming_epoch_and_batch():
    model, x, targets, _ = _training_inputs()
    x = x.clone()
    x[13] = float("nan")
    with _raises(FloatingPointError, "train", "epoch 0", "batch", "nan"):
        refnet.train(model, x, targets, lr=0.1, batch_size=5, epochs=3,
                     generator=torch.Generator().manual_seed(0))


def test_non_finite_loss_names_the_replica():
    generator = torch.Generator().manual_seed(0)
    model = refnet.report_network("relu", generator=generator, replicas=3)
    x, labels = refnet.disk_dataset(20, replicas=3, generator=generator)
    x[2, 4] = float("inf")
    with _raises(FloatingPointError, "epoch 0", "replica 2"):
        refnet.train(model, x, refnet.one_hot(labels), lr=0.1, batch_size=5, epochs=1)


def test_diverging_learning_rate_is_reported():
    generator = torch.Generator().manual_seed(0)
    model = refnet.Sequential(refnet.Linear(2, 2, generator=generator, dtype=F64))
    x = torch.rand(20, 2, generator=generator, dtype=F64) * 100
    targets = refnet.one_hot(torch.zeros(20, dtype=torch.int64), dtype=F64)
    with _raises(FloatingPointError, "diverged", "lower the learning rate"):
        refnet.train(model, x, targets, lr=10.0, batch_size=20, epochs=200)


@pytest.mark.parametrize("kwargs, fragments", [
    ({"in_features": 0, "out_features": 3}, ["in_features", ">= 1", "0"]),
    ({"in_features": 2, "out_features": 2.5}, ["out_features", "2.5"]),
    ({"in_features": 2, "out_features": 3, "replicas": 0}, ["replicas", ">= 1"]),
    ({"in_features": 2, "out_features": 3, "init": "uniform"}, ["'xavier' or 'normal'"]),
])
def test_linear_constructor_arguments(kwargs, fragments):
    with _raises(ValueError, "Linear", *fragments):
        refnet.Linear(**kwargs)


@pytest.mark.parametrize("make", [
    lambda params: refnet.SGD(params, lr=0),
    lambda params: refnet.SGD(params, lr=-1.0),
    lambda params: refnet.Adam(params, betas=(0.9, 1.0)),
    lambda params: refnet.Adam(params, eps=0),
])
def test_optimizer_hyper_parameters(make):
    with _raises(ValueError, "expected"):
        make(_layer().param())


def test_optimizer_params_must_be_pairs():
    with _raises(TypeError, "SGD", "params[0]", "(value, gradient) pair"):
        refnet.SGD([torch.zeros(2)], lr=0.1)
    with _raises(ValueError, "Adam", "params[0]", "[2]", "[3]"):
        refnet.Adam([(torch.zeros(2), torch.zeros(3))])


def test_dataset_arguments():
    with _raises(ValueError, "disk_dataset", "n", ">= 1"):
        refnet.disk_dataset(0)
    with _raises(ValueError, "disk_dataset", "replicas"):
        refnet.disk_dataset(5, replicas=0)
    with _raises(ValueError, "one generator per replica", "3 replicas", "2 generators"):
        refnet.disk_dataset(5, replicas=3, generator=refnet.generators([1, 2]))
    with _raises(ValueError, "one_hot", "num_classes"):
        refnet.one_hot(torch.tensor([0]), num_classes=0)


def test_report_network_activation():
    with _raises(ValueError, "report_network", "relu", "'sigmoid'"):
        refnet.report_network("sigmoid")


def test_device_mismatch_between_input_and_parameters():
    with _raises(TypeError, "Linear(2, 3).forward", "input is on meta", "parameters are on cpu"):
        _layer().forward(torch.zeros(4, 2, device="meta"))


def test_non_finite_loss_in_a_late_batch_names_that_batch_and_replica():
    """More batches than replicas, the bad sample of replica 1 drawn into a late batch: the
    message names that batch (the batch index must not be read as a replica index)."""
    generators = refnet.generators(range(2))
    model = refnet.report_network("relu", generator=generators, replicas=2)
    x, labels = refnet.disk_dataset(20, replicas=2, generator=generators)
    order = permutations(20, generator=[torch.Generator().set_state(g.get_state())
                                        for g in generators], replicas=2, device="cpu")
    sample = int(order[1, 15])  # replica 1's 16th sample of epoch 0: batch 15 at batch size 1
    x[1, sample] = float("inf")
    with _raises(FloatingPointError, "epoch 0", "batch 15,", "replica 1", "inf"):
        refnet.train(model, x, refnet.one_hot(labels), lr=0.1, batch_size=1, epochs=1,
                     generator=generators)


# --- issue 20: bad input that got a raw traceback or a silent wrong answer -----------------------


def test_linear_backward_gradient_of_another_dtype():
    layer = _layer()
    layer.forward(torch.zeros(4, 2))
    with _raises(TypeError, "Linear(2, 3).backward", "grad_output dtype torch.float64",
                 "torch.float32"):
        layer.backward(torch.zeros(4, 3, dtype=F64))


@pytest.mark.parametrize("center", [(1, 2, 3), (0.5,), "0.5,0.5", (float("nan"), 0.0),
                                    (0.0, float("inf"))])
def test_disk_centre_must_be_two_finite_numbers(center):
    with _raises(ValueError, "disk_dataset", "center", repr(center) if len(center) != 2
                 else "finite number"):
        refnet.disk_dataset(5, center=center)


@pytest.mark.parametrize("radius", [-1, 0, float("nan"), float("inf")])
def test_disk_radius_must_be_finite_and_positive(radius):
    with _raises(ValueError, "disk_dataset", "radius", "finite number > 0", repr(radius)):
        refnet.disk_dataset(5, radius=radius)


@pytest.mark.parametrize("betas", [(0.9,), (0.9, 0.99, 0.999), 0.9])
def test_adam_betas_must_be_a_pair(betas):
    with _raises(ValueError, "Adam", "betas", "tuple of 2 numbers", repr(betas)):
        refnet.Adam(_layer().param(), betas=betas)


@pytest.mark.parametrize("make", [lambda params: refnet.SGD(params, lr=float("inf")),
                                  lambda params: refnet.Adam(params, lr=float("nan"))])
def test_learning_rate_must_be_finite(make):
    with _raises(ValueError, "lr", "finite number > 0"):
        make(_layer().param())


@pytest.mark.parametrize("make", [lambda params: refnet.SGD(params, lr=1e308),
                                  lambda params: refnet.Adam(params, lr=1e38)])
def test_learning_rate_beyond_the_parameters_dtype(make):
    """A float32 update cannot take a step factor beyond float32's range (torch raises deep
    inside the first step): refused when the optimiser is built. Adam's first step is lr/(1-β₁)."""
    with _raises(ValueError, "lr", "beyond the largest torch.float32", "far smaller lr"):
        make(_layer().param())
    refnet.SGD(_layer(dtype=F64).param(), lr=1e308)  # fits float64: diverges, reported by train


def test_train_on_an_empty_data_set():
    model, x, targets, _ = _training_inputs()
    with _raises(ValueError, "train", "at least one sample", "[0, 2]"):
        refnet.train(model, x[:0], targets[:0], lr=0.1, batch_size=5, epochs=1)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_mse_on_an_empty_batch(reduction):
    with _raises(ValueError, "MSELoss", "non-empty prediction", "[0, 2]"):
        refnet.MSELoss(reduction).forward(torch.zeros(0, 2), torch.zeros(0, 2))


@pytest.mark.parametrize("spec, fragments", [
    ("refnet:Linear", ["refnet.Linear() cannot be built without arguments",
                       "expected an adapter class"]),
    (None, ["target spec None", "expected a non-empty string"]),
    ("/tmp", ["'/tmp'", "is a folder", "expected an adapter file"]),
    ("not a/module", ["no .py file and no importable name"]),
])
def test_unusable_target_spec(spec, fragments):
    with _raises(TargetError, *fragments):
        load_target(spec)


def _linear_case_failure(linear):
    """The failure detail of the case ``linear 3→4`` of the handout framework whose ``linear``
    factory is ``linear(handout_layer)``."""
    handout = type(load_target(str(HANDOUT)).adapter)

    class Adapter(handout):
        def linear(self, in_features, out_features, generator):
            return linear(super().linear(in_features, out_features, generator))

    [case] = [case for case in target_cases(Target.from_adapter(Adapter))
              if case.name == "linear 3→4"]
    [result] = run_cases([case])
    assert not result.passed
    return result.detail


@pytest.mark.parametrize("returned, fragment", [
    (None, "returned None"), (42, "returned int 42"), ([1], "returned list [1]"),
    (torch.zeros(4, 3, device="meta"), "returned a tensor (dtype torch.float32, shape [4, 3], "
                                       "on meta)"),
])
def test_factory_returning_no_module(returned, fragment):
    detail = _linear_case_failure(lambda layer: returned)
    for expected in (f"the adapter's linear() {fragment} for Linear(3, 4)",
                     "expected a module: an object with forward() and backward()"):
        assert expected in detail, detail


@pytest.mark.parametrize("value, fragment", [
    (torch.zeros(4, 3, device="meta"), "is on the meta device"),
    (torch.zeros(4, 3, dtype=torch.int64), "has dtype torch.int64; expected a floating-point"),
    (torch.zeros(4, 3, dtype=F64, requires_grad=True), "requires grad"),
])
def test_parameter_the_harness_cannot_write(value, fragment):
    def with_bad_weight(layer):
        layer.param = lambda: [(value, torch.zeros(4, 3, dtype=value.dtype, device=value.device))]
        return layer

    detail = _linear_case_failure(with_bad_weight)
    assert f"Linear(3, 4).param()[0]: the value {fragment}" in detail, detail


def _results_json(path, **extra):
    checks = [{"id": "fd/Linear/weight", "status": "pass", "error_ratio": 0.1}]
    path.write_text(json.dumps({
        "schema_version": 1, "status": "pass", "environment": {}, "checks": checks,
        "mutation": {}, "reproduction": {"seeds": 0, "configs": []}, "benchmarks": [], **extra}))
    return path


@pytest.mark.parametrize("change, fragment", [
    ({"checks": [{"status": "pass"}]}, "checks[0] has id=None, expected str (the key is missing)"),
    ({"checks": [7]}, "checks[0] is int, expected an object"),
    ({"benchmarks": [{"name": "b", "ratio": "fast"}]}, "benchmarks[0] has ratio='fast'"),
    ({"reproduction": {"configs": [{"name": "relu", "train_error": {"median": 0.1},
                                    "test_error": {}}]}},
     "reproduction.configs[0].test_error[0] has median=None"),
])
def test_baseline_entries_the_comparison_cannot_read(tmp_path, change, fragment):
    with _raises(BaselineError, fragment):
        load_baseline(_results_json(tmp_path / "results.json", **change))


@pytest.mark.parametrize("extra, writer, expected", [
    ({"target": {"name": "handout"}}, CONFORM_TARGET, VERIFY),
    ({"targets": []}, CONFORM_SCOREBOARD, VERIFY),
    ({}, VERIFY, CONFORM_TARGET),
    ({"target": {"name": "handout"}}, CONFORM_TARGET, CONFORM_SCOREBOARD),
])
def test_baseline_written_by_another_command(tmp_path, extra, writer, expected):
    path = _results_json(tmp_path / "results.json", **extra)
    with _raises(BaselineError, f"was written by {writer}", f"expected a results.json of "
                 f"{expected}"):
        load_baseline(path, expected)
    assert load_baseline(path, writer)["checks"], "the right kind is accepted"


@pytest.mark.parametrize("timeout", ["-5", "0", "nan", "inf"])
def test_conform_timeout_must_be_positive_and_finite(pytester, timeout):
    result = pytester.runpytest("--conform", "refnet", "--conform-timeout", timeout)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*argument --conform-timeout: expected a finite number of "
                                 "seconds > 0*"])
