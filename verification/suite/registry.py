"""refnet's registry: the conformance cases of refnet as a target, plus refnet's own extras.

refnet goes through exactly the path any other framework takes (``load_target("refnet")`` and
``verification.suite.conformance.target_cases``); its cases are tagged with refnet's classes so
that the coverage matrix and the mutation self-test can match them. The extras check what only
refnet has: the replica axis (Linear with replicas, replica equivalence, batched ``train``), the
``"sum"`` reduction of ``MSELoss`` (refnet's training default, the report's eq. 15), Dropout
inside the autograd twin under its own mask (refnet exposes ``last_mask``), and random
architectures drawn from every module kind. ``tests/test_registry.py`` fails when refnet exports
a module, loss or optimiser that no case covers.

All checks run in float64 on inputs drawn from explicit seeds.
"""

from dataclasses import replace

import torch

import refnet
from verification.checks.accumulation import check_accumulation
from verification.checks.compare import compare
from verification.checks.finite_difference import check_backward
from verification.checks.loss import check_loss
from verification.checks.reference import (
    check_against_reference,
    summation_length,
    term_magnitudes,
    unit_roundoff,
)
from verification.checks.trajectory import ADAM_BETAS, ADAM_EPS, check_trajectory
from verification.suite.conformance import Case, run_cases, target_cases
from verification.suite.conformance import uniform_input as _input
from verification.targets.adapter import load_target
from verification.targets.refnet_target import refnet_component

__all__ = ["Case", "cases", "run_cases", "covered_classes", "public_module_classes",
           "random_architecture", "replica_equivalence", "train_replica_equivalence",
           "refnet_trajectory", "REFNET_CLASSES", "REFNET_OPTIMIZERS"]

F64 = torch.float64
PROPERTY_ARCHITECTURES = 12
"""Random architectures drawn for the ``property`` kind in ``refnet verify``."""
REFNET_CLASSES = {
    "linear": refnet.Linear, "relu": refnet.ReLU, "tanh": refnet.Tanh,
    "sigmoid": refnet.Sigmoid, "sequential": refnet.Sequential, "dropout": refnet.Dropout,
    "mse_loss": refnet.MSELoss, "sgd": refnet.SGD, "adam": refnet.Adam,
}
"""The refnet class behind each component of the target path."""
REFNET_OPTIMIZERS = {
    "sgd": lambda params, lr: refnet.SGD(params, lr),
    "adam": lambda params, lr: refnet.Adam(params, lr=lr, betas=ADAM_BETAS, eps=ADAM_EPS),
}
"""refnet's optimiser for each of ``check_trajectory``'s, ``build(params, lr)``."""


def _linear(inputs, outputs, seed, replicas=None):
    return refnet.Linear(inputs, outputs, dtype=F64, replicas=replicas,
                         generator=torch.Generator().manual_seed(seed))


def _report_network(activation, seed, replicas=None):
    return refnet.report_network(activation, dtype=F64, replicas=replicas,
                                 generator=torch.Generator().manual_seed(seed))


def _gradient_checks(module, x, seed=0):
    """Finite differences and the autograd twin on one refnet module and input."""
    component = refnet_component(module)
    return check_backward(component, x, seed=seed) + check_against_reference(component, x,
                                                                              seed=seed)


def refnet_trajectory(model, x, targets, *, optimizer, lr, reduction="sum", name=None,
                      **options):
    """``check_trajectory`` of a refnet model trained with refnet's own ``MSELoss(reduction)``
    and optimiser (``REFNET_OPTIMIZERS[optimizer]``); ``options``: its other arguments."""
    return check_trajectory(refnet_component(model, name), x, targets, optimizer=optimizer,
                            lr=lr, reduction=reduction, loss=refnet.MSELoss(reduction),
                            build_optimizer=REFNET_OPTIMIZERS[optimizer], **options)


def _as_kind(kind, results):
    """Relabel results under another check kind (their ids are prefixed with it)."""
    return [replace(result, kind=kind, id=f"{kind}/{result.id}") for result in results]


def _trajectory_checks(optimizer, lr, replicas, seed):
    generator = torch.Generator().manual_seed(seed)
    x, labels = refnet.disk_dataset(40, replicas=replicas, generator=generator, dtype=F64)
    model = _report_network("tanh", seed, replicas)
    results = refnet_trajectory(model, x, refnet.one_hot(labels, dtype=F64), optimizer=optimizer,
                                lr=lr, steps=20, seed=seed)
    optimizer_class = {"sgd": "SGD", "adam": "Adam"}[optimizer]
    return [replace(result, module=f"{optimizer_class} ({result.module})") for result in results]


