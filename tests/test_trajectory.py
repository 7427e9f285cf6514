"""K-step training trajectories of refnet's SGD and Adam against torch.optim (trajectory.py)."""

import math
from pathlib import Path

import pytest
import torch
from check_helpers import assert_all_pass, failed_ids

import refnet
from refnet.network import report_network
from verification import check_trajectory, load_target, target_cases
from verification.checks.loss import Normalisation
from verification.checks.reference import Tolerance
from verification.checks.trajectory import _steps_before_divergence, _Trajectory, _worst_step
from verification.suite.conformance import run_cases
from verification.suite.registry import REFNET_OPTIMIZERS, refnet_trajectory
from verification.targets.refnet_target import refnet_component

F32, F64 = torch.float32, torch.float64
LEARNING_RATES = {"sgd": 0.01, "adam": 1e-3}


def _data(dtype, replicas=None, samples=60):
    generator = refnet.generators(range(replicas)) if replicas else torch.Generator()
    x, labels = refnet.disk_dataset(samples, generator=generator, replicas=replicas, dtype=dtype)
    return x, refnet.one_hot(labels).to(dtype)


def _network(activation, dtype, replicas=None):
    generator = refnet.generators(range(replicas)) if replicas else torch.Generator()
    return report_network(activation, generator=generator, replicas=replicas, dtype=dtype)


def _check(optimizer, activation="relu", dtype=F64, replicas=None, **options):
    return refnet_trajectory(_network(activation, dtype, replicas), *_data(dtype, replicas),
                             optimizer=optimizer, lr=LEARNING_RATES[optimizer], name="net",
                             **options)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("activation, dtype, replicas, reduction, steps", [
    ("relu", F64, None, "sum", 20),
    ("tanh", F64, None, "mean", 20),
    ("relu", F64, 3, "sum", 8),
    ("tanh", F32, None, "sum", 20),
], ids=["relu-sum", "tanh-mean", "replicas", "float32"])
def test_trajectory_matches_torch_optim(optimizer, activation, dtype, replicas, reduction, steps):
    assert_all_pass(_check(optimizer, activation, dtype, replicas, reduction=reduction,
                            steps=steps))


def test_trajectory_with_dropout_uses_the_same_masks():
    generator = torch.Generator().manual_seed(3)
    model = refnet.Sequential(refnet.Linear(2, 8, generator=generator, dtype=F64), refnet.ReLU(),
                              refnet.Dropout(0.3, generator=generator),
                              refnet.Linear(8, 2, generator=generator, dtype=F64))
    assert_all_pass(refnet_trajectory(model, *_data(F64), optimizer="adam", lr=0.01))


def test_batch_size_one():
    assert_all_pass(_check("sgd", batch_size=1, steps=10))


def test_one_result_for_the_loss_and_two_per_parameter():
    ids = [result.id for result in _check("sgd", steps=3)]
    parameters = [f"{layer}.{kind}" for layer in (0, 2, 4, 6) for kind in ("weight", "bias")]
    expected = ["trajectory/sgd/net/loss", "trajectory/sgd/net/loss_gradient"] + [
        f"trajectory/sgd/net/{prefix}{p}"
                                              for p in parameters for prefix in ("grad_", "")]
    assert ids == expected, f"ids {ids} differ from {expected}"


def test_model_is_not_trained_by_the_check():
    model = _network("relu", F64)
    before = [value.clone() for value, _ in model.param()]
    refnet_trajectory(model, *_data(F64), optimizer="sgd", lr=0.1)
    for index, ((value, _), old) in enumerate(zip(model.param(), before, strict=True)):
        assert torch.equal(value, old), f"parameter {index} changed during the check"


def test_unknown_optimizer_is_a_value_error():
    with pytest.raises(ValueError, match="optimizer must be one of"):
        check_trajectory(refnet_component(_network("relu", F64)), *_data(F64),
                         optimizer="rmsprop", lr=0.1, loss=refnet.MSELoss("sum"),
                         build_optimizer=refnet.SGD)


# --- planted bugs ----------------------------------------------------------------------------


def _sgd_step_wrong_sign(self):
    for value, gradient in self.params:
        value.add_(gradient, alpha=self.lr)


