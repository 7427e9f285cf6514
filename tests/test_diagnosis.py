"""The diagnosis of a failing check (verification/checks/diagnosis.py): hand-worked cases of
each pure function, then each pattern through a planted bug of the handout fixture
(tests/frameworks/handout_adapter.py), judged in this process, float64 alone, quick; and one
planted bug through ``refnet conform`` (judge and executor), read back from results.json and
the HTML report."""

import json

import pytest
import torch
from check_helpers import fixture_spec

from verification import load_target
from verification.checks import diagnosis
from verification.checks.compare import compare
from verification.checks.diagnosis import Size
from verification.confined.isolation import _valid_check
from verification.suite.conformance import run_cases, target_cases

F64 = torch.float64


def _diagnose(expected, got, allowed=1e-9, **keywords):
    return diagnosis.diagnose(torch.tensor(expected, dtype=F64), torch.tensor(got, dtype=F64),
                              allowed, **keywords)


# --- the pure functions, by hand --------------------------------------------------------


def test_the_least_squares_factor_is_got_dot_expected_over_expected_dot_expected():
    # (2·1 + 4·2 + 7·3) / (1 + 4 + 9) = 31 / 14
    factor = diagnosis.least_squares_factor(torch.tensor([1.0, 2, 3]), torch.tensor([2.0, 4, 7]))
    assert factor == pytest.approx(31 / 14), factor
    assert diagnosis.least_squares_factor(torch.zeros(3), torch.ones(3)) != factor  # NaN


def test_a_factor_fits_when_the_residual_passes_the_tolerance_scaled_by_the_factor():
    expected = torch.tensor([1.0, 2.0])
    # residual of ×10 at [10.05, 20]: 0.05, allowed 0.01 × 10 = 0.1: fits; at 0.001, 0.01 not
    assert diagnosis.factor_fits(expected, torch.tensor([10.05, 20.0]), 10.0, 0.01)
    assert not diagnosis.factor_fits(expected, torch.tensor([10.05, 20.0]), 10.0, 0.001)


def test_the_sizes_of_a_prediction_and_of_any_tensor():
    assert diagnosis.prediction_sizes((6, 3)) == (
        Size("the number of elements", 18, "N", "(6 × 3)"), Size("the batch size", 6, "B"),
        Size("the number of outputs", 3, "C"))
    assert diagnosis.prediction_sizes((1, 2), "classes") == (
        Size("the number of classes", 2, "C"),)
    assert diagnosis.default_sizes((4, 3)) == (
        Size("the number of elements", 12, "N", "(4 × 3)"),)
    assert diagnosis.default_sizes(()) == ()


def test_named_factors_as_the_issue_words_them():
    sizes = diagnosis.prediction_sizes((6, 3))
    assert diagnosis.name_factor(2.0, sizes) == ("×2.00: an extra factor 2", True)
    assert diagnosis.name_factor(18.0, sizes) == (
        "×18 = the number of elements (6 × 3): the 1/N is missing", True)
    assert diagnosis.name_factor(1 / 6, sizes) == ("×1/6: divided by the batch size 6", True)
    assert diagnosis.name_factor(-1.0, sizes, update=True) == (
        "opposite sign: the step goes up the gradient", True)
    assert diagnosis.name_factor(-2.0, sizes)[0] == "opposite sign and ×2.00: an extra factor 2"
    assert diagnosis.name_factor(0.873, sizes) == ("×0.873: off by a constant factor", False)


def test_a_named_factor_is_matched_within_the_slack_only():
    assert diagnosis.name_factor(2.0 + 1e-4, (), slack=1e-3)[1]
    assert not diagnosis.name_factor(2.0 + 1e-2, (), slack=1e-3)[1]


def test_diagnose_each_pattern_by_hand():
    assert _diagnose([1.0, -2.0], [2.0, -4.0]) == "×2.00: an extra factor 2"
    assert _diagnose([1.0, -2.0], [-1.0, 2.0]) == "opposite sign: got = −expected"
    assert _diagnose([1.0, -2.0], [0.0, 0.0]).startswith("zero: got is 0 everywhere")
    assert _diagnose([[1.0, 2.0], [3.0, 4.0]], [[1.0, 3.0], [2.0, 4.0]]).startswith(
        "transposed")
    assert _diagnose([1.0, 2.0], [1.0, 5.0]).startswith(
        "no recognisable pattern (1 of 2 element(s) out of tolerance")
    assert _diagnose([0.0, 0.0], [1.0, 0.0]).startswith(
        "no recognisable pattern (the reference is 0")


def test_diagnose_an_update_judges_the_step_from_before():
    before = torch.tensor([1.0, 1.0], dtype=F64)
    assert _diagnose([0.5, 1.5], [1.0, 1.0], before=before) == (
        "no update at all: the parameters after the step equal those before")
    assert _diagnose([0.5, 1.5], [1.5, 0.5], before=before) == (
        "opposite sign: the step goes up the gradient")


