"""The judge of one target: ``python -m verification.confined.worker SPEC --record-fd N``.

It never imports the target. It starts the target's executor first (``launch.start``, before
it imports torch and the checks, ``judge.py``: the executor
sets the limits ``--memory``, ``--file-size`` and ``--cpu-seconds`` on itself before it imports
the target) and runs every case (``verification.suite.conformance``) on the ``RemoteTarget``,
one at a time: the references, tolerances and statuses are computed here, from what the
executor returns. Before it starts the executor it makes itself non-dumpable
(``PR_SET_DUMPABLE``), so the target's processes, which run as the same user, cannot attach to
it or read its memory or file descriptors through ``/proc``.

It reports on the inherited pipe ``--record-fd``, which the executor does not inherit, one JSON
object a line, each written whole as soon as there is something to say, so a hang or a crash
in one case keeps every case before it:

- ``{"error": message}`` and exit status ``IMPORT_FAILED`` when the target cannot be loaded;
- ``{"plan": {"target": description, "cases": count, "built": [case names], "skipped":
  [{"case", "component", "reason"}]}}`` once the cases are built (``skipped``: those not built
  for lack of an optional component); with ``--case NAME`` only the case of that name is
  built and run, and the plan adds ``"names"``, every case's name (so that the parent can list
  them where none has that name);
- ``{"start": case name}`` before a case, ``{"done": case name, "checks": [...]}`` after it;
- ``{"memory": case name}`` and exit status ``MEMORY_EXHAUSTED`` when the executor ran out of
  its address space in a case;
- ``{"broken": message}`` and exit status ``EXECUTOR_BROKEN`` when the executor exited or sent
  something malformed in a case;
- ``{"finished": true}`` last.

An executor killed by a signal ends this process by the same signal, after its record is
flushed, so the parent (``isolation.py``) reports it as it reports any crash, with the
executor's ``faulthandler`` report from the stderr they share.
"""

import argparse
import ctypes
import faulthandler
import json
import os
import sys

from verification.confined import confinement, launch
from verification.confined.launch import EXECUTOR_BROKEN, IMPORT_FAILED, MEMORY_EXHAUSTED

__all__ = ["main", "IMPORT_FAILED", "MEMORY_EXHAUSTED", "EXECUTOR_BROKEN", "CHECK_DTYPE_NAMES"]

CHECK_DTYPE_NAMES = ("float64", "float32")
"""``--dtype``'s choices: the names of ``adapter.CHECK_DTYPES`` (``tests/test_isolation.py``
holds them equal), written out so this module imports no torch."""

_PR_SET_DUMPABLE = 4


def main(argv=None):
    """Judge one target; return the exit status. The executor starts before torch and the
    checks are imported here (``launch.py``)."""
    parser = argparse.ArgumentParser(prog="python -m verification.confined.worker")
    parser.add_argument("spec")
    parser.add_argument("--record-fd", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--dtype", choices=CHECK_DTYPE_NAMES,
                        help="check in this dtype alone (default: the target's own dtypes)")
    parser.add_argument("--case", default=None, help="run only the case of this name")
    parser.add_argument("--memory", type=int, required=True, help="the executor's RLIMIT_AS")
    parser.add_argument("--file-size", type=int, required=True,
                        help="the executor's RLIMIT_FSIZE")
    parser.add_argument("--cpu-seconds", type=int, required=True,
                        help="the executor's RLIMIT_CPU")
    parser.add_argument("--bwrap", default=None, help="run the executor inside bubblewrap")
    parser.add_argument("--private-size", type=int, default=confinement.DEFAULT_PRIVATE_SIZE,
                        help="bytes of the executor's private tmpfs inside bubblewrap")
    parser.add_argument("--no-user-namespace", dest="user", action="store_false",
                        help="inside bubblewrap, keep the user's uid (no user namespace here)")
    parser.add_argument("--course", default=None,
                        help="a course profile as JSON (verification/course/profile.py)")
    parser.add_argument("--totals", type=json.loads, default=None,
                        help="the executor's group as JSON (launch.start's totals)")
    args = parser.parse_args(argv)
    faulthandler.enable(file=sys.stderr, all_threads=True)
    _not_dumpable()
    os.set_inheritable(args.record_fd, False)
    with os.fdopen(args.record_fd, "wb") as record:
        started = launch.start(args.spec, memory=args.memory, file_size=args.file_size,
                               cpu_seconds=args.cpu_seconds, bwrap=args.bwrap,
                               course=args.course, private_size=args.private_size,
                               user=args.user, totals=args.totals)
        from verification.confined.judge import judge  # torch and the checks: see ``launch``
        return judge(args, started, lambda message: _send(record, message))


def _not_dumpable():
    """``prctl(PR_SET_DUMPABLE, 0)``: no process of the same user may ptrace this one or open
    its ``/proc/PID/mem`` or ``fd``; a no-op where there is no ``prctl`` (not Linux)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _send(record, message):
    record.write(json.dumps(message, allow_nan=True).encode("utf-8") + b"\n")
    record.flush()


if __name__ == "__main__":
    launch.leave(main())
