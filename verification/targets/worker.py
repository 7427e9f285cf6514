"""The process one target runs in: ``python -m verification.targets.worker SPEC --record-fd N``.

Sets its resource limits (``--memory``, ``--file-size``, ``--cpu-seconds``) and turns on
``faulthandler`` before the target is imported, then loads the target and runs every case
(``verification.suite.conformance``), one at a time. It reports on the inherited pipe
``--record-fd``, one JSON object a line, each line written whole as soon as there is something
to say, so a hang or a crash in one case keeps every case before it:

- ``{"error": message}`` and exit status ``IMPORT_FAILED`` when the target cannot be loaded;
- ``{"plan": {"target": description, "cases": count, "built": [case names], "skipped":
  [{"case", "component", "reason"}]}}`` once the cases are built (``skipped``: those not built
  for lack of an optional component);
- ``{"start": case name}`` before a case, ``{"done": case name, "checks": [...]}`` after it;
- ``{"memory": case name}`` and exit status ``MEMORY_EXHAUSTED`` when a case ran out of the
  address space it is allowed (a ``MemoryError``, or torch failing to allocate);
- ``{"finished": true}`` last.

The record goes to a pipe, not to a file named on the command line, so a target cannot find a
record path and overwrite it after the run. The target shares this process and can still write
on the pipe itself; a verdict it cannot forge needs the judge/executor split that issue 20
plans next. Anything else (a crash of the interpreter, a hang) is the parent's business
(``verification/targets/isolation.py``).
"""

import argparse
import faulthandler
import json
import os
import resource
import sys
from dataclasses import replace

import torch

from verification.suite.conformance import dtype_name, planned_cases, run_cases
from verification.targets.adapter import CHECK_DTYPES, TargetError, load_target

__all__ = ["main", "IMPORT_FAILED", "MEMORY_EXHAUSTED"]

IMPORT_FAILED = 3
"""Exit status of a worker whose target could not be loaded."""

MEMORY_EXHAUSTED = 4
"""Exit status of a worker whose case ran out of its address space (``RLIMIT_AS``)."""


class _MemoryLimit(BaseException):
    """A case ran out of memory: a ``BaseException``, so the suite's guard, which turns any
    ``Exception`` of a target into a failed check, lets it through to stop the worker."""


def main(argv=None):
    """Run one target; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m verification.targets.worker")
    parser.add_argument("spec")
    parser.add_argument("--record-fd", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--dtype", choices=[dtype_name(d) for d in CHECK_DTYPES],
                        help="check in this dtype alone (default: the target's own dtypes)")
    parser.add_argument("--memory", type=int, required=True, help="RLIMIT_AS, bytes")
    parser.add_argument("--file-size", type=int, required=True, help="RLIMIT_FSIZE, bytes")
    parser.add_argument("--cpu-seconds", type=int, required=True, help="RLIMIT_CPU, seconds")
    args = parser.parse_args(argv)
    faulthandler.enable(file=sys.stderr, all_threads=True)
    _limit(resource.RLIMIT_AS, args.memory)
    _limit(resource.RLIMIT_FSIZE, args.file_size)
    _limit(resource.RLIMIT_CPU, args.cpu_seconds, extra=1)  # SIGXCPU first, SIGKILL 1 s later
    os.set_inheritable(args.record_fd, False)  # the target's own children do not get the pipe
    torch.set_num_threads(1)  # small tensors: one thread is faster, and workers run side by side
    with os.fdopen(args.record_fd, "wb") as record:
        return _run(args, lambda message: _send(record, message))


def _run(args, send):
    try:
        target = load_target(args.spec)
    except TargetError as error:
        send({"error": str(error)})
        return IMPORT_FAILED
    cases, skipped = planned_cases(target, args.seed, args.quick, dtypes=(
        None if args.dtype is None else (getattr(torch, args.dtype),)))
    send({"plan": {"target": target.description(), "cases": len(cases),
                   "built": [case.name for case in cases],
                   "skipped": [case.as_dict() for case in skipped]}})
    for case in cases:
        send({"start": case.name})
        try:
            results = run_cases([replace(case, run=_stopped_by_memory(case.run))])
        except _MemoryLimit:
            send({"memory": case.name})
            return MEMORY_EXHAUSTED
        send({"done": case.name, "checks": [result.as_dict() for result in results]})
    send({"finished": True})
    return 0


def _stopped_by_memory(run):
    """``run`` raising ``_MemoryLimit`` where it ran out of memory. The memory error (and with
    it the frames holding what was allocated) is dropped first, so the worker can still
    report."""
    def guarded_run():
        try:
            return run()
        except MemoryError:
            pass
        except RuntimeError as error:  # torch's CPU allocator reports an ENOMEM this way
            if "can't allocate memory" not in str(error):
                raise
        raise _MemoryLimit
    return guarded_run


def _limit(kind, value, extra=0):
    """Lower the limit ``kind`` to ``value`` (soft) and ``value + extra`` (hard), never above a
    hard limit already set."""
    _, hard = resource.getrlimit(kind)
    cap = (lambda v: v) if hard == resource.RLIM_INFINITY else (lambda v: min(v, hard))
    resource.setrlimit(kind, (cap(value), cap(value + extra)))


def _send(record, message):
    record.write(json.dumps(message, allow_nan=True).encode("utf-8") + b"\n")
    record.flush()


if __name__ == "__main__":
    sys.exit(main())
