"""MSELoss against F.mse_loss and autograd, and the report's literal eq. 14/15 pair (loss/)."""

import math

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
from verification.checks.loss import (
    extreme_inputs,
    grid_input,
    measure_normalisation,
    measured_reduction,
)
from verification.targets.adapter import Target, TargetError
from verification.vocabulary.losses import LossKind, loss_kind

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
    assert ids == ["autograd/mse/loss", "finite_difference/mse/3x2/input", "autograd/mse/3x2/loss",
                   "autograd/mse/3x2/grad_prediction"], ids


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
    assert failed_ids(results) == {"finite_difference/literal/5x2/input",
                                   "autograd/literal/5x2/grad_prediction"}, (
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
    assert failed_ids(results) == {"finite_difference/mse/6x2/input",
                                   "autograd/mse/6x2/grad_prediction"}, failed_ids(results)
    assert "dL/dprediction" in results[-1].detail, results[-1].detail


def test_planted_replica_losses_mixed_fail_the_value(monkeypatch):
    original = refnet.MSELoss.forward
    monkeypatch.setattr(refnet.MSELoss, "forward",
                        lambda self, x, t: original(self, x, t).flip(0))
    results = check_loss(refnet.MSELoss("sum"), *_pair((3, 4, 2)), name="mse")
    assert "autograd/mse/3x4x2/loss" in failed_ids(results), failed_ids(results)


def test_refnet_error_becomes_failed_result():
    prediction, target = _pair((4, 2))
    results = check_loss(refnet.MSELoss("sum"), prediction, target.to(F32))
    assert results and not any(result.passed for result in results), results
    raised = [result for result in results if result.id.endswith("/raised")]
    assert raised and all("dtype" in result.detail for result in raised), [
        r.detail for r in results]


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
    assert failed_ids(results) == {"autograd/m/loss", "autograd/m/6x3/loss",
                                   "autograd/m/6x3/grad_prediction"}, (
        failed_ids(results))


def test_gradient_divided_by_batch_where_the_loss_divides_by_all_elements_fails():
    loss = _ScaledMSE(lambda p: p.numel(), gradient_divisor=_batch)
    results = check_loss(loss, *_pair((6, 3)), name="m")
    assert "finite_difference/m/6x3/input" in failed_ids(results), failed_ids(results)


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
    assert "finite_difference/ce/5x4/input" in failed_ids(results), failed_ids(results)


# --- losses as functions: the grid, the extremes, one normalisation ---------------------------

GRID = ((1, 2), (1, 3), (6, 2), (6, 3))


def _grid(kind, dtype=F64, seed=0):
    """``(prediction, target)`` at each shape of ``GRID`` for a built-in ``kind``."""
    generator = torch.Generator().manual_seed(seed)
    pairs = []
    for batch, outputs in GRID:
        if kind == "cross_entropy":
            logits = 3 * torch.randn(batch, outputs, generator=generator, dtype=F64)
            labels = torch.randint(outputs, (batch,), generator=generator)
            pairs.append((logits.to(dtype), torch.nn.functional.one_hot(labels, outputs).to(dtype)))
        elif kind == "bce":
            p = 0.05 + 0.9 * torch.rand(batch, outputs, generator=generator, dtype=F64)
            t = (torch.rand(batch, outputs, generator=generator) > 0.5).to(F64)
            pairs.append((p.to(dtype), t.to(dtype)))
        else:
            pairs.append(tuple(torch.rand(batch, outputs, generator=generator, dtype=F64
                                          ).to(dtype) for _ in range(2)))
    return pairs


def _check_as_function(loss, kind, dtype=F64, name="loss", options=None):
    grid = _grid(kind, dtype) if loss_kind(kind).name in ("mse", "cross_entropy", "bce") else (
        _real_grid(dtype))
    return check_loss(loss, *grid[0], kind=kind, options=options, name=name,
                      also_at=grid[1:], extremes=extreme_inputs(loss_kind(kind, options), dtype))


class _Cast:
    """A float64 loss run in ``dtype`` (a float32 framework's loss, for the float32 tests)."""

    def __init__(self, loss, dtype):
        self.loss, self.dtype = loss, dtype

    def forward(self, prediction, target):
        return self.loss.forward(prediction.to(self.dtype), target.to(self.dtype))

    def backward(self):
        return self.loss.backward()


@pytest.mark.parametrize("dtype", [F64, F32], ids=["float64", "float32"])
@pytest.mark.parametrize("kind", ["mse", "cross_entropy", "bce"])
def test_correct_losses_pass_on_the_grid_and_at_the_extremes(kind, dtype):
    loss = {"mse": refnet.MSELoss("mean"), "cross_entropy": _CrossEntropy(), "bce": _BCE()}[kind]
    results = _check_as_function(loss, kind, dtype)
    assert_all_pass(results)
    ids = {result.id for result in results}
    for batch, outputs in GRID:
        tag = f"{batch}x{outputs}"
        assert {f"finite_difference/loss/{tag}/input", f"autograd/loss/{tag}/loss",
                f"autograd/loss/{tag}/grad_prediction"} <= ids, f"no full group at {tag}: {ids}"
    assert any("/extreme-" in result_id for result_id in ids), f"no extreme input: {ids}"


def test_bce_extremes_are_representable_in_their_dtype():
    [f64] = extreme_inputs("bce", F64)
    [f32] = extreme_inputs("bce", F32)
    assert f64.prediction.min() == 1e-12 and f64.prediction.max() == 1 - 1e-12, f64.prediction
    assert float(f32.prediction.min()) == pytest.approx(1e-12, rel=1e-7, abs=0), f32.prediction
    assert f32.prediction.max() == 1 - 2.0 ** -24 and bool((f32.prediction < 1).all()), (
        "1 - 1e-12 rounds to 1 in float32: the largest float32 below 1 is used instead")


class _TwoClassCrossEntropy:
    """Cross-entropy written for 2 classes (z₁ − z₀ only), with a wrong-sign or a sum gradient."""

    def __init__(self, sign=1.0, divide=True):
        self.sign, self.divide = sign, divide

    def forward(self, logits, target):
        self.target = target
        difference = logits[:, 1] - logits[:, 0]
        self.p1 = torch.sigmoid(difference)
        softplus = torch.nn.functional.softplus
        return (target[:, 1] * softplus(-difference) + target[:, 0] * softplus(difference)
                ).sum() / logits.shape[0]

    def backward(self):
        gradient = torch.stack([1 - self.p1, self.p1], dim=1) - self.target[:, :2]
        return self.sign * gradient / (self.target.shape[0] if self.divide else 1)


@pytest.mark.parametrize(("loss", "bug"), [(_TwoClassCrossEntropy(sign=-1.0), "wrong sign"),
                                           (_TwoClassCrossEntropy(divide=False), "no 1/B")])
def test_two_class_cross_entropy_is_measured_at_two_classes(loss, bug):
    failed = failed_ids(_check_as_function(loss, "cross_entropy"))
    assert "finite_difference/loss/6x2/input" in failed, f"{bug} not measured at C = 2: {failed}"
    assert "autograd/loss/6x2/loss" not in failed, f"{bug}: its value at C = 2 is right: {failed}"
    assert "autograd/loss/6x3/grad_prediction" in failed, f"{bug}: C = 3 must fail: {failed}"
    if bug == "wrong sign":
        assert "finite_difference/loss/1x2/input" in failed, f"sign at batch 1: {failed}"


def test_a_sigmoid_inside_a_cross_entropy_is_not_a_scaled_cross_entropy():
    class SigmoidInside(_CrossEntropy):
        def forward(self, logits, target):
            self.logits, self.target = logits, target
            return -(target * torch.sigmoid(logits).log()).sum() / logits.shape[0]

        def backward(self):
            return -self.target * (1 - torch.sigmoid(self.logits)) / self.logits.shape[0]

    results = _check_as_function(SigmoidInside(), "cross_entropy")
    value = next(result for result in results if result.id == "autograd/loss/loss")
    assert not value.passed, value.detail
    assert "not a scaled cross-entropy: the ratio L / S" in value.detail and (
        "varies from" in value.detail), value.detail


def test_a_softmax_without_max_subtraction_is_named_nan_at_the_extreme_input():
    class Unstable(_CrossEntropy):
        def forward(self, logits, target):
            self.logits, self.target = logits, target
            softmax = logits.exp() / logits.exp().sum(dim=1, keepdim=True)
            return -(target * softmax.log()).sum() / logits.shape[0]

    results = _check_as_function(Unstable(), "cross_entropy")
    failed = [result for result in results if not result.passed]
    assert failed and all("/extreme-gap800" in result.id for result in failed), [
        r.id for r in failed]
    assert all("nan" in result.detail and "extreme input: logits" in result.detail
               for result in failed), [r.detail for r in failed]


def test_a_clamped_bce_gradient_fails_at_p_1e_12():
    class Clamped(_BCE):
        def backward(self):
            p = self.p.clamp(1e-7, 1 - 1e-7)
            return (p - self.t) / (p * (1 - p)) / p.numel()

    failed = failed_ids(_check_as_function(Clamped(), "bce"))
    assert failed == {"autograd/loss/extreme-p-near-0-and-1/grad_prediction"}, failed


# --- extra losses by torch name ------------------------------------------------------------


def _real_grid(dtype=F64, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return [(3 * torch.randn(shape, generator=generator, dtype=F64).to(dtype),
             torch.rand(shape, generator=generator, dtype=F64).to(dtype)) for shape in GRID]


class _Huber:
    def __init__(self, delta, divide=True):
        self.delta, self.divide = delta, divide

    def forward(self, prediction, target):
        self.d = prediction - target
        small = self.d.abs() <= self.delta
        return torch.where(small, 0.5 * self.d ** 2,
                           self.delta * (self.d.abs() - 0.5 * self.delta)).mean()

    def backward(self):
        return self.d.clamp(-self.delta, self.delta) / (self.d.numel() if self.divide else 1)


@pytest.mark.parametrize("dtype", [F64, F32], ids=["float64", "float32"])
def test_an_extra_loss_is_checked_against_its_torch_function(dtype):
    results = _check_as_function(_Huber(1.5), "huber_loss", dtype, options={"delta": 1.5})
    assert_all_pass(results)
    assert "autograd/loss/extreme-both-sides-of-threshold/grad_prediction" in {
        r.id for r in results}
    wrong_delta = _check_as_function(_Huber(1.0), "huber_loss", dtype, options={"delta": 1.5})
    assert failed_ids(wrong_delta), "a Huber loss with another delta must fail"


def test_an_extra_loss_missing_one_over_n_fails_consistency():
    failed = failed_ids(_check_as_function(_Huber(1.0, divide=False), "huber_loss",
                                           options={"delta": 1.0}))
    assert "finite_difference/loss/6x3/input" in failed, failed


@pytest.mark.parametrize(("declaration", "message"), [
    (("no_such_loss", {}), "neither a built-in loss kind"),
    (("huber_loss", {"beta": 1.0}), "takes no option(s) ['beta']"),
    (("relu", {}), "takes no reduction"),
    (("huber_loss",), "expected a torch function name, or a pair"),
])
def test_a_bad_extra_loss_declaration_is_named_at_load(declaration, message):
    adapter = type("Bad", (), {"linear": lambda self, *a: None, "mse_loss": lambda self: None,
                               "huber": lambda self: None,
                               "extra_losses": {"huber": declaration}})
    with pytest.raises(TargetError, match=r"extra_losses\['huber'\]") as error:
        Target.from_adapter(adapter)
    assert message in str(error.value), str(error.value)


def test_an_extra_loss_needs_a_factory_of_its_name():
    adapter = type("Missing", (), {"linear": lambda self, *a: None,
                                   "mse_loss": lambda self: None,
                                   "extra_losses": {"l1": ("l1_loss", {})}})
    with pytest.raises(TargetError, match=r"must name a factory of the adapter \(a method l1"):
        Target.from_adapter(adapter)


def test_grid_inputs_are_tagged_by_shape():
    item = grid_input(torch.zeros(6, 3, dtype=F64), torch.zeros(6, 3, dtype=F64))
    assert item.tag == "6x3" and "[6, 3]" in item.description, item


# --- a binary cross-entropy kept finite near 0 and 1 is a convention, measured ----------------

class _StabilisedBCE:
    """Σ terms / N, ``value`` and ``slope`` per element given by the subclass."""

    def forward(self, p, t):
        self.p, self.t = p, t
        return self.value(p, t).sum() / p.numel()

    def backward(self):
        return self.slope(self.p, self.t) / self.p.numel()


class _LogsPlusEpsilon(_StabilisedBCE):
    def value(self, p, t):
        return -(t * torch.log(p + 1e-12) + (1 - t) * torch.log(1 - p + 1e-12))

    def slope(self, p, t):
        return -(t / (p + 1e-12) - (1 - t) / (1 - p + 1e-12))


class _ClampedProbability(_StabilisedBCE):
    def value(self, p, t):
        q = p.clamp(1e-7, 1 - 1e-7)
        return -(t * torch.log(q) + (1 - t) * torch.log(1 - q))

    def slope(self, p, t):
        q = p.clamp(1e-7, 1 - 1e-7)
        return -(t / q - (1 - t) / (1 - q)) * ((p > 1e-7) & (p < 1 - 1e-7)).to(p.dtype)


class _ClampedDenominator(_StabilisedBCE):
    def value(self, p, t):
        return -(t * torch.log(p) + (1 - t) * torch.log1p(-p))

    def slope(self, p, t):
        return (p - t) / (p * (1 - p)).clamp_min(1e-6)


class _TorchBCELoss:
    """torch's own BCELoss: logs clamped at −100, its backward's p(1 − p) at 1e-12."""

    def forward(self, p, t):
        self.p = p.detach().clone().requires_grad_()
        with torch.enable_grad():
            self.loss = torch.nn.functional.binary_cross_entropy(self.p, t)
        return self.loss.detach()

    def backward(self):
        return torch.autograd.grad(self.loss, self.p)[0]


def _bce_inputs(dtype):
    generator = torch.Generator().manual_seed(0)
    p = torch.rand(6, 3, generator=generator, dtype=F64).clamp(0.05, 0.95).to(dtype)
    t = (torch.rand(6, 3, generator=generator) > 0.5).to(dtype)
    return p, t, extreme_inputs("bce", dtype)


@pytest.mark.parametrize("dtype", [F64, F32], ids=["float64", "float32"])
@pytest.mark.parametrize("loss, formula", [
    (_LogsPlusEpsilon, "log(p + 1e-12) and log(1 − p + 1e-12)"),
    (_ClampedProbability, "p clamped to [1e-07, 1 − 1e-07]"),
    (_ClampedDenominator, "p(1 − p) clamped below at 1e-06 in the gradient"),
    (_TorchBCELoss, "p(1 − p) clamped below at 1e-12 in the gradient"),
], ids=["logs-plus-epsilon", "clamped-p", "clamped-denominator", "torch-BCELoss"])
def test_a_stabilised_bce_passes_with_its_epsilon_as_a_convention(loss, formula, dtype):
    p, t, extremes = _bce_inputs(dtype)
    results = check_loss(loss(), p, t, kind="bce", name="bce", extremes=extremes)
    assert_all_pass(results)
    convention = results[0].convention
    if loss is _TorchBCELoss and dtype == F32:
        # its p(1 − p) ≥ 2⁻²⁴(1 − 2⁻²⁴) at the float32 extremes never reaches 1e-12: exact
        assert convention == "", convention
    else:
        assert f"stabilised: {formula}, measured" in convention, convention


@pytest.mark.parametrize("loss, searched", [(_BCE, False), (_LogsPlusEpsilon, True)],
                         ids=["plain", "stabilised"])
def test_a_bce_is_judged_once_per_input_and_searched_only_where_the_plain_formula_fails(
        monkeypatch, loss, searched):
    from verification.checks.loss import judgement
    judged = []

    def counted(view, kind, evaluated, fit, name, group):
        judged.append((kind.stabiliser, group))
        return value_and_gradient(view, kind, evaluated, fit, name, group)

    value_and_gradient = judgement.value_and_gradient
    monkeypatch.setattr(judgement, "value_and_gradient", counted)
    p, t, extremes = _bce_inputs(F64)
    results = check_loss(loss(), p, t, kind="bce", name="bce", extremes=extremes)
    assert_all_pass(results)
    groups = ["bce/6x3", *(f"bce/{e.tag}" for e in extremes)]
    plain = [group for stabiliser, group in judged if not stabiliser]
    assert plain == groups, f"the plain formula is judged once at each input: {plain}"
    tried = {stabiliser for stabiliser, _ in judged if stabiliser}
    assert bool(tried) == searched, f"searched only where the plain formula fails: {tried}"
    found = [group for stabiliser, group in judged if searched and stabiliser == judged[-1][0]]
    assert found == (groups if searched else []), f"the one found judged once: {found}"


@pytest.mark.parametrize("dtype", [F64, F32], ids=["float64", "float32"])
def test_a_stabilised_bce_with_a_wrong_gradient_still_fails(dtype):
    class Doubled(_LogsPlusEpsilon):
        def slope(self, p, t):
            return 2 * super().slope(p, t)

    p, t, extremes = _bce_inputs(dtype)
    results = check_loss(Doubled(), p, t, kind="bce", name="bce", extremes=extremes)
    assert "autograd/bce/6x3/grad_prediction" in failed_ids(results)
    assert "stabilised" not in results[0].convention


class _WobblyMSE(refnet.MSELoss):
    """A mean MSE whose value is off by a relative δ, +δ at an odd batch size and −δ at an
    even one: its ratio L / S varies by 2δ between the inputs."""

    def __init__(self, delta):
        super().__init__("mean")
        self.delta = delta

    def forward(self, prediction, target):
        value = super().forward(prediction, target)
        return value * (1 + (self.delta if prediction.shape[-2] % 2 else -self.delta))


@pytest.mark.parametrize(("delta", "fits"), [(3e-14, True), (1e-13, False)])
def test_the_normalisation_holds_its_ratio_to_a_few_roundings(delta, fits):
    """The normalisation's tolerance R = 2·max rtol·(1 + T/S) (``_fit``) from both sides: at
    shapes 6×3 and 1×2 in float64 a ratio varying by 6e-14 is one normalisation and by 2e-13
    is not; a tolerance 10 times looser would take the second for a convention."""
    generator = torch.Generator().manual_seed(0)

    def draw(*shape):
        return torch.randn(*shape, generator=generator, dtype=torch.float64)

    results = check_loss(_WobblyMSE(delta), draw(6, 3), draw(6, 3), kind="mse",
                         also_at=((draw(1, 2), draw(1, 2)),))
    (normalisation,) = [r for r in results if r.id == "autograd/MSELoss(reduction='mean')/loss"]
    assert normalisation.passed == fits, normalisation.detail


# --- the tolerances and messages, hand-worked ---------------------------------------------------

RTOL_TWO_ELEMENTS = 16 * 2.0 ** -53
"""A loss's rtol at a float64 prediction of 2 elements per replica: SAFETY·(N + 2)·u = 4·4·u."""


def _named(results, result_id):
    (result,) = [result for result in results if result.id == result_id]
    return result


def _in_rtols(result):
    """A result's largest tolerance over its largest |expected|, in units of
    ``RTOL_TWO_ELEMENTS``."""
    return result.detectable / RTOL_TWO_ELEMENTS


def _value_and_gradient(results, tag):
    return (_named(results, f"autograd/m/{tag}/loss"),
            _named(results, f"autograd/m/{tag}/grad_prediction"))


def test_value_and_gradient_are_held_to_their_largest_replica_and_element():
    """S = (1, 4) over two replicas and dL/dx = 2x = (−2, 0), (−4, 0): the value's atol is
    rtol·c·max T = 4·rtol (T = S) and the gradient's rtol·max|dL/dx| = 4·rtol, so each
    comparison's largest tolerance over its largest |expected| is 2·rtol (rtol alone, or 1.25·rtol,
    with the smallest replica, the smallest or the signed largest element)."""
    prediction = torch.tensor([[[-1.0, 0.0]], [[-2.0, 0.0]]], dtype=F64)
    results = check_loss(refnet.MSELoss("sum"), prediction, torch.zeros_like(prediction),
                         name="m")
    assert_all_pass(results)
    for result in _value_and_gradient(results, "2x1x2"):
        assert _in_rtols(result) == pytest.approx(2, rel=1e-12), result.detail


class _Negated:
    """−``loss``, value and gradient: L = −1 × its normalisation."""

    def __init__(self, loss):
        self.loss = loss

    def forward(self, prediction, target):
        return -self.loss.forward(prediction, target)

    def backward(self):
        return -self.loss.backward()


def test_a_negated_loss_fails_its_normalisation_and_nothing_else():
    """k = −1 (a ratio L / S of −1 at every input) is no convention: descending −MSE maximises
    the MSE. The normalisation fails and says so; the value and gradient, judged against the
    ratio every input agrees on, pass, with the value's atol rtol·|k·c|·T, its largest
    tolerance over |L| 2·rtol as for the loss itself (with k·c signed the atol would be the
    exact one, rtol alone)."""
    prediction = torch.tensor([[-1.0, 0.5]], dtype=F64)
    results = check_loss(_Negated(refnet.MSELoss("sum")), prediction,
                         torch.zeros_like(prediction), name="m")
    assert [result.id for result in results if not result.passed] == ["autograd/m/loss"]
    assert _named(results, "autograd/m/loss").detail.endswith(
        "a negated loss: L = -1 × the sum of the loss terms (the MSE's terms), so gradient "
        "descent on it maximises the loss it negates; inputs 1x2"), results[0].detail
    value, _ = _value_and_gradient(results, "1x2")
    assert value.passed and "compared with -1 × the sum of the loss terms" in value.detail, (
        value.detail)
    assert _in_rtols(value) == pytest.approx(2, rel=1e-12), value.detail


def test_a_fit_of_the_opposite_sign_names_the_input_where_it_breaks():
    """Ratios −1, −1 and −0.5 (halved at a batch of 1): compared with the fit's |k|, the
    inputs at −1 hold it and the one at −0.5 breaks it (against a signed k every one would
    break it, and no input would be named)."""
    halved_at_batch_one = _ScaledMSE(lambda prediction: 2.0 if len(prediction) == 1 else 1.0)
    results = check_loss(_Negated(halved_at_batch_one), *_pair((6, 3)), name="m",
                         also_at=[_pair((6, 2)), _pair((1, 2))])
    normalisation = _named(results, "autograd/m/loss")
    assert ("; the closest fit, -1 × the sum of the loss terms, holds at 6x3, 6x2 and breaks at "
            "1x2 (ratio -0.5 where it needs -1)") in normalisation.detail, normalisation.detail


def test_a_cross_entropy_value_is_held_to_its_logits_not_to_its_loss():
    """Logits (−3, 1), class 0: T = max|x| + |x_target| + log C = 3 + 3 + log 2 and
    S = −log softmax₀ = log(1 + e⁴), so the value's tolerance over |L| is rtol·(1 + T/S)
    (a signed or smallest logit, or a signed x_target, would give T = 4 + log 2 or log 2)."""
    logits = torch.tensor([[-3.0, 1.0]], dtype=F64)
    results = check_loss(_CrossEntropy(), logits, torch.tensor([[1.0, 0.0]], dtype=F64),
                         kind="cross_entropy", name="m")
    assert_all_pass(results)
    value, _ = _value_and_gradient(results, "1x2")
    ratio = (6 + math.log(2)) / math.log(1 + math.exp(4))
    assert _in_rtols(value) == pytest.approx(1 + ratio, rel=1e-12), value.detail


class _TorchLoss:
    """The ``torch.nn.functional`` loss ``name`` with ``reduction="sum"`` and ``options``,
    differentiated by autograd."""

    def __init__(self, name, **options):
        self.function = getattr(torch.nn.functional, name)
        self.options = options

    def forward(self, prediction, target):
        self.prediction = prediction.detach().clone().requires_grad_()
        with torch.enable_grad():
            self.loss = self.function(self.prediction, target, reduction="sum", **self.options)
        return self.loss.detach()

    def backward(self):
        return torch.autograd.grad(self.loss, self.prediction)[0]


@pytest.mark.parametrize(("name", "options", "prediction", "target", "sums", "magnitude"), [
    ("huber_loss", {"delta": 2.0}, [[-3.0, 0.0]], [[0.0, -1.0]], 4.5, 4.5 + 2 * 2 * 4),
    ("kl_div", {}, [[-1.0, 2.0]], [[0.5, 0.5]], -(math.log(2) + 0.5), 1.5 + 2 * 4),
], ids=["huber", "kl_div"])
def test_an_extra_loss_value_is_held_to_its_terms_and_its_inputs(name, options, prediction,
                                                                 target, sums, magnitude):
    """T = Σ|terms| + 2·max(1, δ)·Σ(|x| + |t|), the value's tolerance over |L| rtol·(1 + T/|S|).
    Huber, δ = 2, d = x − t = (−3, 1): terms 2·(3 − 1) and ½, Σ(|x| + |t|) = 4 (signed: −2 and
    2; max(1, δ) → 1 would halve the slope). KL divergence t·(log t − x), t = ½: terms
    ½·(1 − log 2) and −½·(2 + log 2), Σ|terms| = 1.5, S < 0, whose normalisation still fits
    (its ratio's tolerance is relative to |S|)."""
    kind = loss_kind(name, options)
    prediction, target = torch.tensor(prediction, dtype=F64), torch.tensor(target, dtype=F64)
    results = check_loss(_TorchLoss(name, **options), prediction, target, kind=kind, name="m")
    assert_all_pass(results)
    value, _ = _value_and_gradient(results, "1x2")
    assert _in_rtols(value) == pytest.approx(1 + magnitude / abs(sums), rel=1e-12), (
        value.detail)


def test_the_report_literal_gradient_is_held_to_its_largest_element():
    """x = (−1.5, 0.5), t = 0: dL/dx of the mean is x = (−1.5, 0.5), atol = rtol·1.5, so the
    largest tolerance over the largest |expected| is 2·rtol (rtol·4/3 with the smallest or the
    signed largest element)."""
    prediction = torch.tensor([[-1.5, 0.5]], dtype=F64)
    result = check_report_literal_pair(prediction, torch.zeros_like(prediction))
    assert _in_rtols(result) == pytest.approx(2, rel=1e-12), result.detail


def test_a_loss_fed_2d_predictions_is_not_said_to_be_fed_1d():
    results = check_loss(refnet.MSELoss("sum"), *_pair((3, 2)), name="m")
    value, gradient = _value_and_gradient(results, "3x2")
    for result in (value, gradient):
        assert result.detail.endswith(
            "; at prediction [3, 2] torch.float64; MSE loss, L = the sum of the loss terms"), (
            result.detail)


class _FirstReplicaHalved:
    """Σ (x − t)² of each replica, the first one's halved (a 2-D prediction's as it is)."""

    def forward(self, prediction, target):
        self.difference = prediction - target
        self.weights = torch.ones(prediction.shape[:-2] + (1, 1), dtype=prediction.dtype)
        self.weights[:1] = 0.5 if prediction.ndim == 3 else 1.0
        return self.difference.square().sum(dim=(-2, -1)) * self.weights.reshape(-1)

    def backward(self):
        return 2 * self.difference * self.weights


def test_an_input_breaks_the_fit_where_any_of_its_replicas_does():
    """Ratios (0.5, 1) at the replicated input, 1 at the extreme one: the replica furthest
    from the fit, on either side, is the one named (the signed largest difference, 0, would
    call the input a fit)."""
    results = check_loss(_FirstReplicaHalved(), *_pair((2, 4, 2)), name="m",
                         extremes=extreme_inputs("mse", F64))
    normalisation = _named(results, "autograd/m/loss")
    assert ("; the closest fit, the sum of the loss terms, holds at extreme-large and breaks "
            "at 2x4x2 (ratio 0.5 where it needs 1)") in normalisation.detail, normalisation.detail


def test_a_fit_broken_only_by_an_input_that_raised_names_no_input_where_it_breaks():
    """The mean holds at every input with a loss: the message goes on to the one that raised,
    with no 'closest fit … breaks at' and nothing after it."""

    class RaisingAtBatchOne(refnet.MSELoss):
        def forward(self, prediction, target):
            if prediction.shape[-2] == 1:
                raise IndexError("planted: a batch of one")
            return super().forward(prediction, target)

    with pytest.raises(ValueError) as raised:
        measure_normalisation(RaisingAtBatchOne("mean"), [_pair((6, 3)), _pair((1, 3))])
    message = str(raised.value)
    assert "would fit every one; at 1x3 it raised: " in message and (
        "closest fit" not in message), message


def test_the_reduction_measured_at_one_point_is_a_named_one_unscaled():
    prediction, target = _pair((6, 3))
    assert measured_reduction(refnet.MSELoss("sum"), prediction, target) == "sum"
    half_sum = _ScaledMSE(lambda prediction: 2.0)
    assert measured_reduction(half_sum, prediction, target) is None, (
        "½ × the sum is no named reduction")


def test_a_declared_stabiliser_must_hold_and_no_other_is_searched():
    """A log(p + 1e-12) loss checked as the p-clamped kind fails where they differ (the
    extremes, and the gradient at 6x3); the stabiliser it does follow is not looked for."""
    p, t, extremes = _bce_inputs(F64)
    kind = LossKind("bce", stabiliser=("clamp", 1e-7, 1e-7, 1 - 1e-7))
    results = check_loss(_LogsPlusEpsilon(), p, t, kind=kind, name="bce", extremes=extremes)
    assert failed_ids(results) == {
        "autograd/bce/loss", "autograd/bce/6x3/grad_prediction",
        "autograd/bce/extreme-p-near-0-and-1/loss",
        "autograd/bce/extreme-p-near-0-and-1/grad_prediction"}, failed_ids(results)


def test_no_stabiliser_is_credited_where_the_loss_is_infinite():
    """At p = 0, t = 1 the clamped-denominator BCE's value is −log 0 = ∞, as its formula's: an
    input without a finite loss fits no stabiliser, so the plain formula's judgement stands
    (its gradient −1/0 against the loss's clamped −1/1e-6 fails there)."""
    p, t = torch.tensor([[0.0, 0.3]], dtype=F64), torch.tensor([[1.0, 0.0]], dtype=F64)
    results = check_loss(_ClampedDenominator(), p, t, kind="bce", name="bce",
                         also_at=[(p + 0.5, t)])
    assert failed_ids(results) == {"finite_difference/bce/1x2/error",
                                   "autograd/bce/1x2/grad_prediction"}, failed_ids(results)
    assert results[0].convention == "", results[0].convention
