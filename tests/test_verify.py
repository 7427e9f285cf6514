"""``refnet verify``: files, determinism, regressions, robustness and the HTML's structure."""

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from test_claims import TINY as TINY_CLAIMS
from test_reproduction import TINY as TINY_SETTINGS

import refnet
from verification.checks.result import CheckResult
from verification.cli import main
from verification.suite import registry
from verification.verify import VerifyError, VerifyOptions, run_verification

SECTION_ORDER = ["verdict", "environment", "regressions", "matrix", "checks", "mutation",
                 "reproduction", "ambiguities", "performance", "coverage", "rerun"]


def _options(out, **overrides):
    settings = {"out": out, "stages": ("checks",), "show_progress": False,
                "command": "refnet verify (test)"}
    return VerifyOptions(**{**settings, **overrides})


def _few_cases(monkeypatch, extra=()):
    """Keep the gradient checks to two cheap cases (plus ``extra``) for speed."""
    selected = [case for case in registry.cases() if case.name in ("linear 3→4", "tanh")]
    monkeypatch.setattr(registry, "cases", lambda seed=0: [*selected, *extra])


def _results(out):
    return json.loads((Path(out) / "results.json").read_text())


class _Structure(HTMLParser):
    """Collects element ids in document order, scripts, and external references."""

    def __init__(self):
        super().__init__()
        self.ids, self.scripts, self.external = [], 0, []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if "id" in attributes:
            self.ids.append(attributes["id"])
        self.scripts += tag == "script"
        for key in ("src", "href"):
            if re.match(r"^(https?:)?//", attributes.get(key) or ""):
                self.external.append(attributes[key])


def _structure(out):
    parser = _Structure()
    parser.feed((Path(out) / "index.html").read_text(encoding="utf-8"))
    return parser


def test_passing_run_writes_both_files_and_exits_zero(tmp_path, monkeypatch, capsys):
    _few_cases(monkeypatch)
    assert run_verification(_options(tmp_path / "new" / "folder")) == 0
    results = _results(tmp_path / "new" / "folder")
    assert results["schema_version"] == 1 and results["status"] == "pass"
    assert results["checks"] and all(check["status"] == "pass" for check in results["checks"])
    assert {"python", "torch", "platform", "device", "git_commit", "timestamp",
            "command"} <= set(results["environment"])
    printed = capsys.readouterr().out
    assert "refnet verify: PASS" in printed and "index.html" in printed


def test_html_is_self_contained_and_ordered(tmp_path, monkeypatch):
    _few_cases(monkeypatch)
    baseline = tmp_path / "first"
    run_verification(_options(baseline))
    run_verification(_options(tmp_path / "second", baseline=baseline / "results.json"))
    structure = _structure(tmp_path / "second")
    assert structure.scripts == 0, "the report must not need scripts"
    assert structure.external == [], f"network references: {structure.external}"
    positions = [structure.ids.index(section) for section in SECTION_ORDER]
    assert positions == sorted(positions), f"sections out of order: {structure.ids}"
    html = (tmp_path / "second" / "index.html").read_text()
    assert "Verdict: PASS" in html and "No regression." in html


def test_same_arguments_same_results_except_timestamps_and_timings(tmp_path, monkeypatch):
    _few_cases(monkeypatch)
    first, second = tmp_path / "a", tmp_path / "b"
    run_verification(_options(first))
    run_verification(_options(second))

    def stable(results):
        results["environment"].pop("timestamp")
        results["stages"].pop("elapsed_s")
        results.pop("benchmarks")
        return results

    assert stable(_results(first)) == stable(_results(second))


def _without_timings(results):
    results["environment"].pop("timestamp")
    results["stages"].pop("elapsed_s")
    results["reproduction"].pop("elapsed_s")
    return results


def test_the_many_seed_stages_give_identical_results_on_a_rerun_and_in_one_process(
        tmp_path, monkeypatch):
    """Bit-identical results.json (but for timings) from the same command run twice, and
    from one process instead of two workers: the README's determinism promise."""
    _few_cases(monkeypatch)
    options = {"stages": ("checks", "reproduction", "claims"),
               "reproduction_settings": TINY_SETTINGS, "claims_config": TINY_CLAIMS}
    for name, workers in (("a", 2), ("b", 2), ("c", 1)):
        assert run_verification(_options(tmp_path / name, workers=workers, **options)) == 0
    first = _without_timings(_results(tmp_path / "a"))
    assert first["reproduction"]["configs"] and len(first["claims"]) == 8
    assert _without_timings(_results(tmp_path / "b")) == first, "a rerun differs"
    assert _without_timings(_results(tmp_path / "c")) == first, "one process differs from two"


def test_regression_against_baseline_leads_and_fails(tmp_path, monkeypatch, capsys):
    _few_cases(monkeypatch)
    run_verification(_options(tmp_path / "before"))
    original_backward = refnet.Tanh.backward
    monkeypatch.setattr(refnet.Tanh, "backward", lambda self, g: -original_backward(self, g))
    status = run_verification(_options(tmp_path / "after",
                                       baseline=tmp_path / "before" / "results.json"))
    assert status == 1
    results = _results(tmp_path / "after")
    assert results["status"] == "fail"
    assert any(r["kind"] == "check" and "Tanh" in r["id"] for r in results["regressions"])
    assert "REGRESSION check" in capsys.readouterr().out
    html = (tmp_path / "after" / "index.html").read_text()
    assert html.index('id="regressions"') < html.index('id="matrix"')


