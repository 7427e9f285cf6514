"""A machine's worth of arithmetic change: threads change nothing, float64 changes seeds but
not the printed verdict labels."""

import dataclasses

import numpy as np
import pytest
from test_claims import TINY
from test_reproduction import TINY as TINY_SETTINGS

from verification.many_seeds import claims, perturbation, reproduction


@pytest.fixture(scope="module")
def measured():
    return perturbation.measure(TINY)


def test_two_threads_change_no_seed(measured):
    assert measured["two threads"]["changed"] == 0.0
    assert measured["two threads"]["mean_shift_pp"] == 0.0


def test_float64_is_a_real_perturbation(measured):
    assert measured["float64"]["changed"] > 0, "float64 trained exactly like float32"


def test_compare_by_hand():
    result = perturbation.compare([0.01, 0.02, 0.03, 0.04], [0.01, 0.02, 0.05, 0.04])
    assert result["changed"] == 0.25 and result["mean_abs_change_pp"] == pytest.approx(2.0)
    assert result["mean_shift_pp"] == pytest.approx(0.5)
    assert result["shift_in_standard_errors"] == pytest.approx(0.005 / (np.std(
        [0.01, 0.02, 0.03, 0.04], ddof=1) / 2))


def _labels(dtype):
    config = dataclasses.replace(TINY, dtype=dtype)
    settings = dataclasses.replace(TINY_SETTINGS, dtype=dtype)
    run = reproduction.run_reproduction(settings=settings).results
    records, _ = claims.ledger(claims.train_runs(config), config, reproduction=run)
    return ([config["label"] for config in run["configs"]],
            [record["label"] for record in records], run, records)


def test_float64_instead_of_float32_prints_the_same_verdict_labels():
    """The same seeds in float64: most final errors change, the printed labels do not."""
    configs32, claims32, run32, records32 = _labels("float32")
    configs64, claims64, run64, records64 = _labels("float64")
    assert run32["configs"][0]["test_error"] != run64["configs"][0]["test_error"], \
        "the perturbation changed nothing, so the test would prove nothing"
    assert run64["settings"]["dtype"] == "float64"
    assert records64[1]["configuration"]["dtype"] == "float64"
    assert configs32 == configs64, (configs32, configs64)
    assert claims32 == claims64, list(zip(claims32, claims64, strict=True))
