"""The verdict comes from the judge, not from the target (``verification/confined/remote.py``,
``executor.py``, ``worker.py``): each cheat below was run against the previous design and made
a target with a wrong Tanh derivative PASS; each is written here as a target, and none passes.
Also: the wire format refuses what it cannot read, and the judge's verdicts on the fixtures
equal those of the in-process path, id for id."""

import io
import struct
import subprocess
import sys
import textwrap

import pytest
import torch
from check_helpers import JUDGED, JUDGED_PLANTED, fixture_spec, hostile_adapter

from verification.confined import wire
from verification.confined.isolation import run_all, sandbox

HANG_GUARD = 300  # seconds: only against a test that would otherwise never end

# A Tanh whose backward is wrong (1 − x instead of 1 − y²): the cheats below try to hide it.
_WRONG_TANH = """
import handout as fw

class Adapter(Base):
    def tanh(self):
        return fw.WrongDerivativeTanh()
"""

_FORGED = ('{"plan": {"target": {"name": "x"}, "cases": 1, "built": ["tanh"], "skipped": []}}'
           '\n{"start": "tanh"}\n{"done": "tanh", "checks": []}\n{"finished": true}\n')

def _acting(component, action):
    """An adapter whose ``component`` is the identity that first does ``action`` (indented
    code, ``os`` imported) in every forward."""
    return f"""
import os

class Acting:
    def forward(self, x):
        {textwrap.indent(textwrap.dedent(action).strip(), " " * 8).lstrip()}
        return x

    def backward(self, gradient):
        return gradient

    def param(self):
        return []

class Adapter(Base):
    def {component}(self):
        return Acting()
"""


