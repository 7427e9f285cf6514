"""``refnet conform``: check implementations of the module protocol; a report each, a scoreboard.

Steps: prepare (validate the arguments, create the output folder, read the baseline); run every
target in its own process, at most ``jobs`` at a time, each under ``timeout``
(``verification/targets/isolation.py``); assemble each target's ``results.json`` (the schema of
``refnet verify`` plus ``target``, ``components``, ``conventions`` and ``cases``: the cases
built, and those skipped for lack of an optional component); compare with the
baseline; write the reports atomically (one target: ``DIR/index.html`` and
``DIR/results.json``; several: ``DIR/<target>/`` each, and a scoreboard in ``DIR``); print a
summary. The exit status is 0 exactly when every check of every target passes and nothing
regressed.

SIGINT or SIGTERM while the targets run ends their workers (``run_all``'s ``stop``) and the
reports are written all the same, with what had finished, marked ``"interrupted": true`` (the
HTML verdict reads INTERRUPTED); the exit status is then 128 plus the signal's number (130 for
SIGINT, 143 for SIGTERM).
"""

import json
import os
import re
import signal
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from refnet._io import write_atomically
from verification.report.components import component_rank, component_summary, failure_lines
from verification.report.html import conformance_matrix, render_html
from verification.report.power import detection_power
from verification.report.results import (
    SCHEMA_VERSION,
    BaselineError,
    environment,
    prepare_output,
    with_regressions,
)
from verification.suite.conformance import reproducer
from verification.targets.adapter import target_name
from verification.targets.isolation import run_all

__all__ = ["ConformOptions", "ConformError", "run_conform"]


class ConformError(Exception):
    """A problem with the arguments, the output folder or the baseline, before any target runs."""


@dataclass(frozen=True)
class ConformOptions:
    """What ``refnet conform`` was asked to do.

    Attributes:
        targets: adapter specs (``load_target``'s: a path, an importable name, ``refnet``).
        out: the output folder.
        baseline: an earlier ``results.json`` of ``refnet conform``, or ``None``.
        jobs: targets run at once.
        timeout: seconds each target may take.
        quick: shorter trajectories.
        seed: the seed of every input, parameter value and upstream gradient.
        command: the command line, recorded in the reports.
        show_progress: progress on stderr when it is a terminal.
    """

    targets: tuple
    out: Path
    baseline: Path | None = None
    jobs: int = os.cpu_count() or 1
    timeout: float = 300.0
    quick: bool = False
    seed: int = 0
    command: str = "refnet conform"
    show_progress: bool = True


def _prepare(options):
    if not options.targets:
        raise ConformError("give at least one target")
    if options.jobs < 1 or options.timeout <= 0:
        raise ConformError(f"--jobs must be at least 1 and --timeout positive, got "
                           f"{options.jobs} and {options.timeout}")
    try:
        return prepare_output(options.out, options.baseline)
    except BaselineError as failure:
        raise ConformError(str(failure)) from None


def _target_results(run, options, interrupted=False):
    """One target's ``results.json``: the verify schema plus ``target``, ``components``,
    ``conventions``, ``cases``, ``run`` (with the ends of the worker's stdout and stderr) and
    ``interrupted`` (whether a signal stopped the run of ``refnet conform``)."""
    record = run.record if isinstance(run.record, dict) else {}
    checks = run.checks()
    cases = run.cases()
    target = record.get("target") or {"name": target_name(run.spec), "adapter": run.spec,
                                      "version": None, "declared_facts": {}, "components": [],
                                      "optimizers": [], "hooks": []}
    return {
        "schema_version": SCHEMA_VERSION,
        "status": "pass" if all(check["status"] == "pass" for check in checks) else "fail",
        "environment": environment(command=options.command, device="cpu"),
        "checks": checks,
        "mutation": {"total": 0, "killed": 0, "survived": []},
        "reproduction": {"seeds": 0, "configs": []},
        "benchmarks": [],
        "target": {**target, "spec": run.spec},
        "run": {"status": run.status, "message": run.message, "seconds": round(run.seconds, 3),
                "stdout": run.stdout, "stderr": run.stderr},
        "interrupted": interrupted,
        "components": component_summary(checks, cases["skipped"]),
        "cases": cases,
        "conventions": [{"component": c["component"], "id": c["id"], "convention":
                         c["convention"]} for c in checks if c.get("convention")],
        "detection_power": detection_power(checks),
        "seed": options.seed,
        "quick": options.quick,
        "regressions": [],
    }


