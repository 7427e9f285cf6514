"""Each target in its own process, within limits: a hang, a crash, a failed import or a limit
reached is a row, with the results of every case that finished before it.

Frameworks clash in module names and change torch's global state, and a target's code may hang,
kill its interpreter, eat memory, flood its output or leave processes behind. ``run_isolated``
starts ``verification.confined.worker``, the target's judge, in a new session (and process
group); the judge never imports the target, and starts the target's executor, the one process
that runs the target's code (``worker.py``, ``executor.py``, ``remote.py``). The judge is
forked by a zygote (``zygote.py``: a process that imported torch and the judge's modules once,
``run_all``'s shared by all its targets); where the zygote cannot start or fork, and for a lone
target, it is started as a fresh interpreter (``python -m verification.confined.worker``), with
the same arguments, environment, folder and pipes, and starts its executor before it imports
torch (``launch.py``). The executor is always a fresh interpreter. The run has:

- resource limits, set by the executor before it imports the target (inherited by any process
  the target starts): address space ``MEMORY_LIMIT``, file size ``FILE_SIZE_LIMIT``, CPU time
  the timeout plus ``CPU_SLACK``;
- a private folder as its working directory, ``$HOME`` and ``$TMPDIR``: a tmpfs inside
  bubblewrap, else a temporary folder of a neutral name, removed afterwards;
- its record on a pipe it inherits, one line per case as it finishes (``worker``);
- stdout and stderr read as they come, only their last ``CAPTURE_LIMIT`` bytes kept each;
- one deadline, ``timeout`` seconds, for the run and the reading of its pipes.

After every exit, not only on a timeout, every process left in the worker's process group or
session is killed, and the pipes are read for at most ``_DRAIN_GRACE`` seconds more.

Where bubblewrap (``bwrap``) is installed and a probe run of it works here (``sandbox``), the
executor runs inside it (``confinement.py``), the judge outside: only the system's libraries,
the interpreter, the harness and the submission's folder, read-only, and a private tmpfs of
``private_size`` bytes to write; uid 65534 in a user namespace of its own (where one can be
had), no network (a namespace of its own with only loopback), a PID namespace of its own where
it is PID 1 (it sees and can signal no process outside it, the judge and other targets
included, and every process in it dies when the executor exits, a detached one included), a
session of its own, no capabilities (root's included), and killed when the judge dies. With or
without it the executor's environment is ``confinement.environment``'s allow-list; the judge
keeps the caller's. Without bubblewrap (absent, refused by the machine, or ``sandbox=False``) a
process the target detaches into a session of its own (``setsid``, a daemon's double fork) is
out of reach and survives (the CPU limit it inherits ends it once it has used its share; a
sleeping one lives on), and the target can read and write anything the user can outside the
private folder, the network included. Either way the verdict is the judge's: the target's
code runs in the executor alone, and what the executor returns is judged by references
computed in the judge. The judge is not dumpable, so a target run as an ordinary user cannot
open its record pipe or memory through ``/proc``; without bubblewrap, a target run as root
keeps ``CAP_SYS_PTRACE`` and can.
``run_all`` runs several targets, at most ``jobs`` at a time; a ``stop`` event ends them all.
"""

import contextlib
import functools
import json
import math
import os
import reprlib
import selectors
import shutil
import signal
import site
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from pathlib import Path

from verification.checks.figures import figure_problem
from verification.checks.result import CheckResult
from verification.confined import cgroups, confinement
from verification.confined.cgroups import Totals
from verification.confined.worker import EXECUTOR_BROKEN, IMPORT_FAILED, MEMORY_EXHAUSTED
from verification.confined.zygote import Zygote

__all__ = ["TargetRun", "run_isolated", "run_all", "judge_zygote", "sandbox", "STATUSES",
           "MEMORY_LIMIT", "FILE_SIZE_LIMIT", "CPU_SLACK", "CAPTURE_LIMIT", "Totals"]

STATUSES = ("completed", "timeout", "limit", "crashed", "import-error", "interrupted")
"""How a run ended; ``limit``: stopped by a total across its processes (``cgroups.py``)."""

