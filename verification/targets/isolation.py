"""Each target in its own process, with a timeout: a hang, a crash or a failed import is a row.

Frameworks clash in module names and change torch's global state, and a target's code may hang
or kill its interpreter, so ``run_isolated`` starts ``verification.targets.worker`` in a new
process (and process group), reads its progress lines, and waits at most ``timeout`` seconds;
then it kills the whole group. ``run_all`` runs several targets, at most ``jobs`` at a time.
"""

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from verification.targets.worker import IMPORT_FAILED

__all__ = ["TargetRun", "run_isolated", "run_all", "STATUSES"]

STATUSES = ("completed", "timeout", "crashed", "import-error")
_STDERR_TAIL = 2000


@dataclass(frozen=True)
class TargetRun:
    """How one target's process ended.

    Attributes:
        spec: the target as given on the command line.
        status: one of ``STATUSES``.
        message: why it did not complete (empty when it did).
        seconds: wall time of the process.
        record: the worker's record (``target``, ``checks``) when it completed, else ``None``.
    """

    spec: str
    status: str
    message: str
    seconds: float
    record: dict | None

    def cases(self):
        """``{"built": [names], "skipped": [{"case", "component", "reason"}]}`` from the
        record, validated (it comes from another process: a malformed list is dropped, and a
        skipped entry is kept only with all three keys as strings); empty lists for a run that
        did not complete."""
        record = self.record if isinstance(self.record, dict) else {}
        if self.status != "completed":
            return {"built": [], "skipped": []}
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

    def failure_record(self):
        """The one failed check (a ``CheckResult.as_dict()``) that stands for a target that
        did not complete."""
        inf = float("inf")
        return {"id": f"target/{self.status}", "module": self.spec, "kind": "error",
                "status": "fail", "max_abs_error": inf, "max_rel_error": inf, "tolerance": 0.0,
                "error_ratio": inf, "excluded": 0, "convention": "", "component": "target",
                "case": "", "detail": f"the target did not complete ({self.status}): "
                                      f"{self.message}"}


def run_isolated(spec, *, timeout, quick=False, seed=0, progress=None):
    """Run one target in its own process; never raises for anything the target does.

    Args:
        spec: an adapter spec (``load_target``'s).
        timeout: seconds before the process group is killed.
        quick: the worker's ``--quick``.
        seed: the worker's ``--seed``.
        progress: optional ``progress(spec, case_name)``, called as the worker starts a case.
    """
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="refnet-conform-") as folder:
        record_path = Path(folder) / "record.json"
        command = [sys.executable, "-m", "verification.targets.worker", spec, str(record_path),
                   "--seed", str(seed), *(["--quick"] if quick else [])]
        with subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True,
                              start_new_session=True) as process:
            errors = []
            readers = [threading.Thread(target=_read_progress, daemon=True,
                                        args=(process.stdout, spec, progress)),
                       threading.Thread(target=lambda: errors.append(process.stderr.read()),
                                        daemon=True)]
            for reader in readers:
                reader.start()
            try:
                code = process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                _kill_group(process)
                code = None
            for reader in readers:
                reader.join(timeout=5)
        seconds = time.perf_counter() - start
        if code is None:
            return TargetRun(spec, "timeout", f"stopped after the timeout of {timeout:g} s",
                             seconds, None)
        stderr = "".join(errors)[-_STDERR_TAIL:].strip()
        return _outcome(spec, code, record_path, stderr, seconds)


def _read_progress(stream, spec, progress):
    for line in stream:
        if progress is not None and line.startswith("case "):
            progress(spec, line[5:].strip())


def _kill_group(process):
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def _outcome(spec, code, record_path, stderr, seconds):
    record = _read(record_path)
    if code == 0 and record is not None and "checks" in record:
        return TargetRun(spec, "completed", "", seconds, record)
    if code == IMPORT_FAILED and record is not None and "error" in record:
        return TargetRun(spec, "import-error", record["error"], seconds, None)
    how = (f"killed by signal {-code}" if code < 0 else f"exited with status {code}")
    return TargetRun(spec, "crashed", f"the target's process {how} before finishing"
                     + (f"; its last words: {stderr}" if stderr else ""), seconds, None)


def _read(path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def run_all(specs, *, jobs, timeout, quick=False, seed=0, progress=None):
    """``run_isolated`` for every spec, at most ``jobs`` at once; results in the given order."""
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = [pool.submit(run_isolated, spec, timeout=timeout, quick=quick, seed=seed,
                               progress=progress) for spec in specs]
        return [future.result() for future in futures]
