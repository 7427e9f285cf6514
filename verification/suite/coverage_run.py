"""Which lines and branches of ``refnet/`` the checks exercised, measured with coverage.py."""

import ast
import json
import tempfile
import warnings
from contextlib import contextmanager
from pathlib import Path

import coverage

import refnet

__all__ = ["measure_refnet_coverage"]

_PACKAGE = Path(refnet.__file__).resolve().parent


class CoverageRecord:
    """Filled in when the measured block ends: ``summary`` (None when not measured) and ``note``."""

    def __init__(self):
        self.summary = None
        self.note = ""


@contextmanager
def measure_refnet_coverage(enabled=True):
    """Measure line and branch coverage of ``refnet/`` while the block runs.

    Yields a ``CoverageRecord`` whose ``summary`` becomes, after the block::

        {"percent": float, "files": [{"file": "refnet/linear.py", "statements": int,
          "missing_lines": [int], "branches": int, "missing_branches": [[from, to]],
          "percent": float}]}

    refnet is imported before measuring starts, so the statements that run at import (module-
    and class-level lines: imports, ``def`` and ``class`` lines, constants) are counted as
    reached; every line inside a function body counts only if a check ran it. When another
    coverage session is already tracing (pytest-cov), measuring again would steal its tracer,
    so nothing is measured and ``note`` says why.
    """
    record = CoverageRecord()
    if not enabled or coverage.Coverage.current() is not None:
        record.note = ("not measured: " + ("disabled" if not enabled else
                                           "another coverage session is already tracing"))
        yield record
        return
    tracer = coverage.Coverage(source=[str(_PACKAGE)], branch=True, data_file=None)
    tracer.start()
    try:
        yield record
    finally:
        tracer.stop()
        record.summary = _summarise(tracer)


def _import_time_lines(path):
    """Line numbers of statements that run when the module is imported (outside functions)."""
    lines = set()

    def visit(statements):
        for statement in statements:
            lines.add(statement.lineno)
            for decorator in getattr(statement, "decorator_list", []):
                lines.add(decorator.lineno)
            if isinstance(statement, ast.ClassDef):
                visit(statement.body)

    visit(ast.parse(Path(path).read_text(encoding="utf-8")).body)
    return lines


def _file_summary(path, data):
    summary = data["summary"]
    missing = sorted(set(data["missing_lines"]) - _import_time_lines(path))
    statements, branches = summary["num_statements"], summary.get("num_branches", 0)
    missing_branches = data.get("missing_branches", [])
    reached = statements - len(missing) + branches - len(missing_branches)
    return {
        "file": f"refnet/{Path(path).resolve().relative_to(_PACKAGE).as_posix()}",
        "statements": statements, "missing_lines": missing,
        "branches": branches, "missing_branches": missing_branches,
        "percent": 100.0 * reached / max(statements + branches, 1),
    }


def _summarise(tracer):
    with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
        # A run in which no refnet line ran (every check failed early) is reported as 0%.
        warnings.simplefilter("ignore", coverage.exceptions.CoverageWarning)
        report_path = Path(folder) / "coverage.json"
        try:
            tracer.json_report(outfile=str(report_path), show_contexts=False)
        except coverage.exceptions.NoDataError:
            return {"percent": 0.0, "files": []}
        report = json.loads(report_path.read_text())
    files = [_file_summary(path, data) for path, data in sorted(report["files"].items())]
    total = sum(f["statements"] + f["branches"] for f in files)
    missed = sum(len(f["missing_lines"]) + len(f["missing_branches"]) for f in files)
    return {"percent": 100.0 * (total - missed) / max(total, 1), "files": files}