MEMORY_LIMIT = 4 * 2**30
"""A worker's address space (``RLIMIT_AS``), bytes. A worker with torch loaded and a target's
checks run takes about 0.8 GB of address space on CPU (the handout fixture: 0.82 GB at its
peak), so 4 GiB leaves an honest framework room and stops a runaway one long before it can
take a shared machine's memory. Address space is not resident memory: a library that reserves
large mappings it never uses (CUDA's initialisation does) fails under it; conform runs on CPU."""

FILE_SIZE_LIMIT = 64 * 2**20
"""The largest file a worker may write (``RLIMIT_FSIZE``), bytes: a check writes none, and a
target's log or cache rarely needs more; a write past it fails with ``EFBIG``."""

CPU_SLACK = 10
"""Seconds of CPU time (``RLIMIT_CPU``) a worker gets beyond its wall-clock timeout: the
timeout stops the worker itself; the CPU limit, inherited, is what ends a busy child that
escaped the worker's session."""

CAPTURE_LIMIT = 64 * 2**10
"""Bytes kept of the end of a worker's stdout, and of its stderr."""

_RECORD_LIMIT = 64 * 2**20
"""Bytes a worker's record may take (the whole suite's takes about 1 MB)."""

_DRAIN_GRACE = 1.0
"""Seconds the pipes are still read after the worker exited and its processes were killed."""

_POLL = 0.1
"""Seconds between looks at the worker's state and the stop event."""

_LAST_WORDS = 2000
"""Characters of stderr quoted in the message of a crash."""

_HARNESS_ROOT = str(Path(__file__).resolve().parents[2])

_PROBE_TIMEOUT = 30
"""Seconds the one probe run of bubblewrap may take."""


@dataclass(frozen=True)
class TargetRun:
    """How one target's process ended.

    Attributes:
        spec: the target as given on the command line.
        status: one of ``STATUSES``.
        message: why it did not complete, naming the case it stopped in (empty when it did).
        seconds: wall time of the process.
        record: what the worker reported (``target``, ``cases``, ``built``, ``skipped``,
            ``checks``), with ``built`` and ``checks`` only of the cases that finished, or
            ``None`` when it reported no plan.
        stdout: the end of its stdout (``CAPTURE_LIMIT`` bytes at most, decoded).
        stderr: the end of its stderr, likewise.
        sandbox: what confined it (``sandbox``'s description).
    """

    spec: str
    status: str
    message: str
    seconds: float
    record: dict | None
    stdout: str = ""
    stderr: str = ""
    sandbox: dict | None = None

    def cases(self):
        """``{"built": [names], "skipped": [{"case", "component", "reason"}]}`` from the
        record, validated (it comes from another process: a malformed list is dropped, and a
        skipped entry is kept only with all three keys as strings); ``built``: the cases that
        finished."""
        record = self.record if isinstance(self.record, dict) else {}
        built = record.get("built")
        if not (isinstance(built, list) and all(isinstance(name, str) for name in built)):
            built = []
        skipped = record.get("skipped")
        keys = ("case", "component", "reason")
        skipped = [{key: item[key] for key in keys} for item in
                   (skipped if isinstance(skipped, list) else [])
                   if isinstance(item, dict) and all(isinstance(item.get(key), str)
                                                     for key in keys)]
        return {"built": built, "skipped": skipped}

    def case_names(self):
        """Every case the worker planned, by name, where it was asked for one case alone
        (``run_isolated``'s ``case``; validated as ``cases``: a malformed list is empty)."""
        record = self.record if isinstance(self.record, dict) else {}
        names = record.get("names")
        valid = isinstance(names, list) and all(isinstance(name, str) for name in names)
        return names if valid else []

    def target(self):
        """The worker's description of the target (validated as it arrived, ``_valid_target``),
        or an empty one for a run that never gave one."""
        record = self.record if isinstance(self.record, dict) else {}
        return record.get("target") or _valid_target(None, self.spec)

    def checks(self):
        """The checks of the cases that finished, and for a run that did not complete one
        more failed check that stands for the rest (``failure_record``)."""
        record = self.record if isinstance(self.record, dict) else {}
        finished = record.get("checks")
        finished = finished if isinstance(finished, list) else []
        return finished + ([] if self.status == "completed" else [self.failure_record()])

    def failure_record(self):
        """The one failed check (a ``CheckResult.as_dict()``) that stands for a target that
        did not complete."""
        return _failed_check(f"target/{self.status}", self.spec,
                             f"the target did not complete ({self.status}): {self.message}")