def replica_equivalence(model, singles, x, seed=0):
    """Replica r of ``model`` against the single model ``singles[r]`` with the same weights.

    Compares the output and every gradient of each replica with the single module's on the
    same input rows. Both compute the same sums, possibly in another order (batched against
    plain matrix products), so an element differs by at most ``n·u·Σ|terms|`` on each side,
    n the chain's summation length (``summation_length``). The rule takes ``rtol = 4·n·u``
    and ``atol = rtol·max Σ|terms|`` with the term bounds of ``term_magnitudes``, as the
    autograd checks do (the factor 4: two sides, then 2 for slack). The tensor's largest
    value would not do: Tanh's 1 − y·y cancels where |y| ≈ 1. A replica mixed up with
    another differs at order 1.

    Args:
        model: a module with replicas, input ``[R, B, in]``.
        singles: R modules without replicas, ``singles[r]`` holding replica r's weights.
        x: ``[R, B, in]``.
        seed: seed of the upstream gradient.
    """
    component = refnet_component(model)
    name = component.name
    rtol = 4 * summation_length(component, x.shape[-2]) * unit_roundoff(x.dtype)
    output = model.forward(x)
    upstream = _input(output.shape, seed).to(output.dtype)
    model.zero_grad()
    grad_x = model.backward(upstream)
    bounds = term_magnitudes(component, x, lambda _output, _bound: upstream.abs())
    results = []
    for r, single in enumerate(singles):
        single_output = single.forward(x[r])
        single.zero_grad()
        single_grad_x = single.backward(upstream[r])
        compared = [("output", output[r], single_output, bounds.output[r]),
                    ("dL/dx", grad_x[r], single_grad_x, bounds.grad_input[r])]
        compared += [(f"param[{i}] gradient", batched[1][r], alone[1], bound[r])
                     for i, (batched, alone, bound) in enumerate(
                         zip(model.param(), single.param(), bounds.grad_params, strict=True))]
        results += [compare(check_id=f"replica/{name}/replica {r}/{what}", module=name,
                            kind="replica", expected=expected, got=got,
                            atol=rtol * float(terms.max()), rtol=rtol,
                            what=f"replica {r} {what}", context=f"seed={seed}")
                    for what, got, expected, terms in compared]
    return results


def _replica_case(seed):
    replicas = 3
    model = _report_network("tanh", seed, replicas)
    singles = []
    for r in range(replicas):
        single = _report_network("tanh", seed)
        for (value, _), (batched, _) in zip(single.param(), model.param(), strict=True):
            value.copy_(batched[r])
        singles.append(single)
    return replica_equivalence(model, singles, _input((replicas, 5, 2), seed))


def _seeded_run(seeds, replicas):
    """Build, train (``refnet.train``, SGD) and evaluate the report's network; with replicas
    every replica draws from its own seed, else the single run draws from ``seeds[0]``."""
    generator = (refnet.generators(seeds) if replicas
                 else torch.Generator().manual_seed(seeds[0]))
    model = refnet.report_network("tanh", dtype=F64, replicas=replicas, generator=generator)
    x, labels = refnet.disk_dataset(40, replicas=replicas, generator=generator, dtype=F64)
    losses = refnet.train(model, x, refnet.one_hot(labels, dtype=F64), lr=0.05, batch_size=10,
                          epochs=2, generator=generator)
    errors = refnet.error(model, x, labels)
    return model, torch.tensor(losses, dtype=F64), torch.as_tensor(errors, dtype=F64)


def train_replica_equivalence(seeds):
    """Replica r of a batched ``train`` equals a single run seeded with ``seeds[r]``.

    Covers ``disk_dataset``, ``Linear`` initialisation, ``train``'s batch order and ``error``
    on the replica axis. Two epochs of 4 SGD steps compound each step's reassociation error
    (``4·n·u`` relative, see ``replica_equivalence``) at most linearly, hence ``rtol`` is
    ``8 × 4·n·u`` with ``atol = rtol·max|expected|``; error counts must be equal.
    """
    batched_model, batched_losses, batched_errors = _seeded_run(seeds, len(seeds))
    name = f"train with {len(seeds)} replicas"
    rtol = 8 * 4 * summation_length(refnet_component(batched_model), 10) * unit_roundoff(F64)
    results = []
    for r, seed in enumerate(seeds):
        model, losses, errors = _seeded_run([seed], None)
        pairs = [("epoch losses", batched_losses[:, r], losses, rtol),
                 ("error count", batched_errors[r], errors, 0.0)]
        pairs += [(f"param[{i}] after training", batched[0][r], alone[0], rtol)
                  for i, (batched, alone) in enumerate(zip(batched_model.param(), model.param(),
                                                           strict=True))]
        results += [compare(check_id=f"replica/{name}/seed {seed}/{what}", module=name,
                            kind="replica", expected=expected, got=got,
                            atol=max(tolerance * float(expected.abs().max()), 1e-300),
                            rtol=tolerance, what=f"replica {r} (seed {seed}) {what}",
                            context=f"seeds={list(seeds)}")
                    for what, got, expected, tolerance in pairs]
    return results


