"""Starting a target's executor (``executor.py``), from a module that imports no torch.

A judge started as a fresh interpreter (``python -m verification.confined.worker``) starts its
executor first, with this module alone imported, and only then imports torch and the checks:
the two interpreters import torch side by side, on two cores, instead of one after the other
(about 1.5 s of a lone ``refnet conform TARGET``). A judge forked by the zygote has everything
imported already and starts its executor the same way. What the executor sees, its
environment and its command line are ``confinement.py``'s.
"""

import os
import signal
import subprocess
import sys
from dataclasses import dataclass

from verification.confined import cgroups, confinement

__all__ = ["IMPORT_FAILED", "MEMORY_EXHAUSTED", "EXECUTOR_BROKEN", "StartedExecutor",
           "command", "exit_status", "start", "leave"]

IMPORT_FAILED = 3
"""Exit status of an executor whose target could not be loaded."""

MEMORY_EXHAUSTED = 4
"""Exit status of an executor that ran out of its address space (``RLIMIT_AS``), and of its
judge then."""

EXECUTOR_BROKEN = 5
"""Exit status of a judge whose executor exited or broke the protocol in a case."""

@dataclass(frozen=True)
class StartedExecutor:
    """An executor process that has not said anything yet, and the judge's ends of its pipes.

    Attributes:
        process: the ``Popen`` of the executor (of bubblewrap around it, with ``bwrap``).
        requests: the binary stream the judge writes requests to.
        replies: the binary stream the judge reads replies from.
        bwrap: bubblewrap's path when it runs inside it, else ``None``.
        renamed: ``[(inside, outside), …]``: the names the executor knows the submission by
            inside bubblewrap (its spec, its folder) and the judge's, for its messages.
    """

    process: subprocess.Popen
    requests: object
    replies: object
    bwrap: str | None
    renamed: tuple = ()


def command(spec, *, requests, replies, memory, file_size, cpu_seconds, bwrap=None,
            course=None, private_size=confinement.DEFAULT_PRIVATE_SIZE, user=True):
    """``(argv, program, environment, renamed)`` of the executor of ``spec``: ``python -I -B -``
    reading ``program`` (``confinement.bootstrap``) from its stdin, with only ``confinement``'s
    environment; inside bubblewrap at ``bwrap``, when given, with ``confinement``'s options
    (a private tmpfs of ``private_size`` bytes; ``user``: as an unprivileged uid), else in
    this process's working directory; under ``course``, a profile's JSON; ``renamed``:
    ``StartedExecutor``'s."""
    search = os.environ.get("PYTHONPATH", "").split(os.pathsep)
    submission = confinement.locate(spec, search)
    inside = bwrap is not None
    private = confinement.PRIVATE if inside else os.getcwd()
    path = submission.path if inside else submission.plain_path
    argv = [submission.spec if inside else spec, "--requests", str(requests),
            "--replies", str(replies), "--memory", str(memory), "--file-size", str(file_size),
            "--cpu-seconds", str(cpu_seconds), *(["--course", course] if course else []),
            *(["--path", path] if path else [])]
    harness = confinement.HARNESS if inside else confinement.harness_root()
    wrapper = ([bwrap, *confinement.bwrap_options(submission, private_size, user), "--"]
               if inside else [])
    renamed = ((repr(submission.spec), repr(spec)),
               *([(submission.inside, submission.folder)] if submission.folder else ()))
    return ([*wrapper, sys.executable, "-I", "-B", "-"], confinement.bootstrap(harness, argv),
            confinement.environment(private), renamed if inside else ())


def exit_status(code, bwrap):
    """The executor's exit status as ``Popen.returncode`` gives it (-N for signal N); bubblewrap
    reports a command killed by signal N as 128 + N."""
    if bwrap is not None and 128 < code < 128 + signal.NSIG:
        return -(code - 128)
    return code


def start(spec, *, memory, file_size, cpu_seconds, bwrap=None, course=None,
          private_size=confinement.DEFAULT_PRIVATE_SIZE, user=True, totals=None):
    """Start the executor of ``spec`` under these limits, inside bubblewrap at ``bwrap`` when
    given (``command``'s ``private_size`` and ``user``), under ``course`` (a profile's JSON)
    when given, in the group of ``totals`` when given (``{"procs": [cgroup.procs files],
    "processes": RLIMIT_NPROC's share or None}``: ``cgroups.entering``); a
    ``StartedExecutor`` (``remote.connect`` reads its first message)."""
    request_read, request_write = os.pipe()
    reply_read, reply_write = os.pipe()
    try:
        argv, program, environment, renamed = command(
            spec, requests=request_read, replies=reply_write, memory=memory,
            file_size=file_size, cpu_seconds=cpu_seconds, bwrap=bwrap, course=course,
            private_size=private_size, user=user)
        process = subprocess.Popen(argv, stdin=subprocess.PIPE, env=environment,
                                   pass_fds=(request_read, reply_write),
                                   preexec_fn=cgroups.entering(**(totals or {})))
    except BaseException:
        os.close(request_write)
        os.close(reply_read)
        raise
    finally:
        os.close(request_read)
        os.close(reply_write)
    try:
        with process.stdin:
            process.stdin.write(program)
    except BrokenPipeError:  # it died before reading its program: its exit says why
        pass
    return StartedExecutor(process, os.fdopen(request_write, "wb"), os.fdopen(reply_read, "rb"),
                           bwrap, renamed)


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