def _failed_check(check_id, spec, detail):
    """A failed check record of kind ``error`` filed under the component ``target``."""
    inf = math.inf
    return CheckResult(check_id, spec, "error", False, inf, inf, 0.0, inf, detail,
                       component="target").as_dict()


class _Tail:
    """The last ``CAPTURE_LIMIT`` bytes of a stream, however much is written to it."""

    def __init__(self):
        self.kept, self.total = bytearray(), 0

    def feed(self, data):
        self.kept += data
        self.total += len(data)
        if len(self.kept) > 2 * CAPTURE_LIMIT:  # trim in batches: each byte moves at most once
            del self.kept[:-CAPTURE_LIMIT]

    def text(self):
        """The kept end, from its first whole line when the start was dropped, decoded."""
        kept = bytes(self.kept[-CAPTURE_LIMIT:])
        if self.total > len(kept):
            kept = kept[kept.find(b"\n") + 1:]
            kept = f"[{self.total - len(kept)} earlier bytes not kept]\n".encode() + kept
        return kept.decode("utf-8", errors="replace")


class _Record:
    """The worker's record, assembled from its lines (``worker``) as they arrive; lines that
    are not one of the worker's messages are ignored."""

    def __init__(self, spec, progress):
        self.spec, self.progress = spec, progress
        self.pending, self.size = bytearray(), 0
        self.plan = self.error = self.current = self.memory = self.broken = None
        self.done, self.checks, self.finished = [], [], False

    @property
    def overflowed(self):
        return self.size > _RECORD_LIMIT

    def feed(self, data):
        self.size += len(data)
        if self.overflowed:
            return
        self.pending += data
        *lines, rest = self.pending.split(b"\n")
        self.pending = bytearray(rest)
        for line in lines:
            self._take(line)

    def _take(self, line):
        try:
            message = json.loads(line)
        except (ValueError, RecursionError):  # not JSON, or nested beyond the parser's depth
            return
        if not (isinstance(message, dict) and len(message) in (1, 2)):
            return
        key, value = next(iter(message.items()))
        if key == "start" and isinstance(value, str):
            self.current = value
            if self.progress is not None:
                self.progress(self.spec, value)
        elif key == "done" and value == self.current and isinstance(message.get("checks"), list):
            self.done.append(value)
            self.checks += [_valid_check(check, self.spec) for check in message["checks"]]
            self.current = None
        elif key == "plan" and isinstance(value, dict):
            self.plan = {**value, "target": _valid_target(value.get("target"), self.spec)}
        elif key in ("error", "memory", "broken") and isinstance(value, str):
            setattr(self, key, value)
        elif key == "finished" and value is True:
            self.finished = True

    def where(self):
        """Where the worker was: ``in case 'tanh'``, or before or between cases."""
        if self.current is not None:
            return f"in case {self.current!r}"
        if self.plan is None:
            return "while loading the target"
        return f"after case {self.done[-1]!r}" if self.done else "before its first case"

    def as_record(self, completed):
        """``TargetRun.record``: the plan with the finished cases' checks."""
        if self.plan is None:
            return None
        built = self.plan.get("built") if completed else self.done
        return {**self.plan, "built": built, "checks": self.checks}


_JSON_TYPES = {str: str, int: int, float: (int, float), bool: str}
_OPTIONAL_FIELDS = {"figure": figure_problem}
"""A check record's fields that may be absent, each with the function that says what is wrong
with its value (``None`` when nothing is)."""
_CHECK_FIELDS = {("status" if field.name == "passed" else field.name): _JSON_TYPES[field.type]
                 for field in fields(CheckResult) if field.name not in _OPTIONAL_FIELDS}
"""A check record's fields (``CheckResult.as_dict()``: ``passed`` becomes the string
``status``) and their JSON types."""


