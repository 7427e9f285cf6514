"""``refnet conform``: check implementations of the module protocol; a report each, a scoreboard.

Steps: prepare (validate the arguments, create the output folder, read the baseline); run every
target in its own process, at most ``jobs`` at a time, each under ``timeout``
(``verification/confined/isolation.py``); assemble each target's ``results.json`` (the schema of
``refnet verify`` plus ``target``, ``components``, ``conventions`` and ``cases``: the cases
built, and those skipped for lack of an optional component); compare with the
baseline; write the reports atomically (one target: ``DIR/index.html`` and
``DIR/results.json``; several: ``DIR/<folder>/`` each, about that target alone and fit to
hand to its student (``verification/report/student.py``), and in ``DIR`` a scoreboard and
``grades.csv``); print a summary. Each target is named by its spec's distinguishing path
(``distinguishing_names``) and given its folder (``_folder_names``) before any target runs.
The exit status is 0 exactly when every check of every target passes and nothing regressed.

With ``case`` (``--case NAME``, and ``--check ID``) one case of one target is rerun, through
the same judge, executor and sandbox, and each selected check's verdict printed (``reproducer``
writes that line for a report's failure); no report is written.

SIGINT or SIGTERM while the targets run ends their workers (``run_all``'s ``stop``) and the
reports are written all the same, with what had finished, marked ``"interrupted": true`` (the
HTML verdict reads INTERRUPTED); the exit status is then 128 plus the signal's number (130 for
SIGINT, 143 for SIGTERM).
"""

import json
import os
import re
import shlex
import sys
import threading
from dataclasses import dataclass, replace
from pathlib import Path

from tqdm import tqdm

from refnet._io import write_atomically
from verification.confined.cgroups import MEMORY_TOTAL, PROCESS_TOTAL, Totals
from verification.confined.confinement import DEFAULT_PRIVATE_SIZE
from verification.confined.isolation import run_all
from verification.course.profile import CourseError, load_course
from verification.course.rules import (
    REQUIRED,
    RULES_COMPONENT,
    missing_components,
    rule_entries,
)
from verification.interruption import Interruption
from verification.report.components import component_rank, component_summary, failure_lines
from verification.report.grades import grades_csv
from verification.report.html import conformance_matrix, render_html
from verification.report.power import by_dtype, detection_power, dtypes_run
from verification.report.results import (
    CONFORM_SCOREBOARD,
    CONFORM_TARGET,
    SCHEMA_VERSION,
    BaselineError,
    environment,
    prepare_output,
    with_regressions,
)
from verification.report.student import student_copy, submission_spec
from verification.targets.adapter import target_name

__all__ = ["ConformOptions", "ConformError", "run_conform", "distinguishing_names",
           "reproducer", "run_flags"]


# What the scoreboard writes in the output folder: no target's folder may take these names.
_REPORT_FILES = ("index.html", "results.json")
_GRADES = "grades.csv"


class ConformError(Exception):
    """A problem with the arguments, the output folder or the baseline, before any target runs;
    or, rerunning one case (``case``), a case or check the target does not have."""


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
        sandbox: run each worker inside bubblewrap where it works (``isolation.sandbox``);
            ``False`` for debugging (``--no-sandbox``).
        dtype: ``"float64"`` or ``"float32"``: check every target in that dtype alone
            (``--dtype``; a target declaring the other gets one failed check saying so);
            ``None``: each target in its own dtypes (float64 and float32 unless it declares
            one).
        course: a course profile (``--course``: a built-in name such as ``ee559``, or a TOML
            file; ``verification/course/profile.py``) every target is judged under, or
            ``None``.
        case: rerun only the case of this name of the one target, print its checks' verdicts
            and write no report (``--case``); ``None``: a full run.
        check: with ``case``, only the check of this id (``--check``).
        private_size: bytes of each executor's private tmpfs under bubblewrap, its only
            writable place (``--private-size``, in MiB; ``confinement.py``).
        memory_total: bytes of memory a target's processes may use together
            (``--memory-total``; ``cgroups.py``).
        processes: processes and threads a target may run at once (``--processes``).
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
    sandbox: bool = True
    dtype: str | None = None
    course: str | None = None
    case: str | None = None
    check: str | None = None
    private_size: int = DEFAULT_PRIVATE_SIZE
    memory_total: int = MEMORY_TOTAL
    processes: int = PROCESS_TOTAL


def _course(options):
    """The ``Course`` of ``options.course`` (``None`` without one); a bad profile is a
    ``ConformError`` before any target runs."""
    if options.course is None:
        return None
    try:
        return load_course(options.course)
    except CourseError as failure:
        raise ConformError(str(failure)) from None


