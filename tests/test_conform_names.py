"""``refnet conform``'s names: a scoreboard row per target under its distinguishing path, a
folder per target that is unique and never one of the scoreboard's own files, and
reproducers that are safe to paste into a shell."""

import io
import json
import os
import random
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from verification.conform import (
    ConformError,
    ConformOptions,
    _folder_names,
    _reproducer,
    distinguishing_names,
    reproducer,
    run_conform,
)

FRAMEWORKS = Path(__file__).parent / "frameworks"
REPORT_FILES = {"index.html", "results.json"}
# Characters a shell or a Python literal would treat specially
HOSTILE = "$(touch /tmp/refnet-pwned)`id`'\"\\\n\t ;|&<>*?!#~{}é→\x00\x1b\x85\u2028"


def _hostile_text(generator, length):
    return "".join(generator.choice(HOSTILE + "ab/:") for _ in range(length))


@pytest.mark.parametrize("specs, expected", [
    (["/x/alice/handout_adapter.py"], ["handout"]),
    (["refnet", "/x/handout_adapter.py", "/x/handout_adapter.py:WrongTanhDerivative"],
     ["refnet", "handout", "handout:WrongTanhDerivative"]),
    (["/x/alice/handout_adapter.py", "/y/bob/handout_adapter.py", "/x/handout-2_adapter.py"],
     ["alice/handout", "bob/handout", "handout-2"]),
    (["/x/alice/handout_adapter.py", "/y/alice/handout_adapter.py", "/z/bob/handout_adapter.py"],
     ["x/alice/handout", "y/alice/handout", "bob/handout"]),
    (["alice/handout_adapter.py", "/srv/alice/handout_adapter.py"],
     ["alice/handout", "srv/alice/handout"]),
    (["/x/handout_adapter.py", "/x/handout.py"], ["/x/handout_adapter.py", "/x/handout.py"]),
    (specs := ["x/handout_adapter.py", "x/handout.py", "x/handout.py_adapter.py",
               "y/handout.py_adapter.py"], specs),  # "x/handout.py" both a spec and a name
])
def test_each_target_is_named_by_the_shortest_path_that_tells_it_apart(specs, expected):
    assert distinguishing_names(specs) == expected


