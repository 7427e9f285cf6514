"""Mutation self-test of the harness: weaken its own judging code and count what the tests catch.

refnet's mutation stage (``mutation.py``) plants bugs in refnet and asks the checks to catch
them. This one turns the question on the checks themselves: each mutant of
``harness_mutants.py`` (a tolerance ×10 or ÷10, a comparison flipped, a status forced to a
pass, a case dropped, …) is written into a scratch copy of the project and the project's own
tests are run against it. A mutant no test catches is a harness that could be weakened (or
made stricter) unnoticed; it must be caught by a new test or listed in
``harness_equivalents.py`` with the reason it changes no verdict.

The run, step by step:

1. **Copy.** ``COPIED`` (``verification/``, ``tests/``, ``pyproject.toml``, ``README.md``) go
   to a scratch folder per job; the working tree is never edited. Tests run with the copy as
   their working directory and ``PYTHONPATH``, so its ``verification`` is found before the
   editable install's (the editable finder comes after ``sys.path`` in ``sys.meta_path``),
   and so are the interpreters a test starts, ``refnet conform``'s judges included; the run
   checks that it is (``_require_copy_imported``). refnet itself is imported from the install.
2. **Map.** The tests run once unmutated, under coverage with one context per test
   (``--cov-context=test``), in the test processes only (not in a judge or executor a test
   starts): every one must pass, and each line of the mutated files gets the tests that ran
   it; a line run while a fixture was set up goes to every test of that file, since a
   module-scoped fixture runs once for all of them. A test that reads what an earlier test
   cached (``conftest.py``'s ``in_process``) without running the lines again is not chosen
   for them.
3. **Mutants.** Each mutant runs only the tests that ran one of its lines (for a
   module-level constant, the lines that read it), cheapest first, ``-x``, in one process
   per mutant, at most ``jobs`` at a time: *killed* when pytest fails (a timeout counts as
   killed and is flagged), *survived* when every test passes, *unreached* when no test ran
   its lines.
4. **Verdict.** A survivor or unreached mutant whose key the ledger lists is *equivalent*
   (``EQUIVALENT``) or *unpinned* (``UNPINNED``: it only makes a worst-case tolerance
   stricter, and no correct target comes near it); any other fails the run. The kill score
   is killed / (total − listed).

``python -m verification.suite.harness_mutation`` runs it over ``SOURCES`` with the tests of
``TESTS``; ``--ci`` over the subset ``.ci/run`` runs (``CI_OPERATORS``).
"""

import argparse
import ast
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from queue import Queue

import coverage

from verification.suite.harness_equivalents import EQUIVALENT, UNPINNED
from verification.suite.harness_mutants import mutants_of

__all__ = ["Config", "REFNET", "run_harness_mutation", "try_mutants", "collect_mutants",
           "main"]

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Config:
    """What to mutate and which tests judge it.

    Attributes:
        root: the project root the paths are relative to.
        sources: globs of the files to mutate.
        excluded: ``{path: reason}`` of files the globs match that judge nothing.
        tests: the test files (or node ids) that may catch them.
        package: the measured package, the top folder of ``sources``.
        copied: what each scratch copy holds.
        operators: the operators run (``harness_mutants.OPERATORS``); all when empty.
        equivalents: ``{key: reason}``, the ledger of survivors that change no verdict.
        unpinned: ``{key: reason}``, the ledger of survivors that only make a worst-case
            tolerance stricter, with the correct targets' worst error/tolerance.
        pytest_args: added to every pytest command line.
    """

    root: Path
    sources: tuple
    tests: tuple
    package: str
    excluded: dict = field(default_factory=dict)
    copied: tuple = ("verification", "tests", "pyproject.toml", "README.md")
    operators: tuple = ()
    equivalents: dict = field(default_factory=dict)
    unpinned: dict = field(default_factory=dict)
    pytest_args: tuple = ()


SOURCES = ("verification/checks/**/*.py", "verification/suite/conformance.py",
           "verification/targets/adapter.py", "verification/targets/spec.py")
EXCLUDED = {
    "verification/checks/figures.py": "draws a failing component's curves beside torch's: "
                                      "it decides no status",
}
"""The judging code: every check, the cases that run them, the declared facts and the
structures the twins are built from. ``targets/``'s other files carry, confine and time
the target's calls and judge nothing."""

