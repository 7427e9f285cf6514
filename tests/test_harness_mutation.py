"""The harness's mutation self-test (verification/suite/harness_mutation.py) on a tiny judge.

The fixture project is one judging module and one test: the run must build the expected
mutants, kill those the test catches, report the others, honour the ledger and leave the
fixture's own files as they were.
"""

import hashlib
from pathlib import Path

import pytest

from verification.suite.harness_mutants import mutants_of
from verification.suite.harness_mutation import (
    REFNET,
    Config,
    collect_mutants,
    failed,
    report,
    run_harness_mutation,
    try_mutants,
)

JUDGE = '''\
TOLERANCE = 0.5
POINTS = (1.0, 2.0)


def passes(error, scale):
    return abs(error) <= TOLERANCE * scale


def verdict(errors):
    passed = all(passes(error, 1.0) for error in errors) and len(errors) > 0
    return passed
'''

TEST = '''\
from judge.rule import passes


def test_an_error_of_four_tolerances_fails():
    assert not passes(2.0, 1.0)
'''


def _keys(mutants):
    return [(mutant.operator, mutant.function, mutant.fragment) for mutant in mutants]


def test_the_mutants_of_a_small_judge():
    mutants = mutants_of("judge/rule.py", JUDGE)
    assert _keys(mutants) == [
        ("×10", "<module>", "0.5"), ("÷10", "<module>", "0.5"),
        ("drop", "<module>", "1.0"), ("drop", "<module>", "2.0"),
        ("flip", "passes", "abs(error) <= TOLERANCE * scale"),
        ("drop abs", "passes", "abs(error)"),
        ("pass", "verdict", "all(passes(error, 1.0) for error in errors) and len(errors) > 0"),
        ("and↔or", "verdict", "all(passes(error, 1.0) for error in errors) and len(errors) > 0"),
        ("flip", "verdict", "len(errors) > 0"),
    ], f"mutants {_keys(mutants)}"
    applied = {}
    for mutant in mutants:
        applied.setdefault(mutant.operator, mutant.apply(JUDGE))
    assert "TOLERANCE = (0.5) * 10\n" in applied["×10"], applied["×10"]
    assert "return (abs(error) >= TOLERANCE * scale)" in applied["flip"], applied["flip"]
    assert "return (error) <= TOLERANCE * scale" in applied["drop abs"], applied["drop abs"]
    assert "    passed = True\n" in applied["pass"], applied["pass"]
    assert mutants[0].key == "judge.rule:<module>:×10:0.5#0", mutants[0].key


def test_keys_survive_lines_added_above_and_count_repeats():
    shifted = mutants_of("judge/rule.py", '"""A judge."""\n\nimport math\n' + JUDGE)
    assert [m.key for m in shifted] == [m.key for m in mutants_of("judge/rule.py", JUDGE)], (
        "a mutant's key must not depend on its line")
    twice = mutants_of("judge/rule.py", "def f(x, y):\n    return x < 1 or y < 1 or x < 1\n")
    flips = [mutant.key for mutant in twice if mutant.operator == "flip"]
    assert flips == ["judge.rule:f:flip:x < 1#0", "judge.rule:f:flip:y < 1#0",
                     "judge.rule:f:flip:x < 1#1"], flips


def _digest(folder):
    return {path: hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(folder.rglob("*.py"))}


@pytest.fixture(scope="module")
def fixture_project(tmp_path_factory):
    """The fixture judge and its test, configured with ÷10 of its tolerance listed as
    unpinned (stricter only)."""
    root = tmp_path_factory.mktemp("project")
    (root / "judge").mkdir()
    (root / "judge" / "__init__.py").write_text("")
    (root / "judge" / "rule.py").write_text(JUDGE)
    (root / "tests").mkdir()
    (root / "tests" / "test_rule.py").write_text(TEST)
    return Config(root=root, sources=("judge/*.py",), tests=("tests/test_rule.py",),
                  package="judge", copied=("judge", "tests"),
                  operators=("×10", "÷10", "flip", "drop abs", "pass"),
                  equivalents={"judge.rule:gone:flip:x#0": "no such mutant"},
                  unpinned={"judge.rule:<module>:÷10:0.5#0": "stricter, still fails 2.0"})


