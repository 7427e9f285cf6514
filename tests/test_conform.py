"""``refnet conform``: one target's report, a scoreboard of many, isolation, baselines, and the
pytest plugin."""

import io
import json
import re
import shlex
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
import torch
from check_helpers import FIXTURE_NAMES, FRAMEWORKS, JUDGED, fixture_spec

from verification.cli import main
from verification.confined.isolation import TargetRun
from verification.conform import ConformOptions, _target_results, run_conform
from verification.report.components import failure_lines
from verification.report.results import validate
from verification.suite.conformance import check_target

CORRECT = ("refnet", *(f"{name}_adapter.py" for name in FIXTURE_NAMES))
BUGGY = {"handout_adapter.py:WrongTanhDerivative": {"tanh", "sequential", "training"},
         "float32_adapter.py:DropoutMaskReused": {"dropout"},
         "dynamic_adapter.py:ExpRatioTanh": {"tanh"}}
CHROMIUM = shutil.which("chromium")


def _spec(name):
    return str(FRAMEWORKS / name)


def _failing_components(results):
    return {name for name, entry in results["components"].items() if entry["status"] == "fail"}


BROKEN_TIMEOUT = 10
"""The timeout of the scoreboard of broken targets, seconds: what the hanging one costs. The
crashing and the failing-to-import targets end within it on a loaded machine (an executor
start, 1-4 s), so each ends as its own row, not as a timeout."""


@pytest.fixture(scope="module")
def broken(tmp_path_factory):
    """A scoreboard of a hanging, a crashing and a failing-to-import target (what the hang
    costs is one timeout, so it has its own short one): their runs by stem."""
    folder, out = tmp_path_factory.mktemp("broken"), tmp_path_factory.mktemp("broken_board")
    (folder / "hang_adapter.py").write_text("import time\ntime.sleep(3600)\n")
    (folder / "import_error_adapter.py").write_text("raise ImportError('planted: no framework')\n")
    (folder / "crash_adapter.py").write_text(
        "import os\n\nclass Adapter:\n" + "".join(
            f"    def {name}(self, *args):\n        os._exit(7)\n\n" for name in (
                "linear", "relu", "tanh", "sigmoid", "sequential", "mse_loss")))
    specs = [str(folder / f"{name}_adapter.py") for name in ("hang", "import_error", "crash")]
    status = run_conform(ConformOptions(targets=tuple(specs), out=out, jobs=2,
                                        timeout=BROKEN_TIMEOUT, quick=True, show_progress=False))
    board = json.loads((out / "results.json").read_text())
    return status, {Path(t["spec"]).stem: t["run"] for t in board["targets"]}


def test_refnet_conforms(tmp_path, capsys):
    assert main(["conform", "refnet", "--out", str(tmp_path)]) == 0
    results = validate(json.loads((tmp_path / "results.json").read_text()))
    assert results["status"] == "pass" and results["target"]["name"] == "refnet"
    assert results["target"]["declared_facts"] == {"mse_reduction": "mean",
                                                   "relu_slope_at_zero": 0.0}
    assert set(results["components"]) >= {"linear", "tanh", "mse_loss", "adam", "training"}
    html = (tmp_path / "index.html").read_text()
    assert "Verdict: PASS" in html and "Component × check kind" in html
    assert capsys.readouterr().err == "", "no progress output when stderr is not a terminal"
    # both dtypes by default, every float32 check passing, ids unique and the float64 ones
    # unprefixed (as before there were two dtypes), the float32 ones the same ids prefixed
    assert results["run"]["dtypes"] == ["float64", "float32"]
    assert 'id="dtypes">float64, float32' in html and 'id="detection-power-float32"' in html
    assert set(results["detection_power_by_dtype"]) == {"float64", "float32"}
    ids = {dtype: [c["id"] for c in results["checks"] if c["dtype"] == dtype]
           for dtype in ("float64", "float32")}
    assert len(ids["float64"]) + len(ids["float32"]) == len(results["checks"])
    assert len(set(ids["float64"] + ids["float32"])) == len(results["checks"]), "ids unique"
    assert not any(i.startswith("float") for i in ids["float64"]), ids["float64"][:3]
    assert [f"float32/{i}" for i in ids["float64"]] == ids["float32"]
    assert all(c["case"].endswith(" [float32]") for c in results["checks"]
               if c["dtype"] == "float32")


