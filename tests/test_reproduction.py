"""The many-seed reproduction at tiny scale: structure, determinism, selection, verdicts."""

import json

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from verification.many_seeds import reproduction
from verification.many_seeds.reproduction import (
    Config,
    Settings,
    judge,
    select_headline,
    typical_seed,
)

TINY = Settings(
    grid=(Config((0.0, 0.0), "relu", 0.01, 10), Config((0.5, 0.5), "tanh", 0.03, 25)),
    seeds=8, selection_seeds=6, reference_seeds=3, samples=100, epochs=3,
)
"""Two configurations, 8 test seeds, 100 points, 3 epochs: the whole pipeline in seconds."""

CONTRACT_KEYS = {"name", "headline", "center", "activation", "lr", "batch_size", "epochs",
                 "loss_reduction", "init", "train_error", "test_error", "reported", "verdict"}
SUMMARY_KEYS = {"median", "mean", "p2_5", "p97_5"}


@pytest.fixture(scope="module")
def tiny_run():
    """The tiny pipeline, with every progress call it made."""
    calls = []
    run = reproduction.run_reproduction(
        settings=TINY, progress=lambda done, total, label: calls.append((done, total, label)))
    return run, calls


def _without_timings(results):
    return {key: value for key, value in results.items() if key != "elapsed_s"}


def test_results_follow_the_contract(tiny_run):
    results = tiny_run[0].results
    json.dumps(results, allow_nan=False)
    assert results["seeds"] == TINY.seeds
    assert [config["name"] for config in results["configs"]] == [c.name for c in TINY.grid]
    for config in results["configs"]:
        missing = CONTRACT_KEYS - set(config)
        assert not missing, f"{config['name']} lacks contract keys {sorted(missing)}"
        for key in ("train_error", "test_error"):
            assert SUMMARY_KEYS <= set(config[key]), f"{config['name']} {key} lacks keys"
            assert 0 <= config[key]["p2_5"] <= config[key]["median"] <= config[key]["p97_5"] <= 1
        assert config["reported"] == {"train": 0.025, "test": 0.019}
        assert config["verdict"] in ("consistent", "inconsistent")
        assert config["epochs"] == TINY.epochs and config["loss_reduction"] == "sum"
    assert sum(config["headline"] for config in results["configs"]) == 1, "exactly one headline"


def test_figures_are_returned(tiny_run):
    figures = tiny_run[0].figures
    assert set(figures) == {"loss_curves", "error_distribution", "typical_classification",
                            "compatibility"}
    assert all(isinstance(figure, Figure) for figure in figures.values())


def test_same_seeds_give_identical_results(tiny_run):
    again = reproduction.run_reproduction(settings=TINY)
    assert _without_timings(again.results) == _without_timings(tiny_run[0].results), (
        "two runs with the same settings must give identical numbers")


def test_headline_is_chosen_before_any_test_run(tiny_run):
    results, calls = tiny_run[0].results, tiny_run[1]
    stages = [label.split()[0] for _, _, label in calls]
    last_selection = max(i for i, stage in enumerate(stages) if stage == "selection")
    first_test = stages.index("test")
    assert last_selection < first_test, "every selection epoch must precede every test epoch"
    chosen = results["selection"]["index"]
    assert results["headline"] == TINY.grid[chosen].name
    assert results["configs"][chosen]["headline"]


def test_progress_reaches_its_total(tiny_run):
    done, total, _ = tiny_run[1][-1]
    assert done == total, f"progress ended at {done} of {total} replica-epochs"


def test_reference_starts_from_the_same_weights_data_and_order(tiny_run):
    reference = tiny_run[0].results["reference"]
    assert reference["seeds"] == list(TINY.seed_range("reference"))
    # A different start, data set or batch order would move the loss by far more than this.
    assert reference["final_loss_max_rel"] < 1e-4, (
        f"torch twin's final loss differs from refnet's by {reference['final_loss_max_rel']:.3g}")


