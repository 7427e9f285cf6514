"""The claims ledger at tiny scale: structure, determinism, and each verdict rule by hand."""

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from torch import nn

import refnet
from refnet._random import permutations
from verification.many_seeds import claims
from verification.many_seeds.claims import (
    CLAIMS,
    RUNS,
    VERDICTS,
    ClaimsConfig,
    border_summary,
    combine_verdicts,
    distance_to_circle,
    interval_verdict,
    paired_difference,
    reproduction_claim,
    sign_test,
    stagnation,
)

TINY = ClaimsConfig(seeds=6, paired_seeds=3, epochs=15, samples=100, small_samples=20,
                    deep_hidden_layers=4)
"""6 seeds, 100 points, 15 epochs (the stagnation rule's minimum): every claim in seconds."""

RECORD_KEYS = {"id", "number", "section", "quote", "method", "configuration", "seeds",
               "threshold", "values", "measured", "sentence", "verdict", "label", "borderline",
               "preliminary"}
REPORT = Path(__file__).resolve().parents[2] / "shared" / "seed" / "mini-project-2-report.md"


def _summary(median):
    return {"median": median, "mean": median, "p2_5": median / 2, "p97_5": 2 * median}


def _reproduction(verdict="consistent"):
    """A contract-shaped ``reproduction`` object with one headline configuration."""
    config = {"center": [0.0, 0.0], "activation": "relu", "lr": 0.01, "batch_size": 10,
              "epochs": 50, "reported": {"train": 0.025, "test": 0.019}}
    return {"seeds": 3, "seed_ranges": {"test": [1_000_000, 1_000_003]},
            "configs": [{**config, "name": "headline", "headline": True, "verdict": verdict,
                         "train_error": _summary(0.01), "test_error": _summary(0.012)},
                        {**config, "name": "other", "headline": False,
                         "verdict": "inconsistent", "train_error": _summary(0.2),
                         "test_error": _summary(0.2)}]}


@pytest.fixture(scope="module")
def tiny_run():
    """The tiny ledger with a reproduction object, and every progress call it made."""
    calls = []
    ledger = claims.run_claims(config=TINY, reproduction=_reproduction(),
                               progress=lambda done, total, label: calls.append((done, total)))
    return ledger, calls


def test_every_claim_is_a_complete_json_record(tiny_run):
    (records, _), _ = tiny_run
    assert [record["id"] for record in records] == list(CLAIMS), "claims out of report order"
    json.dumps(records, allow_nan=False)
    for record in records:
        assert RECORD_KEYS <= set(record), f"{record['id']} lacks {RECORD_KEYS - set(record)}"
        assert record["verdict"] in VERDICTS, f"{record['id']}: verdict {record['verdict']!r}"
        assert record["label"] in (record["verdict"], "borderline"), record["id"]
        assert record["sentence"].startswith(record["label"].capitalize()), record["id"]
        assert record["preliminary"] is False, f"{record['id']}: a full-size config"
        assert all(isinstance(seed, int) for seed in record["seeds"]), record["id"]
        assert isinstance(record["values"], dict) and record["values"], record["id"]
    assert records[0]["verdict"] == "supported", "a consistent reproduction supports claim 1"
    assert records[0]["seeds"] == [1_000_000, 1_000_001, 1_000_002]
    assert records[-1]["verdict"] == "inconclusive", "claim 8 is not testable in refnet"
    assert records[-1]["method"].startswith("not tested: refnet implements no cross-entropy")


def test_measured_claims_record_their_seeds_and_configuration(tiny_run):
    (records, _), _ = tiny_run
    by_id = {record["id"]: record for record in records}
    assert by_id["loss_stagnates"]["seeds"] == TINY.seed_list(TINY.seeds)
    assert by_id["comparable_to_pytorch"]["seeds"] == TINY.seed_list(TINY.paired_seeds)
    for record in records[1:]:
        configuration = record["configuration"]
        assert configuration["lr"] == 0.01 and configuration["batch_size"] == 10, record["id"]
        assert configuration["epochs"] == TINY.epochs, record["id"]


def test_figures_are_small_figures_keyed_by_claim(tiny_run):
    (_, figures), _ = tiny_run
    assert set(figures) == set(CLAIMS), "every claim has a figure when given a reproduction"
    for claim_id, figure in figures.items():
        assert isinstance(figure, Figure), claim_id
        assert tuple(figure.get_size_inches()) == (4, 3), claim_id


def test_progress_counts_every_training_run(tiny_run):
    _, calls = tiny_run
    assert calls[-1] == (len(RUNS), len(RUNS)), f"last progress call {calls[-1]}"
    assert [done for done, _ in calls] == sorted(done for done, _ in calls), "done went back"


