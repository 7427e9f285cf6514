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
    assert ids == ["finite_difference/mse/input", "autograd/mse/loss",
                   "autograd/mse/grad_prediction"], ids


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
    assert failed_ids(results) == {"finite_difference/literal/input",
                                   "autograd/literal/grad_prediction"}, (
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
    assert failed_ids(results) == {"finite_difference/mse/input",
                                   "autograd/mse/grad_prediction"}, failed_ids(results)
    assert "dL/dprediction" in results[2].detail, results[2].detail


def test_planted_replica_losses_mixed_fail_the_value(monkeypatch):
    original = refnet.MSELoss.forward
    monkeypatch.setattr(refnet.MSELoss, "forward",
                        lambda self, x, t: original(self, x, t).flip(0))
    results = check_loss(refnet.MSELoss("sum"), *_pair((3, 4, 2)), name="mse")
    assert "autograd/mse/loss" in failed_ids(results), failed_ids(results)


def test_refnet_error_becomes_failed_result():
    prediction, target = _pair((4, 2))
    results = check_loss(refnet.MSELoss("sum"), prediction, target.to(F32))
    assert results and not any(result.passed for result in results), results
    assert all("dtype" in result.detail for result in results), [r.detail for r in results]


# --- other frameworks' losses: consistency apart from the normalisation convention ---------


class _ScaledMSE:
    """Σ (x − t)² divided by ``divisor(prediction)``, with the matching (or a wrong) gradient."""

    def __init__(self, divisor, gradient_divisor=None):
        self.divisor, self.gradient_divisor = divisor, gradient_divisor or divisor

    def forward(self, prediction, target):
        self.difference = prediction - target
        return self.difference.pow(2).sum() / self.divisor(prediction)

    def backward(self):
        return 2 * self.difference / self.gradient_divisor(self.difference)


def _batch(prediction):
    return prediction.shape[0]


def test_batch_mean_loss_is_a_convention_not_a_bug():
    results = check_loss(_ScaledMSE(_batch), *_pair((6, 3)), name="batch-mean")
    assert_all_pass(results)
    value = next(r for r in results if r.id == "autograd/batch-mean/loss")
    assert "divided by the batch size only" in value.convention, value.convention


def test_declared_reduction_must_hold():
    results = check_loss(_ScaledMSE(_batch), *_pair((6, 3)), name="m", reduction="mean")
    assert failed_ids(results) == {"autograd/m/loss", "autograd/m/grad_prediction"}, (
        failed_ids(results))


def test_gradient_divided_by_batch_where_the_loss_divides_by_all_elements_fails():
    loss = _ScaledMSE(lambda p: p.numel(), gradient_divisor=_batch)
    results = check_loss(loss, *_pair((6, 3)), name="m")
    assert "finite_difference/m/input" in failed_ids(results), failed_ids(results)


class _CrossEntropy:
    def __init__(self, softmax=True):
        self.softmax = softmax

    def forward(self, logits, target):
        self.logits, self.target = logits, target
        shifted = logits - logits.max(dim=1, keepdim=True).values
        log_softmax = shifted - shifted.exp().sum(dim=1, keepdim=True).log()
        return -(target * log_softmax).sum() / logits.shape[0]

    def backward(self):
        probabilities = self.logits.softmax(dim=1) if self.softmax else self.logits
        return (probabilities - self.target) / self.logits.shape[0]


class _BCE:
    def forward(self, p, t):
        self.p, self.t = p, t
        return -(t * p.log() + (1 - t) * (1 - p).log()).mean()

    def backward(self):
        return (self.p - self.t) / (self.p * (1 - self.p)) / self.p.numel()


def _one_hot_pair(seed=0):
    generator = torch.Generator().manual_seed(seed)
    logits = 3 * torch.randn(5, 4, generator=generator, dtype=F64)
    labels = torch.randint(4, (5,), generator=generator)
    return logits, torch.nn.functional.one_hot(labels, 4).to(F64)


def test_cross_entropy_and_bce_match_torch():
    assert_all_pass(check_loss(_CrossEntropy(), *_one_hot_pair(), kind="cross_entropy"))
    generator = torch.Generator().manual_seed(1)
    p = 0.05 + 0.9 * torch.rand(4, 3, generator=generator, dtype=F64)
    t = (torch.rand(4, 3, generator=generator) > 0.5).to(F64)
    assert_all_pass(check_loss(_BCE(), p, t, kind="bce"))


def test_cross_entropy_without_softmax_fails_consistency():
    results = check_loss(_CrossEntropy(softmax=False), *_one_hot_pair(), kind="cross_entropy",
                         name="ce")
    assert "finite_difference/ce/input" in failed_ids(results), failed_ids(results)
