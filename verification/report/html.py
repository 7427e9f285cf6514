"""The self-contained HTML conformance report: one file, inline CSS and SVG, no scripts."""

import io
from pathlib import Path

import jinja2

from refnet._io import write_atomically

__all__ = ["figure_to_svg", "conformance_matrix", "render_html", "write_report"]

_TEMPLATES = Path(__file__).resolve().parent / "templates"
_ENVIRONMENT = jinja2.Environment(
    loader=jinja2.FileSystemLoader(_TEMPLATES),
    autoescape=jinja2.select_autoescape(["html", "j2"], default_for_string=True),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True, lstrip_blocks=True,
)


def figure_to_svg(figure):
    """The figure as an inline ``<svg>`` element (no XML prologue)."""
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg")
    text = buffer.getvalue()
    return text[text.index("<svg"):]


def module_class(module_description):
    """``"Linear(2, 3)"`` → ``"Linear"``: the matrix groups checks by class."""
    return module_description.split("(", 1)[0].strip()


def conformance_matrix(checks):
    """Component × check-kind cells, each with the worst error/tolerance ratio and a count.

    A check is filed under its ``component`` (``linear``, ``mse_loss``, …), or under its
    module's class where it has none.

    Args:
        checks: check records (``CheckResult.as_dict()``).

    Returns:
        ``{"kinds": [str], "rows": [{"module": str, "cells": [cell or None]}]}`` where a cell is
        ``{"passed", "worst_ratio", "worst_id", "count"}``.
    """
    kinds = sorted({check["kind"] for check in checks})
    cells = {}
    for check in checks:
        key = (check.get("component") or module_class(check["module"]), check["kind"])
        cell = cells.setdefault(key, {"passed": True, "worst_ratio": 0.0, "worst_id": "",
                                      "count": 0})
        cell["count"] += 1
        cell["passed"] = cell["passed"] and check["status"] == "pass"
        ratio = check.get("error_ratio", 0.0)
        if ratio >= cell["worst_ratio"]:
            cell["worst_ratio"], cell["worst_id"] = ratio, check["id"]
    modules = sorted({module for module, _ in cells})
    rows = [{"module": module, "cells": [cells.get((module, kind)) for kind in kinds]}
            for module in modules]
    return {"kinds": kinds, "rows": rows}


def render_html(context, template="report.html.j2"):
    """Render ``template`` from ``context``: the verify report (``verification.verify`` gives
    its keys), ``conform.html.j2`` or ``scoreboard.html.j2`` (``verification.conform``)."""
    return _ENVIRONMENT.get_template(template).render(**context)


def write_report(path, context):
    """Render and write ``index.html`` atomically."""
    write_atomically(path, render_html(context))
