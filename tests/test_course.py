"""Course profiles (``--course``): the profile's keys, the rules read from a submission's
source and watched while it runs, required components, and a class graded in one run."""

import csv
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from check_helpers import FRAMEWORKS

from verification.confined.remote import _reply_problem
from verification.conform import ConformError, ConformOptions, run_conform
from verification.course.profile import BUILTIN, COURSE_COMPONENTS, Course, CourseError, load_course
from verification.course.sources import MAX_BYTES, scan
from verification.suite.conformance import check_target, planned_cases
from verification.targets.adapter import COMPONENTS, load_target

COURSE = Path(__file__).parent / "course"
EE559 = BUILTIN["ee559"]
CLASS = ("honest", "no_tanh", "imports_nn", "functional", "autograd")
"""The submissions of ``tests/course``, each ``<name>_adapter.py``."""
CLEAN = ("refnet", "handout", "objects", "extras", "momentum", "dynamic")
"""refnet and fixture frameworks written without torch.nn or autograd: no rule may flag them."""
RUN_CLEAN = ("refnet", "objects", "extras")
"""Those also run under the course (``graded``): refnet, Parameter objects, and declared extra
activations (whose torch functions the executor itself calls at load)."""


# --- the profile ------------------------------------------------------------------------

def test_ee559_is_the_course_of_the_seed_report():
    assert EE559.required == ("linear", "relu", "tanh", "sequential", "mse_loss")
    assert EE559.forbidden == ("torch.autograd", "torch.nn", "torch.optim")
    assert EE559.grad_mode == "off" and not EE559.instance_reuse
    assert load_course("ee559") is EE559


def test_the_profile_names_the_adapter_contract_components():
    assert COURSE_COMPONENTS == COMPONENTS


def test_a_toml_profile_reads_back_and_crosses_a_process_as_json(tmp_path):
    path = tmp_path / "course.toml"
    path.write_text('name = "mine"\nrequired = ["linear", "mse_loss"]\nforbidden = ["torch.nn"]\n'
                    'optional = ["sgd"]\ndtypes = ["float64"]\n')
    course = load_course(str(path))
    assert (course.name, course.required, course.optional, course.dtypes) == (
        "mine", ("linear", "mse_loss"), ("sgd",), ("float64",))
    assert course.plans("sgd") and course.plans("linear") and not course.plans("adam")
    assert Course.from_json(course.as_json()) == course
    assert Course.from_json(EE559.as_json()) == EE559


@pytest.mark.parametrize("text, named", [
    ('name = "x"\nrequired = ["linear"]\nrequird = ["tanh"]\n', "unknown key(s) ['requird']"),
    ('name = "x"\nrequired = ["linaer"]\n', "unknown component(s) ['linaer']"),
    ('name = "x"\noptional = ["softmax"]\n', "unknown component(s) ['softmax']"),
    ('name = "x"\ngrad_mode = "on"\n', "'grad_mode' must be one of"),
    ('name = "x"\nforbidden = ["torch nn"]\n', "not dotted module names"),
    ('name = "x"\ndtypes = ["float16"]\n', "'dtypes' must name"),
    ('required = ["linear"]\n', "'name' (a non-empty string) is required"),
    ('name = "x"\nrequired = "linear"\n', "'required' must be a list"),
    ('name = "x"\nrequired = [\n', "course file"),
])
def test_a_bad_profile_is_refused_naming_the_key(tmp_path, text, named):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(CourseError, match=None) as raised:
        load_course(str(path))
    assert named in str(raised.value), str(raised.value)