@pytest.mark.parametrize("names", [
    ["handout", "handout", "handout-2"],
    ["alice/handout", "alice_handout", "alice:handout"],
    ["index.html", "results.json", "Index.HTML", "RESULTS.json-2", "..", ""],
    ["Handout", "handout", "HANDOUT-2"],
])
def test_folders_are_unique_safe_and_never_the_scoreboards_own_files(names):
    folders = _folder_names(names)
    assert len({folder.lower() for folder in folders}) == len(names), folders
    assert not {folder.lower() for folder in folders} & REPORT_FILES, folders
    assert all(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", folder) for folder in folders), folders


def test_a_target_given_twice_is_refused_before_anything_runs(tmp_path):
    spec = str(FRAMEWORKS / "handout_adapter.py")
    with pytest.raises(ConformError, match="given more than once.*handout_adapter.py"):
        run_conform(ConformOptions(targets=(spec, "refnet", spec), out=tmp_path, quick=True,
                                   show_progress=False))
    assert list(tmp_path.iterdir()) == [], "nothing written"


@pytest.fixture(scope="module")
def same_stems(tmp_path_factory):
    """A scoreboard of five copies of the handout fixture: ``alice/handout_adapter.py``,
    ``bob/handout_adapter.py``, ``handout-2_adapter.py``, ``index.html.py`` and
    ``results.json.py``; with its status, ``results.json``, folder and what it printed."""
    folder, out = tmp_path_factory.mktemp("submissions"), tmp_path_factory.mktemp("board")
    adapters = [folder / "alice" / "handout_adapter.py", folder / "bob" / "handout_adapter.py",
                folder / "handout-2_adapter.py", folder / "index.html.py",
                folder / "results.json.py"]
    for adapter in adapters:
        adapter.parent.mkdir(exist_ok=True)
        shutil.copy(FRAMEWORKS / "handout_adapter.py", adapter)
        shutil.copy(FRAMEWORKS / "handout.py", adapter.parent / "handout.py")
    stream = io.StringIO()
    status = run_conform(ConformOptions(targets=tuple(map(str, adapters)), out=out, jobs=2,
                                        quick=True, show_progress=False, dtype="float64"),
                         stream=stream)  # (names do not depend on the dtype: one is enough)
    board = json.loads((out / "results.json").read_text())
    return status, board, out, stream.getvalue()


def test_same_stems_get_distinct_rows_and_reserved_names_do_not_crash(same_stems):
    status, board, out, printed = same_stems
    names = [target["name"] for target in board["targets"]]
    assert sorted(names) == ["alice/handout", "bob/handout", "handout-2", "index.html",
                             "results.json"], names
    assert status == 0 and board["status"] == "pass", [t["run"] for t in board["targets"]]
    html = (out / "index.html").read_text()
    for name in names:
        assert f">{name}</a>" in html, name
        assert any(line.startswith(f"{name}: PASS") for line in printed.splitlines()), printed


def test_every_target_has_its_own_folder_with_both_reports(same_stems):
    _, board, out, _ = same_stems
    folders = [target["folder"] for target in board["targets"]]
    assert len(set(folders)) == len(folders) and not set(folders) & REPORT_FILES, folders
    assert (out / "index.html").is_file() and (out / "results.json").is_file()
    for target in board["targets"]:
        results = json.loads((out / target["folder"] / "results.json").read_text())
        assert results["target"]["spec"] == Path(target["spec"]).name, "relative to its folder"
        assert results["target"]["name"] == target["name"], target["folder"]
        page = (out / target["folder"] / "index.html").read_text()
        assert f"<title>{target['name']}: conformance" in page, target["folder"]


def test_a_reproducer_passes_any_spec_case_and_id_through_unchanged():
    spec = "/tmp/a b/$(touch /tmp/refnet-pwned)/it's \"q\"\nnew\\line_adapter.py:Cls"
    options = ConformOptions(targets=(spec,), out=Path("unused"), quick=True, seed=3,
                             dtype="float32")
    command = reproducer(spec, options, "linear 3→4", "autograd/$(id)/'x'")
    assert shlex.split(command) == ["refnet", "conform", spec, "--case", "linear 3→4",
                                    "--check", "autograd/$(id)/'x'", "--quick", "--dtype",
                                    "float32", "--seed", "3"], command
    generator = random.Random(0)
    plain = ConformOptions(targets=("x",), out=Path("unused"))
    for _ in range(300):
        texts = [_hostile_text(generator, 1 + generator.randrange(12)) for _ in range(3)]
        assert shlex.split(reproducer(*texts[:1], plain, *texts[1:])) == [
            "refnet", "conform", texts[0], "--case", texts[1], "--check", texts[2]], texts


def test_a_plain_reproducer_reads_without_shell_escapes():
    options = ConformOptions(targets=("adapter.py",), out=Path("unused"))
    command = reproducer("adapter.py", options, "tanh", "autograd/Tanh()/input")
    assert command == "refnet conform adapter.py --case tanh --check 'autograd/Tanh()/input'"


def test_a_reports_reproducer_is_written_from_the_submissions_folder():
    spec = "subs/a b/$(touch x)'\n_adapter.py:Cls"
    options = ConformOptions(targets=(spec,), out=Path("unused"), quick=True)
    assert shlex.split(_reproducer(spec, {"case": "tanh", "id": "autograd/x"}, options)) == [
        "refnet", "conform", "$(touch x)'\n_adapter.py:Cls", "--case", "tanh", "--check",
        "autograd/x", "--quick"]
    assert shlex.split(_reproducer(spec, {"case": "", "id": "target/timeout"}, options)) == [
        "refnet", "conform", "$(touch x)'\n_adapter.py:Cls", "--quick"], "the whole target"
    assert shlex.split(_reproducer("refnet", {"case": "tanh", "id": "i"}, options))[2] == "refnet"


def test_a_pasted_reproducer_runs_nothing_from_the_spec(tmp_path):
    marker = tmp_path / "pwned"
    spec = f"{tmp_path}/x $(touch {marker}) `touch {marker}`'\"_adapter.py"
    options = ConformOptions(targets=(spec,), out=Path("unused"), quick=True)
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    completed = subprocess.run(["bash", "-c", reproducer(spec, options, "tanh", "id")],
                               capture_output=True, text=True, timeout=120,
                               env={**os.environ, "PATH": path})
    assert not marker.exists(), "the shell ran part of the spec"
    assert completed.returncode == 1 and "FAIL target/import-error" in completed.stdout, (
        completed.stdout + completed.stderr)
    assert f"target file {spec} does not exist" in completed.stdout, completed.stdout
