"""Instance reuse, reported as a fact: can one module instance sit at several positions?

Users write ``act = Tanh(); Sequential(Linear(2, 3), act, Linear(3, 3), act, Linear(3, 2))``. A
framework whose modules keep the last forward's input or output on the instance then computes
the backward of the earlier position with the later position's state, and its gradients are
wrong; one whose containers keep that state per position supports it. Neither is a failure of
the protocol (the contract asks each factory for a fresh object), so ``check_reuse`` reports a
passing result whose ``convention`` says which it is:

1. the network with the shared instance is compared with its autograd twin
   (``check_against_reference``; the twin places ONE torch module at every position, so a
   shared Linear's gradient is the sum of both positions' contributions);
2. all tensors agree: "supports one module instance at several positions of a container";
3. some differ, or the framework raises: the same network with a fresh instance at each
   position is checked too; where that passes, the fact is "does not support …" with the
   worst element; where it fails as well, the reuse is not to blame (the failure is reported by
   the unshared networks' own checks) and the fact says it could not be decided.
"""

from dataclasses import replace

from verification.checks.reference import check_against_reference, guarded
from verification.checks.result import CheckResult

__all__ = ["check_reuse", "unshared", "SUPPORTED", "UNSUPPORTED"]

KIND = "autograd"
SUPPORTED = "supports one module instance at several positions of a container"
UNSUPPORTED = "does not support one module instance at several positions"


def unshared(layer):
    """``layer`` with a fresh module at every position (every ``shared`` key removed)."""
    if layer.kind == "sequential":
        return replace(layer, children=tuple(unshared(child) for child in layer.children))
    return replace(layer, shared="")


def check_reuse(build, layer, x, *, seed=0, name):
    """The reuse fact for ``layer`` (a structure with ``spec.shared`` leaves), one result.

    Args:
        build: ``build(layer, name)`` → a ``Component`` of the target, at seeded values.
        layer: the structure with a shared instance.
        x: the input.
        seed: seed of the upstream gradient.
        name: the case's label, used in the id ``autograd/<name>/instance-reuse``.

    Returns:
        One passing ``CheckResult`` whose ``convention`` states the fact (module docstring);
        its numbers are 0: it compares nothing that must hold.
    """
    shared = _failures(lambda: check_against_reference(build(layer, name), x, seed=seed),
                       name)
    if not shared:
        return _fact(name, SUPPORTED, f"{name}: gradients and outputs match the twin, which "
                                      "places one module at every position")
    fresh = _failures(lambda: check_against_reference(build(unshared(layer), name), x,
                                                      seed=seed), name)
    worst = shared[0].detail.split("\n")[0]
    if fresh:
        return _fact(name, "instance reuse not decided: the same network with a fresh module at "
                     "each position fails too", f"{name}: {worst}")
    return _fact(name, f"{UNSUPPORTED}: {_difference(shared[0])}", f"{name}: {worst}")


def _failures(run, name):
    results = guarded(f"{KIND}/{name}/raised", name, KIND, run)
    return sorted((r for r in results if not r.passed), key=lambda r: -r.error_ratio)


def _difference(result):
    if result.id.endswith("/raised"):
        return result.detail.split(": it raised ", 1)[-1].split("\n")[0]
    what = result.id.rsplit("/", 1)[-1]
    return (f"{what} differs (worst element: absolute error {result.max_abs_error:.3g}, "
            f"relative {result.max_rel_error:.3g}, {result.error_ratio:.3g}× the tolerance)")


def _fact(name, convention, detail):
    return CheckResult(f"{KIND}/{name}/instance-reuse", name, KIND, True, 0.0, 0.0, 0.0, 0.0,
                       detail=f"fact, not a failure: {convention}. {detail}",
                       convention=convention)
