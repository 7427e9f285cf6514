"""What a student receives: on a scoreboard each target's folder is about that target alone
(no other target's name or path, no absolute path of the grader's, no link out of it), its
reproducers run confined from the student's own folder (``refnet conform --case``), and the
grader gets ``grades.csv``."""

import csv
import io
import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from verification.cli import main
from verification.conform import ConformOptions, run_conform
from verification.report.grades import grades_csv
from verification.report.student import sanitise, student_copy

FRAMEWORKS = Path(__file__).parent / "frameworks"
REFNET = str(Path(sys.executable).parent / "refnet")


def _submission(folder, adapter_line):
    """A student's folder: the handout fixture and an ``adapter.py`` of ``adapter_line``."""
    folder.mkdir(parents=True)
    for name in ("handout.py", "handout_adapter.py"):
        shutil.copy(FRAMEWORKS / name, folder / name)
    (folder / "adapter.py").write_text(adapter_line + "\n")
    return folder / "adapter.py"


@pytest.fixture(scope="module")
def class_board(tmp_path_factory):
    """A scoreboard of ``alice/adapter.py`` (correct) and ``bob/adapter.py`` (Tanh's
    derivative wrong), both float64 and quick: ``(out, submissions folder, status)``."""
    root = tmp_path_factory.mktemp("class")
    alice = _submission(root / "subs" / "alice", "from handout_adapter import Adapter")
    bob = _submission(root / "subs" / "bob",
                      "from handout_adapter import WrongTanhDerivative as Adapter")
    out = root / "board"
    status = run_conform(ConformOptions(targets=(str(alice), str(bob)), out=out, jobs=2,
                                        quick=True, dtype="float64", show_progress=False),
                         stream=io.StringIO())
    return out, root / "subs", status


def _folder_text(folder):
    return {path.name: path.read_text() for path in folder.iterdir()}


def test_each_targets_folder_names_no_one_else_and_no_grader_path(class_board):
    out, subs, status = class_board
    assert status == 1
    board = json.loads((out / "results.json").read_text())
    folders = {Path(t["spec"]).parent.name: out / t["folder"] for t in board["targets"]}
    for student, other in (("alice", "bob"), ("bob", "alice")):
        for name, text in _folder_text(folders[student]).items():
            assert other not in text, (student, name)
            assert str(subs) not in text and str(out) not in text, (student, name)
            assert os.path.expanduser("~") not in text, (student, name)
            assert "../" not in text, (student, name)
        results = json.loads((folders[student] / "results.json").read_text())
        assert results["target"]["spec"] == "adapter.py", results["target"]
        assert results["environment"]["command"] == (
            "refnet conform adapter.py --quick --dtype float64"), results["environment"]
    # the grader's own scoreboard keeps the full picture
    assert str(subs / "alice") in (out / "results.json").read_text()


