"""MSELoss against F.mse_loss and autograd, and the report's literal eq. 14/15 pair (loss.py)."""

import pytest
import torch
from check_helpers import assert_all_pass, failed_ids

import refnet
from verification import (
    REPORT_LITERAL_ID,
    ReportLiteralMSE,
    check_loss,
    check_report_literal_pair,
    report_literal_ratio,
)

F32, F64 = torch.float32, torch.float64


def _pair(shape, dtype=F64, seed=0):
    generator = torch.Generator().manual_seed(seed)
    prediction = torch.rand(shape, generator=generator, dtype=dtype)
    return prediction, torch.rand(shape, generator=generator, dtype=dtype)


@pytest.mark.parametrize("dtype", [F64, F32], ids=["float64", "float32"])
@pytest.mark.parametrize("shape", [(1, 2), (10, 2), (4, 7, 3)],
                         ids=["batch1", "batch10", "replicas"])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_mse_matches_torch(reduction, shape, dtype):
    assert_all_pass(check_loss(refnet.MSELoss(reduction), *_pair(shape, dtype)))


def test_ids_name_value_and_gradient():
    ids = [result.id for result in check_loss(refnet.MSELoss("sum"), *_pair((3, 2)), name="mse")]
    assert ids == ["autograd/mse/loss", "autograd/mse/grad_prediction"], ids


def test_extreme_values():
    prediction = torch.tensor([[1e150, -1e150], [0.0, 1e-300]], dtype=F64)
    assert_all_pass(check_loss(refnet.MSELoss("mean"), prediction, torch.zeros_like(prediction)))


# --- the report's literal pair: an EXPECTED failure ---------------------------------------


@pytest.mark.parametrize("shape", [(10, 2), (1, 2), (7, 3)])
def test_report_literal_pair_fails_by_the_factor_n(shape):
    result = check_report_literal_pair(*_pair(shape))
    elements = shape[0] * shape[1]
    assert result.id == REPORT_LITERAL_ID, result.id
    assert not result.passed, f"eq. 14 with eq. 15 must be inconsistent: {result.detail}"
    assert "EXPECTED to fail" in result.detail and f"N = {elements}" in result.detail, (
        result.detail)
    ratio = report_literal_ratio(*_pair(shape))
    assert abs(ratio - elements) <= 1e-12 * elements, f"ratio {ratio}, expected N = {elements}"


def test_report_literal_forward_alone_is_the_mean():
    results = check_loss(ReportLiteralMSE(), *_pair((5, 2)), name="literal")
    assert failed_ids(results) == {"autograd/literal/grad_prediction"}, (
        f"eq. 14 itself is torch's mean MSE; only its pairing with eq. 15 must fail: "
        f"{failed_ids(results)}")


def test_batch_of_one_output_is_consistent():
    """With N = 1 the mean and the sum coincide, so the pair passes."""
    result = check_report_literal_pair(*_pair((1, 1)))
    assert result.passed, result.detail


# --- planted bugs ----------------------------------------------------------------------------


def test_planted_mean_gradient_without_division_fails_gradient_only(monkeypatch):
    monkeypatch.setattr(refnet.MSELoss, "backward", lambda self: 2 * self._difference)
    results = check_loss(refnet.MSELoss("mean"), *_pair((6, 2)), name="mse")
    assert failed_ids(results) == {"autograd/mse/grad_prediction"}, failed_ids(results)
    assert "dL/dprediction" in results[1].detail, results[1].detail


def test_planted_replica_losses_mixed_fail_the_value(monkeypatch):
    original = refnet.MSELoss.forward
    monkeypatch.setattr(refnet.MSELoss, "forward",
                        lambda self, x, t: original(self, x, t).flip(0))
    results = check_loss(refnet.MSELoss("sum"), *_pair((3, 4, 2)), name="mse")
    assert "autograd/mse/loss" in failed_ids(results), failed_ids(results)


def test_refnet_error_becomes_failed_result():
    prediction, target = _pair((4, 2))
    results = check_loss(refnet.MSELoss("sum"), prediction, target.to(F32))
    assert len(results) == 1 and not results[0].passed, results
    assert "dtype" in results[0].detail, results[0].detail
