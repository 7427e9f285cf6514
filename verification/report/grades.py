"""``grades.csv``: a scoreboard as a table a gradebook imports, one row per submission.

Columns: ``name``, ``verdict`` (``pass``, ``fail``, or how the run ended where it did not
complete: ``crashed``, ``timeout``, ``limit``, ``import-error``, ``interrupted``),
``checks_passed``, ``checks_total``, ``rules_broken`` and ``missing_components``
(``;``-joined; from a target's ``rules``, the ``id`` of each entry whose ``status`` is
``fail`` (``rule/torch.nn/source``: a rule's sentence may hold a ``;``), and its
``missing_components``, both empty where the results have none), then one column per component,
each cell ``pass``, ``fail`` or ``—`` (skipped, or not built by that target).

Names come from the submissions' paths and component names from their adapters, so a cell a
spreadsheet would read as a formula (starting with ``=``, ``+``, ``-``, ``@``, a tab or a
carriage return) is prefixed with ``'`` (``neutralised``).
"""

import csv
import io

from verification.report.components import component_rank

__all__ = ["grades_csv", "neutralised", "GRADE_COLUMNS"]

GRADE_COLUMNS = ("name", "verdict", "checks_passed", "checks_total", "rules_broken",
                 "missing_components")
"""The columns before the components'."""

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralised(cell):
    """``cell`` (a string) with ``'`` in front where a spreadsheet would run it as a formula."""
    return "'" + cell if cell.startswith(_FORMULA_STARTS) else cell


def grades_csv(results_list):
    """The text of ``grades.csv`` for the targets' ``results.json``s (``conform``'s, each with
    ``target.name``, ``run``, ``checks`` and ``components``), rows sorted by name."""
    components = sorted({name for results in results_list for name in results["components"]
                         if name != "target"}, key=component_rank)
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow([neutralised(cell) for cell in (*GRADE_COLUMNS, *components)])
    for results in sorted(results_list, key=lambda r: (r["target"]["name"].lower(),
                                                       r["target"]["name"])):
        writer.writerow([neutralised(str(cell)) for cell in _row(results, components)])
    return text.getvalue()


def _row(results, components):
    checks = results["checks"]
    run_status = results["run"]["status"]
    verdict = results["status"] if run_status == "completed" else run_status
    rules = results.get("rules", [])
    broken = [str(rule.get("id", "")) for rule in rules if isinstance(rule, dict)
              and rule.get("status") == "fail"] if isinstance(rules, list) else []
    missing = results.get("missing_components", [])
    missing = [str(name) for name in missing] if isinstance(missing, list) else []
    cells = [(results["components"].get(name) or {}).get("status") for name in components]
    return [results["target"]["name"], verdict,
            sum(check["status"] == "pass" for check in checks), len(checks),
            ";".join(broken), ";".join(missing),
            *(cell if cell in ("pass", "fail") else "—" for cell in cells)]
