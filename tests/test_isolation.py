"""The worker's sandbox (``verification/confined/isolation.py``): each hostile target below is
test data, written into ``tmp_path``; each misbehaves in one way and must end as a row that
says so, with the harness, the caller's files and the machine's processes unharmed."""

import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from check_helpers import HANG_GUARD, stop_with
from check_helpers import hostile_adapter as _adapter

from verification.confined.isolation import (
    CAPTURE_LIMIT,
    MEMORY_LIMIT,
    _Record,
    run_all,
    run_isolated,
    sandbox,
)
from verification.conform import ConformOptions, _target_results, run_conform


def _alive(pid):
    """Whether process ``pid`` exists and is not a zombie, waiting (up to the hang guard) for
    a killed one to be reaped."""
    give_up = time.monotonic() + HANG_GUARD
    while time.monotonic() < give_up:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
        except OSError:
            return False
        if state == "Z":
            return False
        time.sleep(0.1)
    return True


def _group_gone(pgid):
    """Whether no live process is left in process group ``pgid``: a killed one whose parent
    was killed too stays a zombie until init reaps it, and this machine's init may never."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return False
    return True


def test_a_memory_hog_is_a_crashed_row_naming_the_limit_and_the_case(tmp_path, zygote):
    spec = _adapter(tmp_path, "hog", """
        class Adapter(Base):
            def linear(self, *args):
                hoard = []
                while True:
                    hoard.append(bytes(2**28))  # address space, never touched: cheap to test
        """)
    run = run_isolated(spec, timeout=HANG_GUARD, quick=True, zygote=zygote)
    assert run.status == "crashed", run
    assert "memory limit" in run.message and f"{MEMORY_LIMIT / 2**30:g} GiB" in run.message
    assert "in case 'linear 3→4'" in run.message, run.message


def test_no_child_of_a_target_outlives_its_run(tmp_path, zygote):
    pids = tmp_path / "pids.json"
    spec = _adapter(tmp_path, "spawner", f"""
        import json, subprocess
        same_group = subprocess.Popen(["sleep", "3600"])
        own_group = subprocess.Popen(["sleep", "3600"], process_group=0)
        open({str(pids)!r}, "w").write(json.dumps([same_group.pid, own_group.pid]))
        raise ImportError("planted: children started, then a failed import")
        """)
    run = run_isolated(spec, timeout=HANG_GUARD, quick=True, use_sandbox=False,
                       zygote=zygote)
    assert run.status == "import-error", run
    for pid in json.loads(pids.read_text()):
        assert not _alive(pid), f"child {pid} of the target is still running after its run"


def test_an_output_flood_keeps_only_a_bounded_tail_in_a_parent_that_stays_small(tmp_path):
    spec = _adapter(tmp_path, "flood", """
        chunk = b"x" * 2**20 + b"\\n"
        for _ in range(100):
            sys.stdout.buffer.write(chunk)
            sys.stderr.buffer.write(chunk)
        sys.stdout.buffer.write(b"the last line\\n")
        raise ImportError("planted: after 200 MB of output")
        """)
    parent = textwrap.dedent(f"""
        import json, resource
        from verification.confined.isolation import run_isolated
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        run = run_isolated({spec!r}, timeout={HANG_GUARD}, quick=True)
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(json.dumps({{"growth_kb": after - before, "status": run.status,
                          "stdout": run.stdout, "stderr": run.stderr}}))
        """)
    completed = subprocess.run([sys.executable, "-c", parent], capture_output=True, text=True,
                               timeout=2 * HANG_GUARD, check=True)
    outcome = json.loads(completed.stdout)
    assert outcome["status"] == "import-error", outcome["status"]
    assert outcome["growth_kb"] < 50 * 1024, f"the parent grew by {outcome['growth_kb']} kB"
    for name in ("stdout", "stderr"):
        assert len(outcome[name]) <= CAPTURE_LIMIT + 100, f"{name}: {len(outcome[name])} chars"
        assert outcome[name].startswith("["), "the tail says how much was dropped before it"
    assert outcome["stdout"].endswith("the last line\n")


def test_files_written_to_cwd_home_and_tmp_land_in_a_private_folder_removed_afterwards(
        tmp_path, monkeypatch, zygote):
    caller, home, marker = tmp_path / "caller", tmp_path / "home", tmp_path / "marker.json"
    caller.mkdir()
    home.mkdir()
    _adapter(caller, "writer", marker=marker, body="""
        import tempfile
        from pathlib import Path
        Path("in_cwd.txt").write_text("planted")
        (Path.home() / "in_home.txt").write_text("planted")
        tempfile.NamedTemporaryFile(delete=False).write(b"planted")
        raise ImportError("planted: files written, then a failed import")
        """)
    monkeypatch.chdir(caller)
    monkeypatch.setenv("HOME", str(home))
    run = run_isolated("writer_adapter.py", timeout=HANG_GUARD, quick=True,  # relative: found
                       use_sandbox=False,  # the marker is written outside the private folder
                       zygote=zygote)
    assert run.status == "import-error" and "planted" in run.message, run
    assert sorted(path.name for path in caller.iterdir()) == [
        "handout.py", "handout_adapter.py", "writer_adapter.py"]
    assert list(home.iterdir()) == []
    seen = json.loads(marker.read_text())
    assert seen["cwd"] == seen["home"] != str(caller)
    assert not Path(seen["cwd"]).exists(), "the private folder is removed after the run"
    assert seen["argv"] == ["-"], "nothing on the command line: its program comes on stdin"


def test_a_hang_in_the_third_case_keeps_the_first_two_and_names_the_case(tmp_path, zygote):
    spec = _adapter(tmp_path, "third", """
        import time

        class Adapter(Base):
            def relu(self):
                time.sleep(3600)
        """)
    for timeout in (8, 30, HANG_GUARD):  # longer only where a loaded machine was too slow to
        run = run_isolated(spec, timeout=timeout, quick=True,  # reach the third case in time
                           zygote=zygote)
        if run.status != "timeout" or "in case 'relu'" in run.message:
            break
    assert run.status == "timeout" and "in case 'relu'" in run.message, run
    assert run.cases()["built"] == ["linear 3→4", "linear 25→2, batch 1"]
    results = _target_results(run, ConformOptions(targets=(spec,), out=tmp_path), "third")
    cases = {check["case"] for check in results["checks"]}
    assert cases == {"linear 3→4", "linear 25→2, batch 1", ""}, cases
    assert all(check["status"] == "pass" for check in results["checks"] if check["case"])
    assert results["status"] == "fail" and results["checks"][-1]["id"] == "target/timeout"


def test_a_segfault_names_its_case_and_its_place(tmp_path, zygote):
    spec = _adapter(tmp_path, "segfault", """
        import ctypes

        class Adapter(Base):
            def linear(self, *args):
                return ctypes.string_at(0)
        """)
    run = run_isolated(spec, timeout=HANG_GUARD, quick=True, zygote=zygote)
    assert run.status == "crashed" and "SIGSEGV" in run.message, run
    assert "in case 'linear 3→4'" in run.message
    assert "Fatal Python error: Segmentation fault" in run.message
    assert "segfault_adapter.py" in run.message, "faulthandler's traceback names the file"


@pytest.mark.parametrize(("number", "targets"), [(signal.SIGINT, 2), (signal.SIGTERM, 1)])
def test_a_signal_stops_the_workers_and_writes_reports_marked_interrupted(tmp_path, number,
                                                                          targets):
    marker, out = tmp_path / "marker.json", tmp_path / "out"
    spec = _adapter(tmp_path, "hang", "import time\ntime.sleep(3600)\n", marker=marker)
    specs = [spec, f"{spec}:Base"][:targets]
    command = [sys.executable, "-c",
               "import sys; from verification.cli import main; sys.exit(main())",
               "conform", *specs, "--out", str(out), "--jobs", "1", "--timeout", "3600",
               "--no-sandbox"]  # the marker is written outside the private folder
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True) as conform:
        give_up = time.monotonic() + HANG_GUARD
        while not marker.exists() and time.monotonic() < give_up and conform.poll() is None:
            time.sleep(0.1)
        time.sleep(0.5)  # the marker is written whole before the worker sleeps
        worker = json.loads(marker.read_text())
        status = stop_with(conform, number)
        printed = conform.stdout.read()
    assert status == 128 + number, printed
    assert _group_gone(worker["pgid"]) and not Path(worker["cwd"]).exists()
    assert "interrupted by " + number.name in printed
    results = json.loads((out / "results.json").read_text())
    assert results["interrupted"] is True and results["status"] == "fail"
    assert "INTERRUPTED" in (out / "index.html").read_text()
    if targets == 1:
        assert results["run"] == {**results["run"], "status": "interrupted",
                                  "message": "interrupted while loading the target"}
    else:
        runs = [target["run"]["message"] for target in results["targets"]]
        assert runs == ["interrupted while loading the target", "interrupted before it started"]


def _fed(*messages):
    """A worker record assembled from ``messages`` (JSON-encoded lines, or raw bytes)."""
    record = _Record("spec", None)
    for message in messages:
        record.feed(message if isinstance(message, bytes) else
                    json.dumps(message).encode() + b"\n")
    return record


def test_a_malformed_check_record_becomes_one_failed_row_naming_the_problem():
    good = {"id": "autograd/x", "module": "m", "kind": "autograd", "status": "pass",
            "max_abs_error": 0.0, "max_rel_error": 0.0, "tolerance": 1e-9, "error_ratio": 0.0,
            "detail": "", "excluded": 0, "convention": "", "component": "linear",
            "case": "c", "scale": 1.0, "detectable": 1e-9, "dtype": "float64",
            "diagnosis": ""}
    record = _fed({"plan": {"target": {"name": 5, "components": "linear"}}}, {"start": "c"},
                  {"done": "c", "checks": [1, good, {**good, "status": "PASS"},
                                           {**good, "tolerance": "1e-9"}, {**good, "x": 1}]})
    checks = record.as_record(completed=True)["checks"]
    assert checks[1] == good, checks[1]
    problems = [check["detail"] for check in checks if check["id"] == "target/malformed-record"]
    assert len(problems) == 4 and all(check["status"] == "fail" for check in checks
                                      if check is not checks[1])
    assert "1 where a check record belongs" in problems[0], problems
    assert "status 'PASS'" in problems[1], problems
    assert "['tolerance']" in problems[2] and "unknown fields ['x']" in problems[3], problems
    target = record.as_record(completed=True)["target"]
    assert target["name"] == "spec" and target["components"] == [], target


def test_a_record_nested_beyond_the_parsers_depth_is_ignored_not_a_crash():
    record = _fed(b"[" * 200_000 + b"]" * 200_000 + b"\n", {"plan": {}})
    assert record.as_record(completed=True)["checks"] == []


_SANDBOX = sandbox(timeout=1)
needs_bubblewrap = pytest.mark.skipif(
    _SANDBOX["tool"] is None, reason=f"no bubblewrap sandbox here: {_SANDBOX.get('reason')}")


def _processes_naming(text):
    """Host pids of the live processes whose command line contains ``text``."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and text.encode() in (entry / "cmdline").read_bytes() \
                    and _alive(int(entry.name)):
                pids.append(int(entry.name))
        except OSError:
            pass
    return pids