def _adam_step_without_bias_correction(self):
    self.steps += 1
    beta1, beta2 = self.betas
    for (value, gradient), first, second in zip(
            self.params, self._first_moments, self._second_moments, strict=True):
        first.mul_(beta1).add_(gradient, alpha=1 - beta1)
        second.mul_(beta2).addcmul_(gradient, gradient, value=1 - beta2)
        value.addcdiv_(first, second.sqrt().add_(self.eps), value=-self.lr)


def test_planted_sgd_wrong_sign_fails_every_parameter(monkeypatch):
    monkeypatch.setattr(refnet.SGD, "step", _sgd_step_wrong_sign)
    results = _check("sgd", steps=5)
    weight = next(result for result in results if result.id == "trajectory/sgd/net/0.weight")
    assert not weight.passed, weight.detail
    assert "update of 0.weight of Linear(2, 25) (torch.optim given the model's own gradients)" \
        in weight.detail, weight.detail
    assert len(failed_ids(results)) >= 8, f"only {failed_ids(results)} failed"


def test_planted_adam_without_bias_correction_fails_at_the_first_step(monkeypatch):
    monkeypatch.setattr(refnet.Adam, "step", _adam_step_without_bias_correction)
    results = _check("adam", steps=5)
    failed = [result for result in results if not result.passed]
    assert len(failed) >= 8, f"only {[result.id for result in failed]} failed"
    assert any("at step 1," in result.detail for result in failed), (
        "the first update (factor 1/(1 - β₁) = 10 too small) should be the worst: "
        + "; ".join(result.detail for result in failed))


def test_planted_scaled_loss_gradient_fails_the_loss_gradient_alone(monkeypatch):
    original = refnet.MSELoss.backward
    monkeypatch.setattr(refnet.MSELoss, "backward", lambda self: 0.5 * original(self))
    results = _check("sgd", steps=4)
    assert failed_ids(results) == {"trajectory/sgd/net/loss_gradient"}, (
        "backward and the optimiser are right given the (wrong) dL/dy: "
        f"{failed_ids(results)}")


def test_a_loss_gradient_three_times_its_rounding_bound_off_fails_the_loss_gradient(
        monkeypatch):
    """dL/dy's bound, as trajectory.py states it, is ``SAFETY``·4 = 16 roundings of its terms
    2c(|y| + |t|): an error of 48 of them in every element fails (ratio 3), and would pass a
    bound 10 times looser (ratio 0.3), so the bound is pinned from above. The 48 is written
    out, not computed from the constants, which a weakened harness would change with it."""
    from verification.checks.compare import unit_roundoff

    roundings = 48
    forward, backward = refnet.MSELoss.forward, refnet.MSELoss.backward

    def remembering(self, prediction, target):
        count = prediction.shape[-2] * prediction.shape[-1]  # "mean": c = 1/count
        self.terms = 2 / count * (prediction.abs() + target.abs())
        return forward(self, prediction, target)

    monkeypatch.setattr(refnet.MSELoss, "forward", remembering)
    monkeypatch.setattr(refnet.MSELoss, "backward", lambda self: backward(self) + (
        roundings * unit_roundoff(F64) * self.terms))
    results = _check("sgd", activation="tanh", steps=4, reduction="mean")
    failed = [result for result in results if not result.passed]
    assert [result.id for result in failed] == ["trajectory/sgd/net/loss_gradient"], failed
    assert 2 < failed[0].error_ratio < 4, failed[0].detail


def test_refnet_error_becomes_failed_result(monkeypatch):
    def diverge(self):
        raise FloatingPointError("planted: step diverged")

    monkeypatch.setattr(refnet.SGD, "step", diverge)
    results = _check("sgd", steps=2)
    assert [result.id for result in results] == ["trajectory/sgd/net/raised"], results
    assert "planted: step diverged" in results[0].detail, results[0].detail
    assert math.isinf(results[0].error_ratio), results[0]


