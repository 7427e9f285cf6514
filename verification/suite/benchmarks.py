"""Speed of refnet against torch, each figure a ratio against a baseline timed in the same run.

Times are the minimum over a few repeats (the least-disturbed run on a shared machine). The
ratios go into ``results.json`` under ``benchmarks``; ``tests/benchmarks/`` measures the same
functions with pytest-benchmark. Nothing here asserts a time.
"""

import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import NamedTuple

import torch

import refnet
from refnet.network import LAYER_SIZES

__all__ = [
    "BenchmarkResult", "Workload", "best_time", "conformance_vs_torch_gradcheck",
    "conformance_workload", "finite_difference_vs_torch_gradcheck",
    "finite_difference_workload", "flops_per_sample", "matmul_gflops", "measure",
    "replica_training_workload", "single_training_workload", "torch_nn_network",
    "train_replicas_vs_torch_nn_sequential", "train_single_vs_torch_nn", "train_torch_nn",
]


@dataclass(frozen=True)
class BenchmarkResult:
    """One ratio: ``baseline_seconds / refnet_seconds`` (above 1 means refnet is faster).

    Attributes:
        name: the contract's benchmark name.
        baseline: what refnet is compared with.
        ratio: baseline time over refnet time, per the same unit of work.
        refnet_seconds: refnet's time for that unit.
        baseline_seconds: the baseline's time for that unit.
        target: the ratio the project aims for.
        notes: extra measured figures (GFLOP/s, forward calls, errors, …).
    """

    name: str
    baseline: str
    ratio: float
    refnet_seconds: float
    baseline_seconds: float
    target: float
    notes: dict

    def as_dict(self):
        """The JSON form (contract keys ``name``, ``baseline``, ``ratio`` and the rest)."""
        return asdict(self)


def best_time(run, repeats):
    """The shortest of ``repeats`` wall-clock timings of ``run()``, in seconds."""
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        timings.append(time.perf_counter() - start)
    return min(timings)


def torch_nn_network(activation="tanh"):
    """The report's network written the usual way with ``torch.nn`` (the baseline), float32,
    with torch's default initialisation (speed does not depend on the weights' values)."""
    hidden = {"tanh": torch.nn.Tanh, "relu": torch.nn.ReLU}[activation]
    layers = []
    for index, (inputs, outputs) in enumerate(zip(LAYER_SIZES[:-1], LAYER_SIZES[1:],
                                                  strict=True)):
        layers += [torch.nn.Linear(inputs, outputs),
                   torch.nn.Sigmoid() if index == len(LAYER_SIZES) - 2 else hidden()]
    return torch.nn.Sequential(*layers)


def train_torch_nn(network, x, targets, orders, *, lr, batch_size):
    """Mini-batch SGD on the sum MSE with torch.nn + autograd + torch.optim, one order per epoch."""
    optimizer = torch.optim.SGD(network.parameters(), lr=lr)
    criterion = torch.nn.MSELoss(reduction="sum")
    for order in orders:
        x_batches, target_batches = x[order].split(batch_size), targets[order].split(batch_size)
        for x_batch, target_batch in zip(x_batches, target_batches, strict=True):
            optimizer.zero_grad()
            criterion(network(x_batch), target_batch).backward()
            optimizer.step()


def flops_per_sample(sizes=LAYER_SIZES):
    """Floating-point operations to train on one sample: forward, dL/dx and dL/dw.

    Each ``in × out`` layer costs 2·in·out for ``x wᵀ``, 2·in·out for ``g w`` and 2·in·out for
    ``gᵀ x`` (one multiply and one add per weight each); biases, activations and the loss add
    O(out) and are left out. For 2-25-25-25-2: 6 · 1350 = 8,100 per sample.
    """
    return 6 * sum(inputs * outputs for inputs, outputs in zip(sizes[:-1], sizes[1:],
                                                                strict=True))


def matmul_gflops(size=1024, repeats=5):
    """GFLOP/s of one large float32 matrix product on this machine, the CPU's practical peak."""
    a, b = torch.rand(size, size), torch.rand(size, size)
    return 2 * size**3 / best_time(lambda: torch.mm(a, b), repeats) / 1e9


def _disk_problem(replicas=None, seed=0):
    generator = (refnet.generators(range(seed, seed + replicas)) if replicas
                 else torch.Generator().manual_seed(seed))
    x, labels = refnet.disk_dataset(1000, replicas=replicas, generator=generator)
    return generator, x, refnet.one_hot(labels)


class Workload(NamedTuple):
    """A benchmark's two sides: ``refnet()`` and ``baseline()`` do the same unit of work."""

    refnet: Callable[[], None]
    baseline: Callable[[], None]
    seeds_per_refnet_call: int


