"""The compatibility ranking: a kernel density of (train, test) pairs at the report's pair."""

import numpy as np
import pytest
from matplotlib.figure import Figure

from verification.many_seeds import compatibility

REPORTED = {"train": 0.025, "test": 0.019}


def _pairs(center, spread, seeds=400, seed=0):
    """Error pairs (fractions) around ``center`` on the 1/1000 lattice."""
    generator = np.random.default_rng(seed)
    values = generator.normal(center, spread, size=(seeds, 2)).clip(0, 1)
    return np.round(values * 1000) / 1000


def test_density_integrates_to_one():
    pairs = 100 * _pairs((0.02, 0.02), 0.005)
    axis = np.linspace(-3, 7, 201)
    grid = np.array([[x, y] for x in axis for y in axis])
    mass = compatibility.density(pairs, grid).sum() * (axis[1] - axis[0]) ** 2
    assert mass == pytest.approx(1.0, abs=1e-3)


def test_a_configuration_centred_on_the_report_ranks_first():
    near = _pairs((0.025, 0.019), 0.004)
    far = _pairs((0.009, 0.011), 0.004, seed=1)
    ranked = compatibility.rank(["far", "near"], [tuple(far.T), tuple(near.T)], REPORTED)
    assert [row["name"] for row in ranked["ranking"]] == ["near", "far"]
    best, second = ranked["ranking"]
    assert best["ci_low"] <= best["density"] <= best["ci_high"]
    assert best["ci_low"] > second["ci_high"], "clearly separated configurations"
    assert best["typicality"] > 0.8 and second["typicality"] < 0.05
    assert ranked["sentence"].startswith("Most compatible with the report's pair: near")
    assert "not separable" not in ranked["sentence"], "the intervals do not overlap"
    assert ". The other is far (" in ranked["sentence"], ranked["sentence"]
    assert "does not show what the report used" in ranked["sentence"]
    tied = compatibility.rank(["a", "b"], [tuple(near.T), tuple(near.T)], REPORTED)
    assert "1 more is not separable from it (their intervals overlap its own): b" in \
        tied["sentence"]
    assert isinstance(compatibility.ranking_figure(ranked["ranking"]), Figure)


def test_errors_that_never_vary_still_have_a_density():
    constant = np.full(50, 0.125)
    row = compatibility.compatibility(constant, constant, REPORTED)
    assert np.isfinite(row["density"]) and row["density"] >= 0
    assert row["typicality"] == 0.0


def test_the_same_call_gives_the_same_ranking():
    pairs = _pairs((0.02, 0.02), 0.005)
    first = compatibility.compatibility(pairs[:, 0], pairs[:, 1], REPORTED)
    assert compatibility.compatibility(pairs[:, 0], pairs[:, 1], REPORTED) == first
