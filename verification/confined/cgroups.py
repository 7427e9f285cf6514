"""Totals across all of a target's processes: memory, processes and CPU time, through a
control group per run where the machine gives one, the closest per-user limit where not.

Per-process limits (``RLIMIT_AS``, ``RLIMIT_CPU``: ``executor.py``) are multiplied by a fork:
150 children of 120 MiB each, or 8 busy ones, each stay inside their own. A control group
bounds the whole tree instead, as a contest judge's box does:

- memory: ``memory.limit_in_bytes`` (and ``memory.memsw.limit_in_bytes`` where swap is
  accounted) in cgroup v1, ``memory.max`` (and ``memory.swap.max`` 0) in v2; past it the
  kernel kills one of the group's processes (an OOM kill, counted in ``memory.oom_control`` or
  ``memory.events``);
- processes: ``pids.max``; a fork or a new thread past it fails (counted in ``pids.events``);
  threads count, as the kernel counts tasks;
- CPU time: no kernel limit exists for a group's total, so the parent reads its usage
  (``cpuacct.usage`` in v1, ``cpu.stat``'s ``usage_usec`` in v2) as it polls the run
  (``isolation._follow``) and stops the run past the budget.

A run that hits one is stopped and its row names the total (``Group.exceeded``, ``stopped``).
The parent creates the group (``Group.create``) and removes it after the run, killing what is
left in it first, whatever ended the run (Ctrl-C included); the judge puts its executor in it
before the executor runs (``entering``, a ``preexec_fn``), so bubblewrap and every process the
target starts are in it and the judge is not.

Where to make groups (``support``, probed once): cgroup v2 where this process's group has the
``memory`` and ``pids`` controllers for its children (delegated), else cgroup v1 where this
process's ``memory``, ``pids`` and ``cpuacct`` groups are writable. Where neither is, the
fallback is ``RLIMIT_NPROC`` (processes of the whole user, so set to the user's count at the
start plus the total; not enforced for root), and no memory or CPU total: each process keeps
only its own limits. ``describe`` says which, for ``results.json``'s ``run.sandbox.totals``.
"""

import functools
import itertools
import os
import resource
import secrets
import signal
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["MEMORY_TOTAL", "PROCESS_TOTAL", "Totals", "Support", "support", "Group",
           "describe", "without", "entering", "stopped", "size"]

MEMORY_TOTAL = 4 * 2**30
"""Bytes of memory all of a target's processes may use together (resident, and tmpfs pages
they write): the executor with torch loaded and the handout fixture checked peaks at about
160 MiB."""

PROCESS_TOTAL = 64
"""Processes and threads a target's run may hold at once: the executor, bubblewrap's two and
the handout fixture's checks peak at 5."""

_REMOVE_GRACE = 5.0
"""Seconds the parent keeps killing a group's processes and retrying its removal."""

_V1_CONTROLLERS = ("memory", "pids", "cpuacct")

_names = itertools.count()


@dataclass(frozen=True)
class Totals:
    """What a target's processes may use together.

    Attributes:
        memory: bytes of memory.
        processes: processes and threads at once.
        cpu_seconds: seconds of CPU time; ``None``: the run's per-process CPU limit
            (``isolation``: the timeout plus ``CPU_SLACK``).
    """

    memory: int = MEMORY_TOTAL
    processes: int = PROCESS_TOTAL
    cpu_seconds: float | None = None


@dataclass(frozen=True)
class Support:
    """Where groups can be made here.

    Attributes:
        version: ``"v1"``, ``"v2"``, or ``None`` where neither can be had.
        parents: the directories to make a run's groups in: ``{"memory", "pids", "cpu"}``
            for v1 (one per hierarchy), ``{"all"}`` for v2.
        reason: why no cgroups, when ``version`` is ``None``.
    """

    version: str | None
    parents: dict
    reason: str | None = None