TESTS = ("tests/test_compare.py", "tests/test_diagnosis.py", "tests/test_dropout_checks.py",
         "tests/test_finite_difference.py", "tests/test_loss_checks.py",
         "tests/test_reference.py", "tests/test_trajectory.py", "tests/test_detection_power.py",
         "tests/test_optimizer_settings.py", "tests/test_protocol_variants.py",
         "tests/test_targets.py", "tests/test_properties.py", "tests/test_ee559_framework.py")
"""The tests of the checks' and the conformance run's area, each a few seconds or less:
those that run targets through ``refnet conform`` as a whole (test_conform.py,
test_judge.py) judge the same code at minutes a mutant."""

CI_OPERATORS = ("×10", "pass")
"""What ``.ci/run`` runs (``--ci``): the harness weakened, a tolerance 10 times looser or a
status forced to a pass, where a buggy framework would pass (43 mutants). The other operators
(a stricter tolerance, flipped comparisons, dropped cases, …) make 361 more, beyond CI's
time: the full run, ``python -m verification.suite.harness_mutation``."""

REFNET = Config(root=ROOT, sources=SOURCES, tests=TESTS, package="verification",
                excluded=EXCLUDED, equivalents=EQUIVALENT, unpinned=UNPINNED)

_TIMEOUT = 60
"""Seconds a mutant's tests may take beyond ``_SLOWER`` times their unmutated time (start-up,
a loaded machine): a mutant that makes a test hang is killed."""
_SLOWER = 3
_DURATION = re.compile(r"^(\d+\.\d+)s (?:setup|call|teardown) +(.+)$")


def collect_mutants(config):
    """Every mutant of the configured files and operators, in path and source order."""
    paths = sorted({path.relative_to(config.root).as_posix()
                    for pattern in config.sources for path in config.root.glob(pattern)})
    return [mutant for path in paths if path not in config.excluded
            for mutant in mutants_of(path, (config.root / path).read_text())
            if not config.operators or mutant.operator in config.operators]


def _copy(config, folder):
    for name in config.copied:
        source, target = config.root / name, folder / name
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        elif source.exists():
            shutil.copy2(source, target)
    return folder


def _environment(folder):
    return {**os.environ, "PYTHONPATH": str(folder), "OMP_NUM_THREADS": "1",
            "COVERAGE_FILE": str(folder / ".coverage")}


def _pytest(config, folder, tests, *extra, timeout=None):
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o",
               "addopts=", *config.pytest_args, *extra, *tests]
    return subprocess.run(command, cwd=folder, env=_environment(folder), capture_output=True,
                          text=True, timeout=timeout)


def _require_copy_imported(config, folder):
    probe = subprocess.run(
        [sys.executable, "-c", f"import {config.package}; print({config.package}.__file__)"],
        cwd=folder, env=_environment(folder), capture_output=True, text=True, check=True)
    imported = Path(probe.stdout.strip()).resolve()
    if not imported.is_relative_to(folder.resolve()):
        raise RuntimeError(f"{config.package} is imported from {imported}, not from the "
                           f"scratch copy {folder}: mutants would not be tested")


class UnmutatedTestsFail(RuntimeError):
    """The tests fail without any mutant: a kill would mean nothing."""


@dataclass
class _Map:
    """Which tests ran each line (``{path: {line: {node id}}}``) and how long each took."""

    tests: dict
    seconds: dict

    def selection(self, mutant, uses):
        """The tests that ran the mutant's lines, or those of the lines reading its
        constants: first those of the file's own test module (``test_<name>.py``), then
        the others, each group cheapest first."""
        lines = {(mutant.path, line) for line in mutant.lines}
        for name in mutant.names:
            lines |= uses.get(name, set())
        chosen = {test for path, line in lines for test in self.tests.get(path, {}).get(line, ())}
        own = f"test_{Path(mutant.path).stem}.py::"
        return sorted(chosen, key=lambda test: (own not in test, self.seconds.get(test, 0.0),
                                                test))

    def within(self, tests, seconds):
        """The longest head of ``tests`` whose unmutated time is at most ``seconds``."""
        total, head = 0.0, []
        for test in tests:
            total += self.seconds.get(test, 0.0)
            if total > seconds and head:
                break
            head.append(test)
        return head

    def cost(self, tests):
        """Seconds the unmutated ``tests`` took."""
        return sum(self.seconds.get(test, 0.0) for test in tests)


