"""``refnet verify``: run every check, then write ``index.html`` and ``results.json``.

Steps: prepare (validate arguments, create the output folder, read the baseline), run the
stages (gradient checks and the mutation self-test while coverage of ``refnet/`` is measured,
then the reproduction, the claims and the benchmarks), assemble ``results.json``, compare it
with the baseline, write both files atomically, print a one-screen summary. A stage that
raises is recorded as a failed check with its error text and the run goes on.

SIGINT or SIGTERM while the stages run (``verification.interruption``) stops them where they
are and kills the training workers at once; the report is written all the same, with what had
finished, marked ``"interrupted": true`` (``stages`` says which stage was cut short; the HTML
verdict reads INTERRUPTED), and the exit status is 128 plus the signal's number (130 for
SIGINT, 143 for SIGTERM).
"""

import json
import sys
import time
import traceback
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from refnet._io import write_atomically
from verification.checks.loss import REPORT_LITERAL_ID, check_report_literal_pair
from verification.checks.result import CheckResult
from verification.interruption import Interruption
from verification.many_seeds.verdicts import BORDERLINE_SE
from verification.many_seeds.workers import Workers, default_count, torch_threads
from verification.report.ambiguities import ambiguities
from verification.report.components import component_summary, failure_lines
from verification.report.html import conformance_matrix, figure_to_svg, write_report
from verification.report.results import (
    SCHEMA_VERSION,
    VERIFY,
    BaselineError,
    environment,
    prepare_output,
    with_regressions,
)
from verification.suite import registry
from verification.suite.coverage_run import measure_refnet_coverage

__all__ = ["VerifyOptions", "VerifyError", "STAGES", "run_verification"]

STAGES = ("checks", "mutation", "reproduction", "claims", "benchmarks")


class VerifyError(Exception):
    """A problem with the arguments or the output folder, reported before any check runs."""


@dataclass(frozen=True)
class VerifyOptions:
    """What ``refnet verify`` was asked to do.

    Attributes:
        out: the output folder (created when missing).
        quick: the reduced run (at least 200 seeds, under a minute on two cores).
        seeds: seeds per reproduction configuration; the mode's default when ``None``.
        baseline: an earlier ``results.json`` to compare with, or ``None``.
        device: ``"cpu"`` or ``"cuda"`` for the reproduction and claims.
        command: the command line, recorded in the report.
        stages: which stages run (tests run fewer); the others are reported as not run.
        measure_coverage: measure coverage of ``refnet/`` during the checks.
        reproduction_settings: a ``reproduction.Settings`` overriding ``seeds``/``quick``.
        claims_config: a ``claims`` configuration overriding the mode's.
        show_progress: draw progress bars on stderr.
        workers: processes that train the reproduction and the claims side by side
            (``verification.many_seeds.workers``); 1 trains them in this process; ``None``:
            one per core on the CPU, 1 on a GPU.
    """

    out: Path
    quick: bool = False
    seeds: int | None = None
    baseline: Path | None = None
    device: str = "cpu"
    command: str = "refnet verify"
    stages: tuple = STAGES
    measure_coverage: bool = True
    reproduction_settings: object = None
    claims_config: object = None
    show_progress: bool = True
    workers: int | None = None


@dataclass
class _Outcome:
    """Everything the stages produced, filled in as they run; ``started`` and ``finished``:
    the names of the stages (``_STAGE_FUNCTIONS``) that began and that ran to their end."""

    checks: list = field(default_factory=list)
    mutation: dict = field(default_factory=lambda: {"total": 0, "killed": 0, "survived": [],
                                                    "note": "not run"})
    reproduction: dict = field(default_factory=lambda: {"seeds": 0, "configs": []})
    claims: list = field(default_factory=list)
    benchmarks: list = field(default_factory=list)
    figures: dict = field(default_factory=lambda: {"reproduction": {}, "claims": {}})
    detection_power: list = field(default_factory=list)
    coverage: object = None
    timings: dict = field(default_factory=dict)
    claim_runs: dict | None = None
    checks_passed: bool | None = None
    started: set = field(default_factory=set)
    finished: set = field(default_factory=set)