def test_a_bad_profile_stops_refnet_conform_before_any_target_runs(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(ConformError, match="no built-in profile of that name"):
        run_conform(ConformOptions(targets=(str(COURSE / "honest_adapter.py"),), out=out,
                                   course="ee599", show_progress=False))
    assert not out.exists()


# --- the source -------------------------------------------------------------------------

SPELLINGS = {
    "import torch.nn as nn\n": "torch.nn",
    "import torch.nn\n": "torch.nn",
    "from torch import nn, autograd\n": "torch.nn",
    "from torch.nn.functional import relu\n": "torch.nn.functional.relu",
    "import torch\ny = torch.nn.functional.relu(x)\n": "torch.nn.functional.relu",
    "import torch as t\nt.autograd.grad(y, x)\n": "torch.autograd.grad",
    "import torch\nmodule = getattr(torch, 'autograd')\n": "torch.autograd",
    "m = __import__('torch.optim')\n": "torch.optim",
    "import importlib\nm = importlib.import_module('torch.nn.init')\n": "torch.nn.init",
    "x.requires_grad_()\n": ".requires_grad_() (autograd)",
    "x = torch.zeros(3, requires_grad=True)\n": "requires_grad=True (autograd)",
    "x.requires_grad = True\n": ".requires_grad = … (autograd)",
    "print(y.grad_fn)\n": ".grad_fn (autograd)",
}


@pytest.mark.parametrize("source, name", SPELLINGS.items())
def test_every_spelling_of_a_forbidden_use_is_found_with_its_line(tmp_path, source, name):
    adapter = tmp_path / "adapter.py"
    adapter.write_text("# a submission\n" + source)
    found = scan(str(adapter), EE559.forbidden, EE559.allowed)
    names = [f.name for f in found.findings]
    assert name in names, f"{source!r}: found {names}"
    finding = next(f for f in found.findings if f.name == name)
    assert finding.path == "adapter.py" and finding.line >= 2
    assert finding.source == source.splitlines()[finding.line - 2].strip()


@pytest.mark.parametrize("source", [
    "import torch\nwith torch.no_grad():\n    pass\n",
    "import torch\ntorch.set_grad_enabled(False)\n",
    "import torch\nwith torch.autograd.no_grad():\n    pass\n",
    "from torch.autograd import set_grad_enabled\n",
    "x.requires_grad_(False)\ny = torch.zeros(2, requires_grad=False)\nprint(x.requires_grad)\n",
    '"""Unlike torch.nn.Linear, this layer ..."""\n# import torch.nn\ns = "torch.autograd"\n',
    "import torch\ny = torch.tanh(x) + torch.relu(x)\n",
])
def test_allowed_uses_and_mere_mentions_are_not_findings(tmp_path, source):
    adapter = tmp_path / "adapter.py"
    adapter.write_text(source)
    found = scan(str(adapter), EE559.forbidden, EE559.allowed)
    assert found.files == ("adapter.py",) and found.findings == (), found.findings


def test_the_files_read_are_the_adapter_and_what_it_imports_from_its_folder(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "adapter.py").write_text("import helper\nfrom pkg import layers\nimport json\n")
    (tmp_path / "helper.py").write_text("from . import nothing\n")
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "layers.py").write_text("from .deep import x\n")
    (tmp_path / "pkg" / "deep.py").write_text("import torch.nn\n")
    (tmp_path / "unrelated.py").write_text("import torch.nn\n")
    (tmp_path / "big.py").write_text("")
    found = scan(str(tmp_path / "adapter.py"), EE559.forbidden)
    assert set(found.files) == {"adapter.py", "helper.py", "pkg/__init__.py", "pkg/layers.py",
                                "pkg/deep.py"}
    assert [(f.path, f.name) for f in found.findings] == [("pkg/deep.py", "torch.nn")]


def test_a_file_too_big_or_not_python_is_named_not_read(tmp_path):
    (tmp_path / "adapter.py").write_text("import huge\nimport broken\n")
    (tmp_path / "huge.py").write_text("#" * (MAX_BYTES + 1))
    (tmp_path / "broken.py").write_text("def (:\n")
    found = scan(str(tmp_path / "adapter.py"), EE559.forbidden)
    assert found.files == ("adapter.py",)
    assert any(item.startswith("huge.py:") for item in found.unread)
    assert any(item.startswith("broken.py: SyntaxError") for item in found.unread)