@pytest.fixture(scope="module")
def fixture_run(fixture_project):
    """The fixture judge's whole run, and the project's files before and after it."""
    before = _digest(fixture_project.root)
    summary = run_harness_mutation(fixture_project, jobs=2, timeout=60)
    return summary, before, _digest(fixture_project.root)


def test_chosen_mutants_run_against_chosen_tests_without_the_map(fixture_project):
    tried = try_mutants(fixture_project, ["judge.rule:passes:drop abs:abs(error)#0",
                                          "judge.rule:<module>:×10:0.5#0"],
                        ["tests/test_rule.py"])
    assert [record["outcome"] for record in tried.values()] == ["survived", "killed"], tried
    with pytest.raises(ValueError, match="no mutant has the key"):
        try_mutants(fixture_project, ["judge.rule:gone:flip:x#0"], ["tests/test_rule.py"])


def _outcomes(summary):
    return {(record["operator"], record["fragment"]): record["outcome"]
            for record in summary["mutants"]}


def test_the_run_kills_what_the_test_catches_and_reports_the_rest(fixture_run):
    summary, _, _ = fixture_run
    assert _outcomes(summary) == {
        ("×10", "0.5"): "killed",  # 2.0 <= 5.0 passes: the test fails
        ("÷10", "0.5"): "unpinned",  # 2.0 <= 0.05 fails too: listed
        ("flip", "abs(error) <= TOLERANCE * scale"): "killed",
        ("drop abs", "abs(error)"): "survived",  # the test's error is positive
        ("pass", "all(passes(error, 1.0) for error in errors) and len(errors) > 0"):
            "unreached",  # no test calls verdict()
        ("flip", "len(errors) > 0"): "unreached",
    }, _outcomes(summary)
    assert (summary["total"], summary["killed"]) == (6, 2), summary
    assert summary["score"] == pytest.approx(2 / 5), "killed / (total − listed)"
    killed = [r for r in summary["mutants"] if r["outcome"] == "killed"]
    assert all(r["caught_by"] == "tests/test_rule.py::test_an_error_of_four_tolerances_fails"
               for r in killed), killed


def test_an_unlisted_survivor_fails_the_run_and_is_named(fixture_run):
    summary, _, _ = fixture_run
    assert failed(summary), "a survivor the ledger does not list must fail the run"
    text = "\n".join(report(summary))
    assert "SURVIVED judge/rule.py:6 [drop abs] abs(error)" in text, text
    assert "key: judge.rule:passes:drop abs:abs(error)#0" in text, text
    assert "UNREACHED judge/rule.py:10" in text, text
    assert "stale ledger entry (no such mutant): judge.rule:gone:flip:x#0" in text, text


def test_the_listed_survivor_does_not_fail_the_run(fixture_run):
    summary, _, _ = fixture_run
    rest = {**summary, "survived": [], "unreached": []}
    assert not failed(rest), "only unlisted survivors fail the run"
    (listed,) = summary["unpinned"]
    assert listed["reason"] == "stricter, still fails 2.0", listed


def test_the_working_tree_is_untouched(fixture_run):
    _, before, after = fixture_run
    assert after == before, "a mutant was written into the project instead of a copy"


@pytest.fixture(scope="module")
def todays_mutants():
    """Every mutant of the configured judging code, collected once for this file."""
    return collect_mutants(REFNET)


def test_every_ledger_entry_names_a_mutant_of_todays_code(todays_mutants):
    keys = {mutant.key for mutant in todays_mutants}
    ledger = {**REFNET.equivalents, **REFNET.unpinned}
    stale = sorted(set(ledger) - keys)
    assert not stale, f"ledger entries no mutant has (code moved or changed): {stale}"
    assert all(reason.strip() for reason in ledger.values()), "a reason is empty"
    assert not set(REFNET.equivalents) & set(REFNET.unpinned), "a key in both ledgers"


def test_the_configured_files_exist_and_each_yields_mutants(todays_mutants):
    paths = {mutant.path for mutant in todays_mutants}
    for pattern in REFNET.sources:
        assert any(Path(path).match(pattern) for path in paths), f"{pattern}: no mutant"
    for test in REFNET.tests:
        assert (REFNET.root / test).exists(), f"{test} is configured but missing"