def _map_tests(config, folder, jobs):
    """Run the tests unmutated under coverage, one context per test, on ``jobs`` workers."""
    workers = min(jobs, len(config.tests))
    workers = ("-n", str(workers)) if workers > 1 else ()
    done = _pytest(config, folder, config.tests, *workers, f"--cov={config.package}",
                   "--cov-context=test", "--cov-report=", "--durations=0",
                   "--durations-min=0")
    if done.returncode != 0:
        raise UnmutatedTestsFail("the tests fail without any mutant; fix them before reading "
                                 "a kill score:\n" + done.stdout[-3000:] + done.stderr[-2000:])
    seconds = defaultdict(float)
    for line in done.stdout.splitlines():
        match = _DURATION.match(line)
        if match:
            seconds[match[2]] += float(match[1])
    data = coverage.CoverageData(basename=str(folder / ".coverage"))
    data.read()
    tests = {}
    for measured in data.measured_files():
        path = Path(measured).resolve()
        if path.is_relative_to(folder.resolve()):
            tests[path.relative_to(folder.resolve()).as_posix()] = {
                line: set().union(*(_readers(context, seconds) for context in contexts))
                for line, contexts in data.contexts_by_lineno(measured).items()}
    return _Map(tests, dict(seconds))


def _readers(context, tests):
    """The tests a line ran for: the context's test (``"file::name|run"``), or for a line of
    a fixture's set-up (``"|setup"``) every test of its file, which may read what a module-
    or session-scoped fixture computed once."""
    test, _, phase = context.rpartition("|")
    if phase != "setup":
        return {test} if test else set()
    module = test.split("::", 1)[0] + "::"
    return {test} | {other for other in tests if other.startswith(module)}


def _constant_uses(config, mutants):
    """``{name: {(path, line)}}``: where each mutated module-level constant is read."""
    names = {name for mutant in mutants for name in mutant.names}
    uses = defaultdict(set)
    for path in sorted({mutant.path for mutant in mutants}):
        tree = ast.parse((config.root / path).read_text())
        for node in ast.walk(tree):
            identifier = node.id if isinstance(node, ast.Name) else (
                node.attr if isinstance(node, ast.Attribute) else None)
            if identifier in names and isinstance(node.ctx, ast.Load):
                uses[identifier].add((path, node.lineno))
    return uses


def _write(path, text):
    """Write ``text`` and move the file's mtime a second forward: Python reuses a module's
    bytecode while its source's mtime (whole seconds) and size match, so a mutant of the
    same size as the file it replaces must not keep the old mtime."""
    status = os.stat(path)
    path.write_text(text)
    os.utime(path, (status.st_atime, status.st_mtime + 1))


def _run_mutant(config, folder, mutant, tests, timeout):
    """Write the mutant into the copy, run ``tests`` for at most ``timeout`` seconds, put the
    file back."""
    target = folder / mutant.path
    original = target.read_text()
    _write(target, mutant.apply(original))
    start = time.perf_counter()
    try:
        done = _pytest(config, folder, tests, "-x", timeout=timeout)
        outcome, caught = ("killed" if done.returncode else "survived"), _first_failure(done)
    except subprocess.TimeoutExpired:
        outcome, caught = "killed", f"timed out after {timeout} s"
    finally:
        _write(target, original)
    return {"outcome": outcome, "caught_by": caught, "tests": len(tests),
            "seconds": round(time.perf_counter() - start, 1)}


def _first_failure(done):
    failed = [line.split(" ", 1)[1].split(" - ")[0] for line in done.stdout.splitlines()
              if line.startswith(("FAILED ", "ERROR "))]
    return failed[0] if failed else ("" if done.returncode == 0
                                     else f"pytest exit status {done.returncode}")


