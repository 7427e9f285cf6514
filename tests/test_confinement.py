"""What a submission's executor can see and be (``verification/confined/confinement.py``),
measured from outside: a hostile student in a class graded with ``refnet conform`` looks for a
classmate's source, the grader's files, environment and sockets, an earlier scoreboard, its own
privileges and signs that it is being graded, and writes what it found to its stdout and into
its exception texts; none of it may reach a report."""

import io
import json
import socket
import textwrap
import threading

import pytest
from check_helpers import HANG_GUARD, handout_beside

from verification.confined import confinement
from verification.confined.isolation import run_isolated, sandbox
from verification.conform import ConformOptions, run_conform

SECRETS = {"classmate": "BOB-SOURCE-4f1c", "home": "HOME-FILE-77aa", "token": "TOKEN-91d3",
           "board": "EARLIER-BOARD-5e02", "pythonpath": "GRADER-LIB-c0de"}

needs_bubblewrap = pytest.mark.skipif(
    sandbox(timeout=1)["tool"] is None, reason="no bubblewrap sandbox here")

_PROBE = '''
import json, os, socket, sys

def _read(path):
    try:
        with open(path, errors="replace") as file:
            return file.read()
    except OSError as failure:
        return f"unreadable: {{failure}}"

def _connect(path):
    try:
        with socket.socket(socket.AF_UNIX) as client:
            client.settimeout(2)
            client.connect(path)
        return "connected"
    except (OSError, TypeError) as failure:
        return f"refused: {{failure}}"

def _fill(path, mib):
    try:
        with open(path, "wb") as file:
            file.write(bytes(mib * 2**20))
        return "written"
    except OSError as failure:
        return f"refused: {{failure.strerror}}"

def _grader_module():
    try:
        import grader_lib_secret
        return grader_lib_secret.SECRET
    except ImportError as failure:
        return f"not found: {{failure}}"

FACTS = {{
    "classmate": _read(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bob",
                                    "adapter.py")),
    "classmate_literal": _read({bob!r}),
    "home": _read(os.path.join(os.path.expanduser("~"), "secret.txt")),
    "home_literal": _read({home!r}),
    "passwd": _read("/etc/passwd"),
    "board": _read({board!r}),
    "environment": dict(os.environ),
    "grader_module": _grader_module(),
    "socket_env": _connect(os.environ.get("SSH_AUTH_SOCK")),
    "socket_literal": _connect({sock!r}),
    "root_write": _fill("/planted", 1),
    "private_1": _fill("first.bin", 40),
    "private_2_shm": _fill("/dev/shm/second.bin", 40),
    "uid": [os.getuid(), os.getgid(), os.geteuid()],
    "capabilities": [line for line in _read("/proc/self/status").splitlines()
                     if line.startswith("Cap")],
    "userns": _fill("/proc/self/uid_map", 0),
    "cwd": os.getcwd(),
    "pid1": _read("/proc/1/cmdline").replace("\\0", " "),
    "cmdline": _read("/proc/self/cmdline").replace("\\0", " "),
    "modules": sorted(name for name in sys.modules
                      if name.partition(".")[0] in ("verification", "refnet")),
    "module_name": __name__,
    "sys_path": sys.path,
}}
print("FACTS " + json.dumps(FACTS))

class Adapter(Base):
    def linear(self, *args):
        raise RuntimeError("found: " + json.dumps(FACTS))
'''


class _Agent:
    """A Unix socket of the grader's (ssh-agent's stand-in) that counts its connections."""

    def __init__(self, path):
        self.server = socket.socket(socket.AF_UNIX)
        self.server.bind(str(path))
        self.server.listen()
        self.server.settimeout(0.1)
        self.connections, self.done = 0, threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.done.is_set():
            try:
                connection, _ = self.server.accept()
            except OSError:
                continue
            self.connections += 1
            connection.close()

    def close(self):
        self.done.set()
        self.thread.join()
        self.server.close()


