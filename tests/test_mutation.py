"""The mutation self-test (verification/mutation.py): every planted bug is caught, none leaks."""

import hashlib
import json
from pathlib import Path

import pytest

import refnet
from verification.checks.result import CheckResult
from verification.suite.mutation import (
    CONTROLS,
    MUTANTS,
    UnmutatedSuiteFails,
    cases_for,
    detection_power,
    first_failure,
    run_mutation,
)
from verification.suite.registry import Case, cases, run_cases

SUITE = cases()
SOURCES = sorted((Path(refnet.__file__).parent).glob("*.py"))


def _source_digest():
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in SOURCES}


def _failing_case():
    failed = CheckResult("property/planted", "planted", "property", False, 1.0, 1.0, 0.0, 2.0,
                         "planted failure")
    return Case("always fails", (refnet.Linear,), ("property",), lambda: [failed])


def test_unmutated_suite_passes():
    failures = [result.detail for result in run_cases(SUITE) if not result.passed]
    assert not failures, "the unmutated suite fails:\n" + "\n".join(failures)


def test_mutant_ids_are_unique():
    ids = [mutant.id for mutant in (*MUTANTS, *CONTROLS)]
    assert len(ids) == len(set(ids)), f"duplicate mutant ids in {ids}"
    assert len(MUTANTS) >= 15, f"only {len(MUTANTS)} mutants; the catalogue needs at least 15"


@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda mutant: mutant.id)
def test_mutant_is_killed(mutant):
    selected = cases_for(mutant, SUITE)
    assert selected, f"{mutant.id}: no case exercises {mutant.classes}"
    with mutant.applied():
        failure = first_failure(selected)
    assert failure is not None, (f"{mutant.id} ({mutant.description}) survived the "
                                 f"{len(selected)} cases that exercise {mutant.target}")


@pytest.mark.parametrize("control", CONTROLS, ids=lambda control: control.id)
def test_unedited_skeleton_survives(control):
    with control.applied():
        failure = first_failure(cases_for(control, SUITE))
    assert failure is None, (f"{control.id}: the skeleton without a planted bug already fails, "
                             f"so kills through it prove nothing: {failure and failure.detail}")


def test_source_tree_is_untouched():
    before = _source_digest()
    for mutant in MUTANTS:
        with mutant.applied():
            run_cases(cases_for(mutant, SUITE)[:1])
    assert _source_digest() == before, "applying mutants changed a file under refnet/"


@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda mutant: mutant.id)
def test_patch_is_undone_even_when_the_body_raises(mutant):
    original = getattr(mutant.owner, mutant.attribute)
    with pytest.raises(ZeroDivisionError), mutant.applied():
        assert getattr(mutant.owner, mutant.attribute) is not original, (
            f"{mutant.id}: {mutant.target} was not replaced inside the context")
        _ = 1 / 0
    assert getattr(mutant.owner, mutant.attribute) is original, (
        f"{mutant.id}: {mutant.target} not restored after an exception")


def test_run_mutation_reports_kills_survivors_and_progress():
    linear_cases = [case for case in SUITE if case.name.startswith("Linear")]
    chosen = [mutant for mutant in MUTANTS if mutant.id in ("linear-input-sign", "sgd-ascent")]
    seen = []
    report = run_mutation(linear_cases, seen.append, mutants=chosen)
    assert seen == ["linear-input-sign", "sgd-ascent"], f"progress saw {seen}"
    assert (report["total"], report["killed"]) == (2, 1), f"total/killed {report}"
    assert report["survived"] == ["sgd-ascent"], (
        f"SGD has no case among the Linear ones, so it must survive: {report['survived']}")
    record = report["mutants"][0]
    assert record["target"] == "Linear.backward" and record["killed"], f"record {record}"
    assert {"finite_difference", "autograd"} <= set(record["caught_by"]), record["caught_by"]
    assert json.loads(json.dumps(report)) == report, "the report is not JSON-serialisable"


def test_run_mutation_refuses_a_failing_suite():
    with pytest.raises(UnmutatedSuiteFails, match="fails without any mutant.*planted failure"):
        run_mutation([_failing_case()], mutants=MUTANTS[:1])


def test_detection_power_orders_the_kinds():
    power = {entry["kind"]: entry["smallest_detected"] for entry in detection_power()}
    assert set(power) == {"finite_difference", "autograd", "trajectory"}, f"kinds {power}"
    assert all(value is not None and value <= 1e-4 for value in power.values()), (
        f"every kind must flag a 1e-4 relative gradient error: {power}")
    assert power["autograd"] < power["finite_difference"], (
        f"the autograd twin must see finer errors than central differences: {power}")