CHEATS = {
    "plain": _WRONG_TANH,
    # a record that says "all passed", written on every descriptor and every argument's path
    "forger": _WRONG_TANH + f"""
import os, sys
for fd in range(3, 256):
    try:
        os.write(fd, {_FORGED!r}.encode())
    except OSError:
        pass
for argument in sys.argv:
    try:
        open(argument, "a").write({_FORGED!r})
    except OSError:
        pass
""",
    "patcher": _WRONG_TANH + """
import gc
import importlib
import types


def harness(name):
    \"\"\"The harness's module ``name`` in the executor: out of sys.modules and off sys.path,
    so found by gc where it was loaded, else imported afresh where its files are reachable.\"\"\"
    found = next((module for module in gc.get_objects()
                  if isinstance(module, types.ModuleType) and module.__name__ == name), None)
    try:
        return found or importlib.import_module(name)
    except ImportError:
        return None


compare_module = harness("verification.checks.compare")
result_module = harness("verification.checks.result")

def always_pass(self):
    record = original(self)
    record["status"] = "pass"
    return record

if result_module is not None:
    original = result_module.CheckResult.as_dict
    result_module.CheckResult.as_dict = always_pass
    result_module.CheckResult.passed = property(lambda self: True)
if compare_module is not None:
    compare_module.error_ratios = lambda *args, **kwargs: (0.0, 0.0)
""",
    # forward x − x³/3 with its exact derivative 1 − x², and torch's tanh patched to the same
    # function: consistent with itself, so only a reference computed elsewhere can tell
    "torch_patcher": """
import torch

def cubic(x, *args, **kwargs):
    return x - x ** 3 / 3

torch.tanh = cubic
torch.Tensor.tanh = cubic
torch.nn.functional.tanh = cubic

class CubicTanh:
    def forward(self, x):
        self.x = x
        return cubic(x)

    def backward(self, gradient):
        return gradient * (1 - self.x ** 2)

    def param(self):
        return []

class Adapter(Base):
    def tanh(self):
        return CubicTanh()
""",
    "scribbler": _acting("relu", """
        for fd in range(3, 64):
            try:
                os.write(fd, b"\\xff" * 64)
            except OSError:
                pass"""),
    "quitter": _acting("sigmoid", "os._exit(0)"),
    # with bubblewrap the executor has a PID namespace of its own: the judge, and so its
    # record pipe and memory, are not in the target's /proc at all; this target raises at
    # import if it finds the judge, and the run would then be an import error
    "spy": """
import os

for entry in os.listdir("/proc"):
    try:
        command = open(f"/proc/{entry}/cmdline", "rb").read()
    except OSError:
        continue
    if b"verification.confined.worker" in command:
        raise RuntimeError(f"found the judge, process {entry}")
Adapter = Base
""",
}
"""Each cheat as the body of a hostile adapter over the handout fixture (``Base``)."""


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Every cheat's ``TargetRun``, judged side by side (``run_all``, two at a time) in float64
    alone: no cheat depends on the dtype."""
    folder = tmp_path_factory.mktemp("cheats")
    specs = [hostile_adapter(folder, name, body) for name, body in CHEATS.items()]
    return dict(zip(CHEATS, run_all(specs, jobs=2, timeout=HANG_GUARD, quick=True,
                                    dtype="float64"), strict=True))


def _failed(run, component):
    return [check for check in run.checks()
            if check["component"] == component and check["status"] == "fail"]


def test_the_wrong_tanh_alone_fails_so_each_cheat_below_is_measured_against_it(runs):
    run = runs["plain"]
    assert run.status == "completed", run.message
    assert _failed(run, "tanh")


def test_a_forged_record_written_on_every_descriptor_does_not_pass(runs):
    run = runs["forger"]
    assert run.status != "completed" or _failed(run, "tanh"), run
    assert "malformed" in run.message or _failed(run, "tanh"), run.message


def test_patching_the_harness_in_the_targets_process_changes_no_verdict(runs):
    run = runs["patcher"]
    assert run.status == "completed", run.message
    assert _failed(run, "tanh")


def test_patching_torch_in_the_targets_process_does_not_move_the_ground_truth(runs):
    run = runs["torch_patcher"]
    assert run.status == "completed", run.message
    failed = _failed(run, "tanh")
    assert any(check["kind"] == "autograd" for check in failed), failed


def test_garbage_on_the_reply_pipe_is_a_row_naming_the_tampering(runs):
    run = runs["scribbler"]
    assert run.status == "crashed", run
    assert "malformed" in run.message and "relu" in run.message, run.message


def test_an_executor_that_exits_mid_case_is_a_row_naming_the_case(runs):
    run = runs["quitter"]
    assert run.status == "crashed", run
    assert "exited with status 0" in run.message and "sigmoid" in run.message, run.message
    assert any(check["component"] == "linear" and check["status"] == "pass"
               for check in run.checks())


def test_the_target_cannot_see_its_judge(runs):
    if sandbox(HANG_GUARD)["tool"] is None:
        pytest.skip("bubblewrap does not run here: the judge is in the target's /proc")
    assert runs["spy"].status == "completed", runs["spy"].message


def test_the_judge_is_not_dumpable():
    """Without bubblewrap the judge is in the target's /proc: being non-dumpable closes its
    /proc/PID/mem and fd to a target run as the same ordinary user (not to root, whose
    CAP_SYS_PTRACE overrides it: the README says so)."""
    probe = ("import ctypes; from verification.confined.worker import _not_dumpable; "
             "_not_dumpable(); print(ctypes.CDLL(None).prctl(3, 0, 0, 0, 0))")
    completed = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                               check=True)
    assert completed.stdout.strip() == "0"


def _frame(header, body=b""):
    return struct.pack(">QQ", 8 + len(header) + len(body), len(header)) + header + body


@pytest.mark.parametrize("frame, problem", [
    (_frame(b"[1, 2]"), "not a dict"),
    (_frame(b"{not json"), "no JSON"),
    (_frame(b'{"v": {"$tensor": ["float64", [4], 0, 32]}}', b"\0" * 8), "do not hold"),
    (_frame(b'{"v": {"$tensor": ["complex64", [1], 0, 8]}}', b"\0" * 8), "described as"),
    (_frame(b'{"v": {"$object": "1"}}'), "no number"),
    (_frame(b'{"v": {"$dict": [1]}}'), "pairs"),
    (_frame(b'{"v": {"a": 1}}'), "dict where a wire value belongs"),
    (_frame(b'{"v": ' + b"[" * 40 + b"]" * 40 + b"}"), "nested deeper"),
    (struct.pack(">QQ", wire.FRAME_LIMIT + 1, 8), "the limit"),
    (_frame(b'{"v": 1}')[:-2], "cut short"),
])
def test_the_wire_refuses_what_it_cannot_read(frame, problem):
    with pytest.raises(wire.WireError, match=problem):
        wire.receive(io.BytesIO(frame))


def test_the_wire_carries_every_value_kind_exactly():
    message = {"value": [torch.tensor(1.5, dtype=torch.float64),
                         torch.arange(6.0).reshape(2, 3).T,
                         (1, "a", None, float("inf"), True),
                         torch.tensor([True, False]), torch.ones(2, dtype=torch.bfloat16),
                         torch.empty(0, 3), wire.tag("$dict", [["k", torch.tensor([1, 2])]]),
                         wire.tag("$dtype", "float32")]}
    stream = io.BytesIO()
    wire.send(stream, message)
    stream.seek(0)
    received = wire.receive(stream)["value"]
    for sent, got in zip(message["value"], received, strict=True):
        if isinstance(sent, torch.Tensor):
            assert got.dtype == sent.dtype and torch.equal(got, sent)
        elif wire.untag(sent)[0] == "$dict":
            (key, tensor), = got["$dict"]
            assert key == "k" and torch.equal(tensor, torch.tensor([1, 2]))
        else:
            assert got == sent
    with pytest.raises(EOFError):
        wire.receive(stream)


@pytest.mark.parametrize("name", JUDGED)
def test_the_judge_gives_the_in_process_verdicts_id_for_id(name, judged, in_process):
    """Through ``refnet conform`` (the executor in its sandbox, parameters shared both ways,
    losses that drive the model, gradients rebound, optimisers on shared pairs, tensors the
    target writes into later) every check of every fixture has, in both dtypes, the id and
    the status it has when the target runs in the harness's own process."""
    spec = fixture_spec(name)
    remote = {check["id"]: check["status"] for check in judged.results(spec)["checks"]}
    local = {result.id: ("pass" if result.passed else "fail") for result in in_process(spec)}
    assert judged.targets[spec]["run"]["status"] == "completed", judged.targets[spec]["run"]
    differing = sorted(i for i in remote.keys() | local.keys() if remote.get(i) != local.get(i))
    assert not differing, [(i, "judge:", remote.get(i), "in process:", local.get(i))
                           for i in differing[:10]]
    dtypes = {check["dtype"] for check in judged.results(spec)["checks"]}
    assert dtypes == ({"float32"} if name.startswith("float32") else {"float64", "float32"})
    assert ("fail" in remote.values()) == (name in JUDGED_PLANTED), name
