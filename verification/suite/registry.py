"""The conformance registry: every public refnet module × the kinds of check that cover it.

Each ``Case`` names the refnet class it checks, the check kinds it produces and a function
that runs it. ``run_cases`` runs any list of cases, turning a case that raises into a failed
result, so one broken module never stops the run. ``tests/test_registry.py`` fails when refnet
exports a module, loss or optimiser that no case covers.

All checks run in float64 on inputs drawn from explicit seeds.
"""

from collections.abc import Callable
from dataclasses import dataclass, replace

import torch

import refnet
from verification.checks.compare import compare
from verification.checks.dropout import check_dropout
from verification.checks.finite_difference import check_backward
from verification.checks.kink import check_kink
from verification.checks.loss import check_loss
from verification.checks.reference import (
    EXACT_ATOL,
    autograd_tolerance,
    check_against_reference,
    describe,
    guarded,
    summation_length,
    term_magnitudes,
    unit_roundoff,
    upstream_gradient,
)
from verification.checks.trajectory import check_trajectory

__all__ = ["Case", "cases", "run_cases", "covered_classes", "public_module_classes",
           "random_architecture", "replica_equivalence", "train_replica_equivalence",
           "check_accumulation"]

F64 = torch.float64
PROPERTY_ARCHITECTURES = 12
"""Random architectures drawn for the ``property`` kind in ``refnet verify``."""


@dataclass(frozen=True)
class Case:
    """One group of checks.

    Attributes:
        name: unique, e.g. ``"Linear 2→25"``.
        classes: the refnet classes it exercises (for the coverage matrix).
        kinds: the check kinds it produces.
        run: returns a list of ``CheckResult``.
    """

    name: str
    classes: tuple
    kinds: tuple
    run: Callable[[], list]