def _valid_check(check, spec):
    """``check`` as the worker sent it when it is a check record (every field of
    ``_CHECK_FIELDS`` of its type, ``status`` pass or fail, those of ``_OPTIONAL_FIELDS``
    absent or of their shape, nothing else), else one failed check naming what was wrong: the
    reports then never meet a malformed value."""
    problem = None
    if not isinstance(check, dict):
        problem = f"{reprlib.repr(check)} where a check record belongs"
    else:
        wrong = [key for key, kind in _CHECK_FIELDS.items()
                 if not isinstance(check.get(key), kind) or isinstance(check.get(key), bool)]
        extra = sorted(map(str, set(check) - set(_CHECK_FIELDS) - set(_OPTIONAL_FIELDS)))
        shapes = [f"{key}: {why}" for key, why in
                  ((key, valid(check[key])) for key, valid in _OPTIONAL_FIELDS.items()
                   if key in check) if why]
        if wrong or extra or shapes or check["status"] not in ("pass", "fail"):
            problem = (f"fields missing or of the wrong type: {wrong}" if wrong else
                       f"unknown fields {extra}" if extra else
                       f"malformed {shapes[0]}" if shapes else
                       f"status {check['status']!r}")
    if problem is None:
        return check
    return _failed_check("target/malformed-record", spec,
                         f"the target's judge sent a malformed check record ({problem})")


def _valid_target(target, spec):
    """The worker's description of the target (``Target.description``), each field of its
    JSON type: a field that is not is replaced by an empty value, the name by the spec."""
    target = target if isinstance(target, dict) else {}

    def text(key, default):
        return target[key] if isinstance(target.get(key), str) else default

    def texts(value):
        return isinstance(value, list) and all(isinstance(item, str) for item in value)

    def mapping(key, valid):
        value = target.get(key)
        return ({name: item for name, item in value.items()
                 if isinstance(name, str) and valid(item)} if isinstance(value, dict) else {})

    return {"name": text("name", spec), "adapter": text("adapter", spec),
            "version": text("version", None),
            "declared_facts": mapping("declared_facts", lambda item: item is None or isinstance(
                item, (str, int, float, bool)) or texts(item)),
            **{key: target[key] if texts(target.get(key)) else []
               for key in ("components", "hooks", "optimizers")},
            "extra_activations": mapping("extra_activations", lambda item: isinstance(item, str)),
            "optimizer_settings": mapping("optimizer_settings", texts)}


_probe_lock = threading.Lock()


@dataclass(frozen=True)
class _Bubblewrap:
    """What the probe found: ``path`` and ``version`` of a ``bwrap`` that works here (``None``
    with ``reason`` where none does), ``user``: whether it can give the executor a user
    namespace of its own (``user_reason``: why not)."""

    path: str | None
    version: str | None = None
    user: bool = False
    reason: str | None = None
    user_reason: str | None = None


@functools.cache
def _bubblewrap():
    """The ``_Bubblewrap`` of this machine: ``bwrap`` on the ``PATH`` and a probe run of Python
    inside ``confinement.bwrap_options``, first with a user namespace, then without; probed
    once per process (user namespaces may be forbidden, in a container for instance)."""
    path = shutil.which("bwrap")
    if path is None:
        return _Bubblewrap(None, reason="bwrap not found")
    nothing = confinement.Submission(None, None, "", None, None)
    why = {}
    try:
        version = subprocess.run([path, "--version"], capture_output=True, text=True,
                                 timeout=_PROBE_TIMEOUT).stdout.strip() or "bubblewrap"
        for user in (True, False):
            probe = subprocess.run(
                [path, *confinement.bwrap_options(nothing, confinement.DEFAULT_PRIVATE_SIZE,
                                                  user),
                 "--", sys.executable, "-I", "-c", ""],
                stdin=subprocess.DEVNULL, capture_output=True, text=True,
                timeout=_PROBE_TIMEOUT)
            if probe.returncode == 0:
                return _Bubblewrap(path, version, user, user_reason=why.get(True))
            why[user] = probe.stderr.strip()[-300:] or f"exit status {probe.returncode}"
    except (OSError, subprocess.TimeoutExpired) as failure:
        return _Bubblewrap(None, reason=f"bwrap's probe run failed: {failure}")
    return _Bubblewrap(None, reason=f"bwrap cannot run here: {why[False]}")