def test_frozen_float32_weights_fail_every_update_check_under_both_optimizers():
    """The blind spot of free-run trajectories (issue 19): a float32 framework whose
    ``zero_grad`` rebinds its gradient tensors never moves its weights. Every update check of
    every parameter fails, under SGD and under Adam; the gradients themselves are right."""
    path = Path(__file__).parent / "frameworks" / "float32_adapter.py"
    target = load_target(f"{path}:LinearZeroGradRebinds")
    (training,) = [case for case in target_cases(target) if case.name == "training"]
    results = run_cases([training])
    updates = [r for r in results
               if r.id.rsplit("/", 1)[1] not in ("loss", "loss_gradient") and "/grad_" not in r.id]
    assert len(updates) == 16, [r.id for r in updates]
    assert all(not r.passed for r in updates), [r.id for r in updates if r.passed]
    assert all(r.passed for r in results if r not in updates), failed_ids(results)


def test_a_tolerance_never_goes_below_the_dtypes_underflow():
    """SGD at rate 5 on a summed loss drives float32 gradients towards 2e−51, where float32
    holds 0: the rounding's absolute part (gradual underflow) is within the tolerance."""
    assert_all_pass(refnet_trajectory(_network("relu", F32), *_data(F32, samples=40),
                                      optimizer="sgd", lr=5.0, reduction="sum", name="net"))


SUMMED = str(Path(__file__).parent / "frameworks" / "handout_adapter.py") + ":SummedMSE"


def _training(spec, dtype):
    cases = [case for case in target_cases(load_target(spec), dtypes=(dtype,), quick=False)
             if case.name.startswith("training")]
    return run_cases(cases)


def test_a_summed_mse_trains_at_the_rate_its_normalisation_keeps_stable():
    """A correct framework whose MSE is a sum: at the mean's rate its steps are 20 times a
    mean's and it diverged in float32; at the rate scaled by its measured normalisation it
    passes, and the rate is named."""
    results = _training(SUMMED, F32)
    assert_all_pass(results)
    assert "sgd lr=0.0025," in next(r.detail for r in results if "/sgd/" in r.id)


def test_steps_after_torchs_own_reference_diverges_are_not_judged(monkeypatch):
    """The same framework at 20 times that rate (the rate it had before): torch's reference
    leaves float32's range; the framework, correct, diverges with it and passes, the steps
    from there "diverged: not judged"."""
    monkeypatch.setattr("verification.suite.conformance.TRAINING_SGD_LR", 1.0)
    results = [r for r in _training(SUMMED, F32) if "/sgd/" in r.id]
    assert_all_pass(results)
    assert all("diverged: not judged from step" in result.detail for result in results)


def test_a_tolerance_bounds_the_error_of_negative_targets_by_their_size():
    """dL/dy = 2c(y − t) rounds relative to 2c(|y| + |t|): targets of −1 and 1 (one-hot
    shifted) leave y − t as large as |y| + |t|, and a correct float32 refnet passes (in
    float64 refnet's dL/dy is torch's to the bit)."""
    x, targets = _data(F32)
    assert_all_pass(refnet_trajectory(_network("tanh", F32), x, 2 * targets - 1,
                                      optimizer="sgd", lr=0.01, steps=4, name="net"))


class _ScaledSummedMSE:
    """k·Σ(y − t)²: refnet's summed MSE times k (½ is the convention of many course
    frameworks)."""

    def __init__(self, scale):
        self.summed, self.scale = refnet.MSELoss("sum"), scale

    def forward(self, prediction, target):
        return self.scale * self.summed.forward(prediction, target)

    def backward(self):
        return self.scale * self.summed.backward()


def _scaled_check(scale, dtype, optimizer):
    return check_trajectory(refnet_component(_network("tanh", dtype), "net"), *_data(dtype),
                            optimizer=optimizer, lr=LEARNING_RATES[optimizer],
                            loss=_ScaledSummedMSE(scale), steps=3,
                            build_optimizer=REFNET_OPTIMIZERS[optimizer],
                            reduction=Normalisation("mse", "sum", scale))


def test_a_scaled_normalisation_is_followed_by_torchs_loss():
    """torch's loss is the framework's normalisation times its constant: ½·Σ(y − t)² against
    torch's sum alone would be off by 2 at every step."""
    results = _scaled_check(0.5, F64, "sgd")
    assert_all_pass(results)
    assert "loss 0.5 × the sum of the loss terms" in results[0].detail, results[0].detail


