"""Speed ratios against baselines timed in the same run (run on demand, see the README).

pytest-benchmark times refnet's side; the baseline is timed in the same test with the same
minimum-of-repeats rule, and the ratio is stored in the benchmark's ``extra_info``.
"""

import pytest

from verification.suite.benchmarks import (
    best_time,
    conformance_workload,
    finite_difference_workload,
    replica_training_workload,
    single_training_workload,
)

WORKLOADS = {
    "train_single_vs_torch_nn": (single_training_workload, 1.5),
    "train_replicas_vs_torch_nn_sequential": (replica_training_workload, 100.0),
    "finite_difference_vs_torch_gradcheck": (lambda: finite_difference_workload()[0], 40.0),
    "conformance_vs_torch_gradcheck": (conformance_workload, 1.0),
}


@pytest.mark.parametrize("name", sorted(WORKLOADS))
def test_ratio_against_baseline(benchmark, name):
    make_workload, target = WORKLOADS[name]
    workload = make_workload()
    workload.baseline()
    baseline_seconds = best_time(workload.baseline, 5)
    benchmark.pedantic(workload.refnet, rounds=5, warmup_rounds=1)
    refnet_seconds = benchmark.stats.stats.min / workload.seeds_per_refnet_call
    ratio = baseline_seconds / refnet_seconds
    benchmark.extra_info.update({"ratio": ratio, "target": target,
                                 "baseline_seconds": baseline_seconds})
    print(f"\n{name}: ratio {ratio:.1f} (target {target})")
    assert ratio > 1, f"{name}: refnet is slower than its baseline (ratio {ratio:.2f})"
