"""Totals across a target's processes (``verification/confined/cgroups.py``): each hostile
target below is test data written into ``tmp_path``, run through ``run_all`` or
``run_conform`` and measured from outside, by the test process that made its control group:
what its processes used together stays within the total, the row names the total, and no
group is left behind."""

import json
import os
import re
import threading
import time
from pathlib import Path

import pytest
from check_helpers import HANG_GUARD
from check_helpers import hostile_adapter as _adapter

from verification.confined import cgroups
from verification.confined.cgroups import Support, Totals
from verification.confined.isolation import run_all
from verification.conform import ConformOptions, run_conform

_FOUND = cgroups.support()
needs_cgroups = pytest.mark.skipif(
    _FOUND.version is None, reason=f"no control groups to be had here: {_FOUND.reason}")


@pytest.fixture
def measured(monkeypatch):
    """What each run's group held at its peak, read just before the parent removes it:
    ``[{"pids", "memory", "cpu"}]``; afterwards, that every group was removed."""
    peaks, groups, remove = [], [], cgroups.Group.remove

    def measure(group):
        memory_file = "memory.max_usage_in_bytes" if group.version == "v1" else "memory.peak"
        peaks.append({"pids": int(cgroups._read(group.directories["pids"], "pids.peak") or 0),
                      "memory": int(cgroups._read(group.directories["memory"], memory_file)
                                    or 0),
                      "cpu": group.cpu_used()})
        groups.append(group)
        return remove(group)

    monkeypatch.setattr(cgroups.Group, "remove", measure)
    yield peaks
    left = [directory for group in groups for directory in group.directories.values()
            if os.path.exists(directory)]
    assert not left, f"groups left behind: {left}"
    assert not _leftover_groups(), f"groups left behind: {_leftover_groups()}"


def _leftover_groups():
    """This process's run groups still in the hierarchies (a probe's are removed at once)."""
    mine = f"refnet-target-{os.getpid()}-"
    return [entry.path for parent in set(_FOUND.parents.values())
            for entry in os.scandir(parent) if entry.name.startswith(mine)]


def _run(spec, **totals):
    [run] = run_all([spec], jobs=1, timeout=HANG_GUARD, quick=True, dtype="float64",
                    totals=Totals(**totals))
    return run


_FORKER = """
    import os, time

    class Adapter(Base):
        def linear(self, *args):
            for _ in range(150):
                if os.fork() == 0:
                    time.sleep(3600)
                    os._exit(0)
            return super().linear(*args)
    """


@needs_cgroups
def test_a_fork_bomb_never_holds_more_than_the_process_total_and_its_row_names_it(
        tmp_path, measured):
    run = _run(_adapter(tmp_path, "forker", _FORKER))
    assert run.status == "limit", run
    assert "more than 64 processes and threads at once" in run.message, run.message
    # the parent's poll (every 0.1 s) may see it while a case runs or between two: either way
    # the row names a case ("seen in case 'relu'", "seen after case 'linear 3→4'")
    assert re.search(r"seen (in|after) case '", run.message), run.message
    [peak] = measured
    assert peak["pids"] <= 64, f"{peak['pids']} processes at once under a total of 64"
    assert run.sandbox["totals"]["processes"] == 64, run.sandbox


@needs_cgroups
def test_children_that_touch_memory_are_stopped_by_the_memory_total(tmp_path, measured):
    spec = _adapter(tmp_path, "toucher", """
        import os, time

        class Adapter(Base):
            def linear(self, *args):
                for _ in range(40):
                    if os.fork() == 0:
                        block = bytearray(120 * 2**20)
                        for index in range(0, len(block), 4096):
                            block[index] = 1
                        time.sleep(3600)
                        os._exit(0)
                time.sleep(3600)
        """)
    run = _run(spec, memory=512 * 2**20)
    assert run.status == "limit", run
    assert "its processes used more than 512 MiB of memory together" in run.message, run
    [peak] = measured
    assert peak["memory"] <= 512 * 2**20, f"{peak['memory'] / 2**20:.0f} MiB under 512 MiB"
    assert run.seconds < HANG_GUARD / 2, f"stopped by the memory total only after {run.seconds}"


