"""The judge of one target: ``python -m verification.targets.worker SPEC --record-fd N``.

It never imports the target. It starts the target's executor (``remote.connect``: the executor
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
  for lack of an optional component);
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
import signal
import sys

import torch

from verification.suite.conformance import dtype_name, planned_cases, run_cases
from verification.targets.adapter import CHECK_DTYPES, TargetError
from verification.targets.executor import IMPORT_FAILED, MEMORY_EXHAUSTED
from verification.targets.remote import ExecutorGone, connect

__all__ = ["main", "IMPORT_FAILED", "MEMORY_EXHAUSTED", "EXECUTOR_BROKEN"]

EXECUTOR_BROKEN = 5
"""Exit status of a judge whose executor exited or broke the protocol in a case."""

_PR_SET_DUMPABLE = 4


def main(argv=None):
    """Judge one target; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m verification.targets.worker")
    parser.add_argument("spec")
    parser.add_argument("--record-fd", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--dtype", choices=[dtype_name(d) for d in CHECK_DTYPES],
                        help="check in this dtype alone (default: the target's own dtypes)")
    parser.add_argument("--memory", type=int, required=True, help="the executor's RLIMIT_AS")
    parser.add_argument("--file-size", type=int, required=True,
                        help="the executor's RLIMIT_FSIZE")
    parser.add_argument("--cpu-seconds", type=int, required=True,
                        help="the executor's RLIMIT_CPU")
    parser.add_argument("--bwrap", default=None, help="run the executor inside bubblewrap")
    args = parser.parse_args(argv)
    faulthandler.enable(file=sys.stderr, all_threads=True)
    _not_dumpable()
    os.set_inheritable(args.record_fd, False)
    torch.set_num_threads(1)  # small tensors: one thread is faster, and judges run side by side
    with os.fdopen(args.record_fd, "wb") as record:
        return _run(args, lambda message: _send(record, message))


def _not_dumpable():
    """``prctl(PR_SET_DUMPABLE, 0)``: no process of the same user may ptrace this one or open
    its ``/proc/PID/mem`` or ``fd``; a no-op where there is no ``prctl`` (not Linux)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _run(args, send):
    try:
        target = connect(args.spec, memory=args.memory, file_size=args.file_size,
                         cpu_seconds=args.cpu_seconds, bwrap=args.bwrap)
    except TargetError as error:
        send({"error": str(error)})
        return IMPORT_FAILED
    case = None
    try:
        cases, skipped = planned_cases(target, args.seed, args.quick, dtypes=(
            None if args.dtype is None else (getattr(torch, args.dtype),)))
        send({"plan": {"target": target.description(), "cases": len(cases),
                       "built": [case.name for case in cases],
                       "skipped": [case.as_dict() for case in skipped]}})
        for case in cases:
            send({"start": case.name})
            target.reset()
            results = run_cases([case])
            send({"done": case.name, "checks": [result.as_dict() for result in results]})
    except ExecutorGone as gone:
        return _gone(gone, target, case, send)
    send({"finished": True})
    target.close()
    return 0


def _gone(gone, target, case, send):
    """Report an executor that cannot go on, in ``case`` (``None``: while planning), and
    return the exit status (or end by the executor's signal)."""
    where = "while the cases were planned" if case is None else f"in case {case.name!r}"
    if gone.memory:
        send({"memory": case.name if case is not None else "planning"})
        return MEMORY_EXHAUSTED
    code = target.close()
    if code is not None and code < 0:
        sys.stderr.flush()
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    send({"broken": f"{gone.message} {where}"})
    return EXECUTOR_BROKEN


def _send(record, message):
    record.write(json.dumps(message, allow_nan=True).encode("utf-8") + b"\n")
    record.flush()


if __name__ == "__main__":
    sys.exit(main())
