"""Starting a target's executor (``executor.py``), from a module that imports no torch.

A judge started as a fresh interpreter (``python -m verification.targets.worker``) starts its
executor first, with this module alone imported, and only then imports torch and the checks:
the two interpreters import torch side by side, on two cores, instead of one after the other
(about 1.5 s of a lone ``refnet conform TARGET``). A judge forked by the zygote has everything
imported already and starts its executor the same way.
"""

import os
import signal
import subprocess
import sys
from dataclasses import dataclass

from verification.targets import cgroups

__all__ = ["IMPORT_FAILED", "MEMORY_EXHAUSTED", "EXECUTOR_BROKEN", "BWRAP_OPTIONS",
           "StartedExecutor", "command", "exit_status", "start", "leave"]

IMPORT_FAILED = 3
"""Exit status of an executor whose target could not be loaded."""

MEMORY_EXHAUSTED = 4
"""Exit status of an executor that ran out of its address space (``RLIMIT_AS``), and of its
judge then."""

EXECUTOR_BROKEN = 5
"""Exit status of a judge whose executor exited or broke the protocol in a case."""

BWRAP_OPTIONS = ("--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--unshare-pid",
          "--unshare-net", "--die-with-parent", "--new-session", "--cap-drop", "ALL")
"""bubblewrap's options for every executor, before the private folder's ``--bind`` and
``--chdir``: the root read-only, a minimal ``/dev``, its own ``/proc`` of its own PID namespace,
no network, killed with its parent, a session of its own (no terminal to type into), and no
capabilities even when the caller is root (bubblewrap keeps root's otherwise, and with
``CAP_SYS_PTRACE`` the target could read the judge's memory). ``/tmp``
stays the host's, read-only: an adapter kept there must stay readable; ``$TMPDIR`` is the
private folder."""


@dataclass(frozen=True)
class StartedExecutor:
    """An executor process that has not said anything yet, and the judge's ends of its pipes.

    Attributes:
        process: the ``Popen`` of the executor (of bubblewrap around it, with ``bwrap``).
        requests: the binary stream the judge writes requests to.
        replies: the binary stream the judge reads replies from.
        bwrap: bubblewrap's path when it runs inside it, else ``None``.
    """

    process: subprocess.Popen
    requests: object
    replies: object
    bwrap: str | None


def command(spec, *, requests, replies, memory, file_size, cpu_seconds, bwrap=None,
            course=None):
    """The executor's command line (inside bubblewrap at ``bwrap``, when given, with the
    working directory the one writable place; under ``course``, a profile's JSON)."""
    folder = os.getcwd()
    inside = [] if bwrap is None else [bwrap, *BWRAP_OPTIONS, "--bind", folder, folder,
                                       "--chdir", folder, "--"]
    return [*inside, sys.executable, "-m", "verification.targets.executor", spec,
            "--requests", str(requests), "--replies", str(replies), "--memory", str(memory),
            "--file-size", str(file_size), "--cpu-seconds", str(cpu_seconds),
            *(["--course", course] if course else [])]


def exit_status(code, bwrap):
    """The executor's exit status as ``Popen.returncode`` gives it (-N for signal N); bubblewrap
    reports a command killed by signal N as 128 + N."""
    if bwrap is not None and 128 < code < 128 + signal.NSIG:
        return -(code - 128)
    return code


def start(spec, *, memory, file_size, cpu_seconds, bwrap=None, course=None, totals=None):
    """Start the executor of ``spec`` under these limits, inside bubblewrap at ``bwrap`` when
    given, under ``course`` (a profile's JSON) when given, in the group of ``totals`` when
    given (``{"procs": [cgroup.procs files], "processes": RLIMIT_NPROC's share or None}``:
    ``cgroups.entering``); a ``StartedExecutor`` (``remote.connect`` reads its first
    message)."""
    request_read, request_write = os.pipe()
    reply_read, reply_write = os.pipe()
    try:
        process = subprocess.Popen(
            command(spec, requests=request_read, replies=reply_write, memory=memory,
                    file_size=file_size, cpu_seconds=cpu_seconds, bwrap=bwrap, course=course),
            stdin=subprocess.DEVNULL, pass_fds=(request_read, reply_write),
            preexec_fn=cgroups.entering(**(totals or {})))
    except BaseException:
        os.close(request_write)
        os.close(reply_read)
        raise
    finally:
        os.close(request_read)
        os.close(reply_write)
    return StartedExecutor(process, os.fdopen(request_write, "wb"), os.fdopen(reply_read, "rb"),
                           bwrap)


def leave(code):
    """Exit with ``code`` at once, after flushing stdout and stderr: an executor's replies and
    a judge's record are all sent by then, and the interpreter's teardown (torch's and the
    target's modules, their ``atexit`` hooks) took about 0.5 s of every target's run while the
    process that waits for the exit status waited."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):  # the target may have closed or replaced it
            pass
    os._exit(code)
