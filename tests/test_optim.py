"""Optimiser updates by hand: SGD (eq. 5) and Adam's first steps."""

import math

import torch

import refnet

F64 = torch.float64


def _pair(value, gradient):
    return torch.tensor(value, dtype=F64), torch.tensor(gradient, dtype=F64)


def test_sgd_step_is_eq_5():
    value, gradient = _pair([1.0, -2.0], [0.5, 1.0])
    refnet.SGD([(value, gradient)], lr=0.1).step()
    assert value.tolist() == [0.95, -2.1], f"θ ← θ - η g, got {value.tolist()}"


def test_adam_first_two_steps_by_hand():
    value, gradient = _pair([1.0], [2.0])
    adam = refnet.Adam([(value, gradient)], lr=0.1, betas=(0.9, 0.999), eps=1e-8)
    adam.step()
    # Step 1: m̂ = g, v̂ = g², so the update is lr · g / (|g| + eps) ≈ lr.
    assert math.isclose(value.item(), 1.0 - 0.1 * 2 / (2 + 1e-8), rel_tol=1e-15)
    gradient.fill_(-1.0)
    adam.step()
    m = 0.9 * 0.1 * 2 + 0.1 * -1.0
    v = 0.999 * 0.001 * 4 + 0.001 * 1.0
    m_hat, v_hat = m / (1 - 0.9**2), v / (1 - 0.999**2)
    expected = 1.0 - 0.1 * 2 / (2 + 1e-8) - 0.1 * m_hat / (math.sqrt(v_hat) + 1e-8)
    assert math.isclose(value.item(), expected, rel_tol=1e-12), f"{value.item()} vs {expected}"
    assert adam.steps == 2


def test_optimizers_update_every_replica_at_once():
    layer = refnet.Linear(2, 2, replicas=3, generator=torch.Generator().manual_seed(0))
    before = layer.weight.clone()
    layer.grad_weight.fill_(1.0)
    refnet.SGD(layer.param(), lr=0.5).step()
    assert torch.allclose(layer.weight, before - 0.5), "SGD must move all replicas"


def test_sgd_over_no_parameters_steps_without_error():
    optimizer = refnet.SGD(refnet.Sequential(refnet.ReLU()).param(), lr=0.1)
    optimizer.step()  # torch's multi-tensor add refuses an empty list; SGD must not call it
    assert optimizer.params == []