def _prepare(options):
    """Validate the arguments; create and probe the output folder; read the baseline."""
    if options.seeds is not None and options.seeds < 1:
        raise VerifyError(f"--seeds must be at least 1, got {options.seeds}")
    unknown = set(options.stages) - set(STAGES)
    if unknown:
        raise VerifyError(f"unknown stages {sorted(unknown)}; known: {list(STAGES)}")
    try:
        return prepare_output(options.out, options.baseline, VERIFY)
    except BaselineError as failure:
        raise VerifyError(str(failure)) from None


def _failed_stage(name, error):
    """A stage that raised, as a failed check carrying its error text."""
    text = "".join(traceback.format_exception_only(type(error), error)).strip()
    inf = float("inf")
    return CheckResult(f"stage/{name}", name, "error", False, inf, inf, 0.0, inf,
                       f"the {name} stage raised {text}")


class _Progress:
    """One tqdm bar per stage on stderr when it is a terminal, else nothing."""

    def __init__(self, enabled):
        self.enabled = enabled and sys.stderr.isatty()  # bars belong on a terminal, not a log

    def bar(self, description, total):
        return tqdm(total=total, desc=description, unit="step", file=sys.stderr,
                    disable=not self.enabled, leave=False, dynamic_ncols=True)

    @contextmanager
    def tracker(self, description):
        """A bar driven by ``advance(done, total, label)`` callbacks (reproduction, claims)."""
        with self.bar(description, None) as bar:
            def advance(done, total, label):
                bar.total = total
                bar.set_postfix_str(label[:40], refresh=False)
                bar.update(done - bar.n)
            yield advance


def _run_checks(outcome, options, progress):
    selected = registry.cases()
    with progress.bar("gradient checks", len(selected)) as bar:
        def advance(name):
            bar.set_postfix_str(name[:40])
            bar.update()
        results = registry.run_cases(selected, advance)
    outcome.checks_passed = all(result.passed for result in results)
    outcome.checks += [result.as_dict() for result in results]


# Each later stage imports its module when it runs, so that even a module that fails to
# import becomes one failed stage in the report instead of stopping the whole run.

_UNMUTATED_FAILS = ("not run: the unmodified suite already fails, so a mutation score "
                    "would mean nothing")


def _run_mutation(outcome, options, progress):
    from verification.suite import mutation

    if outcome.checks_passed is False:
        outcome.mutation["note"] = _UNMUTATED_FAILS
        return
    with progress.bar("mutation self-test", len(mutation.MUTANTS)) as bar:
        try:
            summary = mutation.run_mutation(progress=lambda *_: bar.update(),
                                            unmutated_passed=bool(outcome.checks_passed))
        except mutation.UnmutatedSuiteFails:
            outcome.mutation["note"] = _UNMUTATED_FAILS
            return
    outcome.timings["mutation_runs"] = summary.pop("seconds")  # timings stay out of results
    outcome.mutation = summary
    outcome.detection_power = mutation.detection_power()
    survivors = summary["survived"]
    outcome.checks.append(CheckResult(
        "mutation/score", "harness", "mutation", not survivors, float(len(survivors)),
        float(len(survivors)) / max(summary["total"], 1), 0.0, float(len(survivors)),
        f"{summary['killed']}/{summary['total']} planted bugs caught"
        + (f"; survivors: {', '.join(survivors)}" if survivors else "")).as_dict())


def _run_reproduction(outcome, options, progress, workers):
    from verification.many_seeds import reproduction

    with progress.tracker("reproduction (replica-epochs)") as advance:
        run = reproduction.run_reproduction(
            seeds=options.seeds, quick=options.quick, device=options.device, progress=advance,
            settings=options.reproduction_settings, workers=workers)
    outcome.reproduction = run.results
    outcome.figures["reproduction"] = {name: figure_to_svg(figure)
                                       for name, figure in run.figures.items()}


def _claims_config(options):
    from verification.many_seeds import claims

    return options.claims_config or claims.config_for(quick=options.quick)


