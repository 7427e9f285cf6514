"""Borderline and preliminary labels: verdicts that read alike on every machine."""

import dataclasses

import numpy as np
import pytest
import torch
from test_claims import TINY, _reproduction
from test_reproduction import TINY as TINY_SETTINGS

from verification.many_seeds import claims, reproduction
from verification.many_seeds.reproduction import judge
from verification.many_seeds.verdicts import (
    BORDERLINE_SE,
    interval_standard_error,
    label,
    near_threshold,
    p_value_standard_error,
)


def test_labels():
    assert label("supported") == "supported"
    assert label("supported", borderline=True) == "borderline"
    assert label("not supported", preliminary=True) == "preliminary: not supported"
    assert label("inconsistent", borderline=True, preliminary=True) == "preliminary: borderline"


def test_near_threshold_is_a_zone_of_three_standard_errors():
    assert near_threshold(0.5 + 2.9 * 0.01, 0.5, 0.01)["distance"] == pytest.approx(0.029)
    assert near_threshold(0.5 - 2.9 * 0.01, 0.5, 0.01) is not None
    assert near_threshold(0.5 + 3.1 * 0.01, 0.5, 0.01) is None
    assert near_threshold(0.3, float("inf"), 0.01) is None, "an open side is never near"
    assert BORDERLINE_SE == 3.0
    assert interval_standard_error(-1.959963984540054, 1.959963984540054) == pytest.approx(1.0)
    assert p_value_standard_error(0.5, 100) == pytest.approx(2 * (0.25 * 0.75 / 100) ** 0.5)


def _run(test_errors):
    seeds = list(range(len(test_errors)))
    return claims.runs._Run(seeds, np.ones((3, len(seeds))), np.zeros(len(seeds)),
                       np.asarray(test_errors, dtype=np.float64),
                       torch.zeros(len(seeds), 1, 2), torch.zeros(len(seeds), 1, dtype=bool))


def _no_normalisation(differences):
    """Claim 7 on 40 seeds whose raw − standardised test errors are ``differences``."""
    standardised = np.full(40, 0.02)
    runs = {"baseline": _run(standardised + differences), "standardised": _run(standardised)}
    record, _ = claims.normalisation.claim_no_normalisation(runs, TINY, "cpu")
    return record


def test_an_interval_ending_at_the_margin_is_borderline():
    # Differences of 0.2 and 0.6 points: mean +0.4 pp, 95% CI about +0.34 to +0.46 pp, whose
    # upper end lies 0.04 pp below the 0.5 pp margin, within 3 SE (about 0.09 pp).
    record = _no_normalisation(np.repeat([0.002, 0.006], 20))
    assert record["verdict"] == "supported", "the rule itself: the interval is below the margin"
    assert record["label"] == "borderline", record["sentence"]
    assert record["borderline"]["threshold"] == claims.NON_INFERIORITY_MARGIN
    assert record["borderline"]["distance"] < record["borderline"]["zone"]
    assert "Borderline: supported on this run, but the raw − standardised interval's upper " \
           "end lies" in record["sentence"], record["sentence"]
    assert record["sentence"].startswith("Borderline: ")


def test_an_interval_clear_of_the_margin_is_not_borderline():
    record = _no_normalisation(np.repeat([-0.001, 0.001], 20))
    assert (record["verdict"], record["label"], record["borderline"]) == \
           ("supported", "supported", None)


def _holm_p_near_alpha():
    """Train errors around the report's 2.5 %; 2 of 200 test errors above its 1.9 %."""
    train = np.repeat([0.02, 0.03], 100)
    test = np.full(200, 0.010)
    test[:2] = 0.030
    return train, test


def test_a_configuration_whose_holm_p_sits_on_alpha_is_borderline():
    train, test = _holm_p_near_alpha()
    judged = judge(train, test)
    assert judged["p_value_holm"]["test"] == pytest.approx(0.0597, abs=1e-3)
    assert judged["verdict"] == "consistent"
    assert judged["borderline"]["error"] == "test"
    run = reproduction.SeedRun(list(range(200)), train, test, np.ones((1, 200)))
    selection = {"index": 0, "reliable_fraction": [1.0], "reliable": [True],
                 "validation_median": [0.01], "validation_mean": [0.01]}
    record = reproduction._config_record(TINY_SETTINGS.grid[0], run, selection, 0,
                                         TINY_SETTINGS)
    assert (record["verdict"], record["label"]) == ("consistent", "borderline")
    claim = claims.reproduction_claim({"seeds": 200, "configs": [record]})
    assert claim["label"] == "borderline" and claim["verdict"] == "supported"
    assert "Holm-adjusted p-value of the test error" in claim["sentence"]


def test_a_configuration_far_from_alpha_is_not_borderline():
    # Every test error below the report's: the rank p-value sits at its floor 2/(S + 1). At
    # 1000 seeds a redraw moving a few seeds across cannot lift it near α; at 200 it can (2
    # seeds across give p_holm 0.06), so there the same arrangement is borderline.
    train = np.repeat([0.02, 0.03], 500)
    judged = judge(train, np.full(1000, 0.010))
    assert judged["verdict"] == "inconsistent" and judged["borderline"] is None
    assert judge(train[::5], np.full(200, 0.010))["borderline"] is not None


@pytest.fixture(scope="module")
def tiny_runs():
    return claims.train_runs(TINY)


def test_a_quick_claims_run_is_preliminary_everywhere(tiny_runs):
    assert claims.QUICK_CONFIG.preliminary and not claims.DEFAULT_CONFIG.preliminary
    quick = dataclasses.replace(TINY, preliminary=True)
    reproduction_results = _reproduction()
    reproduction_results["configs"][0]["preliminary"] = True
    records, _ = claims.ledger(tiny_runs, quick, reproduction=reproduction_results)
    for record in records:
        assert record["preliminary"], record["id"]
        assert record["label"].startswith("preliminary: "), record["label"]
        assert record["label"] != f"preliminary: {record['verdict']}" or \
            record["borderline"] is None
        assert "Preliminary: a reduced run" in record["sentence"], record["sentence"]
        assert not record["sentence"].startswith(record["verdict"].capitalize() + ":"), \
            "a quick verdict is never printed plain"


def test_a_quick_reproduction_is_preliminary():
    assert reproduction.settings_for(quick=True).preliminary
    assert not reproduction.settings_for().preliminary
    settings = dataclasses.replace(TINY_SETTINGS, preliminary=True)
    results = reproduction.run_reproduction(settings=settings).results
    for config in results["configs"]:
        assert config["preliminary"] and config["label"].startswith("preliminary: "), config