def random_architecture(generator):
    """A random ``Sequential`` drawn from every module kind, with its input.

    Depth 1–4 Linear layers of width 1–8, each followed by ReLU, Tanh, Sigmoid, Dropout (in
    evaluation mode), nothing, or a nested Sequential of two activations; batch 1–6; input
    scale 10^U(-2, 1).

    Args:
        generator: a seeded ``torch.Generator``.

    Returns:
        ``(model, x)``.
    """
    def draw(high):
        return int(torch.randint(high, (1,), generator=generator))

    activations = [refnet.ReLU, refnet.Tanh, refnet.Sigmoid,
                   lambda: refnet.Dropout(0.3).eval(), None,
                   lambda: refnet.Sequential(refnet.Tanh(), refnet.ReLU())]
    widths = [1 + draw(8) for _ in range(2 + draw(4))]
    modules = []
    for inputs, outputs in zip(widths[:-1], widths[1:], strict=True):
        modules.append(refnet.Linear(inputs, outputs, dtype=F64, generator=generator))
        activation = activations[draw(len(activations))]
        if activation is not None:
            modules.append(activation())
    scale = 10 ** (3 * float(torch.rand(1, generator=generator)) - 2)
    x = scale * torch.randn(1 + draw(6), widths[0], generator=generator, dtype=F64)
    return refnet.Sequential(*modules), x


def _property_checks(count, seed):
    generator = torch.Generator().manual_seed(seed)
    results = []
    for index in range(count):
        model, x = random_architecture(generator)
        results += _as_kind("property", [replace(r, id=f"architecture {index}/{r.id}")
                                         for r in _gradient_checks(model, x, seed=index)])
    return results


def _refnet_tagged(case):
    """A conformance case with its components replaced by refnet's classes."""
    return replace(case, classes=tuple(REFNET_CLASSES[tag] for tag in case.classes
                                       if tag in REFNET_CLASSES))


def cases(seed=0):
    """Every registered case, in a fixed order: refnet as a target, then refnet's extras."""
    L, S = refnet.Linear, refnet.Sequential
    return [
        *[_refnet_tagged(case) for case in target_cases(load_target("refnet"), seed,
                                                         dtypes=(torch.float64,))],
        Case("Linear with replicas", (L,), ("finite_difference", "autograd"),
             lambda: _gradient_checks(_linear(3, 4, seed, replicas=3), _input((3, 5, 3), seed)),
             "linear"),
        Case("Dropout under its own mask, and in evaluation mode", (refnet.Dropout,),
             ("finite_difference", "autograd"),
             lambda: [*check_against_reference(
                 refnet_component(refnet.Dropout(0.3, generator=torch.Generator().manual_seed(
                     seed))), _input((6, 5), seed), seed=seed),
                 *check_backward(refnet_component(refnet.Dropout(0.3).eval()),
                                 _input((6, 5), seed), seed=seed)],
             "dropout"),
        Case("MSELoss sum", (refnet.MSELoss,), ("finite_difference", "autograd"),
             lambda: check_loss(refnet.MSELoss("sum"), _input((6, 2), seed),
                                _input((6, 2), seed + 1)), "mse_loss"),
        Case("SGD trajectory with replicas, sum loss", (refnet.SGD, L), ("trajectory",),
             lambda: _trajectory_checks("sgd", 0.05, 3, seed), "training"),
        Case("replica equivalence", (L, refnet.Tanh, refnet.Sigmoid, S), ("replica",),
             lambda: _replica_case(seed), "replicas"),
        Case("train, error and disk_dataset with replicas", (L, S, refnet.SGD), ("replica",),
             lambda: train_replica_equivalence([seed, seed + 1, seed + 2]), "replicas"),
        Case("gradient accumulation with replicas", (L,), ("accumulation",),
             lambda: check_accumulation(refnet_component(_linear(3, 4, seed, replicas=2)),
                                        _input((2, 5, 3), seed), seed=seed), "linear"),
        Case("random architectures", (L, refnet.ReLU, refnet.Tanh, refnet.Sigmoid,
                                      refnet.Dropout, S), ("property",),
             lambda: _property_checks(PROPERTY_ARCHITECTURES, seed), "sequential"),
    ]


def public_module_classes():
    """Every class refnet exports that has ``backward`` or ``step``: modules, losses, optimisers."""
    exported = (getattr(refnet, name) for name in refnet.__all__)
    return {value for value in exported if isinstance(value, type) and value is not refnet.Module
            and (hasattr(value, "backward") or hasattr(value, "step"))}


def covered_classes(selected=None):
    """``{class: set of check kinds}`` over the registered cases."""
    coverage = {}
    for case in cases() if selected is None else selected:
        for cls in case.classes:
            coverage.setdefault(cls, set()).update(case.kinds)
    return coverage
