"""Assertions and test data shared by the tests of the verification checks."""

import textwrap
from pathlib import Path

FRAMEWORKS = Path(__file__).parent / "frameworks"


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
    cwd, $HOME and argv there, then ``body`` (its hostile part); return its path as a spec."""
    path = Path(folder) / f"{name}_adapter.py"
    path.write_text(f"import sys\nsys.path.insert(0, {str(FRAMEWORKS)!r})\n"
                    "from handout_adapter import Adapter as Base\n\n"
                    + (_MARKER.format(path=str(marker)) if marker else "")
                    + textwrap.dedent(body))
    return str(path)


_MARKER = ("import json, os\nopen({path!r}, 'w').write(json.dumps({{'pid': os.getpid(), "
           "'pgid': os.getpgid(0), 'cwd': os.getcwd(), 'home': os.path.expanduser('~'), "
           "'argv': sys.argv}}))\n")
