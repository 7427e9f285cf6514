"""``results.json``: the environment record, schema validation and regressions against a baseline.

The layout is fixed by CONTRACT.md (``schema_version`` 1); keys beyond it are extras.
"""

import json
import os
import platform
import subprocess
import sys
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import torch

__all__ = [
    "SCHEMA_VERSION", "ERROR_GROWTH_FACTOR", "BENCHMARK_NOISE_FACTOR", "BaselineError",
    "Regression", "environment", "validate", "load_baseline", "find_regressions", "written_by",
    "VERIFY", "CONFORM_TARGET", "CONFORM_SCOREBOARD",
]

SCHEMA_VERSION = 1
ERROR_GROWTH_FACTOR = 10.0
"""A passing check regresses when its error/tolerance ratio grows by more than this factor
(and ends above ``ERROR_RATIO_FLOOR``): round-off moves a ratio by far less than 10×, a
changed formula by more."""
ERROR_RATIO_FLOOR = 0.01
BENCHMARK_NOISE_FACTOR = 1.5
"""A benchmark regresses when its ratio falls below the baseline's divided by this factor:
repeated runs on a shared 2-core machine spread by up to about ±30%."""

_TOP_LEVEL_KEYS = ("schema_version", "status", "environment", "checks", "mutation",
                   "reproduction", "benchmarks")


class BaselineError(ValueError):
    """A baseline that cannot be compared: unreadable, not JSON, another schema, entries the
    regression rules cannot read, or written by another command."""


@dataclass(frozen=True)
class Regression:
    """One way the current run is worse than the baseline.

    Attributes:
        kind: ``check``, ``error_growth``, ``reproduction`` or ``benchmark``.
        id: the check id, configuration name or benchmark name.
        before: the baseline's value.
        after: this run's value.
        rule: the sentence that says why this counts as a regression.
    """

    kind: str
    id: str
    before: object
    after: object
    rule: str

    def as_dict(self):
        """The JSON form."""
        return asdict(self)


_CHECKOUT = Path(__file__).resolve().parent
"""Where git is asked about the code that runs: this package's own checkout."""


def _git(*arguments, checkout=_CHECKOUT):
    """Standard output of ``git arguments`` in ``checkout``, or ``None`` without git or a repo."""
    try:
        completed = subprocess.run(["git", *arguments], capture_output=True, text=True,
                                   cwd=checkout, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return completed.stdout if completed.returncode == 0 else None


def git_state(checkout=_CHECKOUT):
    """``(commit, uncommitted)``: the checkout's HEAD commit, and whether tracked files differ
    from it (so the commit alone does not name the code that ran); ``(None, None)`` outside
    a git checkout."""
    commit = _git("rev-parse", "HEAD", checkout=checkout)
    status = _git("status", "--porcelain", "--untracked-files=no", checkout=checkout)
    if not commit or status is None:
        return None, None
    return commit.strip(), bool(status.strip())


def environment(*, command, device):
    """The contract's ``environment`` object for this process, plus ``git_uncommitted``
    (``git_state``)."""
    commit, uncommitted = git_state()
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
        "device": str(device),
        "git_commit": commit,
        "git_uncommitted": uncommitted,
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": command or " ".join(sys.argv),
    }


def validate(results):
    """Raise ``BaselineError`` unless ``results`` has schema version 1 and the contract's keys."""
    if not isinstance(results, dict):
        raise BaselineError(f"expected a JSON object, got {type(results).__name__}")
    version = results.get("schema_version")
    if version != SCHEMA_VERSION:
        raise BaselineError(f"schema_version {version!r} is not supported "
                            f"(this refnet reads and writes version {SCHEMA_VERSION})")
    missing = [key for key in _TOP_LEVEL_KEYS if key not in results]
    if missing:
        raise BaselineError(f"missing keys {missing} required by schema version {SCHEMA_VERSION}")
    return results


_NUMBER = (int, float)
_ENTRY_FIELDS = {
    "checks": {"id": str, "status": str},
    "benchmarks": {"name": str, "ratio": _NUMBER},
    "reproduction.configs": {"name": str, "train_error": dict, "test_error": dict},
}
"""What the regression rules read of each entry, by list: key → type."""
VERIFY, CONFORM_TARGET, CONFORM_SCOREBOARD = (
    "refnet verify", "refnet conform with one target", "refnet conform with several targets")
"""The writers of a ``results.json`` (``written_by``)."""


def written_by(results):
    """Which command wrote ``results``: a conform scoreboard has ``targets``, one conform
    target's report ``target``, ``refnet verify``'s neither."""
    if "targets" in results:
        return CONFORM_SCOREBOARD
    return CONFORM_TARGET if "target" in results else VERIFY


def _entries(where, entries, fields):
    """Raise ``BaselineError`` naming the first entry of the list ``entries`` that is no
    object or lacks one of ``fields`` (key → type)."""
    if not isinstance(entries, list):
        raise BaselineError(f"{where} is {type(entries).__name__}, expected a list")
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise BaselineError(f"{where}[{index}] is {type(entry).__name__}, expected an object")
        for key, kind in fields.items():
            value = entry.get(key)
            if not isinstance(value, kind) or isinstance(value, bool):
                raise BaselineError(f"{where}[{index}] has {key}={value!r}, expected "
                                    f"{'a number' if kind is _NUMBER else kind.__name__}"
                                    + (" (the key is missing)" if key not in entry else ""))