def sandbox(timeout, enabled=True, private_size=confinement.DEFAULT_PRIVATE_SIZE,
            totals=None):
    """What confines a target's executor run with ``timeout`` (results.json's ``run.sandbox``):
    ``{"tool", "filesystem", "read_only", "private_bytes", "network", "pid_namespace",
    "user", "environment", "limits", "totals", "judge"}`` (``judge``: where the verdict is
    computed; ``environment``: the names the executor's environment may hold; ``totals``:
    ``cgroups.describe``'s, of ``totals`` or the defaults), with ``"reason"`` when no tool is
    in force (``tool`` null)."""
    across = cgroups.describe(cgroups.support(), _resolved(totals, timeout))
    limits = {"address_space_bytes": MEMORY_LIMIT, "file_size_bytes": FILE_SIZE_LIMIT,
              "cpu_seconds": _cpu_seconds(timeout)}
    if not enabled:
        found = _Bubblewrap(None, reason="turned off (--no-sandbox)")
    else:
        with _probe_lock:
            found = _bubblewrap()
    common = {"environment": [*confinement.ALLOWED_ENVIRONMENT, "PATH", "HOME", "TMPDIR"],
              "limits": limits, "totals": across,
              "judge": "a process of its own that never imports the target"}
    if found.path is None:
        return {"tool": None, "reason": found.reason, "filesystem": "the user's",
                "network": "the user's", "pid_namespace": False, "user": "the user's",
                **common}
    user = (f"uid {confinement.UID} and gid {confinement.UID} in a user namespace of its own, "
            "which can make no other" if found.user else
            f"the user's uid (no user namespace here: {found.user_reason})")
    return {"tool": found.version,
            "filesystem": (f"only the system's libraries, the interpreter, the harness and the "
                           f"submission's folder, read-only; writable: a private tmpfs of "
                           f"{private_size / 2**20:g} MiB at {confinement.PRIVATE}, /dev/shm "
                           "in it"),
            "read_only": _read_only_description(), "private_bytes": private_size,
            "network": "none", "pid_namespace": True, "user": user, **common}


def _read_only_description():
    """The read-only part of the executor's filesystem, in words where a path would be the
    grader's."""
    system = [path for path in confinement.SYSTEM if os.path.lexists(path)]
    return [*system, "the interpreter's prefixes and site-packages (torch's included)",
            f"the harness's verification/ and refnet/, at {confinement.HARNESS}",
            f"the submission's folder (an importable name's package), at "
            f"{confinement.SUBMISSION}"]


def _resolved(totals, timeout):
    """``totals`` (the defaults for ``None``) with the CPU budget set: the per-process CPU
    limit of a run with ``timeout`` unless given."""
    totals = totals or Totals()
    if totals.cpu_seconds is None:
        totals = Totals(totals.memory, totals.processes, _cpu_seconds(timeout))
    return totals