def single_training_workload(*, epochs=3, lr=0.01, batch_size=10):
    """One seed, Tanh hidden, batch 10, SGD, float32: ``refnet.train`` against torch.nn."""
    generator, x, targets = _disk_problem()
    orders = [torch.randperm(len(x), generator=generator) for _ in range(epochs)]

    def run_refnet():
        model = refnet.report_network("tanh", generator=torch.Generator().manual_seed(1))
        refnet.train(model, x, targets, lr=lr, batch_size=batch_size, epochs=epochs,
                     generator=generator)

    def run_torch():
        train_torch_nn(torch_nn_network("tanh"), x, targets, orders, lr=lr, batch_size=batch_size)

    return Workload(run_refnet, run_torch, 1)


def replica_training_workload(*, replicas=256, epochs=1, lr=0.01, batch_size=10):
    """R seeds in one batched refnet run against one seed trained with torch.nn."""
    generator, x, targets = _disk_problem(replicas)
    orders = [torch.randperm(x.shape[1]) for _ in range(epochs)]

    def run_refnet():
        model = refnet.report_network("tanh", generator=torch.Generator().manual_seed(1),
                                      replicas=replicas)
        refnet.train(model, x, targets, lr=lr, batch_size=batch_size, epochs=epochs,
                     generator=generator)

    def run_torch_one_seed():
        train_torch_nn(torch_nn_network("tanh"), x[0], targets[0], orders, lr=lr,
                       batch_size=batch_size)

    return Workload(run_refnet, run_torch_one_seed, replicas)


def measure(workload, repeats):
    """Warm both sides up, then return (refnet seconds per seed, baseline seconds per seed)."""
    workload.refnet(), workload.baseline()  # first calls pay for allocator and dispatch caches
    refnet_seconds = best_time(workload.refnet, repeats) / workload.seeds_per_refnet_call
    return refnet_seconds, best_time(workload.baseline, repeats)


def train_single_vs_torch_nn(*, epochs=3, repeats=5):
    """The contract's ``train_single_vs_torch_nn`` ratio (target: at least 1.5)."""
    refnet_seconds, torch_seconds = measure(single_training_workload(epochs=epochs), repeats)
    return BenchmarkResult("train_single_vs_torch_nn", "torch.nn + autograd + torch.optim.SGD",
                           torch_seconds / refnet_seconds, refnet_seconds, torch_seconds, 1.5,
                           {"epochs": epochs, "batch_size": 10, "dtype": "float32"})


def train_replicas_vs_torch_nn_sequential(*, replicas=256, epochs=1, repeats=5):
    """Per-seed cost of a batched run of ``replicas`` seeds against sequential torch.nn runs.

    Also reports the achieved GFLOP/s (``flops_per_sample`` × samples × epochs per seed) and a
    large matrix product's GFLOP/s on the same machine, the practical ceiling.
    """
    refnet_seconds, torch_seconds = measure(
        replica_training_workload(replicas=replicas, epochs=epochs), repeats)
    flops_per_seed = flops_per_sample() * 1000 * epochs
    notes = {"replicas": replicas, "epochs": epochs, "flops_per_seed": flops_per_seed,
             "achieved_gflops": flops_per_seed / refnet_seconds / 1e9,
             "large_matmul_gflops": matmul_gflops()}
    return BenchmarkResult("train_replicas_vs_torch_nn_sequential",
                           "sequential torch.nn runs, one per seed",
                           torch_seconds / refnet_seconds, refnet_seconds, torch_seconds, 100.0,
                           notes)


def finite_difference_workload(*, batch=8, seed=0):
    """The whole report network (every parameter and the input, float64): refnet's batched
    finite-difference check against ``torch.autograd.gradcheck`` (slow mode) on its twin."""
    from verification.checks.finite_difference import check_backward
    from verification.checks.reference import torch_twin
    from verification.targets.refnet_target import refnet_component

    model = refnet_component(refnet.report_network(
        "tanh", dtype=torch.float64, generator=torch.Generator().manual_seed(seed)))
    x = torch.rand(batch, 2, generator=torch.Generator().manual_seed(seed + 1),
                   dtype=torch.float64)
    twin = torch_twin(model)
    names = [name for name, _ in twin.named_parameters()]
    leaves = [x.clone().requires_grad_(), *(p.detach().clone().requires_grad_()
                                            for p in twin.parameters())]

    def twin_forward(x, *params):
        return torch.func.functional_call(twin, dict(zip(names, params, strict=True)), (x,))

    def run_refnet():
        return check_backward(model, x, seed=seed)

    def run_gradcheck():
        return torch.autograd.gradcheck(twin_forward, leaves, eps=1e-6, atol=1e-5,
                                        fast_mode=False)

    return Workload(run_refnet, run_gradcheck, 1), twin_forward, leaves


