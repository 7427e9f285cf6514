"""SIGINT and SIGTERM stop ``refnet verify``: workers killed, report marked interrupted."""

import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import pytest
from check_helpers import HANG_GUARD, stop_with

from verification.interruption import Interrupted, Interruption
from verification.many_seeds.workers import Workers

ROOT = Path(__file__).resolve().parents[1]


def test_a_raising_interruption_raises_once_on_the_main_thread_and_ends_at_its_block():
    before = signal.getsignal(signal.SIGINT)
    reached = []
    with Interruption(raising=True) as interruption:
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(HANG_GUARD)  # the handler's exception ends the sleep
            reached.append("after the sleep")
        except Interrupted:
            os.kill(os.getpid(), signal.SIGTERM)  # a second signal raises nothing
            reached.append("clean-up")
            raise
    assert reached == ["clean-up"]
    assert interruption.signal == signal.SIGINT and interruption.stop.is_set()
    assert interruption.exit_status(passed=True) == 130
    assert signal.getsignal(signal.SIGINT) is before, "the previous handler is restored"


def _sleep_then_return(seconds):
    time.sleep(seconds)
    return "finished"


def test_workers_leaving_on_an_exception_kill_their_runs_instead_of_waiting():
    with pytest.raises(RuntimeError, match="stop"), Workers(2) as workers:
        future = workers.submit(_sleep_then_return, HANG_GUARD)
        give_up = time.monotonic() + HANG_GUARD
        while not future.running() and time.monotonic() < give_up:
            time.sleep(0.05)
        time.sleep(0.5)  # running() is set when the task is queued for a worker
        raise RuntimeError("stop")
    with pytest.raises(BrokenProcessPool):
        future.result(timeout=0)


def _children(pid):
    """The ids of the live child processes of ``pid`` (empty once it is gone)."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            pass
    return [child for child in found if _alive(child)]


def _alive(pid):
    """Whether ``pid`` runs (a zombie has ended: only its exit status is left)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux's /proc")
@pytest.mark.parametrize("number", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_kills_the_training_workers_and_writes_a_report_marked_interrupted(
        tmp_path, number):
    out = tmp_path / "out"
    command = [sys.executable, "-c",
               "import sys; from verification.cli import main; sys.exit(main())",
               "verify", "--quick", "--only", "reproduction", "--workers", "2",
               "--out", str(out)]
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          env=environment, cwd=tmp_path) as verify:
        helpers, workers = [], []  # multiprocessing's fork server and resource tracker; ours
        give_up = time.monotonic() + HANG_GUARD
        while not workers and time.monotonic() < give_up and verify.poll() is None:
            time.sleep(0.1)
            helpers = _children(verify.pid)
            workers = [worker for helper in helpers for worker in _children(helper)]
        assert workers, f"no training worker started: {verify.poll()}"
        status = stop_with(verify, number)
        printed, errors = verify.stdout.read(), verify.stderr.read()
    assert status == 128 + number, printed + errors
    assert not [worker for worker in workers if _alive(worker)], "workers outlived the run"
    give_up = time.monotonic() + HANG_GUARD  # the helpers end on their own, reading EOF
    while [helper for helper in helpers if _alive(helper)] and time.monotonic() < give_up:
        time.sleep(0.1)
    assert not [helper for helper in helpers if _alive(helper)], "a helper was left running"
    assert f"refnet verify: interrupted by {number.name}" in printed
    assert "Traceback" not in errors, errors
    results = json.loads((out / "results.json").read_text())
    assert results["interrupted"] is True
    assert results["stages"]["interrupted"] == ["reproduction"], results["stages"]
    assert results["stages"]["run"] == [] and "checks" in results["stages"]["not_run"]
    assert not any(check["id"].startswith("stage/") for check in results["checks"]), \
        "the killed workers are no failed stage"
    assert "Verdict: INTERRUPTED" in (out / "index.html").read_text()