def run_isolated(spec, *, timeout, quick=False, seed=0, progress=None, stop=None,
                 use_sandbox=True, dtype=None, zygote=None, course=None, case=None,
                 private_size=confinement.DEFAULT_PRIVATE_SIZE, totals=None):
    """Run one target in its own process (module docstring); never raises for anything the
    target does.

    Args:
        spec: an adapter spec (``load_target``'s).
        timeout: seconds before the process group is killed; reading its pipes included.
        quick: the worker's ``--quick``.
        seed: the worker's ``--seed``.
        progress: optional ``progress(spec, case_name)``, called as the worker starts a case.
        stop: optional ``threading.Event``; once set, the run ends within ``_POLL`` seconds as
            ``interrupted`` (and one not yet started does not start).
        use_sandbox: run it inside bubblewrap where it works here (``sandbox``).
        dtype: the worker's ``--dtype`` (``"float64"`` or ``"float32"``); ``None``: the
            target's own dtypes.
        course: a ``Course`` (``verification/course/``) the target is judged under, or
            ``None``.
        zygote: the ``Zygote`` to fork the judge from (``run_all``'s, shared); ``None``: the
            judge is a fresh interpreter, which starts the executor before it imports torch,
            so that the two import it side by side (``launch.py``): for a lone target, a
            zygote's import of torch would come before the executor's instead.
        case: the worker's ``--case``: run only the case of that name (``refnet conform
            --case``; ``TargetRun.case_names`` lists them all); ``None``: every case.
        private_size: bytes of the executor's private tmpfs inside bubblewrap.
        totals: the ``Totals`` its processes may use together, in a control group of their
            own where the machine gives one (``cgroups.py``), bubblewrap or not; ``None``:
            the defaults, with the CPU time of the per-process limit.
    """
    totals = _resolved(totals, timeout)
    confined = sandbox(timeout, use_sandbox, private_size, totals)
    if stop is not None and stop.is_set():
        return TargetRun(spec, "interrupted", "interrupted before it started", 0.0, None,
                         sandbox=confined)
    found = _bubblewrap() if confined["tool"] else None
    start = time.monotonic()
    folder = tempfile.mkdtemp()  # a neutral name: the executor runs in it without bubblewrap
    record = _Record(spec, progress)
    stdout, stderr = _Tail(), _Tail()
    pipes = [os.pipe() for _ in range(3)]  # record, stdout, stderr
    reads = [read for read, _ in pipes]
    judge = group = None
    try:
        group, confined = _group(totals, confined)
        arguments = _arguments(spec, timeout, quick, seed, found, dtype, course, case,
                               private_size, _entry(group, confined))
        judge = _start_judge(zygote, arguments,
                             folder, [write for _, write in pipes], stop)
    finally:
        for _, write in pipes:
            os.close(write)
        if judge is None:
            for read in reads:
                os.close(read)
            _remove(folder)
            if group is not None:
                group.remove()
    if judge is None:
        return TargetRun(spec, "interrupted", "interrupted before it started", 0.0, None,
                         sandbox=confined)
    hit = None
    try:
        ending = _follow(judge, dict(zip(reads, (record, stdout, stderr), strict=True)),
                         start + timeout, stop, group.exceeded if group is not None else None)
    finally:
        if group is not None:  # first: it holds the target's every process, a detached one too
            hit = group.exceeded()
            group.remove()
        _kill_tree(judge.pid)
        code = judge.wait()
        for read in reads:
            os.close(read)
        _remove(folder)
    status, message = _outcome(ending, code, record, stderr.text(), timeout)
    if hit is not None and status != "interrupted":
        status, message = "limit", cgroups.stopped(hit, totals, record.where())
    return TargetRun(spec, status, message, time.monotonic() - start,
                     record.as_record(status == "completed"), stdout.text(), stderr.text(),
                     confined)


def _group(totals, confined):
    """``(group, confined)``: a control group with ``totals`` where the machine gives
    them (``confined["totals"]["by"]`` a cgroup), else ``None``, with ``confined`` saying
    so where the group could not be made."""
    if not str(confined["totals"]["by"]).startswith("cgroup"):
        return None, confined
    group = cgroups.Group.create(cgroups.support(), totals)
    if group is None:
        return None, dict(confined, totals=cgroups.without(
            "its control group could not be made", totals))
    return group, confined


def _entry(group, confined):
    """``launch.start``'s ``totals`` for the executor: ``group``'s ``cgroup.procs`` files, or
    the ``RLIMIT_NPROC`` fallback's share; ``None`` for neither."""
    if group is not None:
        return {"procs": group.procs()}
    across = confined["totals"]
    return {"processes": across["processes"]} if across["by"] == "RLIMIT_NPROC" else None


def _start_judge(zygote, arguments, folder, writes, stop):
    """Start the judge with ``arguments`` in ``folder``, its record, stdout and stderr on
    ``writes``: forked by ``zygote`` (a ``ForkedJudge``), or, where no zygote is given or it
    cannot fork one, as a fresh interpreter (a ``_PopenJudge``); ``None`` when ``stop`` was set
    while the zygote started."""
    record_fd, stdout, stderr = writes
    if zygote is not None:
        judge = zygote.spawn(arguments, _environment(folder), folder, writes, stop)
        if judge is not None or (stop is not None and stop.is_set()):
            return judge
    return _PopenJudge(subprocess.Popen(
        [sys.executable, "-m", "verification.confined.worker", *arguments,
         "--record-fd", str(record_fd)],
        stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr, cwd=folder,
        env=_environment(folder), pass_fds=(record_fd,), start_new_session=True))


class _PopenJudge:
    """A judge started as a fresh interpreter, with ``ForkedJudge``'s interface: ``pid``,
    ``exited()`` (without reaping it: until it is reaped its pid, which is also its process
    group's and session's id, cannot be reused by another process) and ``wait()``."""

    def __init__(self, process):
        self.process, self.pid = process, process.pid

    def exited(self):
        return os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None

    def wait(self):
        return self.process.wait()