@pytest.fixture(scope="module")
def hostile_class(tmp_path_factory):
    """A class ``alice`` (the probe above) and ``bob`` (correct, a secret in his source),
    graded by a grader whose ``$HOME``, environment, ``PYTHONPATH``, ssh-agent socket and
    earlier scoreboard hold secrets: ``(out, alice's facts, agent's connection count)``."""
    root = tmp_path_factory.mktemp("fs")
    home, lib, out = root / "home", root / "grader_lib", root / "board"
    for folder in (home, lib, out):
        folder.mkdir()
    (home / "secret.txt").write_text(SECRETS["home"])
    (lib / "grader_lib_secret.py").write_text(f"SECRET = {SECRETS['pythonpath']!r}\n")
    (out / "results.json").write_text(json.dumps({"earlier": SECRETS["board"]}))
    alice, bob = root / "class" / "alice", root / "class" / "bob"
    for folder in (alice, bob):
        folder.mkdir(parents=True)
        handout_beside(folder)
    (bob / "adapter.py").write_text(f"# {SECRETS['classmate']}\n"
                                    "from handout_adapter import Adapter\n")
    agent = _Agent(root / "agent.sock")
    (alice / "adapter.py").write_text(
        "from handout_adapter import Adapter as Base\n" + textwrap.dedent(_PROBE.format(
            bob=str(bob / "adapter.py"), home=str(home / "secret.txt"),
            board=str(out / "results.json"), sock=str(root / "agent.sock"))))
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("HOME", str(home))
            patch.setenv("REFNET_TEST_TOKEN", SECRETS["token"])
            patch.setenv("SSH_AUTH_SOCK", str(root / "agent.sock"))
            patch.setenv("PYTHONPATH", str(lib))
            patch.chdir(root)
            run_conform(ConformOptions(
                targets=("class/alice/adapter.py", "class/bob/adapter.py"), out=out, jobs=2,
                quick=True, dtype="float64", show_progress=False, timeout=HANG_GUARD),
                stream=io.StringIO())
    finally:
        agent.close()
    board = json.loads((out / "results.json").read_text())
    [row] = [target for target in board["targets"] if "alice" in target["spec"]]
    # what alice's run printed, as her own results.json keeps it (her report's folder)
    stdout = json.loads((out / row["folder"] / "results.json").read_text())["run"]["stdout"]
    [line] = [line for line in stdout.splitlines() if line.startswith("FACTS ")]
    return out, json.loads(line.removeprefix("FACTS ")), agent.connections


def _every_report(out):
    return {str(path.relative_to(out)): path.read_text(errors="replace")
            for path in out.rglob("*") if path.is_file()}


@needs_bubblewrap
def test_no_secret_of_the_grader_or_a_classmate_reaches_any_report(hostile_class):
    out, facts, _ = hostile_class
    reports = _every_report(out)
    assert "index.html" in reports and "results.json" in reports, sorted(reports)
    for what, secret in SECRETS.items():
        leaked = [name for name, text in reports.items() if secret in text]
        assert leaked == [], f"the {what} secret reached {leaked}"
    leaked = [name for name, text in reports.items() if "root:x:0:0" in text]
    assert leaked == [], f"/etc/passwd reached {leaked}"
    found = [name for name, text in reports.items() if "found: " in text]
    assert found, "the probe's exception texts reached the reports (and carried nothing)"


@needs_bubblewrap
def test_the_submission_reads_none_of_the_grader_s_files(hostile_class):
    _, facts, _ = hostile_class
    for key in ("classmate", "classmate_literal", "home", "home_literal", "passwd", "board"):
        assert facts[key].startswith("unreadable: [Errno 2]"), (key, facts[key][:200])
    assert facts["grader_module"].startswith("not found"), facts["grader_module"]


