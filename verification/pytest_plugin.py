"""The pytest plugin: ``pytest --conform ADAPTER`` puts refnet's checks into a test run.

Registered through the ``pytest11`` entry point of refnet's package, so it is active wherever
refnet is installed; without ``--conform`` it adds nothing. With it, the target runs in its
own process (as under ``refnet conform``: a hang is stopped at ``--conform-timeout``, a crash
or a failed import is one failing item) and every check becomes one test item named
``<target>::<component>::<kind>::<check id>``, so ``-k linear`` or ``-k "tanh and autograd"``
selects; a failing item's message is the check's own detail and its one-line reproducer. The
checks and tolerances are those of ``refnet conform``.
"""

import argparse
import math

import pytest

CONFORM_DTYPES = ("float64", "float32")
"""``--conform-dtype``'s values, as ``refnet conform --dtype``'s (``refnet.cli``, which this
module may not import before ``--conform`` is given: see ``verification/__init__``)."""

__all__ = ["pytest_addoption", "pytest_collection_modifyitems", "ConformItem",
           "CONFORM_DTYPES"]


def pytest_addoption(parser):
    group = parser.getgroup("refnet", "refnet conformance checks")
    group.addoption("--conform", action="append", default=[], metavar="ADAPTER",
                    help="check this implementation of the module protocol (a file path, an "
                         "importable name, or refnet); may be repeated")
    group.addoption("--conform-timeout", type=_seconds, default=300.0, metavar="S",
                    help="seconds a target may take (default 300)")
    group.addoption("--conform-quick", action="store_true", help="shorter trajectories")
    group.addoption("--conform-dtype", choices=CONFORM_DTYPES, default=None,
                    help="check in this dtype alone (default: float64 and float32, or the one "
                         "a target declares)")


def _seconds(text):
    """``--conform-timeout``'s type: a finite number of seconds > 0 (pytest stops with a usage
    error naming the option otherwise)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a finite number of seconds > 0, got {text}")
    return value


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
            from verification.suite.conformance import reproducer

            case, quick = self.record.get("case"), self.config.getoption("conform_quick")
            rerun = (f"\nreproduce: {reproducer(self.spec, case, self.record['id'], quick=quick)}"
                     if case else "")
            return f"{excinfo.value}{rerun}"
        return super().repr_failure(excinfo, style)

    def reportinfo(self):
        return self.path, None, f"conform {self.name}"


def _records(run):
    """The target's name and its checks, then one ``"skipped"`` record per case not built
    for lack of a component (a pytest skip naming the reason)."""
    if run.status != "completed":
        return run.spec, [run.failure_record()]
    skipped = [{"status": "skipped", "component": entry["component"], "kind": "skipped",
                "id": f"skipped/{entry['case']}", "detail": entry["reason"]}
               for entry in run.cases()["skipped"]]
    return run.record["target"]["name"], [*run.record["checks"], *skipped]


def pytest_collection_modifyitems(session, config, items):
    """Append one item per check of every ``--conform`` target."""
    if not config.getoption("conform"):
        return
    from verification.targets.isolation import run_isolated  # only now: see verification/__init__

    for spec in config.getoption("conform"):
        run = run_isolated(spec, timeout=config.getoption("conform_timeout"),
                           quick=config.getoption("conform_quick"),
                           dtype=config.getoption("conform_dtype"))
        name, records = _records(run)
        for record in records:
            items.append(ConformItem.from_parent(
                session, name=f"{name}::{record['component']}::{record['kind']}::{record['id']}",
                record=record, spec=spec))