def test_without_bubblewrap_or_with_no_sandbox_the_record_says_why():
    off = sandbox(timeout=5, enabled=False)
    assert off["tool"] is None and off["reason"] == "turned off (--no-sandbox)", off
    assert off["limits"] == {"address_space_bytes": MEMORY_LIMIT,
                             "file_size_bytes": 64 * 2**20, "cpu_seconds": 15}


@needs_bubblewrap
def test_a_target_cannot_write_the_output_folder_or_next_to_an_adapter(tmp_path):
    out, other = tmp_path / "out", tmp_path / "other"
    other.mkdir()
    (other / "victim_adapter.py").write_text("# another target's adapter\n")
    spec = _adapter(tmp_path, "vandal", f"""
        class Adapter(Base):
            def linear(self, *args):
                failures = []
                for path in ({str(out / "planted.txt")!r}, {str(other / "planted.py")!r}):
                    try:
                        open(path, "w").write("planted")
                    except OSError as failure:
                        failures.append(str(failure))
                if failures:
                    raise RuntimeError("; ".join(failures))
                return super().linear(*args)
        """)
    status = run_conform(ConformOptions(targets=(spec,), out=out, quick=True, jobs=1,
                                        show_progress=False, timeout=HANG_GUARD))
    results = json.loads((out / "results.json").read_text())
    assert status == 1 and results["run"]["status"] == "completed", results["run"]
    times = {key: results["run"]["sandbox"][key] for key in ("limits", "totals")}  # timeout's
    assert results["run"]["sandbox"] == _SANDBOX | times
    details = [c["detail"] for c in results["checks"] if c["status"] == "fail"]
    # neither folder is there at all: the sandbox holds the submission's own folder alone
    assert details and all(detail.count("No such file or directory") == 2
                           for detail in details), details[:2]
    assert not (out / "planted.txt").exists() and not (other / "planted.py").exists()


