"""Each module's forward and backward on hand-worked values (report sections 2.1–2.7)."""

import math

import pytest
import torch

import refnet

F64 = torch.float64


def _linear_with(weight, bias):
    layer = refnet.Linear(weight.shape[1], weight.shape[0], dtype=F64)
    layer.weight.copy_(weight)
    layer.bias.copy_(bias)
    return layer


def test_linear_forward_and_backward_by_hand():
    layer = _linear_with(torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], dtype=F64),
                         torch.tensor([0.5, -0.5, 1.0], dtype=F64))
    x = torch.tensor([[1.0, -1.0], [2.0, 0.0]], dtype=F64)
    assert layer.forward(x).tolist() == [[-0.5, -1.5, 0.0], [2.5, 5.5, 11.0]], "eq. 1"
    grad_y = torch.tensor([[1.0, 0.0, 2.0], [0.0, 1.0, 0.0]], dtype=F64)
    assert layer.backward(grad_y).tolist() == [[11.0, 14.0], [3.0, 4.0]], "eq. 2: g w"
    assert layer.grad_weight.tolist() == [[1.0, -1.0], [2.0, 0.0], [2.0, -2.0]], "eq. 3: gᵀ x"
    assert layer.grad_bias.tolist() == [1.0, 1.0, 2.0], "eq. 4: bias gradient summed over batch"


def test_linear_gradients_accumulate_until_zero_grad():
    layer = _linear_with(torch.eye(2, dtype=F64), torch.zeros(2, dtype=F64))
    x = torch.ones(1, 2, dtype=F64)
    for _ in range(2):
        layer.forward(x)
        layer.backward(torch.ones(1, 2, dtype=F64))
    assert layer.grad_weight.tolist() == [[2.0, 2.0], [2.0, 2.0]], "backward must accumulate"
    layer.zero_grad()
    assert layer.grad_weight.abs().sum() == 0 and layer.grad_bias.abs().sum() == 0


def test_linear_param_order_and_shapes():
    layer = refnet.Linear(4, 3, replicas=2)
    (weight, grad_weight), (bias, grad_bias) = layer.param()
    assert weight is layer.weight and bias is layer.bias, "param() order: weight, bias"
    assert weight.shape == (2, 3, 4) and bias.shape == (2, 3), "out × in as in the report"
    assert grad_weight.shape == weight.shape and grad_bias.shape == bias.shape


@pytest.mark.parametrize("init, std", [("xavier", math.sqrt(2 / (300 + 200))),
                                       ("normal", refnet.NORMAL_INIT_STD)])
def test_initialisation_standard_deviation(init, std):
    layer = refnet.Linear(300, 200, init=init, generator=torch.Generator().manual_seed(0),
                          dtype=F64)
    measured = layer.weight.std().item()
    # 60,000 normal draws: the sample std has relative standard error 1/sqrt(2·60000) ≈ 0.3%.
    assert abs(measured / std - 1) < 0.015, f"{init}: std {measured}, expected {std} (eq. 16)"
    assert abs(layer.weight.mean().item()) < 5 * std / math.sqrt(60000), "mean should be 0"
    assert torch.count_nonzero(layer.bias) == 0, "biases start at zero"


def test_default_dtype_is_float32_and_float64_is_honoured():
    assert refnet.Linear(2, 2).weight.dtype == torch.float32
    layer = refnet.Linear(2, 2, dtype=F64)
    assert layer.weight.dtype == layer.bias.dtype == layer.grad_weight.dtype == F64
    x, _ = refnet.disk_dataset(5, dtype=F64)
    assert x.dtype == F64 and refnet.one_hot(torch.tensor([1]), dtype=F64).dtype == F64


@pytest.mark.parametrize("module, x, y, slope", [
    (refnet.ReLU(), [-1.0, 0.0, 2.0], [0.0, 0.0, 2.0], [0.0, 0.0, 1.0]),
    (refnet.Tanh(), [0.0, math.atanh(0.5), -30.0], [0.0, 0.5, -1.0], [1.0, 0.75, 0.0]),
    (refnet.Sigmoid(), [0.0, math.log(3.0), 300.0], [0.5, 0.75, 1.0], [0.25, 0.1875, 0.0]),
], ids=repr)
def test_activation_values_and_slopes(module, x, y, slope):
    """Eqs. 8–13 at hand-picked points, including the ReLU kink (slope 0, eq. 9) and saturation."""
    output = module.forward(torch.tensor(x, dtype=F64))
    torch.testing.assert_close(output, torch.tensor(y, dtype=F64), msg=f"{module!r} forward")
    grad = module.backward(torch.full((3,), 2.0, dtype=F64))
    torch.testing.assert_close(grad, 2 * torch.tensor(slope, dtype=F64), msg=f"{module!r} slope")


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
@pytest.mark.parametrize(("module", "slope"), [(refnet.Tanh, lambda y: 1 - y * y),
                                               (refnet.Sigmoid, lambda y: y * (1 - y))])
