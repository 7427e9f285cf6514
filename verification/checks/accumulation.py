"""Gradient bookkeeping: ``backward`` ADDS into the ``param()`` gradients; ``zero_grad`` clears.

A backward that overwrites its gradients instead of adding to them passes every check that runs
backward once after ``zero_grad`` (finite differences, the twin) and even training, which
zeroes before each backward; it breaks whoever accumulates over several backwards (one sample
at a time, or several losses). The check: zero_grad, forward, backward(g), keep the gradients
G; forward and backward(g) again without zeroing, the gradients must be 2G; zero_grad, they
must be exactly 0. An overwrite is off by G, a factor 2.

Tolerance. A gradient is a sum over the batch of per-sample contributions c_b, and the second
backward computes the same c_b again (the same operations on the same values), so the only
difference a correct framework can make is the order of that sum: one that sums the batch and
then adds gets exactly 2G (G + G rounds to 2G); one that adds sample by sample, or inside its
matrix product (``addmm``), sums G + c_1 + … + c_B. Each sum of B + 1 terms is within
γ_{B+1}·(|G| + S) of its exact value, S = Σ_b |c_b| (Higham §4.2): the two differ by at most
(B + 1)·u·(2S + |G|), within ``autograd_tolerance`` with n = B + 1 and the scale max S (atol =
4(B + 1)u·max S, plus rtol·|2G| = 4(B + 1)u·|2G| element by element). S is measured through the
protocol: one zero_grad, forward and backward per sample, with that sample's rows of x and g.
It is what cancellation does not shrink: a scale of max|2G| alone, as an earlier version had,
was a false alarm for a correct per-sample framework whose batch sum cancels (large
contributions, a small sum: up to 1.5e4 times its tolerance in float32, 4.8e4 in float64,
tests/test_targets.py). A framework whose two passes differ in more than the order of the batch
sum (a reduction whose order changes from run to run, as CUDA's atomic adds) is outside this
bound. A target without ``zero_grad`` gets no ``zero_grad`` result (the protocol view zeroes
its gradients through ``param()``, and a note says so).

Detection power (``CheckResult.detectable``: the relative error of the compared tensor's
largest element sure to fail; measured over every case of refnet and of the ``float32``
fixture, the README's table, asserted by tests/test_detection_power.py with an error of that
size planted): float64 2e-14, float32 1e-5 (8 samples of the report network; they were 2e-13
and 1e-4 under the chain's summation length and max|2G|).
"""

from verification.checks.compare import EXACT, compare
from verification.checks.reference import SAFETY, autograd_tolerance, guarded, upstream_gradient
from verification.targets.spec import as_component

__all__ = ["check_accumulation"]

KIND = "accumulation"


def check_accumulation(module, x, *, seed=0, name=None):
    """Two backwards without ``zero_grad`` give twice the gradient; ``zero_grad`` clears it.

    Args:
        module: a refnet module, a ``Component``, or any module with the protocol (without
            training-mode Dropout: the two forwards must agree).
        x: input, ``[B, in]`` or ``[R, B, in]``.
        seed: seed of the upstream gradient g.
        name: the module's name in the ids; its description when ``None``.

    Returns:
        Per ``param()`` pair, ``accumulation/<name>/param[i]`` and, when the module has a
        ``zero_grad``, ``accumulation/<name>/zero_grad/param[i]``; one failed
        ``accumulation/<name>/raised`` when the module raises.
    """
    component = as_component(module, name=name)
    return guarded(f"{KIND}/{component.name}/raised", component.name, KIND,
                   lambda: _check(component, x, seed))


def _check(component, x, seed):
    view, name = component.view, component.name
    view.zero_grad()
    grad_output = upstream_gradient(view.forward(x), seed)
    view.backward(grad_output)
    once = [gradient.clone() for _, gradient in view.param()]
    view.forward(x)
    view.backward(grad_output)
    twice = [gradient.clone() for _, gradient in view.param()]
    contributions = _contribution_sizes(view, x, grad_output)
    batch = x.shape[-2]
    results = []
    for index, (first, second, size) in enumerate(zip(once, twice, contributions,
                                                      strict=True)):
        expected = 2 * first
        tolerance = autograd_tolerance(first.dtype, batch + 1, float(size.max()))
        results.append(compare(
            check_id=f"{KIND}/{name}/param[{index}]", module=name, kind=KIND,
            expected=expected, got=second, atol=tolerance.atol, rtol=tolerance.rtol,
            what=f"param[{index}] gradient after two backwards without zero_grad",
            context=f"seed={seed}; expected twice the gradient of one backward (a gradient "
                    "that is overwritten instead of added to reads 1×); tolerance "
                    f"{SAFETY}·(B + 1)·u·(max S + |2G|), B = {batch}, S = Σ|per-sample "
                    "contribution|"))
    if view.has_zero_grad:
        view.zero_grad()
        for index, (_, cleared) in enumerate(view.param()):
            results.append(compare(
                check_id=f"{KIND}/{name}/zero_grad/param[{index}]", module=name, kind=KIND,
                expected=cleared.new_zeros(cleared.shape), got=cleared, atol=EXACT, rtol=0.0,
                what=f"param[{index}] gradient after zero_grad", context=f"seed={seed}"))
    return results


def _contribution_sizes(view, x, grad_output):
    """S per ``param()`` tensor: Σ_b |c_b|, each sample's contribution to the gradient read
    from a pass over that sample alone (its rows of x and of g, along the batch dimension)."""
    sizes = None
    for row in range(x.shape[-2]):
        view.zero_grad()
        view.forward(x[..., row:row + 1, :])
        view.backward(grad_output[..., row:row + 1, :])
        magnitudes = [gradient.abs() for _, gradient in view.param()]
        sizes = magnitudes if sizes is None else [
            total + magnitude for total, magnitude in zip(sizes, magnitudes, strict=True)]
    return sizes
