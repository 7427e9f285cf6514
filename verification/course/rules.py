"""A course's rules as check results: the judge's verdict on each, with its evidence.

Three kinds of entry, each a ``CheckResult`` (so that every report, baseline and terminal line
treats them as it treats any check) whose ``detail`` is one sentence followed by its evidence,
one item a line:

- ``rule/<namespace>/source`` (component ``rules``, kind ``rule``): no file of the submission
  imports or uses the namespace (``sources.scan``); evidence ``path:line: name — source``.
- ``rule/<namespace>/run`` (component ``rules``, kind ``rule``): the submission called nothing
  of it while it ran (``watch.Watch``, counted in its own process); evidence ``name: N calls,
  first in case 'relu'``. Only where the submission ran in an executor (``refnet conform``).
- ``required/<component>`` (that component, kind ``required``): the adapter provides it;
  failing as "the course requires tanh(); the adapter has none".

``rule_entries`` and ``missing_components`` turn a run's checks back into the ``rules`` and
``missing_components`` of ``results.json``.
"""

import math

from verification.checks.result import CheckResult
from verification.course.sources import scan

__all__ = ["source_rules", "run_rules", "required_rule", "rule_entries", "missing_components",
           "RULE", "REQUIRED", "RULES_COMPONENT"]

RULE, REQUIRED = "rule", "required"
"""The check kinds of a rule and of a required component."""
RULES_COMPONENT = "rules"
_EVIDENCE = 20
"""Evidence items listed per rule; the count of the rest is given."""


def source_rules(course, spec, module):
    """``rule/<namespace>/source`` for each of ``course.forbidden`` in ``spec``'s files;
    ``module`` names the target in the results."""
    found = scan(spec, course.forbidden, course.allowed)
    read = (f"{len(found.files)} file(s) read: {', '.join(found.files)}" if found.files
            else "no source file of the submission was found")
    unread = [f"not read: {item}" for item in found.unread]
    results = []
    for namespace in course.forbidden:
        findings = [f.text() for f in found.findings if f.namespace == namespace]
        if not found.files:
            sentence = (f"{namespace} could not be ruled out in the source: no file of the "
                        f"submission was found to read")
        elif findings:
            sentence = (f"the course forbids {namespace}; the source uses it "
                        f"{len(findings)} time(s)")
        else:
            sentence = f"the source neither imports nor uses {namespace} ({read})"
        passed = bool(found.files) and not findings
        results.append(_rule(f"rule/{namespace}/source", module, RULE, passed, sentence,
                             [*findings, *unread]))
    return results


def run_rules(course, calls, module):
    """``rule/<namespace>/run`` for each of ``course.forbidden``, from the calls the executor
    counted (``{(namespace, name): {"count", "where"}}``, ``where`` the first case)."""
    results = []
    for namespace in course.forbidden:
        used = [(name, entry) for (space, name), entry in calls.items() if space == namespace]
        evidence = [f"{name}: {entry['count']} call(s), first {entry['where']}"
                    for name, entry in used]
        sentence = (f"the course forbids {namespace}; the submission called it "
                    f"{sum(entry['count'] for _, entry in used)} time(s) while it ran"
                    if used else f"the submission called nothing of {namespace} while it ran")
        results.append(_rule(f"rule/{namespace}/run", module, RULE, not used, sentence,
                             evidence))
    return results


def required_rule(course, component, has, module):
    """``required/<component>``: whether the adapter provides ``component`` (``has``)."""
    sentence = (f"the course {course.name} requires {component}(); the adapter has "
                + ("one" if has else "none"))
    return _rule(f"required/{component}", module, REQUIRED, has, sentence, [])


def rule_entries(checks):
    """``results.json``'s ``rules``: ``{"rule", "id", "status", "evidence"}`` for each rule
    check (its sentence, id, status, and the evidence lines of its detail)."""
    entries = []
    for check in checks:
        if check.get("kind") == RULE:
            sentence, *evidence = check["detail"].split("\n")
            entries.append({"rule": sentence, "id": check["id"], "status": check["status"],
                            "evidence": evidence})
    return entries


def missing_components(checks):
    """The components a course requires that the adapter lacks (failed ``required/…``)."""
    return [check["component"] for check in checks
            if check.get("kind") == REQUIRED and check["status"] == "fail"]


def _rule(check_id, module, kind, passed, sentence, evidence):
    shown = evidence[:_EVIDENCE]
    if len(evidence) > len(shown):
        shown.append(f"… and {len(evidence) - len(shown)} more")
    ratio = 0.0 if passed else math.inf
    return CheckResult(check_id, module, kind, passed, 0.0, 0.0, 0.0, ratio,
                       "\n".join([sentence, *shown]), diagnosis="" if passed else sentence)
