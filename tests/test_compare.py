"""The shared comparison rule |got - expected| <= atol + rtol·|expected| and its messages."""

import math

import torch

from verification.checks.compare import compare, comparison_power


def _compare(expected, got, **kwargs):
    return compare(check_id="id", module="Linear(2, 3)", kind="autograd",
                   expected=torch.tensor(expected, dtype=torch.float64),
                   got=torch.tensor(got, dtype=torch.float64),
                   atol=kwargs.pop("atol", 1e-6), rtol=kwargs.pop("rtol", 1e-3),
                   what="dL/d weight", **kwargs)


def test_passes_within_tolerance_and_reports_measured_error():
    result = _compare([[1.0, 2.0]], [[1.0005, 2.0]])
    assert result.passed, result.detail
    assert abs(result.max_abs_error - 5e-4) < 1e-12 and abs(result.max_rel_error - 5e-4) < 1e-12
    assert abs(result.error_ratio - 5e-4 / (1e-6 + 1e-3)) < 1e-9


def test_failure_names_worst_element_expected_got_and_tolerance():
    result = _compare([[1.0, 2.0], [3.0, 0.0]], [[1.0, 2.0], [3.1, 0.0]])
    assert not result.passed
    for fragment in ("FAILED", "Linear(2, 3)", "dL/d weight", "[1, 0]", "expected 3", "got 3.1",
                     "atol=1e-06", "rtol=0.001"):
        assert fragment in result.detail, f"{fragment!r} missing from: {result.detail}"


def test_nan_fails_and_excluded_elements_are_counted():
    assert not _compare([1.0], [float("nan")]).passed, "NaN must never pass"
    result = _compare([1.0, 5.0], [1.0, 9.0], excluded=torch.tensor([False, True]))
    assert result.passed and result.excluded == 1, result.detail


def test_shape_mismatch_fails():
    result = _compare([1.0, 2.0], [[1.0, 2.0]])
    assert not result.passed and "[2]" in result.detail and "[1, 2]" in result.detail


def test_json_form_uses_contract_status():
    record = _compare([1.0], [1.0]).as_dict()
    assert record["status"] == "pass" and "passed" not in record
    assert {"id", "module", "kind", "max_abs_error", "max_rel_error", "tolerance"} <= set(record)


def test_zero_tolerance_demands_exact_equality():
    assert _compare([0.0, 1.0], [0.0, 1.0], atol=0.0, rtol=0.0).passed
    assert not _compare([0.0, 1.0], [0.0, 1.0 + 2**-52], atol=0.0, rtol=0.0).passed


def test_tolerance_relative_error_and_scale_read_negative_elements_by_their_size():
    """The reported tolerance atol + rtol·|expected|, the relative error and the detection
    figures of a negative worst element are those of its size."""
    result = _compare([-2.0, 1.0], [-2.1, 1.0], atol=1e-6, rtol=1e-3)
    assert result.tolerance == 1e-6 + 1e-3 * 2.0, result.detail
    assert abs(result.max_rel_error - 0.05) < 1e-12, result.max_rel_error
    assert result.scale == 2.0 and result.detectable == (1e-6 + 1e-3 * 2.0) / 2.0


def test_an_exact_comparison_records_the_largest_size_as_its_scale():
    result = _compare([-3.0, 1.0, 2.0], [-3.0, 1.0, 2.0], atol=0.0, rtol=0.0)
    assert result.passed and result.scale == 3.0 and result.detectable == 0.0


def test_detection_power_takes_the_largest_element_wise_tolerance():
    atol = torch.tensor([1e-6, 1e-4], dtype=torch.float64)
    result = _compare([1.0, 2.0], [1.0, 2.0], atol=atol, rtol=0.0)
    assert result.scale == 2.0 and result.detectable == 1e-4 / 2.0


def test_an_all_zero_reference_detects_nothing_under_a_tolerance_and_everything_exactly():
    assert comparison_power(torch.zeros(2), torch.full((2,), 1e-6))["detectable"] == math.inf
    assert comparison_power(torch.zeros(2), torch.zeros(2))["detectable"] == 0.0