def run_flags(options):
    """The flags of ``refnet conform`` that change what the checks of ``options`` see: the
    one place a target's recorded command and its reproducers take them from."""
    return [*(["--quick"] if options.quick else []),
            *(["--dtype", options.dtype] if options.dtype else []),
            *(["--seed", str(options.seed)] if options.seed else []),
            *(["--course", options.course] if options.course else [])]


def reproducer(spec, options, case=None, check_id=None):
    """The shell line that reruns ``spec`` as ``options`` ran it: one check (``case`` and
    ``check_id``), one case, or, with neither, the whole target (``refnet conform SPEC
    --case CASE --check ID --quick …``): confined as a full run is (the judge, the executor,
    the sandbox). Safe to paste whatever the spec, case and id hold: each is one shell word
    (``shlex.join``), so the shell expands nothing in it."""
    words = ["refnet", "conform", spec, *(["--case", case] if case else []),
             *(["--check", check_id] if case and check_id else [])]
    return shlex.join([*words, *run_flags(options)])


def _prepare(options):
    if not options.targets:
        raise ConformError("give at least one target")
    if options.check is not None and options.case is None:
        raise ConformError("--check needs --case: the case the check belongs to")
    if options.case is not None and (len(options.targets) > 1 or options.baseline):
        raise ConformError("--case reruns one case of one target: give one target and no "
                           "--baseline")
    repeated = sorted({spec for spec in options.targets if options.targets.count(spec) > 1})
    if repeated:
        raise ConformError(f"each target may be given once; given more than once: {repeated}")
    if options.jobs < 1 or options.timeout <= 0:
        raise ConformError(f"--jobs must be at least 1 and --timeout positive, got "
                           f"{options.jobs} and {options.timeout}")
    if options.case is not None:
        return None  # nothing is written
    writer = CONFORM_TARGET if len(options.targets) == 1 else CONFORM_SCOREBOARD
    try:
        return prepare_output(options.out, options.baseline, writer)
    except BaselineError as failure:
        raise ConformError(str(failure)) from None


def distinguishing_names(specs):
    """Each spec's name on the scoreboard: the shortest trailing part of its path that no
    other spec of the run ends in (``handout`` alone; ``alice/handout`` and ``bob/handout``
    together), with ``:Name`` kept; the whole spec where its path parts equal another's.

    A file's parts are its path's folders and its stem less ``_adapter`` (as ``target_name``);
    an importable name or ``refnet`` is one part. Names chosen at any length never coincide
    (two equal names have as many parts, so they would have coincided at that length).
    """
    parts = [_name_parts(spec) for spec in specs]
    longest = max((len(p) for p in parts), default=0)

    def trailing(index, length):
        return "/".join(parts[index][-length:])

    names = []
    for index, spec in enumerate(specs):
        others = [j for j in range(len(specs)) if j != index]
        names.append(next((trailing(index, length) for length in range(1, longest + 1)
                           if all(trailing(index, length) != trailing(j, length)
                                  for j in others)), spec))
    if len(set(names)) < len(names):  # a whole spec equal to another's name; whole specs
        # differ (``_prepare`` refuses one given twice)
        return list(specs)
    return names


def _name_parts(spec):
    """``spec``'s path parts for naming: folders, then the target's name (``target_name``)."""
    path = Path(spec.partition(":")[0])
    folders = path.parent.parts if path.suffix == ".py" else ()
    return [*(part for part in folders if part != path.anchor), target_name(spec)]