def _train_claims(outcome, options, progress, workers):
    from verification.many_seeds import claims

    with progress.tracker("claims (training runs)") as advance:
        outcome.claim_runs = claims.train_runs(_claims_config(options), options.device,
                                               workers=workers, progress=advance)


def _run_claims(outcome, options, progress, workers):
    """The ledger from the runs ``_train_claims`` trained (side by side with the
    reproduction), or trained here when it did not run."""
    from verification.many_seeds import claims

    if outcome.claim_runs is None:
        _train_claims(outcome, options, progress, workers)
    ledger, figures = claims.ledger(
        outcome.claim_runs, _claims_config(options), options.device,
        reproduction=outcome.reproduction if outcome.reproduction.get("configs") else None)
    outcome.claims = ledger
    outcome.figures["claims"] = {name: figure_to_svg(figure) for name, figure in figures.items()}


def _run_benchmarks(outcome, options, progress):
    from verification.suite import benchmarks

    repeats = 2 if options.quick else 5
    measured = [
        lambda: benchmarks.train_single_vs_torch_nn(repeats=repeats),
        lambda: benchmarks.train_replicas_vs_torch_nn_sequential(repeats=repeats),
        lambda: benchmarks.finite_difference_vs_torch_gradcheck(repeats=repeats),
    ]
    with progress.bar("benchmarks", len(measured)) as bar:
        for measure in measured:
            outcome.benchmarks.append(measure().as_dict())
            bar.update()


_STAGE_FUNCTIONS = {"checks": _run_checks, "mutation": _run_mutation,
                    "reproduction": _run_reproduction, "claims_training": _train_claims,
                    "claims": _run_claims, "benchmarks": _run_benchmarks}


def _run_stage(name, outcome, options, progress, stop, **workers):
    """Run one stage; an error becomes a failed check and ``False``, unless ``stop`` is set:
    then it is the interruption (the workers killed under it) and the stage did not finish.
    Its time lands in ``timings``."""
    start = time.perf_counter()
    outcome.started.add(name)
    try:
        _STAGE_FUNCTIONS[name](outcome, options, progress, **workers)
        succeeded = True
    except Exception as error:  # a broken stage is a failed check; the run goes on
        if stop.is_set():
            return False
        outcome.checks.append(_failed_stage(name.removesuffix("_training"), error).as_dict())
        succeeded = False
    outcome.timings[name] = round(time.perf_counter() - start, 3)
    outcome.finished.add(name)
    return succeeded


def _run_stages(outcome, options, progress, stop):
    """Every asked-for stage, into ``outcome``. With several workers, the reproduction's and the
    claims' training runs go to the worker processes at once and train while this process runs
    the checks and the mutation self-test; the benchmarks run last, alone on the machine. On an
    interruption (``Interrupted`` raised here, ``stop`` set) the workers are killed before the
    driver threads are waited for, so those end at once (``BrokenProcessPool``)."""
    many_seeds = [name for name in ("reproduction", "claims") if name in options.stages]
    count = options.workers or default_count(options.device)
    with ThreadPoolExecutor(max_workers=2) as drivers, \
            Workers(count if many_seeds else 1) as workers:
        # The driver threads only hand runs to the worker processes and summarise what comes
        # back, so the refnet classes that the mutation stage patches in this process never
        # reach a training run. They start before coverage, which then traces only this thread.
        training = {}
        if workers.count > 1:
            training = {name: drivers.submit(_run_stage, stage, outcome, options, progress,
                                             stop, workers=workers)
                        for name, stage in (("reproduction", "reproduction"),
                                            ("claims", "claims_training")) if name in many_seeds}
        _run_measured_stages(outcome, options, progress, stop)
        trained = {name: future.result() for name, future in training.items()}
        if "reproduction" in many_seeds and "reproduction" not in trained:
            _run_stage("reproduction", outcome, options, progress, stop, workers=workers)
        if "claims" in many_seeds and trained.get("claims", True):
            _run_stage("claims", outcome, options, progress, stop, workers=workers)
    if "benchmarks" in options.stages:
        _run_stage("benchmarks", outcome, options, progress, stop)