def test_nothing_outside_the_submission_is_read():
    """An importable name found only in site-packages has no source of the submission to
    read: the rule fails saying so rather than passing having read nothing."""
    assert scan("torch", EE559.forbidden).files == ()
    results = check_target(load_target("refnet"), dtypes=(torch.float64,), quick=True,
                           course=Course(name="t", forbidden=("torch.nn",)))
    assert all(r.passed for r in results if r.kind == "rule"), "refnet reads as clean"


@pytest.mark.parametrize("name", CLEAN)
def test_no_source_rule_flags_refnet_or_a_fixture_framework(name):
    spec = name if name == "refnet" else str(FRAMEWORKS / f"{name}_adapter.py")
    found = scan(spec, EE559.forbidden, EE559.allowed)
    assert len(found.files) >= 2 and found.findings == () and found.unread == (), found


# --- the plan ---------------------------------------------------------------------------

def test_under_a_course_only_its_components_are_planned_and_nothing_else_is_skipped():
    target = load_target(str(FRAMEWORKS / "handout_adapter.py"))
    plain, skipped = planned_cases(target, dtypes=(torch.float64,))
    assert any(case.name.startswith("instance reuse") for case in plain) and skipped
    cases, skipped = planned_cases(target, dtypes=(torch.float64,), course=EE559)
    names = [case.name for case in cases]
    assert skipped == [], "the course asked for none of adam, dropout, cross-entropy, BCE"
    assert not any(name.startswith("instance reuse") for name in names)
    assert names[:6] == ["course rules (source)", *(f"requires {c}" for c in EE559.required)]
    assert "sigmoid" in names, "an optional component the adapter offers is still checked"
    narrow = Course(name="narrow", required=("linear", "mse_loss"), optional=())
    names = [case.name for case in planned_cases(target, dtypes=(torch.float64,),
                                                 course=narrow)[0]]
    assert "sigmoid" not in names and "tanh" not in names and "linear 3→4" in names


def test_a_missing_required_component_keeps_its_skipped_cases_listed():
    target = load_target(str(COURSE / "no_tanh_adapter.py"))
    _, skipped = planned_cases(target, dtypes=(torch.float64,), course=EE559)
    assert {entry.reason for entry in skipped} == {"the adapter has no tanh()"}


def test_in_one_process_the_source_and_the_required_components_are_judged():
    results = check_target(load_target(str(COURSE / "imports_nn_adapter.py")),
                           dtypes=(torch.float64,), quick=True, course=EE559)
    by_id = {r.id: r for r in results}
    assert not by_id["rule/torch.nn/source"].passed
    assert "imports_nn_adapter.py:4: torch.nn — import torch.nn as nn" in (
        by_id["rule/torch.nn/source"].detail)
    assert not any(r.id.endswith("/run") for r in results), "nothing watches this process"


# --- the executor's reply ---------------------------------------------------------------

STATE = [False, {"$dtype": "float64"}]


@pytest.mark.parametrize("calls", [
    "torch.nn", [["torch.nn", "relu", 0, ""]], [["torch.nn", "relu", 1]],
    [["torch.nn", "x" * 301, 1, ""]], [["torch.nn", "relu", 1.5, ""]],
    [["torch.nn", "relu", 1, ""]] * 1001,
])
def test_a_malformed_calls_field_is_a_malformed_reply(calls):
    reply = {"value": None, "state": STATE, "changed": [], "calls": calls}
    assert "calls" in _reply_problem(reply, {})
    assert _reply_problem({**reply, "calls": [["torch.nn", "relu", 3, "import"]]}, {}) is None


# --- the watch, in a process of its own --------------------------------------------------

