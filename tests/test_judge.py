"""The verdict comes from the judge, not from the target (``verification/targets/remote.py``,
``executor.py``, ``worker.py``): each cheat below was run against the previous design and made
a target with a wrong Tanh derivative PASS; each is written here as a target, and none passes.
Also: the wire format refuses what it cannot read, and the judge's verdicts on the fixtures
equal those of the in-process path, id for id."""

import io
import struct
import subprocess
import sys

import pytest
import torch
from check_helpers import FRAMEWORKS, hostile_adapter

from verification.suite.conformance import check_target
from verification.targets import wire
from verification.targets.adapter import load_target
from verification.targets.isolation import run_isolated, sandbox

HANG_GUARD = 180  # seconds: only against a test that would otherwise never end

# A Tanh whose backward is wrong (1 − x instead of 1 − y²): the cheats below try to hide it.
_WRONG_TANH = """
import handout as fw

class Adapter(Base):
    def tanh(self):
        return fw.WrongDerivativeTanh()
"""


def _failed(run, component):
    return [check for check in run.checks()
            if check["component"] == component and check["status"] == "fail"]


def _run(spec):
    return run_isolated(spec, timeout=HANG_GUARD, quick=True)


def test_the_wrong_tanh_alone_fails_so_each_cheat_below_is_measured_against_it(tmp_path):
    run = _run(hostile_adapter(tmp_path, "plain", _WRONG_TANH))
    assert run.status == "completed", run.message
    assert _failed(run, "tanh")


def test_a_forged_record_written_on_every_descriptor_does_not_pass(tmp_path):
    forged = ('{"plan": {"target": {"name": "x"}, "cases": 1, "built": ["tanh"], "skipped": []}}'
              '\\n{"start": "tanh"}\\n{"done": "tanh", "checks": []}\\n{"finished": true}\\n')
    spec = hostile_adapter(tmp_path, "forger", _WRONG_TANH + f"""
import os, sys
for fd in range(3, 256):
    try:
        os.write(fd, {forged!r}.encode())
    except OSError:
        pass
for argument in sys.argv:
    try:
        open(argument, "a").write({forged!r})
    except OSError:
        pass
""")
    run = _run(spec)
    assert run.status != "completed" or _failed(run, "tanh"), run
    assert "malformed" in run.message or _failed(run, "tanh"), run.message


def test_patching_the_harness_in_the_targets_process_changes_no_verdict(tmp_path):
    spec = hostile_adapter(tmp_path, "patcher", _WRONG_TANH + """
import verification.checks.compare as compare_module
import verification.checks.result as result_module

def always_pass(self):
    record = original(self)
    record["status"] = "pass"
    return record

original = result_module.CheckResult.as_dict
result_module.CheckResult.as_dict = always_pass
result_module.CheckResult.passed = property(lambda self: True)
compare_module.error_ratios = lambda *args, **kwargs: (0.0, 0.0)
""")
    run = _run(spec)
    assert run.status == "completed", run.message
    assert _failed(run, "tanh")


def test_patching_torch_in_the_targets_process_does_not_move_the_ground_truth(tmp_path):
    """Forward x − x³/3 with its exact derivative 1 − x², and torch's tanh patched to the same
    function: consistent with itself, so only a reference computed elsewhere can tell."""
    spec = hostile_adapter(tmp_path, "torch_patcher", """
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
""")
    run = _run(spec)
    assert run.status == "completed", run.message
    failed = _failed(run, "tanh")
    assert any(check["kind"] == "autograd" for check in failed), failed


def test_garbage_on_the_reply_pipe_is_a_row_naming_the_tampering(tmp_path):
    spec = hostile_adapter(tmp_path, "scribbler", """
import os

class Scribbling:
    def forward(self, x):
        for fd in range(3, 64):
            try:
                os.write(fd, b"\\xff" * 64)
            except OSError:
                pass
        return x

    def backward(self, gradient):
        return gradient

    def param(self):
        return []

class Adapter(Base):
    def relu(self):
        return Scribbling()
""")
    run = _run(spec)
    assert run.status == "crashed", run
    assert "malformed" in run.message and "relu" in run.message, run.message


def test_an_executor_that_exits_mid_case_is_a_row_naming_the_case(tmp_path):
    spec = hostile_adapter(tmp_path, "quitter", """
import os

class Quitting:
    def forward(self, x):
        os._exit(0)

    def backward(self, gradient):
        return gradient

    def param(self):
        return []

class Adapter(Base):
    def sigmoid(self):
        return Quitting()
""")
    run = _run(spec)
    assert run.status == "crashed", run
    assert "exited with status 0" in run.message and "sigmoid" in run.message, run.message
    assert any(check["component"] == "linear" and check["status"] == "pass"
               for check in run.checks())


def test_the_target_cannot_see_its_judge(tmp_path):
    """With bubblewrap the executor has a PID namespace of its own: the judge, and so its
    record pipe and memory, are not in the target's /proc at all. The target raises at import
    if it finds the judge, and the run would then be an import error."""
    if sandbox(HANG_GUARD)["tool"] is None:
        pytest.skip("bubblewrap does not run here: the judge is in the target's /proc")
    spy = hostile_adapter(tmp_path, "spy", """
import os

for entry in os.listdir("/proc"):
    try:
        command = open(f"/proc/{entry}/cmdline", "rb").read()
    except OSError:
        continue
    if b"verification.targets.worker" in command:
        raise RuntimeError(f"found the judge, process {entry}")
Adapter = Base
""")
    run = _run(spy)
    assert run.status == "completed", run.message


def test_the_judge_is_not_dumpable():
    """Without bubblewrap the judge is in the target's /proc: being non-dumpable closes its
    /proc/PID/mem and fd to a target run as the same ordinary user (not to root, whose
    CAP_SYS_PTRACE overrides it: the README says so)."""
    probe = ("import ctypes; from verification.targets.worker import _not_dumpable; "
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


@pytest.mark.parametrize("spec", [
    "handout_adapter.py:WrongTanhDerivative",
    "driven_adapter.py",
    "float32_adapter.py:LinearZeroGradRebinds",
    "dynamic_adapter.py",
])
def test_the_judge_gives_the_in_process_verdicts_id_for_id(spec):
    """Through the executor (parameters shared both ways, losses that drive the model,
    gradients rebound, optimisers on shared pairs) every check has the id and the status it
    has when the target runs in the harness's own process."""
    path = str(FRAMEWORKS / spec)
    remote = {check["id"]: check["status"] for check in _run(path).checks()}
    local = {result.as_dict()["id"]: result.as_dict()["status"]
             for result in check_target(load_target(path), quick=True)}
    assert remote == local
    assert "fail" in remote.values() or spec in ("driven_adapter.py", "dynamic_adapter.py")