def _target_results(run, options, name, interrupted=False, course=None):
    """One target's ``results.json``: the verify schema plus ``target`` (named ``name``),
    ``components``, ``conventions``, ``cases``, ``run`` (with the ends of the worker's stdout
    and stderr, and the ``dtypes`` its checks ran in), ``interrupted`` (whether a signal
    stopped the run of ``refnet conform``), ``detection_power`` (of the first dtype's checks:
    float64's where both ran, as before there were two), ``detection_power_by_dtype``, and the
    ``course`` it was judged under (``None`` without one) with its ``rules`` (``{"rule",
    "id", "status", "evidence"}``) and ``missing_components``."""
    checks = run.checks()
    dtypes = dtypes_run(checks)
    cases = run.cases()
    target = run.target()
    return {
        "schema_version": SCHEMA_VERSION,
        "status": "pass" if all(check["status"] == "pass" for check in checks) else "fail",
        "environment": environment(command=options.command, device="cpu"),
        "checks": checks,
        "mutation": {"total": 0, "killed": 0, "survived": []},
        "reproduction": {"seeds": 0, "configs": []},
        "benchmarks": [],
        "target": {**target, "name": name, "spec": run.spec},
        "run": {"status": run.status, "message": run.message, "seconds": round(run.seconds, 3),
                "stdout": run.stdout, "stderr": run.stderr, "sandbox": run.sandbox,
                "dtypes": dtypes},
        "interrupted": interrupted,
        "components": component_summary(checks, cases["skipped"]),
        "cases": cases,
        "conventions": [{"component": c["component"], "id": c["id"], "convention":
                         c["convention"]} for c in checks if c.get("convention")],
        "detection_power": detection_power(checks, dtypes[0] if dtypes else None),
        "detection_power_by_dtype": by_dtype(checks),
        "seed": options.seed,
        "quick": options.quick,
        "regressions": [],
        "course": _course_record(course),
        "rules": rule_entries(checks),
        "missing_components": missing_components(checks),
    }


def _course_record(course):
    """The course in ``results.json``: its name, summary line and demands."""
    if course is None:
        return None
    return {"name": course.name, "summary": course.summary(),
            "description": course.description, "required": list(course.required),
            "forbidden": list(course.forbidden), "allowed": list(course.allowed),
            "grad_mode": course.grad_mode}


def _reproducer(spec, check, options):
    """The shell line, quoted for pasting, that reruns ``check`` (the whole target when the
    check names no case), run from the folder that holds the target's file (``spec`` is
    written relative to it: ``submission_spec``)."""
    return reproducer(submission_spec(spec)[0], options, check.get("case"), check["id"])


def _reproduce_from(spec):
    """Where a report's reproducers are run from, in words."""
    relative, folder = submission_spec(spec)
    if folder is None:
        return "run where refnet and the target import"
    return f"run from the folder that holds {relative.partition(':')[0]}"


def _target_context(results, options):
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
        "failures": _with_figures([{**c, "reproduce": _reproducer(spec, c, options)}
                                   for c in failed]),
        "conventions": results["conventions"], "checks": checks,
        "environment": results["environment"], "seed": options.seed,
        "baseline_path": str(options.baseline) if options.baseline else "",
        "regressions": results["regressions"], "reproduce_from": _reproduce_from(spec),
        "skipped": results["cases"]["skipped"], "built": len(results["cases"]["built"]),
        "detection_power": results["detection_power_by_dtype"],
        "interrupted": results["interrupted"],
        "course": results["course"], "rules": results["rules"],
        "required": [c for c in checks if c["kind"] == REQUIRED],
    }


def _with_figures(failures):
    """Each failure with ``figure_svg``: its figure drawn (``report/figures.py``) on the first
    failure carrying one of each dtype and caption (a component's cases carry the same one), else
    empty; matplotlib is imported only where there is one to draw."""
    drawn, shown = [], set()
    for failure in failures:
        figure = failure.get("figure")
        key = (failure.get("dtype"), figure["caption"]) if figure else None
        svg = ""
        if key is not None and key not in shown:
            from verification.report.figures import figure_svg
            shown.add(key)
            svg = figure_svg(figure)
        drawn.append({**failure, "figure_svg": svg})
    return drawn


def _in_component_order(matrix):
    """The matrix with its rows from the smallest component to those built of others."""
    rows = sorted(matrix["rows"], key=lambda row: component_rank(row["module"]))
    return {**matrix, "rows": rows}


def _write(folder, results, html):
    folder.mkdir(parents=True, exist_ok=True)
    page, record = _REPORT_FILES
    write_atomically(folder / record, json.dumps(results, indent=2, sort_keys=True) + "\n")
    write_atomically(folder / page, html)


