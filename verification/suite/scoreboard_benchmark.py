"""How long a scoreboard of many targets takes: ``refnet conform --quick`` over N distinct
targets, timed from outside, with any checkout of refnet (issue 20: "measure 40 targets before
and after, side by side").

    python -m verification.suite.scoreboard_benchmark --targets 40 --jobs 2 [--repo PATH]

The targets are copies of the fixture frameworks of ``tests/frameworks/`` (of this checkout,
so that every checkout timed gets the same targets): N folders ``t01``, ``t02``, … each holding
a copy of all of them, and the spec of folder i the i-th entry of ``CYCLE`` (correct adapters
and planted bugs, in turn). ``refnet conform`` then runs as a subprocess with ``PYTHONPATH``
set to ``--repo`` (default: this checkout), in the temporary folder, so an older commit checked
out with ``git worktree add /tmp/old <commit>`` is timed by passing ``--repo /tmp/old``.

It prints the wall time of the whole command, the wall time per target, the sum of the
targets' own times (each worker's ``run.seconds`` in the scoreboard) divided by ``--jobs``, the
verdicts, and the load average before and after (a shared machine's other work shows there).
Nothing asserts a time.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from verification.arguments import number

__all__ = ["CYCLE", "ScoreboardTiming", "make_targets", "time_scoreboard", "main"]

_CHECKOUT = Path(__file__).resolve().parents[2]
_FIXTURES = _CHECKOUT / "tests" / "frameworks"

CYCLE = ("handout_adapter.py", "handout_adapter.py:WrongTanhDerivative",
         "transposed_adapter.py", "per_sample_adapter.py", "float32_adapter.py",
         "dynamic_adapter.py", "float32_adapter.py:DropoutMaskReused", "convention_adapter.py",
         "dynamic_adapter.py:ExpRatioTanh")
"""The specs the targets take in turn, relative to a copy of ``tests/frameworks/``: six
correct adapters and three with a planted bug (the mix of ``tests/test_conform.py``'s
scoreboard)."""

_MAIN = ("import sys\ntry:\n    from verification.cli import main\nexcept ImportError:\n"
         "    from refnet.cli import main\nsys.exit(main(sys.argv[1:]))")
"""``refnet`` as the checkout under ``PYTHONPATH`` defines it (its console script may belong to
another install): ``verification/cli.py``'s, or, in a checkout older than that move,
``refnet/cli.py``'s."""
_ENTRY_POINTS = (Path("verification") / "cli.py", Path("refnet") / "cli.py")
"""Where a checkout defines the command line, now and before."""


@dataclass(frozen=True)
class ScoreboardTiming:
    """One timed scoreboard.

    Attributes:
        repo: the checkout of refnet that ran it.
        targets: how many targets it had.
        jobs: ``--jobs``.
        wall_seconds: wall time of the whole ``refnet conform`` command.
        worker_seconds: the sum of the targets' own times (``run.seconds`` of each).
        statuses: how many targets got each verdict, e.g. ``{"pass": 27, "fail": 13}``.
        run_statuses: how many runs ended each way, e.g. ``{"completed": 40}``.
        exit_status: the command's exit status (1 when a target fails, as planted bugs do).
        load_before: the 1-minute load average just before the command.
        load_after: the 1-minute load average just after it.
    """

    repo: str
    targets: int
    jobs: int
    wall_seconds: float
    worker_seconds: float
    statuses: dict
    run_statuses: dict
    exit_status: int
    load_before: float
    load_after: float

    def summary(self):
        """The lines to print."""
        return "\n".join([
            f"refnet conform --quick, {self.targets} targets, --jobs {self.jobs}, "
            f"with {self.repo}",
            f"  wall time {self.wall_seconds:.1f} s; "
            f"per target {self.wall_seconds / self.targets:.2f} s",
            f"  targets' own times: {self.worker_seconds:.1f} s in all, "
            f"{self.worker_seconds / self.jobs:.1f} s divided by --jobs",
            f"  verdicts {_counts(self.statuses)}; runs {_counts(self.run_statuses)}; "
            f"exit status {self.exit_status}",
            f"  load average (1 min) {self.load_before:.2f} before, {self.load_after:.2f} after",
        ])