def _gradcheck_max_error(twin_forward, leaves, weights):
    """Largest error of gradcheck's numerical gradient of ``Σ w ⊙ y`` (its central
    differences with eps 1e-6, projected on the same ``w`` as refnet's check) against autograd."""
    numerical_jacobian = sys.modules["torch.autograd.gradcheck"]._get_numerical_jacobian
    # One entry per input, each a tuple over outputs of [input elements, output elements].
    jacobians = [per_output[0] for per_output in
                 numerical_jacobian(twin_forward, tuple(leaves), eps=1e-6)]
    output = twin_forward(*leaves)
    analytic = torch.autograd.grad((output * weights).sum(), leaves)
    return max(float((jacobian @ weights.flatten() - exact.flatten()).abs().max())
               for jacobian, exact in zip(jacobians, analytic, strict=True))


def finite_difference_vs_torch_gradcheck(*, repeats=5, batch=8, seed=0):
    """The contract's ``finite_difference_vs_torch_gradcheck`` ratio (target: at least 40),
    with both methods' largest gradient error for the same loss ``Σ w ⊙ y``."""
    workload, twin_forward, leaves = finite_difference_workload(batch=batch, seed=seed)
    refnet_seconds, gradcheck_seconds = measure(workload, repeats)
    refnet_error = max(result.max_abs_error for result in workload.refnet())
    # The same w as refnet's check: its first draw from a generator seeded with ``seed``.
    weights = torch.randn(batch, 2, generator=torch.Generator().manual_seed(seed),
                          dtype=torch.float64)
    notes = {"batch": batch, "refnet_max_abs_error": refnet_error,
             "gradcheck_max_abs_error": _gradcheck_max_error(twin_forward, leaves, weights)}
    return BenchmarkResult("finite_difference_vs_torch_gradcheck",
                           "torch.autograd.gradcheck, slow mode, same coverage",
                           gradcheck_seconds / refnet_seconds, refnet_seconds, gradcheck_seconds,
                           40.0, notes)


def conformance_workload(target="refnet", *, seed=0):
    """Every check kind on every component of a target (``check_target``) against
    ``torch.autograd.gradcheck`` (slow mode) on float64 twins of the same modules at the same
    input shapes: Linear 3→4 (batch 5) and 25→2 (batch 1), ReLU, Tanh and Sigmoid on 7×5, the
    report network with ReLU and with Tanh (batch 8). gradcheck checks only the gradients, so
    the ratio understates what the conformance run does per second."""
    from verification.suite.conformance import check_target
    from verification.targets import spec
    from verification.targets.adapter import load_target

    loaded = load_target(target)
    generator = torch.Generator().manual_seed(seed)
    problems = [(spec.linear(3, 4), (5, 3)), (spec.linear(25, 2), (1, 25)),
                *[(spec.Layer(kind), (7, 5)) for kind in ("relu", "tanh", "sigmoid")],
                *[(spec.report_network(kind), (8, 2)) for kind in ("relu", "tanh")]]
    checks = [_gradcheck_problem(layer, shape, generator) for layer, shape in problems]

    def run_gradcheck():
        for function, leaves in checks:
            torch.autograd.gradcheck(function, leaves, eps=1e-6, atol=1e-5, fast_mode=False)

    return Workload(lambda: check_target(loaded, seed=seed), run_gradcheck, 1)


def _gradcheck_problem(layer, shape, generator):
    """``(function, leaves)`` for gradcheck: a float64 ``torch.nn`` twin of ``layer``."""
    from verification.targets import spec

    modules = []
    for leaf in spec.leaves(layer):
        if leaf.kind == "linear":
            modules.append(torch.nn.Linear(leaf.in_features, leaf.out_features,
                                           dtype=torch.float64))
        else:
            modules.append({"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh,
                            "sigmoid": torch.nn.Sigmoid}[leaf.kind]())
    twin = torch.nn.Sequential(*modules)
    names = [name for name, _ in twin.named_parameters()]
    x = 2 * torch.rand(shape, generator=generator, dtype=torch.float64) - 1
    leaves = [x.requires_grad_(), *(p.detach().clone().requires_grad_()
                                    for p in twin.parameters())]

    def function(x, *params):
        return torch.func.functional_call(twin, dict(zip(names, params, strict=True)), (x,))

    return function, leaves


def conformance_vs_torch_gradcheck(*, target="refnet", repeats=3):
    """Seconds of a whole conformance run of ``target`` against gradcheck on the same
    components (``conformance_workload``)."""
    refnet_seconds, gradcheck_seconds = measure(conformance_workload(target), repeats)
    return BenchmarkResult("conformance_vs_torch_gradcheck",
                           "torch.autograd.gradcheck, slow mode, gradients of the same modules",
                           gradcheck_seconds / refnet_seconds, refnet_seconds, gradcheck_seconds,
                           1.0, {"target": target})
