"""Judges forked from a preloaded process (``verification/confined/zygote.py``): ``run_all``'s
judges are the zygote's children, each in a session of its own; a zygote that cannot start
leaves the fresh-interpreter path; a zygote that ends takes its judges with it, and their rows
say so. Crashes, timeouts and interruptions of forked judges are covered by
``tests/test_isolation.py`` and ``tests/test_interruption.py``, whose runs take this path."""

import json
import threading
import time
from pathlib import Path

from check_helpers import FRAMEWORKS, HANG_GUARD
from check_helpers import hostile_adapter as _adapter

from verification.confined import isolation
from verification.confined.isolation import run_all, run_isolated
from verification.confined.zygote import Zygote

HANDOUT = str(FRAMEWORKS / "handout_adapter.py")


def _children(parent):
    """``[(pid, session id)]`` of the live processes whose parent is ``parent``."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()  # state, ppid, pgrp, session
        except OSError:
            continue
        if int(fields[1]) == parent and fields[0] != "Z":
            found.append((int(stat.parent.name), int(fields[3])))
    return found


def test_run_alls_judges_are_children_of_one_zygote_each_leading_its_own_session(monkeypatch):
    zygotes, seen = [], []

    def recorded():
        zygotes.append(Zygote(isolation._import_environment(), isolation._HARNESS_ROOT))
        return zygotes[-1]

    monkeypatch.setattr(isolation, "judge_zygote", recorded)
    runs = run_all([HANDOUT, f"{HANDOUT}:WrongTanhDerivative"], jobs=1, timeout=HANG_GUARD,
                   quick=True, dtype="float64", progress=lambda spec, case: seen.append(
                       (spec, _children(zygotes[0].process.pid))))
    assert [run.status for run in runs] == ["completed", "completed"], runs
    assert any(check["status"] == "fail" for check in runs[1].checks()), "the planted bug"
    assert len(zygotes) == 1, "one zygote for the whole scoreboard"
    # each target's judge as seen at the starts of its cases; none is seen at a start read
    # after the judge had sent its last record and exited (it leaves at once), and those
    # starts say nothing of it
    observed = {}
    for spec, children in seen:
        if children:
            observed.setdefault(spec, set()).add(tuple(children))
    assert all(len(views) == 1 for views in observed.values()), seen  # one judge throughout
    judges = {spec: list(views.pop()) for spec, views in observed.items()}
    assert set(judges) == {HANDOUT, f"{HANDOUT}:WrongTanhDerivative"}, seen
    assert all(len(children) == 1 for children in judges.values()), seen
    assert all(pid == session for [(pid, session)] in judges.values()), seen
    assert judges[HANDOUT] != judges[f"{HANDOUT}:WrongTanhDerivative"], "a fork per target"
    assert zygotes[0].process.poll() == 0, "the zygote ended with the scoreboard"


def test_a_zygote_that_cannot_start_leaves_the_judge_to_a_fresh_interpreter(tmp_path):
    spec = _adapter(tmp_path, "broken", "raise RuntimeError('no import for you')\n")
    zygote = Zygote(isolation._import_environment(), str(tmp_path / "no such folder"))
    run = run_isolated(spec, timeout=HANG_GUARD, quick=True, zygote=zygote)
    assert "could not be started" in zygote.unavailable
    assert run.status == "import-error" and "no import for you" in run.message, run


def test_a_zygote_that_ends_takes_its_judges_along_and_their_rows_say_so(tmp_path):
    marker = tmp_path / "marker.json"
    spec = _adapter(tmp_path, "hang", "import time\ntime.sleep(3600)\n", marker=marker)
    zygote, runs = isolation.judge_zygote(), []
    thread = threading.Thread(target=lambda: runs.append(run_isolated(
        spec, timeout=HANG_GUARD, quick=True, use_sandbox=False, zygote=zygote)))
    thread.start()
    give_up = time.monotonic() + HANG_GUARD
    while not marker.exists() and time.monotonic() < give_up:
        time.sleep(0.1)
    time.sleep(0.5)  # the marker is written whole before the target sleeps
    executor = json.loads(marker.read_text())
    zygote.close()
    thread.join(HANG_GUARD)
    [run] = runs
    assert run.status == "crashed" and "the zygote that forked it ended" in run.message, run
    assert not _children(zygote.process.pid) and zygote.process.poll() == 0
    assert not Path(f"/proc/{executor['pid']}").exists() or Path(
        f"/proc/{executor['pid']}/stat").read_text().rpartition(")")[2].split()[0] == "Z"