def size(count):
    """``count`` bytes in words: ``4 GiB``, ``512 MiB``."""
    return f"{count / 2**30:g} GiB" if count >= 2**30 else f"{count / 2**20:g} MiB"


@functools.cache
def support():
    """``Support`` of this machine for this process: v2 where delegated, else v1, else why
    neither (probed once: a group made and removed)."""
    own = _own_groups()
    mounts = _mounts()
    v2, why_v2 = _v2_parent(own, mounts)
    if v2 is not None:
        return Support("v2", {"all": v2})
    v1, why_v1 = _v1_parents(own, mounts)
    if v1 is not None:
        return Support("v1", v1)
    return Support(None, {}, f"no cgroups: v2 {why_v2}; v1 {why_v1}")


def _own_groups():
    """``{controller: path}`` from ``/proc/self/cgroup``; v2's under ``""``."""
    groups = {}
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return groups
    for line in lines:
        _, controllers, path = line.split(":", 2)
        for controller in controllers.split(",") if controllers else [""]:
            groups[controller] = path
    return groups


def _mounts():
    """``[(fstype, root, mount point, super options)]`` of the cgroup file systems."""
    mounts = []
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return mounts
    for line in lines:
        before, _, after = line.partition(" - ")
        fields, tail = before.split(), after.split()
        if len(fields) >= 5 and len(tail) >= 3 and tail[0] in ("cgroup", "cgroup2"):
            mounts.append((tail[0], fields[3], fields[4], set(tail[2].split(","))))
    return mounts


def _place(root, point, path):
    """The directory of group ``path`` in a hierarchy mounted at ``point`` from ``root``."""
    if root != "/" and (path == root or path.startswith(root + "/")):
        path = path[len(root):]
    return os.path.join(point, path.lstrip("/"))


def _v2_parent(own, mounts):
    """``(directory, None)`` where this process's v2 group already hands ``memory`` and
    ``pids`` to its children (delegated: ``cgroup.subtree_control``) and a child can be made,
    else ``(None, why not)``."""
    if "" not in own:
        return None, "not in use"
    points = [(root, point) for kind, root, point, _ in mounts if kind == "cgroup2"]
    if not points:
        return None, "not mounted"
    parent = _place(*points[0], own[""])
    enabled = (_read(parent, "cgroup.subtree_control") or "").split()
    if not {"memory", "pids"} <= set(enabled):  # enabling them is the machine's owner's call
        return None, f"memory and pids not delegated to {own['']}'s children"
    why = _probe([parent], ("memory.max", "pids.max"))
    return (parent, None) if why is None else (None, why)


def _v1_parents(own, mounts):
    """``({"memory", "pids", "cpu"}: directory}, None)`` where this process's v1 groups of
    ``_V1_CONTROLLERS`` are writable, else ``(None, why not)``."""
    parents = {}
    for controller in _V1_CONTROLLERS:
        points = [(root, point) for kind, root, point, options in mounts
                  if kind == "cgroup" and controller in options]
        if not points or controller not in own:
            return None, f"{controller} not mounted"
        parents["cpu" if controller == "cpuacct" else controller] = _place(*points[0],
                                                                           own[controller])
    why = _probe(list(parents.values()), ("memory.limit_in_bytes", "pids.max", "cpuacct.usage"))
    return (parents, None) if why is None else (None, why)


def _probe(parents, files):
    """``None`` where a group can be made in each of ``parents`` and holds one of ``files``,
    else why not; the groups are removed."""
    made = []
    try:
        for parent in dict.fromkeys(parents):
            path = os.path.join(parent, _name("probe"))
            os.mkdir(path)
            made.append(path)
        if not all(any(os.path.exists(os.path.join(path, name)) for name in files)
                   for path in made):
            return f"a group lacks {' or '.join(files)}"
        return None
    except OSError as error:
        return f"cannot make a group in {error.filename} ({error.strerror})"
    finally:
        for path in made:
            try:
                os.rmdir(path)
            except OSError:
                pass