def test_the_same_call_gives_identical_claims(tiny_run):
    (records, _), _ = tiny_run
    again, _ = claims.run_claims(config=TINY, reproduction=_reproduction())
    assert again == records


def test_without_a_reproduction_claim_1_is_not_measured():
    record = claims.reproduction.missing_reproduction_claim(TINY, "cpu")
    assert record["verdict"] == "inconclusive" and record["seeds"] == []


@pytest.mark.skipif(not REPORT.exists(), reason="the report is not next to the repository")
def test_quotes_are_the_reports_words():
    # The report's markdown writes maths as $…$ with spaces around it ("being  $[0,1]$ .").
    text = re.sub(r"\s+", " ", REPORT.read_text().replace("$", ""))
    text = re.sub(r" ([.,])", r"\1", text)
    for claim_id, (_, _, quote) in CLAIMS.items():
        assert quote in text, f"{claim_id}: quote not found verbatim in the report"


def test_stagnation_on_a_curve_that_levels_off():
    curve = [100.0, 50.0, 20.0] + [10.0] * 17
    summary = stagnation(curve)
    assert summary["stagnates"], summary
    assert summary["relative_change"] == 0 and summary["fall"] == pytest.approx(0.9)


def test_stagnation_rejects_a_curve_still_falling_and_one_that_never_fell():
    falling = np.linspace(100, 5, 20)  # 5-epoch means 65 → 15: a 77% change in 10 epochs
    assert not stagnation(falling)["stagnates"]
    assert stagnation(falling)["relative_change"] == pytest.approx(1 - 15 / 65)
    flat = [10.0] * 20  # no fall from epoch 1: flat from the start is not "diminished until"
    assert not stagnation(flat)["stagnates"]
    with pytest.raises(ValueError, match="at least 15 epochs"):
        stagnation([1.0] * 14)


def test_border_summary_on_hand_made_points():
    radius = refnet.DISK_RADIUS
    points = torch.tensor([[[radius + 0.01, 0.0], [0.0, radius - 0.02], [0.9, 0.9],
                            [0.05, 0.05]]], dtype=torch.float64)
    distances = distance_to_circle(points, (0.0, 0.0), radius)
    torch.testing.assert_close(distances[0, :2], torch.tensor([0.01, 0.02], dtype=torch.float64))
    wrong = torch.tensor([[True, True, False, False]])
    summary = border_summary(distances, wrong)
    assert summary["misclassified"] == 2 and summary["within_band_misclassified"] == 1.0
    assert summary["within_band_all"] == 0.5 and summary["seeds_median_within_band"] == 1.0
    assert summary["median_distance_misclassified"] == pytest.approx(0.01)  # lower median
    far = border_summary(distances, torch.tensor([[False, False, True, True]]))
    assert far["within_band_misclassified"] == 0.0, "points far from the circle fail the rule"


def test_border_summary_without_errors_has_no_misclassified_statistics():
    summary = border_summary(torch.rand(2, 5), torch.zeros(2, 5, dtype=torch.bool))
    assert summary["misclassified"] == 0 and summary["within_band_misclassified"] is None
    json.dumps(summary, allow_nan=False)


@pytest.mark.parametrize(("low", "high", "bounds", "expected"), [
    (-0.001, 0.002, (-0.005, 0.005), "supported"),
    (0.0, 0.0, (-0.005, 0.005), "supported"),
    (0.004, 0.006, (-0.005, 0.005), "inconclusive"),
    (0.006, 0.010, (-0.005, 0.005), "not supported"),
    (0.003, 0.0049, (-math.inf, 0.005), "supported"),
    (0.005, 0.008, (-math.inf, 0.005), "not supported"),
    (0.001, 0.003, (0.0, math.inf), "supported"),
    (-0.001, 0.003, (0.0, math.inf), "inconclusive"),
    (0.0, 0.0, (0.0, math.inf), "not supported"),
])
def test_interval_verdict(low, high, bounds, expected):
    above, below = bounds
    assert interval_verdict(low, high, above=above, below=below) == expected


def test_combine_verdicts():
    assert combine_verdicts(["supported", "supported"]) == "supported"
    assert combine_verdicts(["supported", "inconclusive"]) == "inconclusive"
    assert combine_verdicts(["inconclusive", "not supported"]) == "not supported"
    assert combine_verdicts([]) == "inconclusive"


def test_sign_test_by_hand():
    result = sign_test([0.0] * 6, [1.0] * 6)
    assert (result["wins"], result["losses"], result["ties"]) == (6, 0, 0)
    assert result["p_value"] == pytest.approx(0.5 ** 6)
    ties = sign_test([1.0, 2.0], [1.0, 2.0])
    assert ties["ties"] == 2 and ties["p_value"] == 1.0