def test_typical_seed_reruns_alone(tiny_run):
    typical = tiny_run[0].results["typical_seed"]
    assert typical["test_error_rerun_alone"] == typical["test_error"], (
        f"seed {typical['seed']} alone must match its replica; rerun: {typical['command']}")


def test_selection_prefers_reliable_configurations():
    train_ok, train_bad = np.zeros(20), np.full(20, 0.3)
    selection = [(train_bad, np.full(20, 0.01)), (train_ok, np.full(20, 0.05))]
    chosen = select_headline(selection)
    assert chosen["index"] == 1, "an unreliable configuration must not win on validation"
    assert chosen["reliable"] == [False, True]


def test_selection_breaks_ties_by_mean_then_order():
    train = np.zeros(3)
    tied_medians = [(train, np.array([0.0, 0.1, 0.5])), (train, np.array([0.0, 0.1, 0.2]))]
    assert select_headline(tied_medians)["index"] == 1, "equal medians: lower mean wins"
    identical = [(train, np.array([0.1, 0.2, 0.3]))] * 2
    assert select_headline(identical)["index"] == 0, "identical: earlier in grid order wins"


def test_selection_without_reliable_configurations_uses_all():
    train = np.full(4, 0.4)
    selection = [(train, np.full(4, 0.3)), (train, np.full(4, 0.2))]
    assert select_headline(selection)["index"] == 1


def test_verdict_consistent_when_the_report_lies_inside():
    errors = np.linspace(0.0, 0.05, 1001)
    verdict = judge(errors, errors)
    assert verdict["verdict"] == "consistent"
    assert verdict["percentile"]["train"] == pytest.approx(0.5)


def test_verdict_inconsistent_when_one_figure_lies_outside():
    inside, above = np.linspace(0.0, 0.05, 1000), np.linspace(0.05, 0.1, 1000)
    verdict = judge(inside, above)
    # test: 0.019 lies below all 1000 draws, p = 2/1001; Holm doubles the smaller p-value.
    assert verdict["p_value"]["test"] == pytest.approx(2 / 1001)
    assert verdict["p_value_holm"]["test"] == pytest.approx(4 / 1001)
    assert verdict["verdict"] == "inconsistent"


def test_verdict_hand_worked_on_four_seeds():
    verdict = judge([0.01, 0.02, 0.03, 0.04], [0.01, 0.02, 0.03, 0.04])
    # train 0.025: 2 below, 2 above → p = min(1, 2·3/5); test 0.019: 1 below → p = 2·2/5.
    assert verdict["p_value"] == pytest.approx({"train": 1.0, "test": 0.8})
    assert verdict["percentile"] == pytest.approx({"train": 0.5, "test": 0.25})
    assert verdict["verdict"] == "consistent"


def test_typical_seed_is_the_lower_median():
    assert typical_seed([10, 11, 12, 13], [0.3, 0.1, 0.2, 0.2]) == (12, 2)


def test_default_grid_covers_every_point_at_1000_seeds():
    settings = reproduction.settings_for()
    assert settings.grid == reproduction.GRID and settings.seeds >= 1000
    assert {config.center for config in settings.grid} == {(0.0, 0.0), (0.5, 0.5)}
    assert {config.activation for config in settings.grid} == {"relu", "tanh"}
    assert len({config.name for config in settings.grid}) == len(settings.grid)
    assert reproduction.settings_for(quick=True).seeds >= 200


def test_reference_seeds_must_be_test_seeds():
    with pytest.raises(ValueError, match="reference_seeds"):
        Settings(seeds=5, reference_seeds=6)


CHUNKED = Settings(grid=(Config((0.0, 0.0), "tanh", 0.03, 10),), seeds=70, selection_seeds=1,
                   reference_seeds=1, samples=200, epochs=10, chunk_replicas=32)
"""70 seeds in chunks of 32 + 32 + 6; long enough for a sigmoid rounded by scalar code instead
of vector code to show in the losses (``test_unaligned_chunks_would_change_seeds``)."""