def test_a_target_wrong_only_in_float32_fails_by_default_and_passes_in_float64(judged,
                                                                               tmp_path):
    """The cheat "correct only in float64": its Tanh is wrong on float32 inputs alone, so only
    the float32 run can fail it, and it does by default (in the session's scoreboard)."""
    spec = _spec("handout_adapter.py:CorrectOnlyInFloat64")
    results = judged.results(spec)
    failed = [c for c in results["checks"] if c["status"] == "fail"]
    assert failed and all(c["dtype"] == "float32" and c["id"].startswith("float32/")
                          for c in failed), [c["id"] for c in failed]
    assert "tanh" in _failing_components(results)
    assert main(["conform", spec, "--out", str(tmp_path / "f64"), "--quick",
                 "--dtype", "float64"]) == 0
    results = json.loads((tmp_path / "f64" / "results.json").read_text())
    assert results["run"]["dtypes"] == ["float64"]
    assert {c["dtype"] for c in results["checks"]} == {"float64"}


def test_asking_a_float32_target_for_float64_is_one_failed_row_naming_both(tmp_path, capsys):
    assert main(["conform", _spec("float32_adapter.py"), "--out", str(tmp_path), "--quick",
                 "--dtype", "float64"]) == 1
    results = json.loads((tmp_path / "results.json").read_text())
    [check] = results["checks"]
    assert check["id"] == "dtype/float64" and check["status"] == "fail", check
    assert "declares dtype float32" in check["detail"] and "--dtype float64" in check["detail"]
    assert results["run"]["dtypes"] == [], "nothing was checked in any dtype"
    assert "dtype/float64" in capsys.readouterr().out


def test_a_dtype_other_than_float64_and_float32_is_refused_by_argparse(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["conform", "refnet", "--dtype", "float16", "--out", str(tmp_path)])
    assert exit_.value.code == 2
    assert "argument --dtype: invalid choice: 'float16'" in capsys.readouterr().err
    assert not (tmp_path / "results.json").exists()