def _arguments(spec, timeout, quick, seed, found, dtype, course=None, case=None,
               private_size=confinement.DEFAULT_PRIVATE_SIZE, entry=None):
    """The judge's arguments (``worker.main``'s), but for ``--record-fd``; with ``found`` (a
    ``_Bubblewrap`` that works) it starts the executor inside bubblewrap, with a private tmpfs
    of ``private_size`` bytes the one writable place; ``dtype`` (a name) checks in that dtype
    alone; ``course`` travels as JSON; ``case`` runs that case alone; ``entry``
    (``_entry``'s: the executor's control group) travels as JSON."""
    wrapper = [] if found is None else [
        "--bwrap", found.path, "--private-size", str(private_size),
        *([] if found.user else ["--no-user-namespace"])]
    return [_absolute(spec), "--seed", str(seed), "--memory", str(MEMORY_LIMIT),
            "--file-size", str(FILE_SIZE_LIMIT), "--cpu-seconds", str(_cpu_seconds(timeout)),
            *(["--quick"] if quick else []), *wrapper,
            *(["--dtype", dtype] if dtype else []),
            *(["--course", course.as_json()] if course is not None else []),
            *(["--case", case] if case is not None else []),
            *(["--totals", json.dumps(entry)] if entry is not None else [])]


def _cpu_seconds(timeout):
    """A worker's CPU time limit (``RLIMIT_CPU``): the timeout plus ``CPU_SLACK``."""
    return math.ceil(timeout) + CPU_SLACK


def _absolute(spec):
    """``spec`` with a file's path made absolute (the worker runs in its own folder); the
    test is ``load_target``'s."""
    location, colon, attribute = spec.partition(":")
    if location.endswith(".py") or Path(location).is_file():
        location = os.path.abspath(location)
    return location + colon + attribute


def _environment(folder):
    """The worker's environment: ``folder`` as ``$HOME`` and ``$TMPDIR``, and
    ``_import_environment``'s paths."""
    return dict(_import_environment(), HOME=folder, TMPDIR=folder)


