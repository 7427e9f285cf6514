"""Checks grouped by component, smallest first: what a reader of a failing run should see first.

A bug in Tanh fails Tanh's checks and those of every network built with it; listing the leaf
components before the containers (``COMPONENT_ORDER``) puts the cause before its echoes.
"""

from verification.suite.conformance import COMPONENT_ORDER

__all__ = ["component_summary", "component_rank", "failure_lines"]


def component_rank(component):
    """Sort key: ``COMPONENT_ORDER`` first, then any other component by name."""
    return (COMPONENT_ORDER.index(component) if component in COMPONENT_ORDER
            else len(COMPONENT_ORDER), component)


def component_summary(checks):
    """``{component: {status, checks, failed, failed_kinds, worst_ratio, worst_id}}`` in
    ``component_rank`` order; checks without a component are filed under ``"other"``."""
    summary = {}
    for check in checks:
        entry = summary.setdefault(check.get("component") or "other", {
            "status": "pass", "checks": 0, "failed": 0, "failed_kinds": [], "worst_ratio": 0.0,
            "worst_id": ""})
        entry["checks"] += 1
        if check["status"] == "fail":
            entry["failed"] += 1
            entry["status"] = "fail"
            if check["kind"] not in entry["failed_kinds"]:
                entry["failed_kinds"] = sorted([*entry["failed_kinds"], check["kind"]])
        if check["error_ratio"] >= entry["worst_ratio"]:
            entry["worst_ratio"], entry["worst_id"] = check["error_ratio"], check["id"]
    return dict(sorted(summary.items(), key=lambda item: component_rank(item[0])))


def failure_lines(summary):
    """One line per failing component, smallest first: its failing kinds and worst check."""
    return [f"FAILED {name}: {', '.join(entry['failed_kinds'])} fail ({entry['failed']} of "
            f"{entry['checks']} checks), worst error/tolerance {entry['worst_ratio']:.3g} in "
            f"{entry['worst_id']}"
            for name, entry in summary.items() if entry["status"] == "fail"]