def test_one_buggy_target_names_its_failures_with_reproducers(tmp_path):
    spec = _spec("handout_adapter.py:WrongTanhDerivative")
    assert main(["conform", spec, "--out", str(tmp_path), "--quick"]) == 1
    results = json.loads((tmp_path / "results.json").read_text())
    assert _failing_components(results) == BUGGY["handout_adapter.py:WrongTanhDerivative"]
    html = (tmp_path / "index.html").read_text()
    assert "verification.rerun(" not in html and "run from the folder that holds" in html
    failing = next(c for c in results["checks"] if c["status"] == "fail")
    command = ["refnet", "conform", "handout_adapter.py:WrongTanhDerivative", "--case",
               failing["case"], "--check", failing["id"], "--quick"]
    assert shlex.join(command) in html.replace("&#39;", "'").replace("&gt;", ">")
    rerun = subprocess.run([str(Path(sys.executable).parent / "refnet"), *command[1:]],
                           cwd=FRAMEWORKS, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 1 and rerun.stdout.startswith(f"FAIL {failing['id']}: "), (
        rerun.stdout + rerun.stderr)


def test_scoreboard_has_a_row_per_target_and_every_correct_one_passes(judged):
    """The session's scoreboard of refnet, every fixture framework and planted bugs
    (``conftest.judged``)."""
    assert judged.status == 1 and judged.board["status"] == "fail"
    assert [target["spec"] for target in judged.board["targets"]] == [
        fixture_spec(name) for name in JUDGED]
    for name in CORRECT:
        target = judged.targets[fixture_spec(name)]
        assert target["status"] == "pass", (name, target["run"])
    for spec, components in BUGGY.items():
        target = judged.targets[_spec(spec)]
        failing = {c for c, e in target["components"].items() if e["status"] == "fail"}
        assert failing == components, (spec, failing)
    html = (judged.out / "index.html").read_text()
    for target in judged.board["targets"]:
        assert (judged.out / target["folder"] / "index.html").is_file(), target["folder"]
        assert f'href="{target["folder"]}/index.html"' in html


def test_a_hang_a_crash_and_a_failed_import_are_rows_naming_what_happened(broken):
    status, runs = broken
    assert status == 1
    assert runs["hang_adapter"]["status"] == "timeout"
    assert runs["hang_adapter"]["seconds"] < BROKEN_TIMEOUT + 20
    assert runs["import_error_adapter"]["status"] == "import-error"
    assert "planted: no framework" in runs["import_error_adapter"]["message"]
    assert runs["crash_adapter"]["status"] == "crashed"
    assert "exited with status 7" in runs["crash_adapter"]["message"]


def test_columns_put_the_most_broken_component_first(judged):
    board = judged.board
    failing = [sum(t["components"].get(c, {}).get("status") == "fail" for t in board["targets"])
               for c in board["components"]]
    assert failing == sorted(failing, reverse=True), (board["components"], failing)


def test_baseline_regressions_fail_the_run(tmp_path):
    before, after = tmp_path / "before", tmp_path / "after"
    assert main(["conform", _spec("handout_adapter.py"), "--out", str(before), "--quick",
                 "--dtype", "float64"]) == 0  # (a dtype-independent test: one dtype is enough)
    status = main(["conform", _spec("handout_adapter.py:BiasNeverAdded"), "--out", str(after),
                   "--quick", "--baseline", str(before / "results.json"), "--dtype", "float64"])
    results = json.loads((after / "results.json").read_text())
    assert status == 1 and any(r["kind"] == "check" and "Linear" in r["id"]
                               for r in results["regressions"]), results["regressions"]


@pytest.mark.parametrize("argv", [["conform", "refnet", "--jobs", "0"],
                                  ["conform", "refnet", "--baseline", "/no/such/file.json"]])
def test_bad_arguments_are_refused_before_running(argv, tmp_path, capsys):
    code = None
    try:
        code = main([*argv, "--out", str(tmp_path)])
    except SystemExit as exit_:
        code = exit_.code
    assert code == 2, code


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium not installed (apt-get install chromium)")
def test_scoreboard_renders_in_chromium_with_working_links(judged, tmp_path):
    out, board = judged.out, judged.board
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([CHROMIUM, *flags, "--dump-dom", (out / "index.html").as_uri()],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    table = dom[dom.index('<table id="scoreboard"'):]
    table = table[:table.index("</table>")]
    assert table.count("<tr>") == len(board["targets"]) + 1, "one row per target, one header"
    for target in board["targets"]:  # a target's folder links nowhere out of it
        assert 'href="../' not in (out / target["folder"] / "index.html").read_text()
    # rendered: one passing and one failing target's page (every page is the same template's)
    shown = [next(t for t in board["targets"] if t["status"] == status)
             for status in ("pass", "fail")]
    for target in shown:
        page = subprocess.run(
            [CHROMIUM, *flags, "--dump-dom", (out / target["folder"] / "index.html").as_uri()],
            capture_output=True, text=True, timeout=120, check=True).stdout
        assert "Conformance of" in page, target["folder"]


def test_dtypes_are_planned_as_asked_and_only_those():
    from verification.arguments import CONFORM_DTYPES
    from verification.suite.conformance import dtype_name, planned_cases
    from verification.targets.adapter import CHECK_DTYPES, load_target

    assert CONFORM_DTYPES == tuple(map(dtype_name, CHECK_DTYPES))
    refnet = load_target("refnet")
    both, _ = planned_cases(refnet)
    only, _ = planned_cases(refnet, dtypes=(torch.float32,))
    assert [case.name for case in only] == [case.name for case in both
                                            if case.dtype == torch.float32]
    assert {case.dtype for case in only} == {torch.float32} and all(
        case.tag == "float32" and case.name.endswith(" [float32]") for case in only)
    declared, _ = planned_cases(load_target(_spec("float32_adapter.py")))
    assert {case.dtype for case in declared} == {torch.float32} and not any(
        case.tag for case in declared), "a target declaring float32 keeps today's plain ids"
    for wrong in ((torch.float16,), (), (torch.float64, torch.float64)):
        with pytest.raises(ValueError, match="expected one or both of"):
            planned_cases(refnet, dtypes=wrong)


def test_the_plugin_is_registered_as_a_pytest11_entry_point():
    points = {point.value for point in metadata.entry_points(group="pytest11")}
    assert "verification.pytest_plugin" in points


PLUGIN_TARGETS = {"handout:WrongTanhDerivative": _spec("handout_adapter.py:WrongTanhDerivative"),
                  "objects": _spec("objects_adapter.py"), "refnet": "refnet"}
"""The targets of one ``pytest --conform`` run, by the names their items carry."""


_OUTCOMES_PLUGIN = """
import json

def pytest_runtest_logreport(report):
    if report.when == "call" or report.outcome != "passed":
        with open("outcomes.jsonl", "a") as outcomes:
            outcomes.write(json.dumps([report.nodeid, report.outcome]) + "\\n")
"""
"""A conftest that writes each item's node id and outcome, a line each."""


@pytest.fixture(scope="module")
def plugin_run(tmp_path_factory):
    """One ``pytest --conform`` run (a subprocess in a scratch folder) over PLUGIN_TARGETS in
    float64: what it printed and, by target, the outcome of each item by check id."""
    folder = tmp_path_factory.mktemp("plugin")
    (folder / "pytest.ini").write_text("[pytest]\n")  # not this project's settings
    (folder / "conftest.py").write_text(_OUTCOMES_PLUGIN)
    command = [sys.executable, "-m", "pytest", "-c", str(folder / "pytest.ini"), "-p",
               "no:cacheprovider", "-rfs", "--conform-dtype", "float64"]
    for spec in PLUGIN_TARGETS.values():
        command += ["--conform", spec]
    completed = subprocess.run(command, cwd=folder, capture_output=True, text=True,
                               timeout=600)
    outcomes = {name: {} for name in PLUGIN_TARGETS}
    for line in (folder / "outcomes.jsonl").read_text().splitlines():
        node, outcome = json.loads(line)
        _, name, _, _, check_id = node.split("::", 4)  # ::target::component::kind::id
        outcomes[name][check_id] = outcome
    return completed, outcomes


def test_pytest_conform_fails_exactly_the_failing_checks(plugin_run):
    completed, outcomes = plugin_run
    spec = PLUGIN_TARGETS["handout:WrongTanhDerivative"]
    failed = {check_id for check_id, outcome in outcomes["handout:WrongTanhDerivative"].items()
              if outcome == "failed"}
    expected = {r.id for r in check_target(spec, dtypes=(torch.float64,)) if not r.passed}
    assert failed == expected, (sorted(failed ^ expected), completed.stdout[-2000:])
    assert "reproduce: refnet conform " in completed.stdout and " --case " in completed.stdout
    assert completed.returncode == 1


def test_pytest_conform_on_refnet_passes_every_item(plugin_run):
    completed, outcomes = plugin_run
    refnet = list(outcomes["refnet"].values())
    assert "failed" not in refnet and refnet.count("passed") > 100, (completed.stdout[-2000:],
                                                                      completed.stderr[-2000:])


def test_pytest_conform_reports_a_missing_component_as_skipped_items(plugin_run):
    completed, outcomes = plugin_run
    objects = outcomes["objects"]
    assert "failed" not in objects.values(), completed.stdout[-2000:]
    skipped = [check_id for check_id, outcome in objects.items() if outcome == "skipped"]
    assert len(skipped) >= 2 and list(objects.values()).count("passed") > 100, skipped
    assert "the adapter has no sigmoid()" in completed.stdout, completed.stdout[-2000:]


def test_pytest_conform_keeps_the_checks_finished_before_a_crash_and_names_by_path(
        pytester, tmp_path):
    """Two adapters named handout_adapter.py: alice's crashes in its sigmoid case, bob's at
    import. The checks alice finished before the crash are items that pass, the crash is one
    failing item, and each target's items carry its distinguishing path."""
    alice = _handout_variant(tmp_path / "alice", "handout", sigmoid="__import__('os')._exit(3)")
    (tmp_path / "bob").mkdir()
    bob = tmp_path / "bob" / "handout_adapter.py"
    bob.write_text("raise ImportError('planted: no framework')\n")
    result = pytester.runpytest_subprocess("--conform", alice, "--conform", str(bob),
                                           "--conform-quick", "-p", "no:cacheprovider", "-rf",
                                           "-v")
    # "FAILED <prefix>::<target>::<component>::<kind>::<id> - <message>" under -rf, and
    # "<prefix>::<target>::...::<id> PASSED [ n%]" under -v
    failed = {line.split("::", 1)[1].split(" - ", 1)[0] for line in result.outlines
              if line.startswith("FAILED ")}
    assert failed == {"alice/handout::target::error::target/crashed",
                      "bob/handout::target::error::target/import-error"}, result.outlines[-5:]
    passed = [line.split("::", 1)[1] for line in result.outlines if " PASSED" in line]
    assert passed and all(line.startswith("alice/handout::") for line in passed), passed
    assert any("::linear::" in line for line in passed), passed


def test_the_plugin_imports_nothing_of_refnet_until_asked():
    """Loaded by every pytest run; importing refnet early would hide refnet's module-level
    lines from coverage, which starts after plugins load."""
    probe = ("import sys, verification.pytest_plugin; "
             "print(sorted(m for m in sys.modules if m.split('.')[0] in ('refnet', 'torch')))")
    loaded = subprocess.run(["python", "-c", probe], capture_output=True, text=True, timeout=60,
                            check=True).stdout.strip()
    assert loaded == "[]", loaded


_FACTORIES = {"linear": "in_features, out_features, generator", "relu": "", "tanh": "",
              "sigmoid": "", "sequential": "*modules", "mse_loss": "", "sgd": "params, lr"}
_RAISING_SIGMOID = '''
class RaisingSigmoid(fw.Sigmoid):
    def forward(self, *input):
        raise RuntimeError("planted: this sigmoid cannot run forward")
'''


def _handout_variant(folder, name, without=(), sigmoid=None):
    """Write ``<name>_adapter.py``: handout_adapter's factories, delegated one by one, less
    those in ``without``; ``sigmoid``, when given, is the body of its ``sigmoid()``."""
    folder.mkdir(exist_ok=True)
    # the fixture beside it (a sandboxed submission sees its own folder alone), under a name
    # of its own: the variant may be called handout_adapter.py itself
    shutil.copy(FRAMEWORKS / "handout.py", folder / "handout.py")
    shutil.copy(FRAMEWORKS / "handout_adapter.py", folder / "handout_fixture.py")
    lines = ["import handout as fw",
             "from handout_fixture import Adapter as Base", _RAISING_SIGMOID, "",
             "class Adapter:", "    base = Base()"]
    for factory, params in _FACTORIES.items():
        if factory in without:
            continue
        call = ", ".join(p.strip() for p in params.split(",")) if params else ""
        body = (sigmoid if factory == "sigmoid" and sigmoid
                else f"return self.base.{factory}({call})")
        lines += [f"    def {factory}(self{', ' if params else ''}{params}):", f"        {body}"]
    path = folder / f"{name}_adapter.py"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


@pytest.fixture(scope="module")
def without_sigmoid(tmp_path_factory):
    """A scoreboard of two handout variants: one with no sigmoid(), one whose Sigmoid raises
    in forward; and what ``run_conform`` printed."""
    folder, out = tmp_path_factory.mktemp("variants"), tmp_path_factory.mktemp("board")
    specs = (_handout_variant(folder, "no_sigmoid", without=("sigmoid",)),
             _handout_variant(folder, "raising_sigmoid", sigmoid="return RaisingSigmoid()"))
    stream = io.StringIO()
    status = run_conform(ConformOptions(targets=specs, out=out, jobs=2, quick=True,
                                        show_progress=False, dtype="float64"), stream=stream)
    board = json.loads((out / "results.json").read_text())
    return out, status, {Path(t["spec"]).stem: t for t in board["targets"]}, stream.getvalue()


def test_a_target_without_sigmoid_passes_and_lists_the_skipped_cases(without_sigmoid):
    out, _, targets, _ = without_sigmoid
    target = targets["no_sigmoid_adapter"]
    results = json.loads((out / target["folder"] / "results.json").read_text())
    skipped = {s["case"]: s for s in results["cases"]["skipped"]}
    assert {"sigmoid", "sigmoid at hand-picked and extreme points"} <= set(skipped), skipped
    assert all(s["reason"] == "the adapter has no sigmoid()" for s in skipped.values()
               if s["component"] == "sigmoid"), skipped
    assert results["status"] == "pass", [c["id"] for c in results["checks"]
                                         if c["status"] == "fail"]
    assert "sigmoid" not in results["cases"]["built"] and "linear 3→4" in results["cases"]["built"]
    entry = results["components"]["sigmoid"]
    assert entry["status"] == "skipped" and entry["checks"] == 0, entry
    page = (out / target["folder"] / "index.html").read_text()
    assert "Cases not built" in page and "the adapter has no sigmoid()" in page


def _board_cell(html, folder, column):
    """The ``column``-th ``<td>`` of the scoreboard row that links to ``folder``."""
    row = html[html.index(f'href="{folder}/index.html"'):]
    row = row[:row.index("</tr>")]
    return re.findall(r"<td[^>]*>.*?</td>", row, flags=re.S)[column]


def test_the_scoreboard_shows_a_dash_where_the_target_skipped_sigmoid(without_sigmoid):
    out, status, targets, _ = without_sigmoid
    board = json.loads((out / "results.json").read_text())
    column = board["components"].index("sigmoid")
    html = (out / "index.html").read_text()
    skipped = _board_cell(html, targets["no_sigmoid_adapter"]["folder"], column)
    assert ">—<" in skipped and "the adapter has no sigmoid()" in skipped, skipped
    raising = _board_cell(html, targets["raising_sigmoid_adapter"]["folder"], column)
    assert "FAIL" in raising and status == 1, raising


def test_the_terminal_line_of_a_case_that_raises_names_the_exception(without_sigmoid):
    _, _, _, printed = without_sigmoid
    line = next((line for line in printed.splitlines() if "FAILED sigmoid:" in line), "")
    assert "raised" in line and "planted: this sigmoid cannot run forward" in line, printed
    assert "worst error/tolerance" not in line, line


_GOOD_SKIP = {"case": "sigmoid", "component": "sigmoid", "reason": "the adapter has no sigmoid()"}
_PASSING = {"id": "autograd/Linear/x", "module": "Linear", "kind": "autograd", "status": "pass",
            "max_abs_error": 0.0, "max_rel_error": 0.0, "tolerance": 1.0, "error_ratio": 0.0,
            "excluded": 0, "convention": "", "component": "linear", "case": "linear", "detail": ""}


@pytest.mark.parametrize("skipped, kept", [
    ("junk", []), (None, []),
    ([1, {"case": "a"}, {"case": 2, "component": "x", "reason": "r"}, {**_GOOD_SKIP, "x": 1}],
     [_GOOD_SKIP])])
def test_a_malformed_skipped_list_from_the_worker_is_dropped_not_a_crash(skipped, kept):
    record = {"checks": [_PASSING], "built": "not a list", "skipped": skipped}
    options = ConformOptions(targets=("t",), out=Path("unused"))
    results = _target_results(TargetRun("t", "completed", "", 1.0, record), options, "t")
    assert results["cases"] == {"built": [], "skipped": kept}, results["cases"]
    assert results["status"] == "pass", "a skipped case is not a failure"
    assert set(results["components"]) == {"linear", *(["sigmoid"] if kept else [])}
    assert failure_lines(results["components"]) == []
    timed_out = _target_results(TargetRun("t", "timeout", "slow", 1.0, None), options, "t")
    assert timed_out["cases"] == {"built": [], "skipped": []}


def test_an_extra_loss_is_reported_as_a_component_of_its_name():
    from verification.report.components import component_summary
    from verification.suite.conformance import planned_cases, run_cases
    from verification.targets.adapter import load_target

    target = load_target(_spec("dynamic_adapter.py:BCEWithLogitsMissingOneOverN"))
    cases = [case for case in planned_cases(target)[0] if case.component.endswith("loss")
             or case.component in target.extra_losses]
    summary = component_summary([result.as_dict() for result in run_cases(cases)])
    names = list(summary)
    assert {"bce_with_logits", "huber", "l1", "smooth_l1"} <= set(names), names
    assert names.index("bce_loss") < names.index("bce_with_logits"), (
        f"extra losses come after the known components: {names}")
    lines = failure_lines(summary)
    assert lines and all(line.startswith("FAILED bce_with_logits:") for line in lines), lines
    assert summary["huber"]["status"] == "pass", summary["huber"]
    assert "bce_with_logits" in target.description()["components"], target.description()
