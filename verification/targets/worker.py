"""The process one target runs in: ``python -m verification.targets.worker SPEC RECORD``.

Loads the target, runs every case (``verification.suite.conformance``) and writes a JSON record
atomically: ``{"target": description, "cases": count, "built": [case names], "skipped":
[{"case", "component", "reason"}], "checks": [...]}`` (``skipped``: the cases not built for lack
of an optional component), or ``{"error": message}`` with exit status 3 when the target cannot
be loaded. Before each case it prints ``case <name>`` on stdout, so the parent can show
progress. Anything else (a crash of the interpreter, a hang) is the parent's business: it has
its own timeout (``verification/targets/isolation.py``).
"""

import argparse
import json
import sys

import torch

from refnet._io import write_atomically
from verification.suite.conformance import planned_cases, run_cases
from verification.targets.adapter import TargetError, load_target

__all__ = ["main", "IMPORT_FAILED"]

IMPORT_FAILED = 3
"""Exit status of a worker whose target could not be loaded."""


def main(argv=None):
    """Run one target; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m verification.targets.worker")
    parser.add_argument("spec")
    parser.add_argument("record")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # small tensors: one thread is faster, and workers run side by side
    try:
        target = load_target(args.spec)
    except TargetError as error:
        write_atomically(args.record, json.dumps({"error": str(error)}))
        return IMPORT_FAILED
    cases, skipped = planned_cases(target, args.seed, args.quick)
    results = run_cases(cases, progress=lambda name: print(f"case {name}", flush=True))
    record = {"target": target.description(), "cases": len(cases),
              "built": [case.name for case in cases],
              "skipped": [case.as_dict() for case in skipped],
              "checks": [result.as_dict() for result in results]}
    write_atomically(args.record, json.dumps(record, allow_nan=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