def _input(shape, seed, scale=2.0):
    """Uniform in [-scale, scale), drawn from ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    return scale * (2 * torch.rand(shape, generator=generator, dtype=F64) - 1)


def _linear(inputs, outputs, seed, replicas=None):
    return refnet.Linear(inputs, outputs, dtype=F64, replicas=replicas,
                         generator=torch.Generator().manual_seed(seed))


def _report_network(activation, seed, replicas=None):
    return refnet.report_network(activation, dtype=F64, replicas=replicas,
                                 generator=torch.Generator().manual_seed(seed))


def _gradient_checks(module, x, seed=0):
    """Finite differences and the autograd twin on one module and input."""
    return check_backward(module, x, seed=seed) + check_against_reference(module, x, seed=seed)


def _as_kind(kind, results):
    """Relabel results under another check kind (their ids are prefixed with it)."""
    return [replace(result, kind=kind, id=f"{kind}/{result.id}") for result in results]


class _LossAsModule(refnet.Module):
    """``prediction ↦ loss(prediction, target)``: a loss seen through the module protocol,
    so the finite-difference harness can check it (samples are coupled by the reduction)."""

    def __init__(self, loss, target):
        self.loss, self.target = loss, target

    def forward(self, x):
        return self.loss.forward(x, self.target)

    def backward(self, grad_output):
        return grad_output * self.loss.backward()

    def __repr__(self):
        return repr(self.loss)


def _loss_checks(reduction, seed):
    prediction, target = _input((6, 2), seed), _input((6, 2), seed + 1)
    loss = refnet.MSELoss(reduction)
    finite = check_backward(_LossAsModule(loss, target), prediction, seed=seed, row_wise=False)
    return finite + check_loss(loss, prediction, target)


def _trajectory_checks(optimizer, lr, replicas, seed):
    generator = torch.Generator().manual_seed(seed)
    x, labels = refnet.disk_dataset(40, replicas=replicas, generator=generator, dtype=F64)
    model = _report_network("tanh", seed, replicas)
    results = check_trajectory(model, x, refnet.one_hot(labels, dtype=F64), optimizer=optimizer,
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
    name = describe(model)
    rtol = 4 * summation_length(model, x.shape[-2]) * unit_roundoff(x.dtype)
    output = model.forward(x)
    upstream = _input(output.shape, seed).to(output.dtype)
    model.zero_grad()
    grad_x = model.backward(upstream)
    bounds = term_magnitudes(model, x, lambda _: upstream.abs())
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
    rtol = 8 * 4 * summation_length(batched_model, 10) * unit_roundoff(F64)
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


def check_accumulation(module, x, *, seed=0, name=None):
    """``backward`` adds into the ``param()`` gradients, and ``zero_grad`` clears them.

    Steps: zero_grad, forward, backward(g), keep the gradients G; forward and backward(g) again
    without zeroing, the gradients must be 2G; zero_grad, they must be exactly 0. Both passes
    compute the same sums on the same values, so 2G is held to ``autograd_tolerance`` (n the
    chain's summation length, the scale max|2G|); an overwrite is off by G, a factor 2.

    Args:
        module: a refnet module without training-mode Dropout (two forwards must agree).
        x: input, ``[B, in]`` or ``[R, B, in]``.
        seed: seed of the upstream gradient g.
        name: the module's name in the ids; ``describe(module)`` when ``None``.

    Returns:
        Per ``param()`` pair, ``property/<name>/accumulation/param[i]`` and
        ``property/<name>/zero_grad/param[i]``.
    """
    name = describe(module) if name is None else name
    module.zero_grad()
    grad_output = upstream_gradient(module.forward(x), seed)
    module.backward(grad_output)
    once = [gradient.clone() for _, gradient in module.param()]
    module.forward(x)
    module.backward(grad_output)
    twice = [gradient.clone() for _, gradient in module.param()]
    module.zero_grad()
    terms = summation_length(module, x.shape[-2])
    results = []
    for index, (first, second, (_, cleared)) in enumerate(
            zip(once, twice, module.param(), strict=True)):
        tolerance = autograd_tolerance(x.dtype, terms, float(2 * first.abs().max()))
        results += [
            compare(check_id=f"property/{name}/accumulation/param[{index}]", module=name,
                    kind="property", expected=2 * first, got=second, atol=tolerance.atol,
                    rtol=tolerance.rtol, what=f"param[{index}] gradient after two backwards",
                    context=f"seed={seed}; twice the gradient of one backward"),
            compare(check_id=f"property/{name}/zero_grad/param[{index}]", module=name,
                    kind="property", expected=torch.zeros_like(cleared), got=cleared,
                    atol=EXACT_ATOL, rtol=0.0, what=f"param[{index}] gradient after zero_grad",
                    context=f"seed={seed}"),
        ]
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


def cases(seed=0):
    """Every registered case, in a fixed order."""
    L, R, T, S, D = refnet.Linear, refnet.ReLU, refnet.Tanh, refnet.Sigmoid, refnet.Dropout
    hand_picked = torch.tensor([[-30.0, -1.0, -1e-3, 0.5, 1.0, 30.0]], dtype=F64)
    return [
        Case("Linear 2→25", (L,), ("finite_difference", "autograd"),
             lambda: _gradient_checks(_linear(2, 25, seed), _input((8, 2), seed))),
        Case("Linear 25→2, batch 1", (L,), ("finite_difference", "autograd"),
             lambda: _gradient_checks(_linear(25, 2, seed), _input((1, 25), seed))),
        Case("Linear with replicas", (L,), ("finite_difference", "autograd"),
             lambda: _gradient_checks(_linear(3, 4, seed, replicas=3), _input((3, 5, 3), seed))),
        *[Case(f"{cls.__name__}", (cls,), ("finite_difference", "autograd"),
               lambda cls=cls: _gradient_checks(cls(), _input((7, 5), seed, scale=4.0)))
          for cls in (R, T, S)],
        *[Case(f"{cls.__name__} at hand-picked points", (cls,), ("autograd",),
               lambda cls=cls: check_against_reference(cls(), hand_picked, seed=seed))
          for cls in (R, T, S)],
        Case("ReLU at its kink", (R,), ("kink",), lambda: [check_kink(R())]),
        Case("Dropout", (D,), ("autograd", "statistical", "property"),
             lambda: check_dropout(D(0.3, generator=torch.Generator().manual_seed(seed)),
                                   _input((6, 5), seed), seed=seed)),
        Case("Dropout in evaluation mode", (D,), ("finite_difference",),
             lambda: check_backward(D(0.3).eval(), _input((6, 5), seed), seed=seed)),
        *[Case(f"report network, {act}", (refnet.Sequential, L, R if act == "relu" else T, S),
               ("finite_difference", "autograd"),
               lambda act=act: _gradient_checks(_report_network(act, seed), _input((8, 2), seed)))
          for act in ("relu", "tanh")],
        Case("nested Sequential", (refnet.Sequential,), ("finite_difference", "autograd"),
             lambda: _gradient_checks(
                 refnet.Sequential(refnet.Sequential(_linear(3, 4, seed), T()),
                                   refnet.Sequential(_linear(4, 2, seed + 1), S())),
                 _input((5, 3), seed))),
        *[Case(f"MSELoss {reduction}", (refnet.MSELoss,), ("finite_difference", "autograd"),
               lambda reduction=reduction: _loss_checks(reduction, seed))
          for reduction in ("mean", "sum")],
        Case("SGD trajectory", (refnet.SGD,), ("trajectory",),
             lambda: _trajectory_checks("sgd", 0.05, None, seed)),
        Case("Adam trajectory", (refnet.Adam,), ("trajectory",),
             lambda: _trajectory_checks("adam", 0.01, None, seed)),
        Case("SGD trajectory with replicas", (refnet.SGD, L), ("trajectory",),
             lambda: _trajectory_checks("sgd", 0.05, 3, seed)),
        Case("replica equivalence", (L, T, S, refnet.Sequential), ("replica",),
             lambda: _replica_case(seed)),
        Case("train, error and disk_dataset with replicas", (L, refnet.Sequential, refnet.SGD),
             ("replica",), lambda: train_replica_equivalence([seed, seed + 1, seed + 2])),
        Case("gradient accumulation and zero_grad", (L, refnet.Sequential), ("property",),
             lambda: check_accumulation(_report_network("tanh", seed), _input((6, 2), seed),
                                        seed=seed)
             + check_accumulation(_linear(3, 4, seed, replicas=2), _input((2, 5, 3), seed),
                                  seed=seed)),
        Case("random architectures", (L, R, T, S, D, refnet.Sequential), ("property",),
             lambda: _property_checks(PROPERTY_ARCHITECTURES, seed)),
    ]


def run_cases(selected, progress=None):
    """Run ``selected`` cases; a case that raises becomes one failed result.

    Args:
        selected: a list of ``Case``.
        progress: optional callable ``progress(case_name)`` called before each case.

    Returns:
        The concatenated ``CheckResult`` list.
    """
    results = []
    for case in selected:
        if progress is not None:
            progress(case.name)
        results += guarded(f"error/{case.name}", case.name, "error", case.run)
    return results


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
