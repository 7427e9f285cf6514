"""Assertions and test data shared by the tests of the verification checks."""

import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest

FRAMEWORKS = Path(__file__).parent / "frameworks"
HANG_GUARD = 120.0
"""Seconds to wait for something that takes a few seconds, before calling it a hang."""


def stop_with(process, number):
    """Send the signal ``number`` to ``process`` (a ``Popen`` of the ``refnet`` command) and
    return its exit status; kill it and fail the test if it still runs ``HANG_GUARD`` seconds
    later. No tighter wall-clock bound is asserted (shared machines are 2-3x apart): the
    caller's exit status, report and processes show that the signal stopped the run, which
    left alone runs for minutes or hangs."""
    process.send_signal(number)
    try:
        return process.wait(timeout=HANG_GUARD)
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail(f"{process.args[3:5]} still running {HANG_GUARD} s after {number.name}")


def assert_all_pass(results):
    """Every ``CheckResult`` passed, and there was at least one; a failure shows its detail."""
    assert results, "the check returned no results"
    for result in results:
        assert result.passed, result.detail


def failed_ids(results):
    """The ids of the failed ``CheckResult``s."""
    return {result.id for result in results if not result.passed}


def hostile_adapter(folder, name, body, marker=None):
    """Write ``<name>_adapter.py`` into ``folder``: the handout fixture's correct adapter, as
    ``Base``, then (with a ``marker`` path) code that writes the target's pid, process group,
    cwd, $HOME and argv there, then ``body`` (its hostile part); return its path as a spec.
    The fixture is copied beside it (``handout_beside``): a sandboxed submission sees its own
    folder alone."""
    path = Path(folder) / f"{name}_adapter.py"
    handout_beside(folder)
    path.write_text("import sys\nfrom handout_adapter import Adapter as Base\n\n"
                    + (_MARKER.format(path=str(marker)) if marker else "")
                    + textwrap.dedent(body))
    return str(path)


def handout_beside(folder):
    """Copy the handout fixture (``handout.py``, ``handout_adapter.py``) into ``folder``, where
    an adapter written there imports it as a sibling."""
    for name in ("handout.py", "handout_adapter.py"):
        if not (Path(folder) / name).exists():
            shutil.copy(FRAMEWORKS / name, Path(folder) / name)


_MARKER = ("import json, os\nopen({path!r}, 'w').write(json.dumps({{'pid': os.getpid(), "
           "'pgid': os.getpgid(0), 'cwd': os.getcwd(), 'home': os.path.expanduser('~'), "
           "'argv': sys.argv}}))\n")


FIXTURE_NAMES = ("handout", "transposed", "per_sample", "float32", "dynamic", "convention",
                 "objects", "folded", "driven", "columns", "extras", "momentum")
"""The fixture frameworks of ``tests/frameworks/`` (``<name>.py`` and ``<name>_adapter.py``)."""

JUDGED_PLANTED = (
    "handout_adapter.py:WrongTanhDerivative", "handout_adapter.py:CorrectOnlyInFloat64",
    "float32_adapter.py:DropoutMaskReused", "dynamic_adapter.py:ExpRatioTanh",
    "per_sample_adapter.py:ReLUWritesIntoInput", "dynamic_adapter.py:BackwardOverwritesOutput",
    "folded_adapter.py:DerivativeIntoOutput", "transposed_adapter.py:OverwrittenGradients",
    "objects_adapter.py:LinearRebindsGradient", "float32_adapter.py:LinearZeroGradRebinds",
    "columns_adapter.py:GradReturnsCopies", "extras_adapter.py:DropoutEvalStaleMask",
    "driven_adapter.py:LossDrivesStaleGradient")
"""Planted bugs judged through ``refnet conform`` as well as in one process: a failure of
every check kind, and every bug whose evidence is a tensor the target keeps and changes
later (side effects, accumulation, rebound gradients, reused masks), which is what the judge
must carry back from the executor."""

JUDGED = ("refnet", *(f"{name}_adapter.py" for name in FIXTURE_NAMES), *JUDGED_PLANTED)
"""The targets of the session's shared scoreboard (``conftest.judged``), as ``fixture_spec``
takes them."""


def fixture_spec(name):
    """The spec of a fixture named as in ``JUDGED``: ``refnet``, or a path in FRAMEWORKS."""
    return name if name == "refnet" else str(FRAMEWORKS / name)
