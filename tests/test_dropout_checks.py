"""Dropout under a fixed mask, its drop statistics and its evaluation mode (dropout.py)."""

import pytest
import torch
from check_helpers import assert_all_pass, failed_ids

import refnet
from verification import check_dropout
from verification.checks.reference import last_scaled_mask

F32, F64 = torch.float32, torch.float64
SAMPLES = 20_000


def _dropout(p, seed=0):
    return refnet.Dropout(p, generator=torch.Generator().manual_seed(seed))


def _input(shape, dtype):
    return torch.randn(shape, generator=torch.Generator().manual_seed(1), dtype=dtype)


def _check(dropout, shape=(6, 5), dtype=F64):
    return check_dropout(dropout, _input(shape, dtype), samples=SAMPLES)


@pytest.mark.parametrize("dtype", [F64, F32], ids=["float64", "float32"])
@pytest.mark.parametrize("shape", [(1, 5), (6, 5), (3, 4, 5)], ids=["batch1", "batch6", "replicas"])
@pytest.mark.parametrize("p", [0.0, 0.1, 0.5, 0.9])
def test_dropout_passes_every_check(p, shape, dtype):
    assert_all_pass(_check(_dropout(p), shape, dtype))


def test_result_ids_cover_the_three_parts():
    ids = [result.id for result in _check(_dropout(0.5))]
    name = "Dropout(p=0.5)"
    expected = [f"statistical/{name}/drop-rate", f"statistical/{name}/fresh-mask",
                f"property/{name}/kept-scale", f"property/{name}/backward-under-mask",
                f"property/{name}/eval-forward", f"property/{name}/eval-backward"]
    assert ids == expected, f"ids {ids} differ from {expected}"


@pytest.mark.parametrize("training", [True, False])
def test_mode_is_restored(training):
    dropout = _dropout(0.5).train() if training else _dropout(0.5).eval()
    _check(dropout)
    assert dropout.training is training, f"mode changed from training={training}"


@pytest.mark.parametrize("p", [0.0, 0.5])
def test_a_correct_eval_backward_blames_no_stale_mask(p):
    """The "stale training mask" sentence is for a backward that differs from dL/dy: at
    p = 0 the stale mask is all ones, and an eval backward returning dL/dy must not get it."""
    [result] = [r for r in _check(_dropout(p)) if r.id.endswith("/eval-backward")]
    assert result.passed and "stale" not in result.detail, result.detail


def test_reference_uses_refnet_mask():
    dropout = _dropout(0.5)
    x = _input((4, 3), F64)
    output = dropout.forward(x)
    assert torch.equal(output, x * last_scaled_mask(dropout)), "the accessor's mask is not used"


# --- planted bugs ----------------------------------------------------------------------------


def _planted_apply(scale_kept=True, keep_rate_shift=0.0, reuse_mask=False, eval_scale=1.0):
    """A Dropout._apply with one planted defect; its defaults are refnet's behaviour."""

    def apply(self, x):
        if not self.training:
            return x * eval_scale, torch.ones((), dtype=x.dtype)
        previous = getattr(self, "_planted_mask", None)
        if reuse_mask and previous is not None and previous.shape == x.shape:
            mask = previous
        else:
            uniform = torch.rand(x.shape, generator=self.generator, dtype=x.dtype)
            mask = (uniform >= self.p + keep_rate_shift).to(x.dtype)
            self._planted_mask = mask
        scaled = mask / (1 - self.p) if scale_kept else mask
        return x * scaled, scaled

    return apply


@pytest.mark.parametrize("defect, failing_check", [
    ({"scale_kept": False}, "property/Dropout(p=0.4)/kept-scale"),
    ({"keep_rate_shift": 0.05}, "statistical/Dropout(p=0.4)/drop-rate"),
    ({"reuse_mask": True}, "statistical/Dropout(p=0.4)/fresh-mask"),
    ({"eval_scale": 2.0}, "property/Dropout(p=0.4)/eval-forward"),
], ids=["unscaled", "wrong-rate", "reused-mask", "eval-not-identity"])
def test_planted_dropout_bug_is_caught(monkeypatch, defect, failing_check):
    monkeypatch.setattr(refnet.Dropout, "_apply", _planted_apply(**defect))
    results = _check(_dropout(0.4))
    assert failing_check in failed_ids(results), (
        f"{failing_check} passed; failed: {failed_ids(results)}")
    assert f"property/{results[0].module}/backward-under-mask" not in failed_ids(results), (
        f"backward under the forward's own mask should pass: {failed_ids(results)}")


def test_planted_apply_without_defect_passes(monkeypatch):
    monkeypatch.setattr(refnet.Dropout, "_apply", _planted_apply())
    assert_all_pass(_check(_dropout(0.4)))


def test_planted_unscaled_backward_fails_the_backward_under_the_mask(monkeypatch):
    monkeypatch.setattr(refnet.Dropout, "_slope", lambda self, mask: (mask != 0) * 1.0)
    results = _check(_dropout(0.4))
    assert failed_ids(results) == {"property/Dropout(p=0.4)/backward-under-mask"}, (
        failed_ids(results))


def test_drop_rate_failure_states_counts_and_p_value(monkeypatch):
    monkeypatch.setattr(refnet.Dropout, "_apply", _planted_apply(keep_rate_shift=0.05))
    result = next(r for r in _check(_dropout(0.4)) if r.id.endswith("drop-rate"))
    for fragment in ("FAILED", "expected 0.4", f"of {SAMPLES}", "z = "):
        assert fragment in result.detail, f"{fragment!r} missing from: {result.detail}"


def test_refnet_error_becomes_failed_results(monkeypatch):
    def broken(self, x):
        raise RuntimeError("planted: no mask")

    monkeypatch.setattr(refnet.Dropout, "_apply", broken)
    results = _check(_dropout(0.4))
    assert results and not any(result.passed for result in results), results
    assert all("planted: no mask" in result.detail for result in results), results
