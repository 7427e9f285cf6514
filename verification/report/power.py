"""Detection power: per check kind, the smallest relative error sure to fail a check of it.

A check compares a tensor against a reference under an element-wise tolerance; its
``detectable`` (``CheckResult``) is the largest tolerance over the compared tensor divided by
that tensor's scale, max |expected|: a relative error above it on the largest element always
fails, whatever the other elements do. The power of a kind in a run is the largest
``detectable`` of its checks, so an error of that relative size is caught by every check of
the kind. Exact comparisons have power 0 (any difference fails); checks that compare no tensor
(a raised error, a convention) do not count.
"""

__all__ = ["detection_power"]


def detection_power(checks):
    """``{kind: {"detectable": largest, "id": its check}}`` over check records
    (``CheckResult.as_dict()``), kinds in alphabetical order; a check counts when it compared
    a tensor (``scale`` or ``detectable`` above 0)."""
    power = {}
    for check in checks:
        detectable = check.get("detectable", 0.0)
        if not (check.get("scale", 0.0) > 0 or detectable > 0):
            continue
        kind = check["kind"]
        if kind not in power or detectable > power[kind]["detectable"]:
            power[kind] = {"detectable": detectable, "id": check["id"]}
    return dict(sorted(power.items()))
