"""The judging part of ``worker.py``: the cases run on the ``RemoteTarget`` of an executor that
is already starting, and the messages of the record (``worker``'s module docstring).

It is a module of its own because it imports torch and every check: ``worker.py`` imports it
only after it has started the executor, so that a fresh judge and its executor import torch
side by side (``launch.py``); the zygote imports it once for all its judges.
"""

import os
import signal
import sys

import torch

from verification.confined.launch import EXECUTOR_BROKEN, IMPORT_FAILED, MEMORY_EXHAUSTED
from verification.confined.remote import ExecutorGone, connect
from verification.course.profile import Course
from verification.suite.conformance import planned_cases, run_cases
from verification.targets.adapter import TargetError

__all__ = ["judge"]


def judge(args, started, send):
    """Judge the target of ``args`` (``worker``'s arguments) through its executor ``started``,
    reporting with ``send``; the exit status."""
    torch.set_num_threads(1)  # small tensors: one thread is faster, and judges run side by side
    try:
        target = connect(started, args.spec)
    except TargetError as error:
        send({"error": str(error)})
        return IMPORT_FAILED
    case = None
    course = Course.from_json(args.course) if args.course else None
    try:
        cases, skipped = planned_cases(target, args.seed, args.quick, dtypes=(
            None if args.dtype is None else (getattr(torch, args.dtype),)), course=course)
        plan = {"target": target.description()}
        if args.case is not None:  # one case alone (``refnet conform --case``)
            plan["names"] = [planned.name for planned in cases]
            cases = [planned for planned in cases if planned.name == args.case]
        send({"plan": {**plan, "cases": len(cases), "built": [case.name for case in cases],
                       "skipped": [case.as_dict() for case in skipped]}})
        for case in cases:
            send({"start": case.name})
            target.reset(case.name)
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