@needs_bubblewrap
def test_its_environment_is_the_allow_list_alone(hostile_class):
    _, facts, _ = hostile_class
    environment = facts["environment"]
    assert {"REFNET_TEST_TOKEN", "SSH_AUTH_SOCK", "PYTHONPATH"}.isdisjoint(environment)
    assert environment["HOME"] == environment["TMPDIR"] == confinement.PRIVATE
    # (PWD: set by bubblewrap's --chdir, the private folder)
    assert environment.get("PWD", confinement.PRIVATE) == confinement.PRIVATE
    assert set(environment) <= {"PATH", "HOME", "TMPDIR", "PWD", "LANG", "LANGUAGE", "TZ",
                                *(name for name in environment if name.startswith("LC_")),
                                *confinement.ALLOWED_ENVIRONMENT}, environment


@needs_bubblewrap
def test_the_grader_s_unix_socket_hears_nothing(hostile_class):
    _, facts, connections = hostile_class
    assert connections == 0
    assert facts["socket_env"].startswith("refused") and \
        facts["socket_literal"].startswith("refused"), facts


@needs_bubblewrap
def test_it_runs_unprivileged_and_writes_only_its_capped_private_folder(hostile_class):
    _, facts, _ = hostile_class
    assert facts["uid"] == [confinement.UID] * 3, facts["uid"]
    assert all(line.split()[1] == "0000000000000000" for line in facts["capabilities"]
               if line.startswith(("CapEff", "CapPrm"))), facts["capabilities"]
    assert facts["root_write"] == "refused: Read-only file system"
    # 40 MiB in its folder, then 40 MiB in /dev/shm: one tmpfs of 64 MiB holds both
    assert facts["private_1"] == "written"
    assert facts["private_2_shm"] == "refused: No space left on device", facts


@needs_bubblewrap
def test_its_surroundings_are_neutral(hostile_class):
    _, facts, _ = hostile_class
    assert facts["cwd"] == confinement.PRIVATE
    for text in (facts["pid1"], facts["cmdline"]):
        assert "verification" not in text and "refnet" not in text and "bwrap" not in text, text
    assert facts["pid1"] == facts["cmdline"], "PID 1 is the executor itself"
    assert facts["modules"] == [], facts["modules"]
    assert facts["module_name"] == "adapter"
    assert not any("verification" in path or "refnet" in path for path in facts["sys_path"])


_ENVIRONMENT_PROBE = """
import json, os
raise ImportError("planted: " + json.dumps(sorted(os.environ)))
"""


@pytest.mark.parametrize("use_sandbox", [False, True])
def test_the_environment_allow_list_holds_with_or_without_bubblewrap(tmp_path, monkeypatch,
                                                                      use_sandbox):
    if use_sandbox and sandbox(timeout=1)["tool"] is None:
        pytest.skip("no bubblewrap sandbox here")
    (tmp_path / "env_adapter.py").write_text(_ENVIRONMENT_PROBE)
    monkeypatch.setenv("REFNET_TEST_TOKEN", SECRETS["token"])
    monkeypatch.setenv("SSH_AUTH_SOCK", str(tmp_path / "agent.sock"))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    run = run_isolated(str(tmp_path / "env_adapter.py"), timeout=HANG_GUARD,
                       use_sandbox=use_sandbox)
    assert run.status == "import-error", run
    names = json.loads(run.message.partition("planted: ")[2])
    assert set(names) == {"PATH", "HOME", "TMPDIR", "OMP_NUM_THREADS",
                          *(["PWD"] if use_sandbox else []),  # bubblewrap's --chdir sets it
                          *(name for name in names if name.startswith(("LC_", "LANG")))}, names


@needs_bubblewrap
def test_an_importable_name_is_found_in_the_grader_s_folder_and_bound_alone(tmp_path,
                                                                            monkeypatch):
    package = tmp_path / "student_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "adapter.py").write_text(
        "import json, os\nraise ImportError('planted: ' + json.dumps([__file__, "
        "sorted(os.listdir('/submission'))]))\n")
    (tmp_path / "neighbour.txt").write_text("not the submission's")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    run = run_isolated("student_pkg.adapter", timeout=HANG_GUARD)
    assert run.status == "import-error", run
    where, listing = json.loads(run.message.partition("planted: ")[2])
    assert listing == ["student_pkg"], "only the package is bound, not the folder around it"
    assert where == str(package / "adapter.py"), "its path is given back as the grader's"