def run_harness_mutation(config, *, jobs=2, timeout=_TIMEOUT, recheck=False, max_seconds=None,
                         progress=None):
    """Run every mutant of ``config`` against its tests.

    Args:
        config: a ``Config`` (``REFNET`` for this project).
        jobs: mutants run at the same time, each in its own copy (and the workers of the
            unmutated run).
        timeout: seconds a mutant's tests may take beyond ``_SLOWER`` times what they took
            unmutated, before it counts as killed (flagged as timed out).
        recheck: run the mutants the ledger lists too (they are reported as listed unless
            killed); by default they are not run.
        max_seconds: run, per mutant, only the head of its tests that took at most this long
            unmutated (a quicker, weaker run: a survivor may be one a later test kills).
        progress: optional ``progress(mutant, record)``, called as each mutant finishes.

    Returns:
        A JSON-serialisable dict: ``total``, ``killed``, ``survived`` and ``unreached`` (the
        unlisted ones, each a record), ``equivalent`` and ``unpinned`` (listed, each with
        its reason), ``timed_out``, ``score`` (killed / (total − listed)), ``stale`` (ledger keys
        no mutant has), ``seconds`` and ``mutants`` (one record each: ``key``, ``path``,
        ``line``, ``operator``, ``fragment``, ``replacement``, ``outcome``, ``caught_by``,
        ``tests``, ``seconds``).

    Raises:
        UnmutatedTestsFail: when a test fails without any mutant.
    """
    start = time.perf_counter()
    mutants = collect_mutants(config)
    uses = _constant_uses(config, mutants)
    ledgers = {"equivalent": config.equivalents, "unpinned": config.unpinned}
    with tempfile.TemporaryDirectory(prefix="harness-mutation-") as scratch:
        folders = Queue()
        for index in range(max(1, jobs)):
            folders.put(_copy(config, Path(scratch) / f"copy{index}"))
        first = folders.get()
        _require_copy_imported(config, first)
        mapped = _map_tests(config, first, jobs)
        folders.put(first)

        def run(mutant):
            tests = mapped.selection(mutant, uses)
            if max_seconds is not None:
                tests = mapped.within(tests, max_seconds)
            listed = any(mutant.key in ledger for ledger in ledgers.values())
            if not tests or (listed and not recheck):
                outcome = {"outcome": "unreached" if not tests else "not run", "caught_by": "",
                           "tests": len(tests), "seconds": 0.0}
            else:
                folder = folders.get()
                try:
                    outcome = _run_mutant(config, folder, mutant, tests,
                                          timeout + _SLOWER * mapped.cost(tests))
                finally:
                    folders.put(folder)
            record = {"key": mutant.key, "path": mutant.path, "line": mutant.span[0],
                      "operator": mutant.operator, "fragment": mutant.fragment,
                      "replacement": mutant.replacement, **outcome}
            if progress is not None:
                progress(mutant, record)
            return record

        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            records = list(pool.map(run, mutants))
    every_key = {mutant.key for mutant in collect_mutants(replace(config, operators=()))}
    return _summary(records, ledgers, every_key, time.perf_counter() - start)


def try_mutants(config, keys, against, timeout=None):
    """Run chosen mutants against chosen tests, without the coverage map: the quick loop of
    writing a test that kills a survivor.

    Args:
        config: a ``Config``.
        keys: mutant keys (``--list`` shows them), of any operator.
        against: pytest arguments (test files, node ids, ``-k`` expressions), run with ``-x``
            in a scratch copy with each mutant written in.
        timeout: seconds per mutant, or ``None``.

    Returns:
        ``{key: record}`` in the order of ``keys``, each record as ``run_harness_mutation``'s
        (``outcome`` ``"killed"`` or ``"survived"``, ``caught_by``, ``seconds``).

    Raises:
        ValueError: a key no mutant of today's code has.
    """
    mutants = {mutant.key: mutant for mutant in collect_mutants(replace(config, operators=()))}
    unknown = [key for key in keys if key not in mutants]
    if unknown:
        raise ValueError(f"no mutant has the key(s) {unknown} (see --list)")
    with tempfile.TemporaryDirectory(prefix="harness-mutation-") as scratch:
        folder = _copy(config, Path(scratch) / "copy")
        _require_copy_imported(config, folder)
        return {key: _run_mutant(config, folder, mutants[key], list(against), timeout)
                for key in keys}