WATCHED = '''
import json, torch
from verification.course.watch import Watch
watch = Watch(("torch.autograd", "torch.nn", "torch.optim"), ("torch.autograd.grad_mode",))
watch.install()
watch.phase = ""
x = torch.randn(3, 3)
repr(x); x.T @ x; torch.relu(x); torch.tanh(x)
with torch.no_grad():
    torch.set_grad_enabled(False)
torch.set_grad_enabled(True)
clean = watch.take()
import torch.nn.functional as F
F.relu(x); torch.nn.Linear(3, 3)(x); torch.nn.init.xavier_uniform_(torch.empty(3, 3))
y = x.clone().requires_grad_(); (y * 2).sum().backward(); torch.autograd.grad((y * 3).sum(), y)
torch.optim.SGD([y], lr=0.1).step()
print(json.dumps({"clean": clean, "used": sorted(name for _, name, _, _ in watch.take())}))
'''


def test_the_watch_counts_the_submissions_calls_and_not_torchs_own():
    out = subprocess.run([sys.executable, "-c", WATCHED], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).parents[1]).stdout
    seen = json.loads(out)
    assert seen["clean"] == [], "tensor operations, printing and grad-mode switches are allowed"
    assert seen["used"] == sorted([
        "torch.nn.functional.relu", "torch.nn.Linear", "torch.nn.Module",
        "torch.nn.init.xavier_uniform_", "Tensor.requires_grad_", "Tensor.backward",
        "torch.autograd.grad", "torch.optim.SGD"]), seen["used"]


# --- a class graded in one run ------------------------------------------------------------

GRAD_PROBE = '''
import torch
from honest_adapter import Adapter as Honest
import handmade


class ReLU(handmade.ReLU):
    def forward(self, x):
        if torch.is_grad_enabled():
            raise RuntimeError("autograd is on")
        return super().forward(x)


class Adapter(Honest):
    def relu(self):
        return ReLU()
'''


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """``refnet conform --course ee559`` over the class of ``tests/course``, a submission that
    fails where autograd is on, refnet and clean fixture frameworks: ``(status, terminal,
    scoreboard, {name: results})``."""
    folder = tmp_path_factory.mktemp("probe")
    for name in ("handmade.py", "honest_adapter.py"):
        shutil.copy(COURSE / name, folder / name)
    (folder / "grad_probe_adapter.py").write_text(GRAD_PROBE)
    specs = [*(str(COURSE / f"{name}_adapter.py") for name in CLASS),
             str(folder / "grad_probe_adapter.py"),
             *(name if name == "refnet" else str(FRAMEWORKS / f"{name}_adapter.py")
               for name in RUN_CLEAN)]
    out = tmp_path_factory.mktemp("class")
    terminal = io.StringIO()
    status = run_conform(ConformOptions(targets=tuple(specs), out=out, jobs=2, quick=True,
                                        dtype="float64", course="ee559", show_progress=False),
                         terminal)
    board = json.loads((out / "results.json").read_text())
    results = {t["name"].split("/")[-1]: json.loads(
        (out / t["folder"] / "results.json").read_text()) for t in board["targets"]}
    return status, terminal.getvalue(), board, results, out


def _rules(results):
    return {rule["id"]: rule for rule in results["rules"]}


def test_the_honest_submission_passes_every_rule(graded):
    _, _, _, results, _ = graded
    honest = results["honest"]
    assert honest["status"] == "pass" and honest["missing_components"] == []
    assert len(honest["rules"]) == 6 and all(r["status"] == "pass" for r in honest["rules"])
    assert honest["course"]["name"] == "ee559"


def test_a_missing_required_component_fails_the_target(graded):
    _, terminal, board, results, _ = graded
    assert results["no_tanh"]["status"] == "fail"
    assert results["no_tanh"]["missing_components"] == ["tanh"]
    assert results["no_tanh"]["components"]["tanh"]["status"] == "fail"
    assert "FAILED tanh: the course ee559 requires tanh(); the adapter has none" in terminal
    row = next(t for t in board["targets"] if t["name"] == "no_tanh")
    assert row["missing_components"] == ["tanh"] and row["rules_broken"] == []