def test_a_raising_check_is_recorded_and_the_run_goes_on(tmp_path, monkeypatch):
    broken = registry.Case("broken case", (), ("autograd",), lambda: 1 / 0)
    _few_cases(monkeypatch, extra=[broken])
    assert run_verification(_options(tmp_path)) == 1
    results = _results(tmp_path)
    failed = [check for check in results["checks"] if check["status"] == "fail"]
    assert [check["id"] for check in failed] == ["error/broken case"]
    assert "ZeroDivisionError" in failed[0]["detail"]
    assert len(results["checks"]) > 1, "the other cases still ran"


def test_a_raising_stage_is_recorded(tmp_path, monkeypatch):
    _few_cases(monkeypatch)
    monkeypatch.setattr(registry, "run_cases", lambda *args: 1 / 0)
    assert run_verification(_options(tmp_path)) == 1
    (check,) = _results(tmp_path)["checks"]
    assert check["id"] == "stage/checks" and "ZeroDivisionError" in check["detail"]


def test_text_from_modules_is_escaped(tmp_path, monkeypatch):
    hostile = "<script>alert('x')</script>"
    case = registry.Case(hostile, (), ("autograd",), lambda: [CheckResult(
        f"autograd/{hostile}", hostile, "autograd", True, 0.0, 0.0, 1.0, 0.0, hostile)])
    _few_cases(monkeypatch, extra=[case])
    run_verification(_options(tmp_path))
    html = (tmp_path / "index.html").read_text()
    assert "<script>" not in html and "&lt;script&gt;" in html


@pytest.mark.parametrize("overrides, fragment", [
    ({"seeds": 0}, "--seeds must be at least 1"),
    ({"stages": ("nonsense",)}, "unknown stages"),
])
def test_bad_options_are_refused_before_running(tmp_path, overrides, fragment):
    with pytest.raises(VerifyError, match=fragment):
        run_verification(_options(tmp_path, **overrides))


def test_output_folder_that_cannot_be_created(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(VerifyError, match="cannot create output folder"):
        run_verification(_options(blocker / "sub"))


@pytest.mark.parametrize("content, fragment", [("{broken", "not valid JSON"),
                                               ('{"schema_version": 7}', "not supported")])
def test_corrupt_baseline(tmp_path, content, fragment):
    baseline = tmp_path / "baseline.json"
    baseline.write_text(content)
    with pytest.raises(VerifyError, match=fragment):
        run_verification(_options(tmp_path / "out", baseline=baseline))


def test_command_line_reports_errors_with_exit_status_2(tmp_path, capsys):
    assert main(["verify", "--seeds", "0", "--out", str(tmp_path)]) == 2
    assert "refnet verify: error: --seeds must be at least 1, got 0" in capsys.readouterr().err


def test_command_line_runs_the_suite(tmp_path, monkeypatch):
    _few_cases(monkeypatch)
    captured = {}

    def fake_run(options):
        captured["options"] = options
        return 0

    monkeypatch.setattr("verification.verify.run_verification", fake_run)
    assert main(["verify", "--quick", "--out", str(tmp_path), "--device", "cpu"]) == 0
    options = captured["options"]
    assert options.quick and options.out == tmp_path and options.device == "cpu"
    assert options.command == f"refnet verify --quick --out {tmp_path} --device cpu"


# --- stage selection and failures that point at their cause -----------------------------------


def test_only_runs_the_named_stages_and_says_the_others_did_not_run(tmp_path, monkeypatch,
                                                                   capsys):
    _few_cases(monkeypatch)
    assert main(["verify", "--only", "checks", "--out", str(tmp_path)]) == 0
    results = _results(tmp_path)
    assert results["stages"]["run"] == ["checks"]
    assert results["stages"]["not_run"] == ["mutation", "reproduction", "claims", "benchmarks"]
    printed = capsys.readouterr().out
    assert "mutation: not run" in printed and "not run: mutation, reproduction" in printed
    assert "Not run in this report" in (tmp_path / "index.html").read_text()


def test_unknown_stage_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["verify", "--only", "checks,nonsense", "--out", str(tmp_path)])
    assert exit_.value.code == 2 and "unknown stage(s) ['nonsense']" in capsys.readouterr().err


def test_a_slip_in_tanh_names_tanh_before_the_networks_that_hold_it(tmp_path, monkeypatch,
                                                                   capsys):
    selected = [case for case in registry.cases()
                if case.name in ("report network (tanh)", "linear 3→4", "tanh")]
    monkeypatch.setattr(registry, "cases", lambda seed=0: selected)
    original = refnet.Tanh._slope
    monkeypatch.setattr(refnet.Tanh, "_slope", lambda self, y: original(self, y) * (1 + 1e-5))
    assert run_verification(_options(tmp_path, stages=("checks", "mutation"))) == 1
    lines = capsys.readouterr().out.splitlines()
    failed = [line.strip() for line in lines if line.strip().startswith("FAILED ")]
    assert [line.split(":")[0] for line in failed] == ["FAILED tanh", "FAILED sequential"], failed
    assert "finite_difference" in failed[0] and "worst error/tolerance" in failed[0], failed[0]
    assert any("mutation: not run: the unmodified suite already fails" in line for line in lines)
    html = (tmp_path / "index.html").read_text()
    assert html.index("FAILED tanh") < html.index("FAILED sequential")
