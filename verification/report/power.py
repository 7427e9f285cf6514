"""Detection power: per check kind, the smallest relative error sure to fail a check of it.

A check compares a tensor against a reference under an element-wise tolerance; its
``detectable`` (``CheckResult``) is the largest tolerance over the compared tensor divided by
that tensor's scale, max |expected|: a relative error above it on the largest element always
fails, whatever the other elements do. The power of a kind in a run is the largest
``detectable`` of its checks, so an error of that relative size is caught by every check of
the kind. Exact comparisons have power 0 (any difference fails); checks that compare no tensor
(a raised error, a convention) do not count. Tolerances scale with the dtype's round-off, so
the power is per dtype: a run in float64 and float32 has one table each (``by_dtype``).
"""

__all__ = ["detection_power", "by_dtype", "dtypes_run"]


def detection_power(checks, dtype=None):
    """``{kind: {"detectable": largest, "id": its check}}`` over check records
    (``CheckResult.as_dict()``) of ``dtype`` (``"float32"``; ``None``: every check), kinds in
    alphabetical order; a check counts when it compared a tensor (``scale`` or ``detectable``
    above 0)."""
    power = {}
    for check in checks:
        detectable = check.get("detectable", 0.0)
        if not (check.get("scale", 0.0) > 0 or detectable > 0):
            continue
        if dtype is not None and check.get("dtype") != dtype:
            continue
        kind = check["kind"]
        if kind not in power or detectable > power[kind]["detectable"]:
            power[kind] = {"detectable": detectable, "id": check["id"]}
    return dict(sorted(power.items()))


def dtypes_run(checks):
    """The dtypes the check records ran in (their ``dtype``), in order of first appearance."""
    return list(dict.fromkeys(check["dtype"] for check in checks if check.get("dtype")))


def by_dtype(checks):
    """``{dtype: detection_power(checks, dtype)}`` for each dtype the checks ran in
    (``dtypes_run``)."""
    return {dtype: detection_power(checks, dtype) for dtype in dtypes_run(checks)}