def test_slopes_keep_the_input_dtype_and_equal_eqs_11_and_13_bit_for_bit(module, slope, dtype):
    """The slopes' 1 is a float64 0-d tensor (a faster call than a Python 1): the result
    must still be in the input's dtype and equal the formula with a Python 1 exactly."""
    x = torch.linspace(-4, 4, 301, dtype=torch.float64).to(dtype)
    layer = module()
    y = layer.forward(x)
    grad_input = layer.backward(torch.ones_like(y))
    assert grad_input.dtype == dtype
    assert torch.equal(grad_input, slope(y)), f"{module.__name__} slope differs in {dtype}"


def test_relu_of_minus_infinity_is_zero():
    assert refnet.ReLU().forward(torch.tensor([-math.inf])).item() == 0.0


def test_dropout_mask_scaling_and_modes():
    dropout = refnet.Dropout(0.25, generator=torch.Generator().manual_seed(0))
    x = torch.ones(200, 50, dtype=F64)
    y = dropout.forward(x)
    assert set(y.unique().tolist()) == {0.0, 4 / 3}, "kept units are scaled by 1/(1-p)"
    kept = (y != 0).to(F64)
    assert torch.equal(dropout.backward(torch.ones_like(x)), y), "backward reuses the mask"
    assert torch.equal(dropout.last_mask, y), "last_mask is the scaled mask (x is all ones)"
    # 10,000 Bernoulli(0.75) draws: the kept fraction has standard error 0.0043.
    assert abs(kept.mean().item() - 0.75) < 0.02, f"kept fraction {kept.mean().item()}"
    dropout.eval()
    assert torch.equal(dropout.forward(x), x), "evaluation mode is the identity"
    assert torch.equal(dropout.backward(x), x)


def test_dropout_last_mask_before_forward_and_in_eval():
    dropout = refnet.Dropout(0.5)
    assert dropout.last_mask is None
    dropout.eval().forward(torch.ones(3))
    assert dropout.last_mask.item() == 1.0


def test_dropout_same_seed_same_mask():
    def mask(seed):
        return refnet.Dropout(0.5, generator=torch.Generator().manual_seed(seed)).forward(
            torch.ones(64))
    assert torch.equal(mask(1), mask(1)) and not torch.equal(mask(1), mask(2))


def test_sequential_chains_forward_and_reverses_backward():
    first = _linear_with(torch.tensor([[2.0]], dtype=F64), torch.tensor([0.0], dtype=F64))
    second = _linear_with(torch.tensor([[3.0]], dtype=F64), torch.tensor([1.0], dtype=F64))
    model = refnet.Sequential(first, refnet.ReLU(), second)
    assert model.forward(torch.tensor([[1.0]], dtype=F64)).item() == 7.0
    assert model.backward(torch.tensor([[1.0]], dtype=F64)).item() == 6.0, "d(3·relu(2x)+1)/dx"
    assert [pair[0] for pair in model.param()] == [first.weight, first.bias, second.weight,
                                                   second.bias]
    assert first.grad_weight.item() == 3.0 and second.grad_weight.item() == 2.0


def test_train_and_eval_propagate_through_nested_sequentials():
    dropout = refnet.Dropout(0.5)
    model = refnet.Sequential(refnet.Sequential(dropout), refnet.Tanh())
    assert model.eval() is model and not dropout.training
    assert model.train() is model and dropout.training


def test_mse_loss_reductions_by_hand():
    prediction = torch.tensor([[1.0, 0.0], [0.5, 0.5]], dtype=F64)
    target = torch.tensor([[0.0, 1.0], [1.0, 0.0]], dtype=F64)
    for reduction, loss, scale in (("sum", 2.5, 2.0), ("mean", 2.5 / 4, 0.5)):
        criterion = refnet.MSELoss(reduction)
        assert criterion(prediction, target).item() == loss, f"{reduction} loss (eq. 14)"
        assert torch.equal(criterion.backward(), scale * (prediction - target)), (
            f"{reduction} gradient: eq. 15 is 2(x - t) for the sum")


def test_reprs_name_the_module():
    assert repr(refnet.Linear(2, 3, replicas=4)) == "Linear(2, 3, replicas=4)"
    assert repr(refnet.Dropout(0.1)) == "Dropout(p=0.1)"
    assert repr(refnet.MSELoss()) == "MSELoss(reduction='mean')"
    assert "Linear(2, 3)" in repr(refnet.Sequential(refnet.Linear(2, 3), refnet.ReLU()))


def test_base_module_requires_forward_and_backward():
    module = refnet.Module()
    assert module.param() == [] and repr(module) == "Module()"
    with pytest.raises(NotImplementedError, match="Module does not implement forward"):
        module(torch.zeros(1))
    with pytest.raises(NotImplementedError, match="Module does not implement backward"):
        module.backward(torch.zeros(1))