def test_importing_torch_nn_breaks_the_source_rule_not_the_run_rule(graded):
    rules = _rules(graded[3]["imports_nn"])
    assert rules["rule/torch.nn/source"]["status"] == "fail"
    assert rules["rule/torch.nn/source"]["evidence"][0] == (
        "imports_nn_adapter.py:4: torch.nn — import torch.nn as nn")
    assert rules["rule/torch.nn/run"]["status"] == "pass"
    assert graded[3]["imports_nn"]["status"] == "fail"


def test_torch_nn_functional_in_a_forward_breaks_both_rules_naming_the_call_and_case(graded):
    rules = _rules(graded[3]["functional"])
    assert rules["rule/torch.nn/source"]["status"] == "fail"
    assert rules["rule/torch.nn/run"]["status"] == "fail"
    assert rules["rule/torch.nn/run"]["evidence"][0].startswith(
        "torch.nn.functional.relu: ") and "first in case 'relu'" in (
        rules["rule/torch.nn/run"]["evidence"][0])
    assert rules["rule/torch.autograd/run"]["status"] == "pass"
    numeric = [c for c in graded[3]["functional"]["checks"] if c["kind"] not in ("rule",
                                                                                "required")]
    assert all(c["status"] == "pass" for c in numeric), "its numbers are right: only rules fail"


def test_a_backward_by_autograd_breaks_the_autograd_rules(graded):
    rules = _rules(graded[3]["autograd"])
    assert rules["rule/torch.autograd/source"]["status"] == "fail"
    run = rules["rule/torch.autograd/run"]
    assert run["status"] == "fail" and any(
        line.startswith("torch.autograd.grad: ") and "first in case 'tanh'" in line
        for line in run["evidence"])
    assert rules["rule/torch.nn/run"]["status"] == "pass"


def test_the_submission_runs_with_autograd_off(graded):
    assert graded[3]["grad_probe"]["status"] == "pass"


@pytest.mark.parametrize("name", RUN_CLEAN)
def test_no_rule_flags_refnet_or_a_clean_fixture_while_it_runs(graded, name):
    rules = _rules(graded[3][name])
    assert len(rules) == 6 and all(r["status"] == "pass" for r in rules.values()), rules


def test_the_rules_sit_first_on_the_scoreboard_in_the_terminal_and_in_the_report(graded):
    status, terminal, board, _, out = graded
    assert status == 1 and board["components"][0] == "rules"
    assert board["course"]["name"] == "ee559"
    assert "refnet conform: course ee559: requires linear, relu, tanh" in terminal
    assert ("RULE BROKEN rule/torch.nn/source: the course forbids torch.nn; the source uses "
            "it 2 time(s) (functional.py:") in terminal
    page = (out / "functional" / "index.html").read_text()
    assert page.index('id="rules"') < page.index('id="matrix"')
    line = next(number for number, text in enumerate(
        (COURSE / "functional.py").read_text().splitlines(), 1) if "F.relu(x)" in text)
    assert f"functional.py:{line}: torch.nn.functional.relu — return F.relu(x)" in page
    assert 'id="course"' in (out / "index.html").read_text()


def test_grades_csv_lists_each_broken_rule_and_missing_component(graded):
    rows = {row["name"]: row for row in csv.DictReader(
        (graded[4] / "grades.csv").read_text().splitlines())}
    assert rows["functional"]["rules_broken"] == "rule/torch.nn/source;rule/torch.nn/run"
    assert rows["imports_nn"]["rules_broken"] == "rule/torch.nn/source"
    assert rows["no_tanh"]["missing_components"] == "tanh" and rows["no_tanh"]["tanh"] == "fail"
    assert rows["honest"]["verdict"] == "pass" and rows["honest"]["rules"] == "pass"
