"""How far the same seeds' results move when only the arithmetic changes.

Two machines of one kind run the same float32 code through different kernels (vector widths,
summation orders). This module measures what such a change does, on the claims' baseline
run (``claims.RUNS["baseline"]``: the ``refnet train`` defaults), by retraining the same
seeds with

- two torch threads instead of one (another split of the work), and
- float64 instead of float32 (a far larger change of every rounding),

and comparing each seed's final test error. ``verification.many_seeds.verdicts`` derives its
borderline zone from these numbers (they are in the README's "Determinism" section)::

    python -m verification.many_seeds.perturbation --seeds 200
"""

import argparse
import dataclasses

import numpy as np

from verification.many_seeds import claims
from verification.many_seeds.workers import torch_threads

__all__ = ["PERTURBATIONS", "compare", "measure", "main"]

PERTURBATIONS = {"two threads": {"threads": 2}, "float64": {"dtype": "float64"}}
"""Each perturbation: what changes against one thread in float32."""


def _test_errors(config, threads):
    with torch_threads(threads):
        return claims.train_run(claims.RUNS["baseline"], config).test_errors


def compare(reference, perturbed):
    """Per-seed comparison of two arrays of test errors (fractions) of the same seeds.

    Returns:
        A dict: ``changed`` (fraction of seeds whose error changed), ``mean_abs_change_pp``
        (over the changed seeds), ``mean_shift_pp`` (perturbed − reference mean) and
        ``shift_in_standard_errors`` (that shift over the reference mean's standard error).
    """
    reference, perturbed = np.asarray(reference), np.asarray(perturbed)
    changed = reference != perturbed
    shift = float(perturbed.mean() - reference.mean())
    standard_error = float(reference.std(ddof=1) / np.sqrt(reference.size))
    return {"changed": float(changed.mean()),
            "mean_abs_change_pp": float(100 * np.abs(perturbed - reference)[changed].mean())
            if changed.any() else 0.0,
            "mean_shift_pp": 100 * shift,
            "shift_in_standard_errors": shift / standard_error if standard_error else 0.0}


def measure(config=claims.DEFAULT_CONFIG):
    """Every perturbation of ``PERTURBATIONS`` against one thread in float32, on ``config``'s
    seeds; a dict name → ``compare`` result."""
    reference = _test_errors(dataclasses.replace(config, dtype="float32"), threads=1)
    results = {}
    for name, change in PERTURBATIONS.items():
        changed = dataclasses.replace(config, dtype=change.get("dtype", "float32"))
        results[name] = compare(reference, _test_errors(changed, change.get("threads", 1)))
    return results


def main(argv=None):
    """Print the measurement for ``--seeds`` seeds and ``--epochs`` epochs."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=claims.DEFAULT_CONFIG.seeds)
    parser.add_argument("--epochs", type=int, default=claims.DEFAULT_CONFIG.epochs)
    args = parser.parse_args(argv)
    config = dataclasses.replace(claims.DEFAULT_CONFIG, seeds=args.seeds,
                                 paired_seeds=min(args.seeds, 2), epochs=args.epochs)
    for name, result in measure(config).items():
        print(f"{name:12s} seeds changed {result['changed']:.0%}, by "
              f"{result['mean_abs_change_pp']:.2f} pp on average; mean moved "
              f"{result['mean_shift_pp']:+.3f} pp = {result['shift_in_standard_errors']:+.2f} SE")


if __name__ == "__main__":
    main()