def _import_environment():
    """The caller's environment with this harness, the caller's working directory and its
    ``$PYTHONPATH`` (made absolute) on the import path, and the caller's user site-packages,
    as if the worker ran where the caller does."""
    environment = dict(os.environ)
    environment.setdefault("PYTHONUSERBASE", site.getuserbase())
    paths = [_HARNESS_ROOT, os.getcwd(), *(os.path.abspath(path) for path in
                                          environment.get("PYTHONPATH", "").split(os.pathsep)
                                          if path)]
    environment["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    return environment


def _follow(judge, readers, deadline, stop, exceeded=None):
    """Read the worker's pipes into ``readers`` (``{fd: reader}``) until ``judge`` has exited and
    they are drained, the deadline passes, ``stop`` is set or ``exceeded`` (``Group.exceeded``,
    looked at every ``_POLL`` seconds) names a total. Returns ``"exited"``, ``"timeout"``,
    ``"overflow"`` (its record is too long), ``"limit"`` or ``"interrupted"``."""
    with selectors.DefaultSelector() as selector:
        for fd, reader in readers.items():
            selector.register(fd, selectors.EVENT_READ, reader)
        exited_at, looked = None, -math.inf
        while True:
            now = time.monotonic()
            if stop is not None and stop.is_set():
                return "interrupted"
            if exited_at is None and judge.exited():
                exited_at = now
                _kill_tree(judge.pid)  # its children too, before they hold the pipes any longer
            if exited_at is not None and (not selector.get_map()
                                          or now > min(exited_at + _DRAIN_GRACE, deadline)):
                return "exited"
            if now >= deadline:
                return "timeout"
            if exceeded is not None and now >= looked + _POLL:
                looked = now
                if exceeded() is not None:
                    return "limit"
            if any(isinstance(reader, _Record) and reader.overflowed
                   for reader in readers.values()):
                return "overflow"
            for key, _ in selector.select(min(_POLL, deadline - now)):
                data = os.read(key.fd, 65536)
                if data:
                    key.data.feed(data)
                else:
                    selector.unregister(key.fd)


def _kill_tree(leader):
    """SIGKILL to the process group of ``leader`` and to every group in its session (a child
    may have moved to a group of its own; one that started a session of its own is not
    found)."""
    groups = {leader, *_session_groups(leader)}
    for group in groups:
        try:
            os.killpg(group, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _session_groups(session):
    """The process groups of the processes in ``session``, from ``/proc`` (none without it)."""
    groups = set()
    for entry in os.scandir("/proc") if os.path.isdir("/proc") else ():
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as stat:
                fields = stat.read().rpartition(b")")[2].split()
        except OSError:
            continue
        if len(fields) > 3 and int(fields[3]) == session:  # state, ppid, pgrp, session
            groups.add(int(fields[2]))
    return groups


def _remove(folder):
    """Remove the private folder, even where the target took write permission away inside
    it (links are never followed)."""
    for root, folders, _ in os.walk(folder):
        for name in folders:
            path = os.path.join(root, name)
            if not os.path.islink(path):
                try:
                    os.chmod(path, 0o700)
                except OSError:
                    pass
    shutil.rmtree(folder, ignore_errors=True)


def _outcome(ending, code, record, stderr, timeout):
    """``(status, message)`` of a run that ended as ``ending`` with exit status ``code``."""
    where = record.where()
    if ending == "interrupted":
        return "interrupted", f"interrupted {where}"
    if ending == "timeout":
        return "timeout", f"stopped after the timeout of {timeout:g} s {where}"
    if ending == "limit":  # the caller names the total (``cgroups.stopped``)
        return "limit", f"stopped by a total across its processes {where}"
    if ending == "overflow":
        return "crashed", f"its record grew past {_RECORD_LIMIT} bytes {where}"
    if code == 0 and record.finished and record.plan is not None:
        return "completed", ""
    if code == IMPORT_FAILED and record.error is not None:
        return "import-error", record.error
    if code == MEMORY_EXHAUSTED and record.memory is not None:
        return "crashed", (f"memory limit: its address space of {MEMORY_LIMIT / 2**30:g} GiB "
                           f"ran out in case {record.memory!r}")
    if code == EXECUTOR_BROKEN and record.broken is not None:
        return "crashed", record.broken
    if code is None:
        return "crashed", (f"its exit status was lost: the zygote that forked it ended {where}")
    if code == -signal.SIGXCPU:
        return "crashed", (f"CPU time limit: it used {_cpu_seconds(timeout)} s of CPU "
                           f"{where}")
    how = (f"was killed by signal {_signal_name(-code)}" if code < 0
           else f"exited with status {code}")
    words = _last_words(stderr)
    return "crashed", (f"the target's process {how} before finishing, {where}"
                       + (f"; its last words: {words}" if words else ""))


def _signal_name(number):
    try:
        return f"{number} ({signal.Signals(number).name})"
    except ValueError:
        return str(number)


def _last_words(stderr):
    """What to quote of a crashed worker's stderr: from ``faulthandler``'s report when there
    is one (it names the place of a segfault), else the last whole lines."""
    fatal = stderr.find("Fatal Python error")
    if fatal >= 0:
        return stderr[fatal:fatal + _LAST_WORDS].strip()
    tail = stderr[-_LAST_WORDS:]
    return (tail if len(stderr) <= _LAST_WORDS else tail[tail.find("\n") + 1:]).strip()


def judge_zygote():
    """A ``Zygote`` (not started yet) whose judges see this harness on their import path."""
    return Zygote(_import_environment(), _HARNESS_ROOT)


def run_all(specs, *, jobs, timeout, quick=False, seed=0, progress=None, stop=None,
            use_sandbox=True, dtype=None, course=None, case=None,
            private_size=confinement.DEFAULT_PRIVATE_SIZE, totals=None):
    """``run_isolated`` for every spec, at most ``jobs`` at once, their judges forked by one
    zygote started with the first and ended after the last (a lone target's judge is a fresh
    interpreter: ``run_isolated``'s ``zygote``); results in the given order. ``case``,
    ``private_size`` and ``totals``: ``run_isolated``'s."""
    shared = judge_zygote() if len(specs) > 1 else contextlib.nullcontext()
    with shared as zygote, ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = [pool.submit(run_isolated, spec, timeout=timeout, quick=quick, seed=seed,
                               progress=progress, stop=stop, use_sandbox=use_sandbox,
                               dtype=dtype, zygote=zygote, course=course, case=case,
                               private_size=private_size, totals=totals)
                   for spec in specs]
        return [future.result() for future in futures]
