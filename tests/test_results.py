"""results.json: schema validation and the regression rules of ``--baseline``."""

import copy
import json
import shutil
import subprocess

import pytest

from verification.report.results import (
    BENCHMARK_NOISE_FACTOR,
    ERROR_GROWTH_FACTOR,
    BaselineError,
    environment,
    find_regressions,
    git_state,
    load_baseline,
    validate,
)


def _results():
    return {
        "schema_version": 1, "status": "pass",
        "environment": environment(command="refnet verify --quick", device="cpu"),
        "checks": [{"id": "fd/Linear/weight", "module": "Linear(2, 3)", "kind": "finite_difference",
                    "status": "pass", "max_abs_error": 1e-10, "max_rel_error": 1e-9,
                    "tolerance": 1e-7, "error_ratio": 0.001}],
        "mutation": {"total": 15, "killed": 15, "survived": []},
        "reproduction": {"seeds": 200, "configs": [{
            "name": "relu", "train_error": {"median": 0.010, "median_ci": [0.009, 0.011]},
            "test_error": {"median": 0.012, "median_ci": [0.011, 0.013]}}]},
        "benchmarks": [{"name": "train_single_vs_torch_nn", "baseline": "torch.nn", "ratio": 1.8}],
    }


def test_environment_records_what_reproduces_the_run():
    record = environment(command="refnet verify", device="cpu")
    assert record["command"] == "refnet verify" and record["device"] == "cpu"
    assert {"python", "torch", "platform", "git_commit", "git_uncommitted",
            "timestamp"} <= set(record)


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_git_state_says_when_the_commit_is_not_the_code_that_ran(tmp_path):
    assert git_state(tmp_path / "no such folder") == (None, None)

    def git(*arguments):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *arguments],
                       cwd=tmp_path, check=True, capture_output=True)
    git("init", "-q")
    (tmp_path / "module.py").write_text("x = 1\n")
    git("add", "module.py")
    git("commit", "-qm", "first")
    commit, uncommitted = git_state(tmp_path)
    assert len(commit) == 40 and uncommitted is False
    (tmp_path / "untracked.txt").write_text("not code that ran\n")
    assert git_state(tmp_path) == (commit, False)
    (tmp_path / "module.py").write_text("x = 2\n")
    assert git_state(tmp_path) == (commit, True)


def test_identical_results_have_no_regression():
    assert find_regressions(_results(), _results()) == []


def test_check_from_pass_to_fail_is_a_regression():
    current = _results()
    current["checks"][0]["status"] = "fail"
    (regression,) = find_regressions(current, _results())
    assert (regression.kind, regression.id, regression.after) == ("check", "fd/Linear/weight",
                                                                  "fail")


def test_error_growth_beyond_the_factor_is_a_regression_and_within_it_is_not():
    current = _results()
    current["checks"][0]["error_ratio"] = 0.001 * ERROR_GROWTH_FACTOR * 0.9 + 0.01
    grown = find_regressions(current, _results())
    assert [r.kind for r in grown] == ["error_growth"], grown
    current["checks"][0]["error_ratio"] = 0.005
    assert find_regressions(current, _results()) == [], "below the floor: round-off, not a bug"


def test_reproduction_median_moving_beyond_its_interval_is_a_regression():
    current = _results()
    current["reproduction"]["configs"][0]["test_error"] = {"median": 0.02,
                                                           "median_ci": [0.018, 0.022]}
    (regression,) = find_regressions(current, _results())
    assert regression.id == "relu/test_error" and regression.before == 0.012
    current["reproduction"]["configs"][0]["test_error"] = {"median": 0.013,
                                                           "median_ci": [0.0125, 0.014]}
    assert find_regressions(current, _results()) == [], "overlapping intervals: noise"


def test_benchmark_ratio_falling_beyond_noise_is_a_regression():
    current = _results()
    current["benchmarks"][0]["ratio"] = 1.8 / BENCHMARK_NOISE_FACTOR * 0.99
    assert [r.kind for r in find_regressions(current, _results())] == ["benchmark"]
    current["benchmarks"][0]["ratio"] = 1.8 / BENCHMARK_NOISE_FACTOR * 1.01
    assert find_regressions(current, _results()) == []


def test_new_checks_and_configs_are_not_regressions():
    current = copy.deepcopy(_results())
    current["checks"].append(dict(current["checks"][0], id="new", status="fail"))
    assert find_regressions(current, _results()) == []


@pytest.mark.parametrize("content, fragment", [
    ("{not json", "not valid JSON"),
    (json.dumps({"schema_version": 2}), "schema_version 2 is not supported"),
    (json.dumps({"schema_version": 1}), "missing keys"),
    (json.dumps([1, 2]), "expected a JSON object"),
])
def test_bad_baselines_get_clear_errors(tmp_path, content, fragment):
    path = tmp_path / "baseline.json"
    path.write_text(content)
    with pytest.raises(BaselineError, match=fragment):
        load_baseline(path)


def test_missing_baseline_file(tmp_path):
    with pytest.raises(BaselineError, match="cannot read baseline"):
        load_baseline(tmp_path / "absent.json")


def test_valid_baseline_round_trips(tmp_path):
    results = _results()  # once: its environment's timestamp is the second it was made
    path = tmp_path / "results.json"
    path.write_text(json.dumps(results))
    assert load_baseline(path) == validate(results)
