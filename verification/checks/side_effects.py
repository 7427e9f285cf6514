"""Side effects: a module must not write into tensors it did not create.

Callers rely on three tensors staying as they were: the input handed to ``forward`` (the caller
may reuse it: a finite-difference stencil, the next layer's cached input), the gradient handed
to ``backward`` (a container passes it on), and the output ``forward`` returned (a container
or the loss still holds it). A forward that clamps its input in place, or a backward that
computes σ(1 − σ) into the output it returned, gives right gradients through the protocol
view, which hands the module copies, and so passes every other check; here the module gets
the very tensors and they are compared, element by element and exactly, with copies kept
aside. For a per-sample module one sample is used.

Detection power (``CheckResult.detectable``: the relative error of the compared tensor's
largest element sure to fail; measured over every case of refnet and of the ``float32``
fixture, the README's table, asserted by tests/test_detection_power.py with an error of that
size planted): exact in both dtypes: any change of one element fails.
"""

import torch

from verification.checks.compare import EXACT, compare
from verification.checks.reference import guarded, upstream_gradient
from verification.targets.spec import as_component

__all__ = ["check_side_effects"]

KIND = "side_effect"


def check_side_effects(module, x, *, seed=0, name=None):
    """Check that forward leaves its input, and backward its gradient and the output, intact.

    Args:
        module: a refnet module, a ``Component`` or any module with the protocol.
        x: input, ``[B, in]`` (its first row for a per-sample module).
        seed: seed of the upstream gradient.
        name: the module's name in the ids; its description when ``None``.

    Returns:
        ``side_effect/<name>/input``, ``…/grad_output`` and ``…/output``, each passing exactly
        when the tensor is unchanged; one failed ``side_effect/<name>/raised`` when the module
        raises.
    """
    component = as_component(module, name=name)
    return guarded(f"{KIND}/{component.name}/raised", component.name, KIND,
                   lambda: _check(component, x, seed))


def _unchanged(name, what, kept, handed, seed, during):
    return compare(check_id=f"{KIND}/{name}/{what}", module=name, kind=KIND, expected=kept,
                   got=handed, atol=EXACT, rtol=0.0, what=f"{_WHAT[what]}{during}",
                   context=f"seed={seed}; the module must not write into a tensor it did not "
                           "create: callers still use it")


_WHAT = {"input": "the input", "grad_output": "the incoming gradient",
         "output": "the output forward returned"}


def _check(component, x, seed):
    """Hand the module the very tensors (``ModuleView.call_forward``/``call_backward``, no
    copies) and compare them with copies kept aside, after forward and after backward, so
    that a failure names the call that wrote."""
    view, name = component.view, component.name
    view.zero_grad()
    given = (x[0] if view.per_sample else x).detach().clone()
    kept_input = given.clone()
    output = view.call_forward(given)
    input_after_forward = given.clone()
    kept_output = output.detach().clone()
    gradient = upstream_gradient(kept_output, seed)
    kept_gradient = gradient.clone()
    view.call_backward(gradient)
    if not torch.equal(input_after_forward, kept_input):
        handed, during = input_after_forward, " (written during forward)"
    elif not torch.equal(given, kept_input):
        handed, during = given, " (written during backward)"
    else:
        handed, during = given, " after forward and backward"
    return [_unchanged(name, "input", kept_input, handed, seed, during),
            _unchanged(name, "grad_output", kept_gradient, gradient, seed, " after backward"),
            _unchanged(name, "output", kept_output, output, seed, " after backward")]