def test_a_reproducer_runs_confined_from_the_students_own_folder(class_board):
    out, subs, _ = class_board
    page = (out / "bob_adapter" / "index.html").read_text()
    assert "run from the folder that holds adapter.py" in page
    results = json.loads((out / "bob_adapter" / "results.json").read_text())
    failing = next(c for c in results["checks"] if c["status"] == "fail"
                   and c["case"] == "tanh")
    line = shlex.join(["refnet", "conform", "adapter.py", "--case", "tanh", "--check",
                       failing["id"], "--quick", "--dtype", "float64"])
    assert line in page.replace("&#39;", "'"), line
    rerun = subprocess.run([REFNET, *shlex.split(line)[1:]], cwd=subs / "bob",
                           capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 1, rerun.stdout + rerun.stderr
    assert rerun.stdout.splitlines() == [f"FAIL {failing['id']}: {failing['detail']}"], (
        rerun.stdout + rerun.stderr)
    assert sorted(os.listdir(subs / "bob")) == ["adapter.py", "handout.py",
                                                "handout_adapter.py"], "no report written"


def test_grades_csv_has_a_row_per_submission_and_a_column_per_component(class_board):
    out, _, _ = class_board
    rows = list(csv.DictReader(io.StringIO((out / "grades.csv").read_text())))
    assert [row["name"] for row in rows] == ["alice/adapter", "bob/adapter"]
    alice, bob = rows
    assert (alice["verdict"], bob["verdict"]) == ("pass", "fail")
    assert alice["checks_passed"] == alice["checks_total"] != "0"
    assert int(bob["checks_passed"]) < int(bob["checks_total"])
    assert (bob["tanh"], bob["linear"], bob["dropout"]) == ("fail", "pass", "—")
    assert bob["rules_broken"] == bob["missing_components"] == ""


def _results(name, *, status="pass", run="completed", rules=None, missing=None):
    results = {"target": {"name": name}, "status": status, "run": {"status": run},
               "checks": [{"status": "pass"}, {"status": status}],
               "components": {"tanh": {"status": status}, "=cmd()": {"status": "skipped"},
                              "target": {"status": "fail"}}}
    if rules is not None:
        results["rules"] = rules
    if missing is not None:
        results["missing_components"] = missing
    return results


def test_grades_csv_neutralises_formulas_and_reads_rules_defensively():
    text = grades_csv([
        _results("=HYPERLINK(\"x\")", rules=[{"id": "rule/torch.autograd/run", "status": "fail",
                                               "evidence": []},
                                              {"id": "rule/torch.nn/run", "status": "pass"}],
                 missing=["dropout", "adam"]),
        _results("+bob", status="fail", run="timeout", rules="garbage"),
        _results("@carol"), _results("-dave"), _results("eve")])
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["name", "verdict", "checks_passed", "checks_total", "rules_broken",
                       "missing_components", "tanh", "'=cmd()"], rows[0]
    assert [row[0] for row in rows[1:]] == ["'+bob", "'-dave", "'=HYPERLINK(\"x\")",
                                            "'@carol", "eve"], "sorted by name, neutralised"
    by_name = {row[0]: row for row in rows[1:]}
    assert by_name["'=HYPERLINK(\"x\")"][1:] == ["pass", "2", "2", "rule/torch.autograd/run",
                                                 "dropout;adam", "pass", "—"]
    assert by_name["'+bob"][1:6] == ["timeout", "1", "2", "", ""]


def test_sanitise_makes_the_submission_relative_and_hides_the_graders_paths(tmp_path):
    folder, other = tmp_path / "subs" / "bob", tmp_path / "subs" / "alice"
    text = (f'File "{folder}/adapter.py", line 3; in {folder}; {folder}by/x; '
            f'{other}/adapter.py; {tmp_path}/board/bob/index.html; {sys.prefix}/lib; '
            f'{Path(__file__).resolve().parents[1]}/verification/x.py')
    assert sanitise(text, str(folder), out=str(tmp_path / "board"), others=[str(other)]) == (
        f'File "adapter.py", line 3; in .; {folder}by/x; <another submission>/adapter.py; '
        f'<out>/bob/index.html; <python>/lib; <refnet>/verification/x.py')


def test_an_unknown_case_or_check_is_an_error_listing_the_valid_names(class_board, capsys,
                                                                      monkeypatch):
    _, subs, _ = class_board
    monkeypatch.chdir(subs / "alice")
    arguments = ["conform", "adapter.py", "--quick", "--dtype", "float64"]
    assert main([*arguments, "--case", "no such case"]) == 2
    error = capsys.readouterr().err
    assert "has no case 'no such case'; its cases: [" in error and "'tanh'" in error, error
    assert main([*arguments, "--case", "relu", "--check", "nope"]) == 2
    error = capsys.readouterr().err
    assert "has no check 'nope'; its checks: [" in error and "autograd/ReLU()" in error, error
    assert main([*arguments, "--case", "relu"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed and all(line.startswith("PASS ") for line in printed), printed
    assert main([*arguments, "--check", "x"]) == 2
    assert "--check needs --case" in capsys.readouterr().err


def test_a_student_copy_cleans_every_string_and_files_the_spec_relative(tmp_path):
    spec, other = str(tmp_path / "bob" / "adapter.py"), str(tmp_path / "alice" / "adapter.py")
    results = {"target": {"spec": spec, "adapter": spec, "name": "bob/adapter"},
               "environment": {"command": f"refnet conform {other} {spec}"},
               "checks": [{"module": spec, "detail": f"crashed: see {other}"}],
               "run": {"stderr": f'File "{spec}", line 1\nFile "{tmp_path}/alice/x.py"'}}
    copy = student_copy(results, command="refnet conform adapter.py", others=[other, spec])
    assert copy == {"target": {"spec": "adapter.py", "adapter": "adapter.py",
                               "name": "bob/adapter"},
                    "environment": {"command": "refnet conform adapter.py"},
                    "checks": [{"module": "adapter.py",
                                "detail": "crashed: see <another submission>/adapter.py"}],
                    "run": {"stderr": 'File "adapter.py", line 1\n'
                                      'File "<another submission>/x.py"'}}
