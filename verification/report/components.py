"""Checks grouped by component, smallest first: what a reader of a failing run should see first.

A bug in Tanh fails Tanh's checks and those of every network built with it; listing the leaf
components before the containers (``COMPONENT_ORDER``) puts the cause before its echoes. A
component whose every case was skipped (the target lacks it) is listed too, as ``"skipped"``:
neither a pass nor a fail.
"""

from verification.course.rules import REQUIRED, RULE
from verification.suite.conformance import COMPONENT_ORDER

__all__ = ["component_summary", "component_rank", "failure_lines", "raised_text", "RAISED_WIDTH"]

RAISED_WIDTH = 160
"""At most this many characters of an exception's text in a terminal line."""
_RAISED = ": it raised "
"""What ``verification.checks.reference.raised_result`` puts before the exception's text."""


def component_rank(component):
    """Sort key: ``COMPONENT_ORDER`` first, then any other component by name."""
    return (COMPONENT_ORDER.index(component) if component in COMPONENT_ORDER
            else len(COMPONENT_ORDER), component)


def _empty_entry(status="pass"):
    return {"status": status, "checks": 0, "failed": 0, "failed_kinds": [], "worst_ratio": 0.0,
            "worst_id": "", "worst_kind": "", "worst_detail": ""}


def _add_check(entry, check):
    entry["checks"] += 1
    if check["status"] == "fail":
        entry["failed"] += 1
        entry["status"] = "fail"
        if check["kind"] not in entry["failed_kinds"]:
            entry["failed_kinds"] = sorted([*entry["failed_kinds"], check["kind"]])
    if check["error_ratio"] >= entry["worst_ratio"]:
        entry.update(worst_ratio=check["error_ratio"], worst_id=check["id"],
                     worst_kind=check["kind"], worst_detail=check.get("detail") or "")


def _add_skipped(summary, skipped):
    """File each skipped case under its component; one with no checks becomes ``"skipped"``."""
    for case in skipped:
        entry = summary.setdefault(case["component"] or "other", _empty_entry("skipped"))
        entry.setdefault("skipped", [])
        entry["skipped"].append({"case": case["case"], "reason": case["reason"]})
        if entry["status"] == "skipped":
            entry["reason"] = "; ".join(dict.fromkeys(s["reason"] for s in entry["skipped"]))


def component_summary(checks, skipped=()):
    """Per component, in ``component_rank`` order: ``{status, checks, failed, failed_kinds,
    worst_ratio, worst_id, worst_kind, worst_detail}`` (the worst check: highest
    error/tolerance ratio, the last of equals). Checks without a component are filed under
    ``"other"``.

    Args:
        checks: check records (``CheckResult.as_dict()``).
        skipped: skipped-case records ``{"case", "component", "reason"}``. A component that
            has some gets ``"skipped"`` (``[{"case", "reason"}]``); one with no checks at all
            also gets status ``"skipped"``, ``checks`` 0 and ``"reason"`` (its reasons, joined).
    """
    summary = {}
    for check in checks:
        _add_check(summary.setdefault(check.get("component") or "other", _empty_entry()), check)
    _add_skipped(summary, skipped)
    return dict(sorted(summary.items(), key=lambda item: component_rank(item[0])))


def raised_text(detail, width=RAISED_WIDTH):
    """The exception's text in a ``raised_result`` detail ("... FAILED for <case>: it raised
    <text>"), on one line and shortened to ``width`` characters; ``""`` for any other detail."""
    _, found, text = (detail or "").partition(_RAISED)
    text = " ".join(text.split())
    if not found or not text:
        return ""
    return text if len(text) <= width else text[:width - 1] + "…"


def _failure_line(name, entry):
    if entry["worst_kind"] in (RULE, REQUIRED):  # a rule's sentence says it all
        return f"FAILED {name}: {entry['worst_detail'].partition(chr(10))[0]}"
    head = (f"FAILED {name}: {', '.join(entry['failed_kinds'])} fail ({entry['failed']} of "
            f"{entry['checks']} checks)")
    raised = raised_text(entry.get("worst_detail", ""))
    if raised:
        return f"{head}: raised {raised}"
    return f"{head}, worst error/tolerance {entry['worst_ratio']:.3g} in {entry['worst_id']}"


def failure_lines(summary):
    """One line per failing component, smallest first: its failing kinds and worst check, or,
    when that check raised, the exception's text (``raised_text``). Skipped components and
    passing ones give no line."""
    return [_failure_line(name, entry) for name, entry in summary.items()
            if entry["status"] == "fail"]