def _name(kind):
    """A neutral, unique name for a group (no target's name in it)."""
    return f"refnet-{kind}-{os.getpid()}-{next(_names)}-{secrets.token_hex(3)}"


class Group:
    """One run's group (in each v1 hierarchy, or one v2 group), with its limits set.

    Attributes:
        version: ``"v1"`` or ``"v2"``.
        directories: ``{"memory", "pids", "cpu"}: directory`` (v2: one directory, three
            times).
        totals: the ``Totals`` set, with ``cpu_seconds`` resolved.
    """

    def __init__(self, version, directories, totals):
        self.version, self.directories, self.totals = version, directories, totals

    @classmethod
    def create(cls, found, totals):
        """Make a run's group where ``found`` (a ``Support``) says, with ``totals`` (whose
        ``cpu_seconds`` is set); ``None`` where it cannot be made (the run goes on without)."""
        name = _name("target")
        directories = {key: os.path.join(parent, name) for key, parent in found.parents.items()}
        if found.version == "v2":
            directories = dict.fromkeys(("memory", "pids", "cpu"), directories["all"])
        group = cls(found.version, directories, totals)
        try:
            for directory in dict.fromkeys(directories.values()):
                os.mkdir(directory)
            group._set_limits()
        except OSError:
            group.remove()
            return None
        return group

    def _set_limits(self):
        memory, pids = self.directories["memory"], self.directories["pids"]
        if self.version == "v1":
            _write(memory, "memory.limit_in_bytes", self.totals.memory)
            _write(memory, "memory.memsw.limit_in_bytes", self.totals.memory, optional=True)
        else:
            _write(memory, "memory.max", self.totals.memory)
            _write(memory, "memory.swap.max", 0, optional=True)
        _write(pids, "pids.max", self.totals.processes)

    def procs(self):
        """The ``cgroup.procs`` files a process writes itself into (``entering``)."""
        return [os.path.join(directory, "cgroup.procs")
                for directory in dict.fromkeys(self.directories.values())]

    def cpu_used(self):
        """Seconds of CPU time its processes have used, those that exited included."""
        if self.version == "v1":
            return int(_read(self.directories["cpu"], "cpuacct.usage") or 0) / 1e9
        usage = _fields(_read(self.directories["cpu"], "cpu.stat")).get("usage_usec", 0)
        return usage / 1e6

    def exceeded(self):
        """``"processes"``, ``"memory"`` or ``"cpu"``: the total its processes hit (a fork
        refused, an OOM kill, CPU time past the budget), or ``None``."""
        if _fields(_read(self.directories["pids"], "pids.events")).get("max", 0) > 0:
            return "processes"
        memory = self.directories["memory"]
        events = _read(memory, "memory.oom_control" if self.version == "v1" else
                       "memory.events")
        if _fields(events).get("oom_kill", 0) > 0:
            return "memory"
        if self.cpu_used() > self.totals.cpu_seconds:
            return "cpu"
        return None

    def kill(self):
        """SIGKILL every process in it, until none is left (a fork bomb refills it, within
        ``pids.max``) or ``_REMOVE_GRACE`` passes."""
        directory = self.directories["pids"]
        if self.version == "v2" and _write(directory, "cgroup.kill", 1, optional=True):
            return
        give_up = time.monotonic() + _REMOVE_GRACE
        while time.monotonic() < give_up:
            pids = {int(pid) for procs in self.procs()
                    for pid in (_read(os.path.dirname(procs), "cgroup.procs") or "").split()}
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            time.sleep(0.01)

    def remove(self):
        """Kill what is left in it and remove it (retrying while its killed processes exit);
        ``True`` once every directory is gone."""
        self.kill()
        give_up = time.monotonic() + _REMOVE_GRACE
        left = list(dict.fromkeys(self.directories.values()))
        while left:
            for directory in list(left):
                try:
                    os.rmdir(directory)
                    left.remove(directory)
                except FileNotFoundError:
                    left.remove(directory)
                except OSError:
                    pass
            if left:
                if time.monotonic() > give_up:
                    return False
                self.kill()
                time.sleep(0.02)
        return True


