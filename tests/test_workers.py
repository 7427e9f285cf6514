"""Runs spread over worker processes give the numbers of the same runs in one process."""

import pytest
import torch
from test_claims import TINY as TINY_CLAIMS
from test_reproduction import TINY as TINY_REPRODUCTION

from verification.many_seeds import claims, reproduction
from verification.many_seeds.workers import Workers, default_count


def _without_timings(results):
    return {key: value for key, value in results.items() if key != "elapsed_s"}


@pytest.fixture(scope="module")
def pool():
    with Workers(2) as workers:
        yield workers


def test_reproduction_in_two_processes_equals_one_process_seed_for_seed(pool):
    alone = reproduction.run_reproduction(settings=TINY_REPRODUCTION).results
    spread = reproduction.run_reproduction(settings=TINY_REPRODUCTION, workers=pool).results
    assert _without_timings(spread) == _without_timings(alone)


def test_claims_runs_in_two_processes_equal_one_process_seed_for_seed(pool):
    alone = claims.train_runs(TINY_CLAIMS)
    spread = claims.train_runs(TINY_CLAIMS, workers=pool)
    assert list(spread) == list(claims.RUNS)
    for name, run in alone.items():
        other = spread[name]
        assert other.seeds == run.seeds, name
        assert (other.epoch_losses == run.epoch_losses).all(), f"{name}: epoch losses differ"
        assert (other.test_errors == run.test_errors).all(), f"{name}: test errors differ"
        assert torch.equal(other.test_wrong, run.test_wrong), f"{name}: misclassified differ"


def _fails():
    raise ArithmeticError("planted")


def test_a_task_error_reaches_the_caller_in_both_modes(pool):
    for workers in (Workers(1), pool):
        with pytest.raises(ArithmeticError, match="planted"):
            workers.submit(_fails).result()


def test_counts_are_checked_and_a_gpu_gets_one_process():
    with pytest.raises(ValueError, match="integer >= 1"):
        Workers(0)
    assert default_count("cuda") == 1
    assert 1 <= default_count("cpu") <= 8