def _counts(counts):
    return ", ".join(f"{count} {name}" for name, count in sorted(counts.items()))


def make_targets(folder, count, fixtures=_FIXTURES):
    """Copy ``fixtures`` into ``count`` folders ``folder/t01``, … and return one spec per
    folder, the i-th taking ``CYCLE[i % len(CYCLE)]``: distinct targets, each in its own
    folder (the scoreboard names them ``t01/handout`` and so on)."""
    width = len(str(count))
    specs = []
    for index in range(count):
        copy = Path(folder) / f"t{index + 1:0{max(width, 2)}d}"
        shutil.copytree(fixtures, copy, ignore=shutil.ignore_patterns("__pycache__", "*.md"))
        specs.append(str(copy / CYCLE[index % len(CYCLE)]))
    return specs


def time_scoreboard(count, *, jobs, repo=_CHECKOUT, timeout=300.0, keep=None):
    """Time ``refnet conform --quick --jobs JOBS`` over ``count`` targets (``make_targets``)
    with the checkout at ``repo``; its reports go to ``keep`` when given, else are removed.

    Raises:
        RuntimeError: the command failed (an exit status other than 0 or 1, or no scoreboard),
            with the end of its stderr.
    """
    repo = Path(repo).resolve()
    with tempfile.TemporaryDirectory(prefix="refnet-scoreboard-") as scratch:
        scratch = Path(scratch)
        specs = make_targets(scratch / "targets", count)
        out = Path(keep).resolve() if keep else scratch / "reports"
        argv = ["conform", *specs, "--quick", "--jobs", str(jobs), "--timeout", f"{timeout:g}",
                "--out", str(out)]
        environment = dict(os.environ, PYTHONPATH=str(repo))
        load_before = os.getloadavg()[0]
        start = time.perf_counter()
        finished = subprocess.run([sys.executable, "-c", _MAIN, *argv], cwd=scratch,
                                  env=environment, stdin=subprocess.DEVNULL,
                                  capture_output=True, text=True)
        wall = time.perf_counter() - start
        load_after = os.getloadavg()[0]
        board = out / "results.json"
        if finished.returncode not in (0, 1) or not board.is_file():
            raise RuntimeError(f"refnet conform exited with status {finished.returncode} "
                               f"(with {repo}): {finished.stderr[-2000:]}")
        targets = json.loads(board.read_text())["targets"]
    statuses, run_statuses = {}, {}
    for target in targets:
        statuses[target["status"]] = statuses.get(target["status"], 0) + 1
        run_status = target["run"]["status"]
        run_statuses[run_status] = run_statuses.get(run_status, 0) + 1
    return ScoreboardTiming(
        repo=str(repo), targets=count, jobs=jobs, wall_seconds=wall,
        worker_seconds=sum(target["run"]["seconds"] for target in targets),
        statuses=statuses, run_statuses=run_statuses, exit_status=finished.returncode,
        load_before=load_before, load_after=load_after)


def main(argv=None):
    """The command line (module docstring); returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m verification.suite.scoreboard_benchmark",
        description="Time refnet conform --quick over N distinct targets.")
    parser.add_argument("--targets", type=number(int, minimum=1), default=40,
                        help="how many targets (default 40)")
    parser.add_argument("--jobs", type=number(int, minimum=1), default=2,
                        help="refnet conform's --jobs (default 2)")
    parser.add_argument("--repo", type=Path, default=_CHECKOUT,
                        help="the checkout of refnet to time (default: this one)")
    parser.add_argument("--timeout", type=number(above=0, unit="seconds"), default=300.0,
                        help="refnet conform's --timeout per target (default 300)")
    parser.add_argument("--keep", type=Path, default=None,
                        help="write the reports to this folder instead of removing them")
    args = parser.parse_args(argv)
    if not any((args.repo / entry).is_file() for entry in _ENTRY_POINTS):
        parser.error(f"--repo {args.repo}: no verification/cli.py (or refnet/cli.py) there; "
                     "expected a checkout of refnet")
    try:
        timing = time_scoreboard(args.targets, jobs=args.jobs, repo=args.repo,
                                 timeout=args.timeout, keep=args.keep)
    except RuntimeError as failure:
        print(f"scoreboard_benchmark: error: {failure}", file=sys.stderr)
        return 1
    print(timing.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