@needs_bubblewrap
def test_a_target_cannot_reach_the_network(tmp_path, zygote):
    import socket
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        spec = _adapter(tmp_path, "caller", f"""
            import socket
            try:
                socket.create_connection(("127.0.0.1", {port}), timeout=5).close()
                outcome = "connected"
            except OSError as failure:
                outcome = f"refused: {{failure}}"
            raise ImportError(f"planted: {{outcome}}")
            """)
        run = run_isolated(spec, timeout=HANG_GUARD, quick=True, zygote=zygote)
    assert run.status == "import-error" and "planted: refused" in run.message, run.message


@needs_bubblewrap
def test_a_target_cannot_see_or_kill_another_targets_worker(tmp_path):
    victim = _adapter(tmp_path, "victim", "Adapter = Base\n")
    spec = _adapter(tmp_path, "saboteur", f"""
        import os, signal, time
        killed = []
        give_up = time.monotonic() + 3  # long enough for the other worker to be running
        while time.monotonic() < give_up:
            for pid in filter(str.isdigit, os.listdir("/proc")):
                try:
                    line = open(f"/proc/{{pid}}/cmdline", "rb").read()
                    if {str(tmp_path).encode()!r} in line and int(pid) != os.getpid():
                        os.kill(int(pid), signal.SIGKILL)
                        killed.append(int(pid))
                except OSError:
                    pass
            time.sleep(0.05)
        raise ImportError(f"planted: signalled {{sorted(set(killed))}}")
        """)
    sabotage, other = run_all([spec, victim], jobs=2, timeout=HANG_GUARD, quick=True)
    # it sees its own namespace alone, where it is pid 1 (the executor), and no command line
    # names the class's folder: nothing to signal
    assert sabotage.status == "import-error" and "signalled []" in sabotage.message, sabotage
    assert other.status == "completed", other
    assert all(check["status"] == "pass" for check in other.checks())


@needs_bubblewrap
def test_a_detached_child_cannot_rewrite_the_report_later(tmp_path):
    out = tmp_path / "out"
    marker = f"forger-{tmp_path.name}"  # on the grandchild's command line, seen from here
    forge = f"import time; time.sleep(2); open({str(out / 'results.json')!r}, 'w').write('x')"
    spec = _adapter(tmp_path, "forger", f"""
        import os
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                os.execv(sys.executable, [sys.executable, "-c", {forge!r}, {marker!r}])
            os._exit(0)
        Adapter = Base
        """)
    run_conform(ConformOptions(targets=(spec,), out=out, quick=True, jobs=1,
                               show_progress=False, timeout=HANG_GUARD))
    written = (out / "results.json").read_text()
    assert json.loads(written)["run"]["status"] == "completed"
    # (_processes_naming waits for a live one to end: a grandchild that outlived the run
    # would have written by then, so the report is compared after it)
    assert _processes_naming(marker) == [], "a process of the target outlived its run"
    assert (out / "results.json").read_text() == written