def _run_measured_stages(outcome, options, progress, stop):
    """The checks and the mutation self-test, on one thread, while coverage is measured: they
    multiply matrices of a few hundred elements, where OpenMP's hand-off between threads costs
    more than the work (ten times more on a loaded 2-core machine)."""
    measured = [name for name in ("checks", "mutation") if name in options.stages]
    with measure_refnet_coverage(options.measure_coverage and bool(measured)) as coverage, \
            torch_threads(1):
        for name in measured:
            _run_stage(name, outcome, options, progress, stop)
    outcome.coverage = coverage


def _report_literal_finding():
    """The report's eq. 14 with eq. 15, measured: a finding about the report, not refnet."""
    generator = torch.Generator().manual_seed(0)
    prediction = torch.rand(10, 2, generator=generator, dtype=torch.float64)
    target = torch.rand(10, 2, generator=generator, dtype=torch.float64)
    return check_report_literal_pair(prediction, target).as_dict()


def _failed_first(checks):
    return sorted(checks, key=lambda check: (check["status"] == "pass", check["id"]))


def _stage_lists(options, outcome):
    """The stages that ran to their end, those an interruption cut short, and the rest."""
    run = [stage for stage in options.stages if stage in outcome.finished]
    interrupted = [stage for stage in options.stages
                   if stage not in run and outcome.started & {stage, f"{stage}_training"}]
    return {"run": run, "interrupted": interrupted,
            "not_run": [stage for stage in STAGES if stage not in run + interrupted]}


def _assemble(options, outcome, baseline, interrupted):
    """``results.json``; ``interrupted``: whether a signal stopped the stages."""
    status = "pass" if all(check["status"] == "pass" for check in outcome.checks) else "fail"
    results = {
        "schema_version": SCHEMA_VERSION,
        "status": status,
        "environment": environment(command=options.command, device=options.device),
        "checks": outcome.checks,
        "mutation": outcome.mutation,
        "reproduction": outcome.reproduction,
        "benchmarks": outcome.benchmarks,
        "claims": outcome.claims,
        "report_findings": {REPORT_LITERAL_ID: _report_literal_finding()},
        "detection_power": outcome.detection_power,
        "coverage": outcome.coverage.summary if outcome.coverage else None,
        "stages": {**_stage_lists(options, outcome), "quick": options.quick,
                   "elapsed_s": outcome.timings},
        "interrupted": interrupted,
    }
    return with_regressions(results, baseline)


def _seeds_text(results):
    reproduction_results = results["reproduction"]
    ranges = reproduction_results.get("seed_ranges")
    text = f"{reproduction_results.get('seeds', 0)} seeds per reproduction configuration"
    if ranges:
        text += "; " + "; ".join(f"{purpose}: {seeds}" for purpose, seeds in ranges.items())
    return text + ("; gradient checks: seed 0 for every generator and upstream gradient"
                   if results["checks"] else "")


def _html_context(options, results, outcome):
    checks = _failed_first(results["checks"])
    passed = sum(check["status"] == "pass" for check in checks)
    headline = next((c for c in results["reproduction"].get("configs", []) if c.get("headline")),
                    None)
    return {
        "verdict": results["status"],
        "counts": {"total": len(checks), "passed": passed, "failed": len(checks) - passed},
        "summary_sentence": _summary_sentence(results, headline),
        "environment": results["environment"],
        "seeds_text": _seeds_text(results),
        "baseline_path": str(options.baseline) if options.baseline else "",
        "regressions": results["regressions"],
        "matrix": conformance_matrix(checks),
        "checks": checks,
        "mutation": {"mutants": [], **results["mutation"]},
        "mutation_text": _mutation_text(results["mutation"]),
        "failure_lines": failure_lines(component_summary(results["checks"])),
        "not_run": results["stages"]["not_run"],
        "interrupted": results["interrupted"],
        "interrupted_stages": results["stages"]["interrupted"],
        "detection_power": results["detection_power"],
        "reproduction": results["reproduction"],
        "reproduction_text": results["reproduction"].get("tested", ""),
        "verdict_labels_text": _VERDICT_LABELS_TEXT,
        "claims": results["claims"],
        "figures": outcome.figures,
        "ambiguities": ambiguities(results, REPORT_LITERAL_ID),
        "benchmarks": results["benchmarks"],
        "coverage": {"summary": results["coverage"],
                     "note": outcome.coverage.note if outcome.coverage else "not measured"},
    }


