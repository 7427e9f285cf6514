"""The pytest plugin: ``pytest --conform ADAPTER`` puts refnet's checks into a test run.

Registered through the ``pytest11`` entry point of refnet's package, so it is active wherever
refnet is installed; without ``--conform`` it adds nothing. With it, each target runs in its
own process (as under ``refnet conform``) and every check becomes one test item named
``<target>::<component>::<kind>::<check id>``, so ``-k linear`` or ``-k "tanh and autograd"``
selects; ``<target>`` is the spec's distinguishing path, as on the scoreboard. A failing item's
message is the check's own detail and its one-line reproducer. A run that does not complete (a
hang stopped at ``--conform-timeout``, a crash, a limit, a failed import) keeps the checks of
the cases that finished and adds one failing item naming where it stopped. The checks and
tolerances are those of ``refnet conform``.
"""

import os
from pathlib import Path

import pytest

from verification.arguments import CONFORM_DTYPES, number

__all__ = ["pytest_addoption", "pytest_collection_modifyitems", "ConformItem"]


def pytest_addoption(parser):
    group = parser.getgroup("refnet", "refnet conformance checks")
    group.addoption("--conform", action="append", default=[], metavar="ADAPTER",
                    help="check this implementation of the module protocol (a file path, an "
                         "importable name, or refnet); may be repeated")
    group.addoption("--conform-timeout", type=number(above=0, unit="seconds"), default=300.0,
                    metavar="S",
                    help="seconds a target may take (default 300)")
    group.addoption("--conform-quick", action="store_true", help="shorter trajectories")
    group.addoption("--conform-dtype", choices=CONFORM_DTYPES, default=None,
                    help="check in this dtype alone (default: float64 and float32, or the one "
                         "a target declares)")
    group.addoption("--conform-course", default=None, metavar="NAME|FILE.toml",
                    help="judge every target under a course's rules (refnet conform --course)")


class ConformFailure(AssertionError):
    """A failed conformance check; its message is the check's detail."""


class ConformItem(pytest.Item):
    """One check of one target, already run; ``runtest`` reports its verdict."""

    def __init__(self, *, record, spec, **kwargs):
        super().__init__(**kwargs)
        self.record, self.spec = record, spec

    def runtest(self):
        if self.record["status"] == "skipped":
            pytest.skip(self.record["detail"])
        if self.record["status"] != "pass":
            raise ConformFailure(self.record["detail"])

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, ConformFailure):
            from verification.conform import ConformOptions, reproducer

            case = self.record.get("case")
            options = ConformOptions(targets=(self.spec,), out=Path("."),
                                     quick=self.config.getoption("conform_quick"),
                                     dtype=self.config.getoption("conform_dtype"),
                                     course=self.config.getoption("conform_course"))
            rerun = (f"\nreproduce: {reproducer(self.spec, options, case, self.record['id'])}"
                     if case else "")
            return f"{excinfo.value}{rerun}"
        return super().repr_failure(excinfo, style)

    def reportinfo(self):
        return self.path, None, f"conform {self.name}"


def _records(run):
    """A target's items: the checks of every case that finished, one failed check standing
    for the rest when the run did not complete (a timeout, a crash, an interruption:
    ``TargetRun.checks``), then one ``"skipped"`` record per case not built for lack of a
    component (a pytest skip naming the reason)."""
    skipped = [{"status": "skipped", "component": entry["component"], "kind": "skipped",
                "id": f"skipped/{entry['case']}", "detail": entry["reason"]}
               for entry in run.cases()["skipped"]]
    return [*run.checks(), *skipped]


def pytest_collection_modifyitems(session, config, items):
    """Append one item per check of every ``--conform`` target, each target named by its
    spec's distinguishing path as on ``refnet conform``'s scoreboard (``alice/handout`` and
    ``bob/handout`` for two ``handout_adapter.py``)."""
    specs = config.getoption("conform")
    if not specs:
        return
    # only now: see verification/__init__
    from verification.confined.isolation import run_all
    from verification.conform import distinguishing_names
    from verification.course.profile import CourseError, load_course

    try:
        course = (load_course(config.getoption("conform_course"))
                  if config.getoption("conform_course") else None)
    except CourseError as failure:
        raise pytest.UsageError(f"--conform-course: {failure}") from None
    # side by side, one per CPU as `refnet conform`, their judges forked by one zygote
    runs = run_all(list(specs), jobs=os.cpu_count() or 1,
                   timeout=config.getoption("conform_timeout"),
                   quick=config.getoption("conform_quick"), dtype=config.getoption("conform_dtype"),
                   course=course)
    for spec, name, run in zip(specs, distinguishing_names(specs), runs, strict=True):
        for record in _records(run):
            items.append(ConformItem.from_parent(
                session, name=f"{name}::{record['component']}::{record['kind']}::{record['id']}",
                record=record, spec=spec))