def _summary(records, ledgers, every_key, seconds):
    """The summary of ``records``; ``ledgers``: ``{outcome: {key: reason}}`` for the listed
    outcomes (``"equivalent"``, ``"unpinned"``); ``every_key``: the keys of every operator's
    mutants, for the stale ledger entries (a run of some operators must not call the others'
    stale)."""
    for record in records:
        for outcome, ledger in ledgers.items():
            if record["outcome"] != "killed" and record["key"] in ledger:
                record["outcome"], record["reason"] = outcome, ledger[record["key"]]
    by = defaultdict(list)
    for record in records:
        by[record["outcome"]].append(record)
    judged = len(records) - len(by["equivalent"]) - len(by["unpinned"])
    return {"total": len(records), "killed": len(by["killed"]),
            "survived": by["survived"], "unreached": by["unreached"],
            "equivalent": by["equivalent"], "unpinned": by["unpinned"],
            "timed_out": [r["key"] for r in by["killed"] if r["caught_by"].startswith("timed")],
            "score": len(by["killed"]) / judged if judged else 1.0,
            "stale": sorted(set().union(*ledgers.values()) - every_key),
            "seconds": round(seconds, 1), "mutants": records}


def failed(summary):
    """Whether a mutant survived that the ledger does not list."""
    return bool(summary["survived"] or summary["unreached"])


def report(summary):
    """The summary as lines of text: the score, then every unlisted survivor."""
    lines = [f"harness mutation: {summary['killed']} of {summary['total']} killed, "
             f"{len(summary['equivalent'])} equivalent and {len(summary['unpinned'])} "
             "unpinned (listed), "
             f"{len(summary['survived'])} survived, {len(summary['unreached'])} unreached; "
             f"kill score {summary['score']:.1%} in {summary['seconds']:.0f} s"]
    lines += [f"  timed out (counted as killed): {key}" for key in summary["timed_out"]]
    for record in summary["survived"] + summary["unreached"]:
        lines.append(f"  {record['outcome'].upper()} {record['path']}:{record['line']} "
                     f"[{record['operator']}] {record['fragment']}  →  "
                     f"{record['replacement']}\n      key: {record['key']}")
    lines += [f"  stale ledger entry (no such mutant): {key}" for key in summary["stale"]]
    return lines


def main(argv=None):
    """``python -m verification.suite.harness_mutation [--ci] [--jobs N] [--json PATH]``, or
    ``--key KEY … --against PYTEST-ARGS …`` (``try_mutants``)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--ci", action="store_true",
                        help="only the operators .ci/run runs: " + ", ".join(CI_OPERATORS))
    parser.add_argument("--operator", action="append", default=[],
                        help="only this operator (repeatable)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--timeout", type=int, default=_TIMEOUT)
    parser.add_argument("--max-seconds", type=float,
                        help="per mutant, only the tests that took this long unmutated "
                             "(quicker, weaker: for finding survivors)")
    parser.add_argument("--recheck", action="store_true",
                        help="run the mutants the ledger lists as equivalent too")
    parser.add_argument("--list", action="store_true", help="list the mutants, run nothing")
    parser.add_argument("--json", type=Path, help="write the summary here")
    parser.add_argument("--verbose", action="store_true", help="a line per mutant")
    parser.add_argument("--key", action="append", default=[],
                        help="with --against: this mutant only (repeatable)")
    parser.add_argument("--against", nargs=argparse.REMAINDER,
                        help="run the --key mutants against these pytest arguments (the rest of "
                             "the command line), without the coverage map")
    options = parser.parse_args(argv)
    if options.key or options.against:
        if not (options.key and options.against):
            parser.error("--key and --against go together")
        tried = try_mutants(REFNET, options.key, options.against, options.timeout)
        for key, record in tried.items():
            caught = record["caught_by"] or "every test passed"
            print(f"{record['outcome'].upper():8} {key}  ({caught}, {record['seconds']} s)")
        return 1 if any(r["outcome"] != "killed" for r in tried.values()) else 0
    operators = tuple(options.operator) or (CI_OPERATORS if options.ci else ())
    config = replace(REFNET, operators=operators)
    if options.list:
        for mutant in collect_mutants(config):
            print(f"{mutant.path}:{mutant.span[0]} {mutant.key}  →  {mutant.replacement}")
        return 0

    def progress(mutant, record):
        if options.verbose:
            print(f"{record['outcome']:>9} {record['seconds']:6.1f} s {record['tests']:4d} "
                  f"tests  {mutant.key}", flush=True)

    summary = run_harness_mutation(config, jobs=options.jobs, timeout=options.timeout,
                                   recheck=options.recheck, max_seconds=options.max_seconds,
                                   progress=progress)
    print("\n".join(report(summary)))
    if options.json:
        options.json.write_text(json.dumps(summary, indent=1, ensure_ascii=False))
    return 1 if failed(summary) else 0


if __name__ == "__main__":
    sys.exit(main())