def _folder_names(names):
    """A folder name per target, from its (distinguishing) name: file-system safe, unique
    even where the file system ignores case, and never one of the scoreboard's own files.

    A name keeps its safe form when that is free (the first of equal ones wins); the others
    take the first free ``<form>-2``, ``<form>-3``, … , so no suffix lands on another's name.
    """
    forms = [re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._-") or "target" for name in names]
    taken = {name.lower() for name in _REPORT_FILES}
    folders = []
    for form in forms:
        folders.append(form if form.lower() not in taken else None)
        taken.add(form.lower())
    for index, form in enumerate(forms):
        if folders[index] is None:
            number = 2
            while f"{form}-{number}".lower() in taken:
                number += 1
            folders[index] = f"{form}-{number}"
            taken.add(folders[index].lower())
    return folders


def _scoreboard(results_list, folders, options, baseline):
    """The scoreboard's ``results.json`` and HTML context."""
    checks = [{**{key: value for key, value in check.items() if key != "figure"},
               "id": f"{folder}/{check['id']}"}  # figures stay in each target's own results
              for results, folder in zip(results_list, folders, strict=True)
              for check in results["checks"]]
    failing = {}
    for results in results_list:
        for name, entry in results["components"].items():
            failing[name] = failing.get(name, 0) + (entry["status"] == "fail")
    components = sorted((name for name in failing if name != "target"),
                        key=lambda name: (name != RULES_COMPONENT, -failing[name],
                                          component_rank(name)))
    targets = [{"name": r["target"]["name"], "spec": r["target"]["spec"], "folder": folder,
                "status": r["status"], "run": r["run"], "checks": len(r["checks"]),
                "failed": sum(c["status"] == "fail" for c in r["checks"]),
                "skipped": len(r["cases"]["skipped"]), "components": r["components"],
                "rules_broken": [rule["id"] for rule in r["rules"] if rule["status"] == "fail"],
                "missing_components": r["missing_components"]}
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
        "run": {"dtypes": dtypes_run(checks), "sandbox": results_list[0]["run"]["sandbox"]},
        "course": results_list[0]["course"],
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
               "interrupted": results["interrupted"], "dtypes": results["run"]["dtypes"],
               "course": results["course"], "sandbox": results_list[0]["run"]["sandbox"]}
    return results, context


def _summary_line(target):
    if target["run"]["status"] != "completed":
        return f"{target['run']['status']}: {target['run']['message']}"
    failed = [name for name, entry in target["components"].items() if entry["status"] == "fail"]
    text = f"{target['checks'] - target['failed']}/{target['checks']} checks pass"
    text += f" ({', '.join(target['run']['dtypes'])})" if target["run"]["dtypes"] else ""
    text += f"; {target['skipped']} cases skipped" if target["skipped"] else ""
    return text + (f"; failing: {', '.join(failed)}" if failed else "")


class _Progress:
    """One bar over the targets on stderr, naming the case each running target is at;
    ``names`` maps each spec to its name."""

    def __init__(self, enabled, names):
        self.enabled = enabled and sys.stderr.isatty()
        self.bar = tqdm(total=len(names), desc="targets", unit="target", file=sys.stderr,
                        disable=not self.enabled, dynamic_ncols=True, leave=False)
        self.names, self.current, self.lock = names, {}, threading.Lock()

    def case(self, spec, case):
        with self.lock:
            self.current[self.names[spec]] = case
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
    course = _course(options)
    baseline = _prepare(options)
    if options.case is not None:
        return _rerun_case(options, course, stream or sys.stdout)
    out = Path(options.out)
    names = distinguishing_names(list(options.targets))
    folders = _folder_names(names)
    progress = _Progress(options.show_progress, dict(zip(options.targets, names, strict=True)))
    try:
        with Interruption() as interruption:
            runs = run_all(list(options.targets), jobs=options.jobs, timeout=options.timeout,
                           quick=options.quick, seed=options.seed, progress=progress.case,
                           stop=interruption.stop, use_sandbox=options.sandbox,
                           dtype=options.dtype, course=course,
                           private_size=options.private_size, totals=_totals(options))
        progress.done(len(runs))
    finally:
        progress.close()
    interrupted = interruption.signal is not None
    results_list = [_target_results(run, options, name, interrupted, course)
                    for run, name in zip(runs, names, strict=True)]
    stream = stream or sys.stdout
    confinement = runs[0].sandbox
    if confinement["tool"] is None:
        print(f"refnet conform: no sandbox ({confinement['reason']}): each target ran as a "
              f"process of your user, with its limits and private folder only", file=stream)
    _print_totals(confinement, stream)
    if course is not None:
        print(f"refnet conform: course {course.summary()}", file=stream)
    if interrupted:
        print(f"refnet conform: interrupted by {interruption.name}; the "
              f"reports hold what had finished", file=stream)
    if len(results_list) == 1:
        results = with_regressions(results_list[0], baseline)
        _write(out, results, render_html(_target_context(results, options), "conform.html.j2"))
        _print_target(results, out / "index.html", stream)
        return interruption.exit_status(results["status"] == "pass")
    for results, folder in zip(results_list, folders, strict=True):
        own = _student_copy(results, options)
        _write(out / folder, own, render_html(_target_context(
            own, replace(options, baseline=None)), "conform.html.j2"))
    board, context = _scoreboard(results_list, folders, options, baseline)
    _write(out, board, render_html(context, "scoreboard.html.j2"))
    write_atomically(out / _GRADES, grades_csv(results_list))
    for results in results_list:
        _print_target(results, None, stream)
    print(f"refnet conform: {context['passing']} of {len(results_list)} targets pass; "
          f"scoreboard: {out / 'index.html'}", file=stream)
    return interruption.exit_status(board["status"] == "pass")


def _totals(options):
    """The ``Totals`` of ``options`` (the CPU time: the per-process limit's)."""
    return Totals(memory=options.memory_total, processes=options.processes)


def _print_totals(confinement, stream):
    """Say so on ``stream`` where no control group held a target's processes' totals."""
    totals = confinement.get("totals") or {}
    if not str(totals.get("by")).startswith("cgroup"):
        print(f"refnet conform: no totals across a target's processes ({totals.get('reason')}):"
              f" each of its processes had only its own limits", file=stream)


def _student_copy(results, options):
    """``results`` as the target's student receives them (``student_copy``): the recorded
    command is ``refnet conform`` of this target alone, run from its folder, with the flags
    of this run (``run_flags``)."""
    spec = results["target"]["spec"]
    command = reproducer(submission_spec(spec)[0], options)
    return student_copy(results, command=command, out=options.out,
                        others=[other for other in options.targets if other != spec])


def _rerun_case(options, course, stream):
    """``refnet conform SPEC --case NAME [--check ID]``: run that case alone, confined as a
    full run is, print each selected check's verdict and detail; the exit status (0 exactly
    when every one passes).

    Raises:
        ConformError: the target has no case of that name, or the case no check of that id;
            the message lists those it has.
    """
    [spec] = options.targets
    with Interruption() as interruption:
        [run] = run_all([spec], jobs=1, timeout=options.timeout, quick=options.quick,
                        seed=options.seed, stop=interruption.stop, use_sandbox=options.sandbox,
                        dtype=options.dtype, case=options.case, course=course,
                        private_size=options.private_size, totals=_totals(options))
    if run.sandbox["tool"] is None:
        print(f"refnet conform: no sandbox ({run.sandbox['reason']})", file=stream)
    _print_totals(run.sandbox, stream)
    checks = run.checks()
    if run.status == "completed" and not run.cases()["built"]:
        skipped = {s["case"]: s["reason"] for s in run.cases()["skipped"]}
        why = (f" (not built: {skipped[options.case]})" if options.case in skipped else "")
        raise ConformError(f"{spec} has no case {options.case!r}{why}; its cases: "
                           f"{run.case_names()}")
    selected = [c for c in checks if options.check in (None, c["id"])
                or c["component"] == "target"]
    if not selected:
        raise ConformError(f"case {options.case!r} of {spec} has no check {options.check!r}; "
                           f"its checks: {[c['id'] for c in checks]}")
    for check in selected:
        print(f"{check['status'].upper()} {check['id']}: {check['detail']}", file=stream)
    return interruption.exit_status(all(c["status"] == "pass" for c in selected))


def _print_target(results, html_path, stream):
    target, checks = results["target"], results["checks"]
    failed = [c for c in checks if c["status"] == "fail"]
    dtypes = ", ".join(results["run"]["dtypes"]) or "no dtype"
    lines = [f"{target['name']}: {results['status'].upper()} — {len(checks) - len(failed)} of "
             f"{len(checks)} checks pass ({results['run']['status']}, {dtypes}, "
             f"{results['run']['seconds']:.1f} s)"]
    if results["run"]["status"] != "completed":
        lines.append(f"  {results['run']['status']}: {results['run']['message']}")
    lines += [f"  {line}" for line in _rule_lines(results["rules"])]
    lines += [f"  {line}" for line in failure_lines(
        {name: entry for name, entry in results["components"].items()
         if name != RULES_COMPONENT})]
    lines += [f"  REGRESSION {r['kind']} {r['id']}" for r in results["regressions"]]
    if html_path is not None:
        lines.append(f"  report: {html_path}")
    print("\n".join(lines), file=stream)


def _rule_lines(rules):
    """The terminal's lines for a course's rules: each broken one with its first evidence,
    else one line saying they all hold."""
    broken = [rule for rule in rules if rule["status"] == "fail"]
    if not rules:
        return []
    if not broken:
        return [f"rules: all {len(rules)} hold"]
    return [f"RULE BROKEN {rule['id']}: {rule['rule']}"
            + (f" ({rule['evidence'][0]})" if rule["evidence"] else "") for rule in broken]