@needs_cgroups
def test_busy_children_are_stopped_by_the_cpu_total_not_eight_times_it(tmp_path, measured):
    spec = _adapter(tmp_path, "burner", """
        import os, time

        class Adapter(Base):
            def linear(self, *args):
                for _ in range(8):
                    if os.fork() == 0:
                        while True:
                            pass
                time.sleep(3600)
        """)
    run = _run(spec, cpu_seconds=6)
    assert run.status == "limit", run
    assert "more than 6 s of CPU time together" in run.message, run.message
    [peak] = measured
    cores = len(os.sched_getaffinity(0))
    assert peak["cpu"] <= 6 + 0.5 * cores, f"{peak['cpu']:.1f} s of CPU under a total of 6 s"


@needs_cgroups
def test_an_interrupted_run_leaves_no_group_and_no_process(tmp_path, measured):
    pids = tmp_path / "pids.txt"
    spec = _adapter(tmp_path, "sleeper", f"""
        import os, time

        class Adapter(Base):
            def linear(self, *args):
                for _ in range(4):
                    child = os.fork()
                    if child == 0:
                        os.setsid()  # out of the judge's session: only the group finds it
                        time.sleep(3600)
                        os._exit(0)
                open({str(pids)!r}, "a").write("started\\n")
                time.sleep(3600)
        """)
    stop = threading.Event()
    threading.Thread(target=lambda: _stop_when(pids, stop), daemon=True).start()
    [run] = run_all([spec], jobs=1, timeout=HANG_GUARD, quick=True, stop=stop,
                    use_sandbox=False)
    assert run.status == "interrupted", run
    assert len(measured) == 1  # and the fixture asserts the group is gone


def _stop_when(path, stop):
    give_up = time.monotonic() + HANG_GUARD
    while not path.exists() and time.monotonic() < give_up:
        time.sleep(0.05)
    stop.set()


@needs_cgroups
def test_the_report_and_the_terminal_name_the_total_and_list_the_totals(tmp_path, capsys,
                                                                       measured):
    out = tmp_path / "out"
    spec = _adapter(tmp_path, "forker", _FORKER)
    status = run_conform(ConformOptions(targets=(spec,), out=out, quick=True, jobs=1,
                                        dtype="float64", show_progress=False,
                                        timeout=HANG_GUARD, processes=32))
    results = json.loads((out / "results.json").read_text())
    assert status == 1 and results["run"]["status"] == "limit", results["run"]
    assert results["run"]["sandbox"]["totals"]["by"] == f"cgroup {_FOUND.version}"
    page = (out / "index.html").read_text()
    assert "32 processes and threads at once" in page and 'id="totals"' in page
    printed = capsys.readouterr().out
    assert "limit: stopped: it tried to run more than 32 processes" in printed, printed
    assert "no totals" not in printed, printed


def test_without_cgroups_the_totals_say_why_and_what_is_left(monkeypatch):
    none = Support(None, {}, "no cgroups: v2 not mounted; v1 pids not mounted")
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    root = cgroups.describe(none, Totals(cpu_seconds=70))
    assert root["by"] is None and root["processes"] is None, root
    assert "pids not mounted" in root["reason"] and "not enforced for root" in root["reason"]
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    user = cgroups.describe(none, Totals(cpu_seconds=70))
    assert user["by"] == "RLIMIT_NPROC" and user["processes"] == 64, user
    assert user["memory_bytes"] is None and user["cpu_seconds"] is None, user


def test_the_terminal_says_so_where_no_group_held_the_totals(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cgroups, "support", lambda: Support(None, {}, "no cgroups: planted"))
    out = tmp_path / "out"
    spec = str(Path(__file__).parent / "frameworks" / "handout_adapter.py")
    run_conform(ConformOptions(targets=(spec,), out=out, quick=True, jobs=1, dtype="float64",
                               show_progress=False, timeout=HANG_GUARD, case="tanh"))
    printed = capsys.readouterr().out
    assert "no totals across a target's processes (no cgroups: planted" in printed, printed