def _reproducer(spec, check, options):
    if not check.get("case"):
        return f"refnet conform {spec}"
    return reproducer(spec, check["case"], check["id"], quick=options.quick, seed=options.seed)


def _target_context(results, options, back_link):
    checks = results["checks"]
    failed = sorted((c for c in checks if c["status"] == "fail"),
                    key=lambda c: (component_rank(c.get("component", "")), c["id"]))
    spec = results["target"]["spec"]
    return {
        "verdict": results["status"], "target": results["target"], "run": results["run"],
        "counts": {"total": len(checks), "passed": len(checks) - len(failed)},
        "failed_components": [name for name, entry in results["components"].items()
                              if entry["status"] == "fail"],
        "matrix": _in_component_order(conformance_matrix(checks)),
        "failures": [{**c, "reproduce": _reproducer(spec, c, options)} for c in failed],
        "conventions": results["conventions"], "checks": checks,
        "environment": results["environment"], "seed": options.seed,
        "baseline_path": str(options.baseline) if options.baseline else "",
        "regressions": results["regressions"], "back_link": back_link,
        "skipped": results["cases"]["skipped"], "built": len(results["cases"]["built"]),
        "detection_power": results["detection_power"], "interrupted": results["interrupted"],
    }


def _in_component_order(matrix):
    """The matrix with its rows from the smallest component to those built of others."""
    rows = sorted(matrix["rows"], key=lambda row: component_rank(row["module"]))
    return {**matrix, "rows": rows}


def _write(folder, results, html):
    folder.mkdir(parents=True, exist_ok=True)
    write_atomically(folder / "results.json", json.dumps(results, indent=2, sort_keys=True) + "\n")
    write_atomically(folder / "index.html", html)


def _folder_names(results_list):
    """A file-system-safe, unique folder name per target, from its name."""
    names, seen = [], {}
    for results in results_list:
        base = re.sub(r"[^A-Za-z0-9_.-]+", "_", results["target"]["name"]).strip("._") or "target"
        seen[base] = seen.get(base, 0) + 1
        names.append(base if seen[base] == 1 else f"{base}-{seen[base]}")
    return names


def _scoreboard(results_list, folders, options, baseline):
    """The scoreboard's ``results.json`` and HTML context."""
    checks = [{**check, "id": f"{folder}/{check['id']}"}
              for results, folder in zip(results_list, folders, strict=True)
              for check in results["checks"]]
    failing = {}
    for results in results_list:
        for name, entry in results["components"].items():
            failing[name] = failing.get(name, 0) + (entry["status"] == "fail")
    components = sorted((name for name in failing if name != "target"),
                        key=lambda name: (-failing[name], component_rank(name)))
    targets = [{"name": r["target"]["name"], "spec": r["target"]["spec"], "folder": folder,
                "status": r["status"], "run": r["run"], "checks": len(r["checks"]),
                "failed": sum(c["status"] == "fail" for c in r["checks"]),
                "skipped": len(r["cases"]["skipped"]), "components": r["components"]}
               for r, folder in zip(results_list, folders, strict=True)]
    results = with_regressions({
        "schema_version": SCHEMA_VERSION,
        "status": "pass" if all(t["status"] == "pass" for t in targets) else "fail",
        "environment": environment(command=options.command, device="cpu"),
        "checks": checks, "mutation": {"total": 0, "killed": 0, "survived": []},
        "reproduction": {"seeds": 0, "configs": []}, "benchmarks": [],
        "targets": targets, "components": components, "seed": options.seed,
        "quick": options.quick, "regressions": [],
        "interrupted": any(r["interrupted"] for r in results_list),
    }, baseline)
    rows = [{"name": t["name"], "link": f"{t['folder']}/index.html",
             "cells": [t["components"].get(name) for name in components],
             "summary": _summary_line(t), "status_class": t["status"],
             "completed": t["run"]["status"] == "completed", "run_status": t["run"]["status"]}
            for t in sorted(targets, key=lambda t: t["name"].lower())]
    context = {"verdict": results["status"], "rows": rows, "components": components,
               "passing": sum(t["status"] == "pass" for t in targets),
               "environment": results["environment"], "regressions": results["regressions"],
               "baseline_path": str(options.baseline) if options.baseline else "",
               "interrupted": results["interrupted"]}
    return results, context