_VERDICT_LABELS_TEXT = (
    "A verdict reads \"borderline\" when its deciding statistic lies within "
    f"{BORDERLINE_SE:g} standard errors of its threshold, where another machine (other float32 "
    "kernels) may fall on the other side; the outcome on this run follows in brackets. A "
    "verdict of --quick reads \"preliminary\": the full run, with more seeds and epochs, "
    "decides."
)


def _summary_sentence(results, headline):
    parts = []
    if headline:
        parts.append(f"Headline reproduction ({headline['name']}): median train error "
                     f"{100 * headline['train_error']['median']:.2f}%, test "
                     f"{100 * headline['test_error']['median']:.2f}% against the report's "
                     f"2.5% / 1.9%: {headline.get('label', headline['verdict'])}.")
    labels = Counter(claim["label"] for claim in results["claims"])
    if labels:
        parts.append("Claims: " + ", ".join(f"{count} {shown}"
                                            for shown, count in sorted(labels.items())) + ".")
    return " ".join(parts)


def _write(out, results, context):
    """Write ``results.json`` then ``index.html``, each atomically."""
    json_path, html_path = out / "results.json", out / "index.html"
    write_atomically(json_path, json.dumps(results, indent=2, sort_keys=True) + "\n")
    write_report(html_path, context)
    return json_path, html_path


def _mutation_text(mutation):
    if mutation["total"] == 0:
        return mutation.get("note", "not run")
    return f"{mutation['killed']}/{mutation['total']} planted bugs caught"


def _print_summary(results, context, html_path, stream):
    counts = context["counts"]
    verdict = "INTERRUPTED" if results["interrupted"] else results["status"].upper()
    lines = [
        f"refnet verify: {verdict}",
        f"  checks: {counts['passed']} passed, {counts['failed']} failed",
        *[f"  {line}" for line in failure_lines(component_summary(results["checks"]))],
        f"  mutation: {_mutation_text(results['mutation'])}",
    ]
    if results["stages"]["interrupted"]:
        lines.append(f"  interrupted: {', '.join(results['stages']['interrupted'])}")
    if results["stages"]["not_run"]:
        lines.append(f"  not run: {', '.join(results['stages']['not_run'])}")
    if context["summary_sentence"]:
        lines.append(f"  {context['summary_sentence']}")
    lines += [f"  benchmark {b['name']}: {b['ratio']:.1f}× (target {b['target']:g}×)"
              for b in results["benchmarks"]]
    lines += [f"  REGRESSION {r['kind']} {r['id']}: {r['before']} → {r['after']}"
              for r in results["regressions"]]
    lines.append(f"  report: {html_path}")
    print("\n".join(lines), file=stream)


def run_verification(options, stream=None):
    """Run ``refnet verify``; return the exit status: 0 exactly when every check passes and
    nothing regressed, 1 otherwise, 128 plus the signal's number when SIGINT or SIGTERM
    stopped it (the report then holds what had finished).

    Raises:
        VerifyError: for bad arguments, an unusable output folder or a bad baseline.
    """
    baseline = _prepare(options)
    outcome = _Outcome()
    with Interruption(raising=True) as interruption:
        _run_stages(outcome, options, _Progress(options.show_progress), interruption.stop)
    results = _assemble(options, outcome, baseline, interruption.signal is not None)
    context = _html_context(options, results, outcome)
    _, html_path = _write(Path(options.out), results, context)
    stream = stream or sys.stdout
    if interruption.signal is not None:
        print(f"refnet verify: interrupted by {interruption.name}; the report holds what had "
              f"finished", file=stream)
    _print_summary(results, context, html_path, stream)
    return interruption.exit_status(results["status"] == "pass")