def _check_comparable(results):
    """Raise ``BaselineError`` unless ``find_regressions`` can read every entry of
    ``results``: the fields of ``_ENTRY_FIELDS``, numeric error ratios and medians, and
    confidence intervals of two numbers."""
    for where in ("checks", "benchmarks"):
        _entries(where, results[where], _ENTRY_FIELDS[where])
    for index, check in enumerate(results["checks"]):
        if not isinstance(check.get("error_ratio"), (*_NUMBER, type(None))):
            raise BaselineError(f"checks[{index}] has error_ratio={check['error_ratio']!r}, "
                                "expected a number or null")
    if not isinstance(results["reproduction"], dict):
        raise BaselineError(f"reproduction is {type(results['reproduction']).__name__}, "
                            "expected an object")
    configs = results["reproduction"].get("configs", [])
    _entries("reproduction.configs", configs, _ENTRY_FIELDS["reproduction.configs"])
    for index, config in enumerate(configs):
        for figure in ("train_error", "test_error"):
            where = f"reproduction.configs[{index}].{figure}"
            _entries(where, [config[figure]], {"median": _NUMBER})
            interval = config[figure].get("median_ci", [0, 0])
            if not (isinstance(interval, list) and len(interval) == 2
                    and all(isinstance(v, _NUMBER) for v in interval)):
                raise BaselineError(f"{where} has median_ci={interval!r}, expected two numbers")


def load_baseline(path, writer=None):
    """Read and validate an earlier ``results.json``; ``BaselineError`` with the reason if not.

    Args:
        path: the file.
        writer: the command whose results.json is expected (``VERIFY``, ``CONFORM_TARGET``,
            ``CONFORM_SCOREBOARD``), or ``None`` for any: ids of another command's checks never
            match, so comparing with its file would report nothing, or spurious regressions.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as failure:
        raise BaselineError(f"cannot read baseline {path}: {failure.strerror or failure}") from None
    try:
        results = json.loads(text)
    except json.JSONDecodeError as failure:
        raise BaselineError(f"baseline {path} is not valid JSON: {failure}") from None
    try:
        _check_comparable(validate(results))
    except BaselineError as failure:
        raise BaselineError(f"baseline {path}: {failure}") from None
    if writer is not None and written_by(results) != writer:
        raise BaselineError(f"baseline {path} was written by {written_by(results)}; expected a "
                            f"results.json of {writer}")
    return results


def find_regressions(current, baseline):
    """Every way ``current`` is worse than ``baseline`` (both validated results)."""
    return (_check_regressions(current, baseline) + _reproduction_regressions(current, baseline)
            + _benchmark_regressions(current, baseline))


def with_regressions(results, baseline):
    """Record in ``results`` every regression against ``baseline`` (``None``: no baseline);
    any regression fails the run. Returns ``results``."""
    regressions = [] if baseline is None else find_regressions(results, baseline)
    results["regressions"] = [regression.as_dict() for regression in regressions]
    if regressions:
        results["status"] = "fail"
    return results


def _by_key(records, key):
    return {record[key]: record for record in records}


def _check_regressions(current, baseline):
    regressions = []
    before_checks = _by_key(baseline["checks"], "id")
    for check_id, after in _by_key(current["checks"], "id").items():
        before = before_checks.get(check_id)
        if before is None:
            continue
        if before["status"] == "pass" and after["status"] == "fail":
            regressions.append(Regression("check", check_id, "pass", "fail",
                                          "the check passed in the baseline and fails now"))
        elif _error_grew(before, after):
            regressions.append(Regression(
                "error_growth", check_id, before["error_ratio"], after["error_ratio"],
                f"error/tolerance grew more than {ERROR_GROWTH_FACTOR:g}× "
                f"(and is above {ERROR_RATIO_FLOOR:g})"))
    return regressions


def _error_grew(before, after):
    old, new = before.get("error_ratio"), after.get("error_ratio")
    if old is None or new is None or after["status"] != "pass":
        return False
    return new > ERROR_RATIO_FLOOR and new > ERROR_GROWTH_FACTOR * old


def _reproduction_regressions(current, baseline):
    """A median whose 95% interval no longer overlaps the baseline's moved beyond its noise."""
    regressions = []
    before_configs = _by_key(baseline["reproduction"].get("configs", []), "name")
    for name, after in _by_key(current["reproduction"].get("configs", []), "name").items():
        before = before_configs.get(name)
        if before is None:
            continue
        for figure in ("train_error", "test_error"):
            old, new = before[figure], after[figure]
            old_low, old_high = old.get("median_ci", [old["median"]] * 2)
            new_low, new_high = new.get("median_ci", [new["median"]] * 2)
            if new_low > old_high or new_high < old_low:
                regressions.append(Regression(
                    "reproduction", f"{name}/{figure}", old["median"], new["median"],
                    "the median moved by more than its sampling noise "
                    "(the 95% confidence intervals of the two medians do not overlap)"))
    return regressions


def _benchmark_regressions(current, baseline):
    regressions = []
    before_benchmarks = _by_key(baseline["benchmarks"], "name")
    for name, after in _by_key(current["benchmarks"], "name").items():
        before = before_benchmarks.get(name)
        if before is not None and after["ratio"] < before["ratio"] / BENCHMARK_NOISE_FACTOR:
            regressions.append(Regression(
                "benchmark", name, before["ratio"], after["ratio"],
                f"the speed ratio fell by more than its noise (factor {BENCHMARK_NOISE_FACTOR:g})"))
    return regressions


def prepare_output(out, baseline_path, writer):
    """Create and probe the output folder, then read the baseline (a results.json written by
    ``writer``, ``load_baseline``); what both commands do first.

    Returns:
        The validated baseline, or ``None`` when ``baseline_path`` is ``None``.

    Raises:
        BaselineError: the folder cannot be created or written, or the baseline is unusable;
            the message says which.
    """
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as failure:
        raise BaselineError(f"cannot create output folder {out}: {failure.strerror}") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise BaselineError(f"output folder {out} is not writable")
    return None if baseline_path is None else load_baseline(baseline_path, writer)