def _summary_line(target):
    if target["run"]["status"] != "completed":
        return f"{target['run']['status']}: {target['run']['message']}"
    failed = [name for name, entry in target["components"].items() if entry["status"] == "fail"]
    text = f"{target['checks'] - target['failed']}/{target['checks']} checks pass"
    text += f"; {target['skipped']} cases skipped" if target["skipped"] else ""
    return text + (f"; failing: {', '.join(failed)}" if failed else "")


class _Progress:
    """One bar over the targets on stderr, naming the case each running target is at."""

    def __init__(self, enabled, total):
        self.enabled = enabled and sys.stderr.isatty()
        self.bar = tqdm(total=total, desc="targets", unit="target", file=sys.stderr,
                        disable=not self.enabled, dynamic_ncols=True, leave=False)
        self.current, self.lock = {}, threading.Lock()

    def case(self, spec, case):
        with self.lock:
            self.current[target_name(spec)] = case
            self.bar.set_postfix_str(" | ".join(f"{k}: {v}" for k, v in self.current.items())[:80])

    def done(self, count):
        with self.lock:
            self.bar.update(count - self.bar.n)

    def close(self):
        self.bar.close()


def run_conform(options, stream=None):
    """Run ``refnet conform``; return the exit status (0 exactly when every check of every
    target passes and nothing regressed).

    Raises:
        ConformError: bad arguments, an unusable output folder or a bad baseline.
    """
    baseline = _prepare(options)
    out = Path(options.out)
    progress = _Progress(options.show_progress, len(options.targets))
    try:
        with _Interruption() as interruption:
            runs = run_all(list(options.targets), jobs=options.jobs, timeout=options.timeout,
                           quick=options.quick, seed=options.seed, progress=progress.case,
                           stop=interruption.stop)
        progress.done(len(runs))
    finally:
        progress.close()
    interrupted = interruption.signal is not None
    results_list = [_target_results(run, options, interrupted) for run in runs]
    stream = stream or sys.stdout
    if interrupted:
        print(f"refnet conform: interrupted by {signal.Signals(interruption.signal).name}; the "
              f"reports hold what had finished", file=stream)
    if len(results_list) == 1:
        results = with_regressions(results_list[0], baseline)
        _write(out, results, render_html(_target_context(results, options, ""), "conform.html.j2"))
        _print_target(results, out / "index.html", stream)
        return interruption.exit_status(results["status"] == "pass")
    folders = _folder_names(results_list)
    for results, folder in zip(results_list, folders, strict=True):
        _write(out / folder, results, render_html(_target_context(
            results, options, "../index.html"), "conform.html.j2"))
    board, context = _scoreboard(results_list, folders, options, baseline)
    _write(out, board, render_html(context, "scoreboard.html.j2"))
    for results in results_list:
        _print_target(results, None, stream)
    print(f"refnet conform: {context['passing']} of {len(results_list)} targets pass; "
          f"scoreboard: {out / 'index.html'}", file=stream)
    return interruption.exit_status(board["status"] == "pass")


class _Interruption:
    """While open (on the main thread), SIGINT and SIGTERM set ``stop`` instead of ending this
    process, so the workers are ended and the reports still written; ``signal``: the first
    one received, or ``None``."""

    def __init__(self):
        self.stop, self.signal, self.previous = threading.Event(), None, {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for number in (signal.SIGINT, signal.SIGTERM):
                self.previous[number] = signal.signal(number, self._received)
        return self

    def __exit__(self, *failure):
        for number, handler in self.previous.items():
            signal.signal(number, handler)

    def _received(self, number, frame):
        self.signal = self.signal or number
        self.stop.set()

    def exit_status(self, passed):
        """128 plus the signal's number after an interruption, else 0 or 1 by ``passed``."""
        if self.signal is not None:
            return 128 + self.signal
        return 0 if passed else 1


def _print_target(results, html_path, stream):
    target, checks = results["target"], results["checks"]
    failed = [c for c in checks if c["status"] == "fail"]
    lines = [f"{target['name']}: {results['status'].upper()} — {len(checks) - len(failed)} of "
             f"{len(checks)} checks pass ({results['run']['status']}, "
             f"{results['run']['seconds']:.1f} s)"]
    lines += [f"  {line}" for line in failure_lines(results["components"])]
    lines += [f"  REGRESSION {r['kind']} {r['id']}" for r in results["regressions"]]
    if html_path is not None:
        lines.append(f"  report: {html_path}")
    print("\n".join(lines), file=stream)