def test_a_negated_mse_is_judged_by_the_size_of_its_loss_and_terms():
    """A normalisation of −1 given to the check itself (−Σ(y − t)², trained uphill by Adam;
    the loss checks refuse it as a negated loss, but the bounds must hold for any c): the
    round-off of L < 0 and of dL/dy = −2(y − t) scales with |L| and 2·|c|(|y| + |t|); with c
    itself the float32 dL/dy's tolerance fell to the subnormal floor (ratio 5e34)."""
    assert_all_pass(_scaled_check(-1.0, F32, "adam"))


def test_the_detection_power_of_a_step_counts_a_negative_values_size():
    """allowed = atol + rtol·|expected|: the element −1 under rtol 0.1 allows 0.1, the largest
    of the steps, so 0.1 of the scale 1 is sure to fail."""
    values = [torch.tensor([-1.0, 0.5], dtype=F64)]
    result, first = _worst_step("id", "net", "values", values, values,
                                [Tolerance(atol=0.0, rtol=0.1)], "hand-made")
    assert (result.passed, first, result.scale) == (True, None, 1.0), result
    assert result.detectable == pytest.approx(0.1), result


def test_the_chain_names_its_first_wrong_link_on_the_later_links_only(monkeypatch):
    """dL/dy halved and SGD stepping uphill: dL/dy fails from step 1 (stage 2 of 4), the
    updates from step 1 too (stage 4); the updates are told the chain went wrong first at
    dL/dy, dL/dy is not."""
    backward = refnet.MSELoss.backward
    monkeypatch.setattr(refnet.MSELoss, "backward", lambda self: 0.5 * backward(self))
    monkeypatch.setattr(refnet.SGD, "step", _sgd_step_wrong_sign)
    results = {result.id: result for result in _check("sgd", steps=3)}
    chain = "; the chain first goes wrong at step 1, at dL/dy"
    gradient = results["trajectory/sgd/net/loss_gradient"]
    update = results["trajectory/sgd/net/0.weight"]
    assert not gradient.passed and "chain" not in gradient.diagnosis, gradient.diagnosis
    assert not update.passed and update.diagnosis.endswith(chain), update.diagnosis


def test_the_figure_marks_the_steps_whose_loss_fails(monkeypatch):
    """The loss 0.1 % off from the third of four steps: the figure marks steps 3 and 4
    (indices 2 and 3), the steps before passing."""
    forward, calls = refnet.MSELoss.forward, []

    def late_error(self, prediction, target):
        calls.append(None)
        loss = forward(self, prediction, target)
        return loss * 1.001 if len(calls) >= 3 else loss

    monkeypatch.setattr(refnet.MSELoss, "forward", late_error)
    results = _check("sgd", steps=4)
    assert failed_ids(results) == {"trajectory/sgd/net/loss"}, failed_ids(results)
    panels = results[0].figure["panels"]
    assert [panel["failing"] for panel in panels] == [[], [2, 3]], panels


def _trajectory_with(params_by_step):
    """A torch reference of ``len(params_by_step)`` steps whose only non-zero values are the
    parameters given, one tensor a step."""
    zero = torch.zeros((), dtype=F64)
    steps = len(params_by_step)
    return _Trajectory(losses=[zero] * steps, loss_gradients=[zero] * steps,
                       grads=[[zero]] * steps, params=[[value] for value in params_by_step])


@pytest.mark.parametrize("params, judged", [
    ([1.0, -2.0, 3.0], 3),
    ([1.0, 2.0, -1e39], 2),
    ([1.0, math.inf, 3.0], 1),
    ([-1e39, 2.0, 3.0], 1),
], ids=["finite", "negative-past-float32-at-step-3", "infinite-at-step-2", "at-step-1"])
def test_steps_are_judged_up_to_torchs_first_value_outside_float32(params, judged):
    """−1e39 is a float64 number beyond float32's range (3.4e38) by its size; from the step of
    the first such value torch's reference is not judged, the first step always is."""
    trajectory = _trajectory_with([torch.tensor([0.5, value], dtype=F64) for value in params])
    assert _steps_before_divergence(trajectory, F32) == judged