def _read(directory, name):
    try:
        return Path(directory, name).read_text()
    except OSError:
        return None


def _write(directory, name, value, optional=False):
    """Write ``value`` to a group's file; ``False`` where an ``optional`` one cannot be."""
    try:
        Path(directory, name).write_text(str(value))
        return True
    except OSError:
        if optional:
            return False
        raise


def _fields(text):
    """``{key: int}`` of a flat keyed cgroup file (``oom_kill 3``, ``max 1``)."""
    fields = {}
    for line in (text or "").splitlines():
        key, _, value = line.partition(" ")
        if value.strip().lstrip("-").isdigit():
            fields[key] = int(value)
    return fields


def describe(found, totals):
    """``results.json``'s ``run.sandbox.totals``: ``{"by", "memory_bytes", "processes",
    "cpu_seconds"}``, each total ``None`` where none is in force, ``by`` what enforces them
    (``"cgroup v1"``, ``"cgroup v2"``, ``"RLIMIT_NPROC"`` or ``None``) and, without
    cgroups, ``"reason"``."""
    if found.version is not None:
        return {"by": f"cgroup {found.version}", "memory_bytes": totals.memory,
                "processes": totals.processes, "cpu_seconds": totals.cpu_seconds}
    return without(found.reason, totals)


def without(reason, totals):
    """``describe``'s entry where no group is made, for ``reason``: ``RLIMIT_NPROC``
    (``entering``) bounds the processes of a user other than root."""
    if os.geteuid() == 0:
        return {"by": None, "memory_bytes": None, "processes": None, "cpu_seconds": None,
                "reason": f"{reason}; RLIMIT_NPROC is not enforced for root"}
    return {"by": "RLIMIT_NPROC", "memory_bytes": None, "processes": totals.processes,
            "cpu_seconds": None,
            "reason": f"{reason}; processes bounded by RLIMIT_NPROC, the user's at the start "
                      f"plus {totals.processes}"}


def entering(procs=(), processes=None):
    """A ``preexec_fn`` for the executor's ``Popen``: it writes itself into each of
    ``procs`` (a group's ``cgroup.procs``) before it runs anything, so every process it
    starts is in the group; with ``processes`` instead (no cgroups, not root), it sets
    ``RLIMIT_NPROC`` to the user's tasks now plus ``processes``. ``None`` where there is
    nothing to do."""
    if not procs and processes is None:
        return None

    def enter():
        for path in procs:
            with open(path, "w") as procs_file:
                procs_file.write("0")
        if processes is not None and not procs:
            limit = _user_tasks() + processes
            resource.setrlimit(resource.RLIMIT_NPROC, (limit, limit))

    return enter


def _user_tasks():
    """The tasks (threads) of this process's real user, which ``RLIMIT_NPROC`` counts."""
    uid, count = os.getuid(), 0
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                status = Path(entry.path, "status").read_text()
            except OSError:
                continue
            fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
            if int(fields.get("Uid", "-1").split()[0]) == uid:
                count += int(fields.get("Threads", "1"))
    return count


def stopped(which, totals, where):
    """The row's message for a run stopped by total ``which`` (``Group.exceeded``'s) in the
    place ``where`` (``in case 'relu'``): where the parent saw it, within 0.1 s
    (``isolation._POLL``) of a refused fork (a target whose processes run out of memory is
    killed in the case that did it)."""
    what = {"processes": f"it tried to run more than {totals.processes} processes and threads "
                         f"at once",
            "memory": f"its processes used more than {size(totals.memory)} of memory "
                      f"together",
            "cpu": f"its processes used more than {totals.cpu_seconds:g} s of CPU time "
                   f"together"}[which]
    return f"stopped: {what}, seen {where}"