def _differing_seeds(run, other):
    """Positions of the seeds whose errors or epoch losses differ between two runs."""
    differ = [(getattr(run, name) != getattr(other, name)).reshape(-1, len(run.seeds)).any(axis=0)
              for name in ("train_errors", "held_out_errors", "epoch_losses")]
    return np.flatnonzero(np.logical_or.reduce(differ)).tolist()


def _run_in_parts(seeds, parts):
    config = CHUNKED.grid[0]
    return reproduction.concatenate([reproduction.run_seeds(config, part, CHUNKED)
                                     for part in parts])


def test_chunks_cut_the_seeds_in_order_on_the_cpu_only():
    seeds = list(CHUNKED.seed_range("test"))
    assert [len(chunk) for chunk in reproduction.chunks(seeds, CHUNKED)] == [32, 32, 6]
    assert sum(reproduction.chunks(seeds, CHUNKED), []) == seeds
    assert reproduction.chunks(seeds, CHUNKED, device="cuda") == [seeds]


def test_chunked_runs_equal_one_run_seed_for_seed():
    seeds = list(CHUNKED.seed_range("test"))
    whole = reproduction.run_seeds(CHUNKED.grid[0], seeds, CHUNKED)
    chunked = _run_in_parts(seeds, reproduction.chunks(seeds, CHUNKED))
    assert chunked.seeds == whole.seeds
    differing = _differing_seeds(chunked, whole)
    assert not differing, (f"seeds {[seeds[i] for i in differing]} train differently in "
                           "chunks than in one run of all seeds")


@pytest.mark.skipif(torch.backends.cpu.get_cpu_capability() not in ("AVX2", "AVX512"),
                    reason="the scalar tail this shows is that of torch's x86 vector kernels")
def test_unaligned_chunks_would_change_seeds():
    """The control: cut after 30 seeds (600 sigmoid outputs, not a multiple of 16), the last
    outputs of seeds 29 and 59 fall in a scalar tail and those two seeds train differently,
    which is why ``chunks`` cuts at multiples of ``CHUNK_ALIGNMENT``. Which other seeds may
    differ depends on the vector width (``_seeds_in_another_tail``)."""
    seeds = list(CHUNKED.seed_range("test"))
    parts = [seeds[:30], seeds[30:60], seeds[60:]]
    whole = reproduction.run_seeds(CHUNKED.grid[0], seeds, CHUNKED)
    unaligned = _run_in_parts(seeds, parts)
    differing = set(_differing_seeds(unaligned, whole))
    possible = _seeds_in_another_tail([len(part) for part in parts], outputs_per_seed=20)
    assert {29, 59} <= differing <= possible, (sorted(differing), sorted(possible))


def _seeds_in_another_tail(part_sizes, outputs_per_seed):
    """Positions of the seeds with a sigmoid output that is computed by scalar code in the whole
    run and by vector code in its part, or the other way round: torch's kernels compute the
    outputs past the last full block of two vector registers (16 float32 with AVX2, 32 with
    AVX-512) with scalar code. Cut after 30 and 60 of 70 seeds, 20 outputs each: {29, 59} with
    AVX2 (each part's tail, 600 mod 16 = 8 outputs); {28, 29, 58, 59, 68, 69} with AVX-512,
    whose tails of 600 mod 32 = 24 outputs reach into the seed before, and whose whole-run
    tail (1400 mod 32 = 24) is longer than the last part's (200 mod 32 = 8)."""
    block = 32 if torch.backends.cpu.get_cpu_capability() == "AVX512" else 16

    def in_tail(count):
        return [position >= count - count % block for position in range(count)]

    whole = in_tail(sum(part_sizes) * outputs_per_seed)
    pieces = sum((in_tail(size * outputs_per_seed) for size in part_sizes), [])
    return {position // outputs_per_seed
            for position, (a, b) in enumerate(zip(whole, pieces, strict=True)) if a != b}


@pytest.mark.parametrize("size", [0, 48, 100])
def test_chunk_sizes_must_be_multiples_of_the_alignment(size):
    with pytest.raises(ValueError, match="chunk_replicas"):
        Settings(chunk_replicas=size)
