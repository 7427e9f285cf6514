"""Bad input gets a clear error naming the module and expected vs received shape/dtype/value."""

import re

import pytest
import torch

import refnet
from refnet._random import permutations

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