def test_a_single_element_is_named_only_by_a_named_factor():
    assert _diagnose([0.5], [9.0], sizes=diagnosis.prediction_sizes((6, 3))) == (
        "×18 = the number of elements (6 × 3): the 1/N is missing")
    assert _diagnose([0.5], [0.61]) == "no recognisable pattern (got / expected = 1.22)"


def test_several_elements_off_by_an_unnamed_factor_are_named_by_it():
    assert _diagnose([0.5, -1.0], [0.61, -1.22]) == "×1.22: off by a constant factor"


def test_negative_residuals_and_factors_are_judged_by_their_size():
    """Every residual, tolerance and scale is an absolute value: a negative one is never
    smaller than its size."""
    expected = torch.tensor([1.0, 2.0], dtype=F64)
    allowed = torch.full((2,), 1e-3, dtype=F64)
    below = torch.tensor([1.0, 2.0 - 1.0], dtype=F64)
    assert not diagnosis.factor_fits(expected, below, 1.0, allowed)
    # f = −3 scales the tolerance by 3: a residual of 2·allowed fits, 4·allowed does not
    fits, too_far = (-3 * expected + torch.tensor([0.0, k * 1e-3], dtype=F64) for k in (2, 4))
    assert diagnosis.factor_fits(expected, fits, -3.0, allowed)
    assert not diagnosis.factor_fits(expected, too_far, -3.0, allowed)
    square = [[1.0, 2.0], [3.0, 4.0]]
    assert not _diagnose(square, [[1.0, 3.0 - 1.0], [2.0, 4.0]]).startswith("transposed")
    assert _diagnose([1.0, 2.0, 3.0], [1.0, 2.0 - 1.0, 3.0 - 1.0]).startswith(
        "no recognisable pattern (2 of 3 element(s) out of tolerance")
    assert _diagnose([1.0, 2.0], [1.0, 2.0 - 1e-3]).startswith(
        "no recognisable pattern (1 of 2 element(s) out of tolerance; no constant factor "
        "fits: the best, 1, leaves 4e+05× the tolerance)")
    # the best factor 1.0004 leaves −4e-4 and +2e-4: the worst residual is the negative one
    assert _diagnose([1.0, 2.0], [1.0, 2.0 + 1e-3]).endswith(
        "the best, 1, leaves 4e+05× the tolerance)")


def test_the_slack_is_four_times_the_largest_tolerance_over_the_largest_size():
    """s = max(4·max(allowed)/max|expected|, 1e-6), capped at 0.05: the largest of each,
    sizes taken as absolute values."""
    def slack(expected, allowed):
        return diagnosis._slack(torch.tensor(expected, dtype=F64),
                                torch.tensor(allowed, dtype=F64))

    assert slack([-100.0, 1.0], [1e-3, 1e-2]) == 4 * 1e-2 / 100
    assert slack([1.0, 100.0], [1e-3, 1e-3]) == 4 * 1e-3 / 100
    assert slack([1.0], [1e-9]) == 1e-6
    assert slack([1.0], [1.0]) == 0.05


def test_shapes_and_non_finite_values():
    assert diagnosis.diagnose_shape([4, 3], [3, 4]).startswith("transposed: shape [3, 4]")
    assert diagnosis.diagnose_shape([4, 3], [4, 2]) == (
        "no recognisable pattern (shape [4, 2] for [4, 3])")
    got = torch.tensor([[0.5, float("nan")]], dtype=F64)
    x = torch.tensor([[0.5, 800.0]], dtype=F64)
    assert diagnosis.not_finite(got, torch.isnan(got), inputs=x) == (
        "not finite (nan) at x = 800 (element [0, 1]); 1 such element(s)")


def test_compare_diagnoses_failures_only_and_the_record_carries_it():
    expected = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], dtype=F64)
    keywords = {"check_id": "c", "module": "m", "kind": "autograd", "atol": 1e-12,
                "rtol": 1e-12, "what": "t"}
    assert compare(expected=expected, got=expected, **keywords).diagnosis == ""
    failed = compare(expected=expected, got=expected / 6, **keywords,
                     sizes=diagnosis.prediction_sizes((6, 3)))
    assert failed.diagnosis == "×1/6: divided by the batch size 6", failed
    assert compare(expected=expected, got=expected.T, **keywords).diagnosis.startswith(
        "transposed"), "a shape mismatch"
    record = failed.as_dict()
    assert record["diagnosis"] == failed.diagnosis
    assert _valid_check(record, "spec") is record, "the judge's record validation accepts it"


# --- planted bugs, judged in this process ------------------------------------------------


def _failures(bug, component):
    """``{id: diagnosis}`` of the failing checks of ``component`` of a planted handout bug,
    float64, quick, only that component's cases."""
    target = load_target(fixture_spec(f"handout_adapter.py:{bug}"))
    cases = [case for case in target_cases(target, quick=True, dtypes=(F64,))
             if case.component == component]
    return {result.id: result.diagnosis for result in run_cases(cases) if not result.passed}