def test_paired_difference_by_hand():
    same = paired_difference([0.01, 0.02, 0.03], [0.01, 0.02, 0.03])
    assert same["identical"] == 1.0 and (same["ci_low"], same["ci_high"]) == (0.0, 0.0)
    shifted = paired_difference([1.0, 1.5, 3.0], [0.5, 1.0, 2.0])  # differences 0.5, 0.5, 1
    assert shifted["mean"] == pytest.approx(2 / 3) and shifted["max_abs"] == 1.0
    assert shifted["median"] == 0.5 and shifted["identical"] == 0.0
    assert 0.5 <= shifted["ci_low"] <= shifted["mean"] <= shifted["ci_high"] <= 1.0


def test_reproduction_claim_maps_the_headline_verdict():
    assert reproduction_claim(_reproduction("consistent"))["verdict"] == "supported"
    refuted = reproduction_claim(_reproduction("inconsistent"))
    assert refuted["verdict"] == "not supported"
    assert refuted["values"]["test_median"] == 0.012 and refuted["values"]["seed_count"] == 3
    no_headline = _reproduction()
    no_headline["configs"][0]["headline"] = False
    with pytest.raises(ValueError, match="one headline"):
        reproduction_claim(no_headline)


def test_config_rejects_impossible_settings():
    with pytest.raises(ValueError, match="paired_seeds"):
        ClaimsConfig(seeds=4, paired_seeds=5)
    with pytest.raises(ValueError, match="at least 15 epochs"):
        ClaimsConfig(epochs=10)


def test_dropout_follows_every_hidden_activation_and_keeps_the_layers():
    model = refnet.report_network("relu", generator=torch.Generator().manual_seed(0))
    dropped = claims.runs._with_dropout(model, 0.2)
    names = [type(module).__name__ for module in dropped.modules]
    assert names == ["Linear", "ReLU", "Dropout"] * 3 + ["Linear", "Sigmoid"]
    linears = [module for module in dropped.modules if isinstance(module, refnet.Linear)]
    assert all(a is b for a, b in zip(linears, model.modules[::2], strict=True))


def test_standardiser_uses_the_training_statistics():
    x = torch.rand(3, 50, 2, dtype=torch.float64) * torch.tensor([1.0, 5.0]) + 2
    scaled = claims.runs._standardiser(x)(x)
    torch.testing.assert_close(scaled.mean(dim=1), torch.zeros(3, 2, dtype=torch.float64))
    torch.testing.assert_close(scaled.std(dim=1), torch.ones(3, 2, dtype=torch.float64))


def _lone_torch_run(seed, samples, epochs):
    """Seed ``seed`` trained alone with plain torch.nn layers, in the single-run draw order."""
    generator = torch.Generator().manual_seed(seed)
    model = refnet.report_network("relu", generator=generator, dtype=torch.float64)
    x, labels = refnet.disk_dataset(samples, generator=generator, dtype=torch.float64)
    refnet.disk_dataset(samples, generator=generator, dtype=torch.float64)  # the test set
    layers = []
    for module in model.modules:
        if isinstance(module, refnet.Linear):
            layer = nn.Linear(module.in_features, module.out_features, dtype=torch.float64)
            with torch.no_grad():
                layer.weight.copy_(module.weight)
                layer.bias.copy_(module.bias)
            layers.append(layer)
        else:
            layers.append(nn.ReLU() if isinstance(module, refnet.ReLU) else nn.Sigmoid())
    network = nn.Sequential(*layers)
    optimizer = torch.optim.SGD(network.parameters(), lr=0.01)
    targets = refnet.one_hot(labels, dtype=torch.float64)
    epoch_losses = []
    for _ in range(epochs):
        order = permutations(samples, generator=generator, replicas=None, device="cpu")
        total = 0.0
        for x_batch, target_batch in zip(x[order].split(10), targets[order].split(10),
                                          strict=True):
            loss = nn.functional.mse_loss(network(x_batch), target_batch, reduction="sum")
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss.detach())
        epoch_losses.append(total)
    return np.asarray(epoch_losses)


def test_stacked_torch_seed_trains_like_a_lone_torch_nn_network():
    config = ClaimsConfig(seeds=2, paired_seeds=2, epochs=15, samples=40)
    seeds = config.seed_list(2)
    draws = claims.runs._draw(seeds, config, "cpu", dtype=torch.float64)
    stacked = claims.runs._train_torch(draws, seeds, epochs=3, optimizer="sgd")
    for replica, seed in enumerate(seeds):
        lone = _lone_torch_run(seed, config.samples, epochs=3)
        np.testing.assert_allclose(stacked.epoch_losses[:, replica], lone, rtol=1e-10,
                                   err_msg=f"seed {seed}: stacked torch run differs from lone")
