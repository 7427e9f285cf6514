"""The ``refnet`` command line (CONTRACT.md): ``refnet train`` runs the report's single run
(``refnet.single_run``), ``refnet verify`` the verification suite, ``refnet conform`` checks
other implementations.

It lives in the harness, which may import refnet; refnet, the thing being checked, imports
nothing of the harness (the layers of ``pyproject.toml``'s import contract)."""

import argparse
import math
import os
import shlex
import sys
from pathlib import Path

import torch

from refnet.network import ACTIVATIONS
from refnet.single_run import single_run
from refnet.training import TRAIN_DEFAULTS
from verification.arguments import CONFORM_DTYPES, number
from verification.confined.cgroups import MEMORY_TOTAL, PROCESS_TOTAL

__all__ = ["main"]


def _center(text):
    try:
        x, y = (float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected X,Y (e.g. 0.5,0.5), got {text!r}") from None
    if not (math.isfinite(x) and math.isfinite(y)):
        raise argparse.ArgumentTypeError(f"expected finite X,Y (e.g. 0.5,0.5), got {text!r}")
    return (x, y)


_SEEDS = (-2 ** 63, 2 ** 64 - 1)
"""The seeds ``torch.Generator.manual_seed`` accepts."""


def _seed(text):
    """An argparse type: an integer in ``_SEEDS``."""
    value = number(int)(text)
    if not _SEEDS[0] <= value <= _SEEDS[1]:
        raise argparse.ArgumentTypeError(f"expected a seed from -2**63 to 2**64 - 1 (torch's "
                                         f"range), got {text}")
    return value


def _stages(text):
    """An argparse type: a comma-separated list of ``refnet verify``'s stages."""
    from verification.verify import STAGES

    stages = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [stage for stage in stages if stage not in STAGES]
    if unknown or not stages:
        raise argparse.ArgumentTypeError(f"unknown stage(s) {unknown or text!r}; known: "
                                         f"{', '.join(STAGES)}")
    return stages


def _device(name):
    """An argparse type: ``cpu``, or ``cuda``/``cuda:N`` for a CUDA device torch sees."""
    try:
        device = torch.device(name)
    except RuntimeError:
        device = None
    if device is None or device.type not in ("cpu", "cuda"):
        raise argparse.ArgumentTypeError(f"expected cpu, cuda or cuda:N, got {name!r}")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise argparse.ArgumentTypeError("--device cuda: torch reports no CUDA device here")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise argparse.ArgumentTypeError(f"--device {name}: torch sees "
                                         f"{torch.cuda.device_count()} CUDA device(s)")
    return device


def _build_parser():
    parser = argparse.ArgumentParser(prog="refnet", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("train", help="the report's single run: train, test, draw figures")
    defaults = TRAIN_DEFAULTS
    run.add_argument("--seed", type=_seed, default=defaults["seed"],
                     help="seed of the one generator behind weights, data and batch order")
    run.add_argument("--activation", choices=sorted(ACTIVATIONS), default=defaults["activation"])
    run.add_argument("--lr", type=number(above=0), default=defaults["lr"],
                     help="SGD learning rate")
    run.add_argument("--batch-size", type=number(int, minimum=1), default=defaults["batch_size"])
    run.add_argument("--epochs", type=number(int, minimum=0), default=defaults["epochs"])
    run.add_argument("--center", type=_center, default=defaults["center"],
                     help="disk centre X,Y (report: 0,0; course handout: 0.5,0.5)")
    run.add_argument("--samples", type=number(int, minimum=1), default=defaults["samples"],
                     help="points in each of the training and test sets")
    run.add_argument("--reduction", choices=("sum", "mean"), default="sum",
                     help="MSE loss: sum (eq. 15's gradient, the default) or mean (eq. 14 "
                          "with its own gradient, steps batch × 2 times smaller)")
    run.add_argument("--device", type=_device, default=torch.device("cpu"), help="cpu or cuda")
    run.add_argument("--out", type=Path, default=Path(defaults["out"]),
                     help="folder for loss_curve.png and test_classification.png")
    run.set_defaults(handler=_run_train)

    verify = commands.add_parser(
        "verify", help="run the whole verification suite; write index.html and results.json")
    verify.add_argument("--quick", action="store_true",
                        help="the reduced run: at least 200 seeds, under a minute on 2 cores")
    verify.add_argument("--seeds", type=int, default=None,
                        help="seeds per reproduction configuration (default 1000; 200 quick)")
    verify.add_argument("--out", type=Path, default=Path("reports/latest"),
                        help="output folder (created when missing)")
    verify.add_argument("--baseline", type=Path, default=None,
                        help="an earlier results.json: regressions against it fail the run")
    verify.add_argument("--device", type=_device, default=torch.device("cpu"), help="cpu or cuda")
    verify.add_argument("--only", type=_stages, default=None, metavar="STAGE[,STAGE...]",
                        help="run just these stages (checks, mutation, reproduction, claims, "
                             "benchmarks); the others are reported as not run")
    verify.add_argument("--workers", type=number(int, minimum=1), default=None,
                        help="processes that train the reproduction and the claims side by "
                             "side (default: one per core on the CPU, 1 on a GPU)")
    verify.set_defaults(handler=_run_verify)

    conform = commands.add_parser(
        "conform", help="check implementations of the module protocol: a report for each, a "
                        "scoreboard for several")
    conform.add_argument("targets", nargs="+", metavar="TARGET",
                         help="an adapter: a file path or importable name (optionally :Name), "
                              "or refnet")
    conform.add_argument("--out", type=Path, default=Path("reports/conform"),
                         help="output folder (created when missing)")
    conform.add_argument("--baseline", type=Path, default=None,
                         help="an earlier results.json of refnet conform: regressions fail the run")
    conform.add_argument("--jobs", type=number(int, minimum=1), default=os.cpu_count() or 1,
                         help="targets checked at once (default: the CPU count)")
    conform.add_argument("--timeout", type=number(minimum=1e-3), default=300.0,
                         help="seconds each target may take before it is stopped")
    conform.add_argument("--quick", action="store_true", help="shorter trajectories")
    conform.add_argument("--dtype", choices=CONFORM_DTYPES, default=None,
                         help="check in this dtype alone (default: float64 and float32, or the "
                              "one a target declares)")
    conform.add_argument("--course", default=None, metavar="NAME|FILE.toml",
                         help="judge every target under a course's rules: a built-in profile "
                              "(ee559) or a TOML file (README, 'Grading a class')")
    conform.add_argument("--seed", type=_seed, default=0,
                         help="seed of every input, parameter value and upstream gradient")
    conform.add_argument("--case", default=None, metavar="NAME",
                         help="rerun only this case of the one target (as a report names it: "
                              "'tanh', 'linear 3→4') and print its checks; writes no report")
    conform.add_argument("--check", default=None, metavar="ID",
                         help="with --case, only the check of this id")
    conform.add_argument("--no-sandbox", dest="sandbox", action="store_false",
                         help="run the workers without bubblewrap (for debugging)")
    conform.add_argument("--private-size", type=number(minimum=1), default=64, metavar="MIB",
                         help="MiB of each executor's private tmpfs under bubblewrap, its only "
                              "writable place (default: 64)")
    conform.add_argument("--memory-total", type=_bytes, default=MEMORY_TOTAL, metavar="BYTES",
                         help="memory all of a target's processes may use together, in a "
                              "control group where the machine gives one (512M, 4G; "
                              "default 4G)")
    conform.add_argument("--processes", type=number(int, minimum=1), default=PROCESS_TOTAL,
                         metavar="N", help="processes and threads a target may run at once "
                                           "(default 64)")
    conform.set_defaults(handler=_run_conform)
    return parser


def _run_train(args):
    """The report's single run (``refnet.single_run``) with the parsed arguments."""
    return single_run(seed=args.seed, activation=args.activation, lr=args.lr,
                      batch_size=args.batch_size, epochs=args.epochs, center=args.center,
                      samples=args.samples, reduction=args.reduction, device=args.device,
                      out=args.out)


def _run_verify(args):
    """Run the verification suite (``verification.verify``) with the parsed arguments."""
    from verification.verify import VerifyError, VerifyOptions, run_verification

    options = VerifyOptions(out=args.out, quick=args.quick, seeds=args.seeds,
                            baseline=args.baseline, device=str(args.device),
                            command=shlex.join(["refnet", *args.argv]), workers=args.workers,
                            **({"stages": args.only} if args.only else {}))
    try:
        return run_verification(options)
    except VerifyError as failure:
        print(f"refnet verify: error: {failure}", file=sys.stderr)
        return 2


def _bytes(text):
    """A size in bytes: a whole number, or one with ``K``, ``M`` or ``G`` (powers of 1024)."""
    scale = {"K": 2**10, "M": 2**20, "G": 2**30}.get(text[-1:].upper(), 1)
    digits = text[:-1] if scale > 1 else text
    if not digits.isdigit() or int(digits) * scale < 2**20:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size of at least 1M "
                                         f"(bytes, or with K, M or G)")
    return int(digits) * scale


def _run_conform(args):
    """Check the given targets (``verification.conform``)."""
    from verification.conform import ConformError, ConformOptions, run_conform

    options = ConformOptions(targets=tuple(args.targets), out=args.out, baseline=args.baseline,
                             jobs=args.jobs, timeout=args.timeout, quick=args.quick,
                             sandbox=args.sandbox, dtype=args.dtype, course=args.course,
                             private_size=int(args.private_size * 2**20),
                             seed=args.seed, case=args.case, check=args.check,
                             memory_total=args.memory_total, processes=args.processes,
                             command=shlex.join(["refnet", *args.argv]))
    try:
        return run_conform(options)
    except ConformError as failure:
        print(f"refnet conform: error: {failure}", file=sys.stderr)
        return 2


def main(argv=None):
    """Entry point of the ``refnet`` console script; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = _build_parser().parse_args(argv)
    args.argv = argv
    try:
        return args.handler(args)
    except FloatingPointError as failure:
        print(f"refnet {args.command}: {failure}", file=sys.stderr)
        return 1