def test_an_mse_gradient_without_its_1_over_n_is_diagnosed_as_times_n():
    found = _failures("MSEGradientWithoutMean", "mse_loss")
    assert found["autograd/mse_loss/6x3/grad_prediction"] == (
        "×18 = the number of elements (6 × 3): the 1/N is missing"), found
    assert found["finite_difference/mse_loss/6x3/input"] == (
        "×18 = the number of elements (6 × 3): the 1/N is missing"), found
    assert found["autograd/mse_loss/1x2/grad_prediction"].startswith(
        "×2.00: an extra factor 2"), found


def test_an_mse_gradient_without_its_1_over_n_shows_in_training_at_dl_dy():
    found = _failures("MSEGradientWithoutMean", "training")
    assert found == {"trajectory/sgd/report network (tanh)/loss_gradient":
                     "from step 1: ×20 = the number of elements (10 × 2): the 1/N is missing"}


def test_a_doubled_weight_gradient_is_an_extra_factor_2():
    found = _failures("DoubledWeightGradient", "linear")
    assert found and all(text.startswith("×2.00: an extra factor 2")
                         for text in found.values()), found


def test_a_zero_weight_gradient_is_zero():
    found = _failures("ZeroWeightGradient", "linear")
    assert found and all(text.startswith("zero: got is 0 everywhere")
                         for text in found.values()), found


def test_a_weight_gradient_in_the_transposed_layout_is_transposed():
    found = _failures("TransposedWeightGradient", "linear")
    assert found and all(text.startswith("transposed: shape [3, 4] where [4, 3] belongs")
                         or text.startswith("transposed: shape [25, 2] where [2, 25] belongs")
                         for text in found.values()), found


def test_an_sgd_of_the_wrong_sign_goes_up_the_gradient():
    found = _failures("AscendingSGD", "sgd")
    assert found and all(text == "from step 1: opposite sign: the step goes up the gradient"
                         for text in found.values()), found
    training = _failures("AscendingSGD", "training")
    assert training["trajectory/sgd/report network (tanh)/0.weight"] == (
        "from step 1: opposite sign: the step goes up the gradient"), training


def test_an_idle_sgd_makes_no_update_at_all():
    found = _failures("IdleSGD", "sgd")
    assert found and all(text == "from step 1: no update at all: the parameters after the "
                         "step equal those before" for text in found.values()), found


def test_a_relu_wrong_only_at_zero_is_right_everywhere_except_at_the_kink():
    found = _failures("ReluSlopeTwoAtZero", "relu")
    assert found == {"kink/ReLU()/x=0": "right on both sides of the kink (x = 0 ∓ 0.000977), "
                     "wrong only at the kink x = 0: slope 2, where the one-sided slopes are "
                     "0 and 1"}, found


def test_a_tanh_that_overflows_is_not_finite_at_the_extreme_input_named():
    found = _failures("OverflowingTanh", "tanh")
    assert found["autograd/Tanh() at extreme points/output"].startswith(
        "not finite (nan) at x = 800"), found


def test_a_wrong_derivative_has_no_recognisable_pattern_and_says_so():
    found = _failures("WrongTanhDerivative", "tanh")
    assert found and all(text.startswith("no recognisable pattern (")
                         for text in found.values()), found


# --- through the judge and executor, into results.json and the report -------------------


def test_the_diagnosis_reaches_results_json_and_the_html_beside_the_detail(tmp_path):
    from verification.conform import ConformOptions, run_conform

    run_conform(ConformOptions(targets=(fixture_spec("handout_adapter.py:IdleSGD"),),
                               out=tmp_path, jobs=1, quick=True, dtype="float64",
                               show_progress=False))
    checks = json.loads((tmp_path / "results.json").read_text())["checks"]
    failed = [check for check in checks if check["status"] == "fail"]
    assert failed and all(check["diagnosis"] for check in failed), failed
    assert all(check["diagnosis"] == "" for check in checks if check["status"] == "pass")
    page = (tmp_path / "index.html").read_text()
    assert "diagnosis: from step 1: no update at all" in page


# --- the slack of a named factor, pinned from both sides ---------------------------------


@pytest.mark.parametrize(("factor", "allowed", "named"), [
    (2.09, 0.1, True),  # 4.5 % off 2, a loose check (4r = 0.13): within MAX_SLACK = 5 %
    (2.12, 0.1, False),  # 6 % off: beyond it, though 4r would allow 13 %
    (2 * (1 + 5e-7), 1e-12, True),  # a tight check: within the 1e-6 floor
    (2 * (1 + 5e-6), 1e-12, False),  # 5e-6 off: beyond the floor
])
def test_a_factor_is_named_within_the_slack_and_not_beyond(factor, allowed, named):
    """s = min(MAX_SLACK, max(4r, 1e-6)) (module docstring): each bound ten times wider or
    narrower names, or fails to name, one of these factors."""
    expected = [1.0, 2.0, 3.0]
    found = _diagnose(expected, [factor * value for value in expected], allowed)
    assert ("an extra factor 2" in found) == named, (factor, allowed, found)
