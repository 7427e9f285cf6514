"""Properties of every refnet module, on random architectures drawn by hypothesis.

An example is a ``Spec``: a nested tuple of layers (``("Linear", outputs)``, ``("ReLU",)``,
``("Tanh",)``, ``("Sigmoid",)``, ``("Dropout",)`` in evaluation mode, ``("Sequential",
layers)``), the input width, batch size, input scale 10^k (k in -3 … 2), dtype, replicas and
seed. Everything is drawn from integers, ``sampled_from`` and lists, so a failure shrinks to
one Linear on one sample of scale 1 in float64 when that is enough to show it. The random
architectures drawn against the autograd twin in float64 are in ``tests/test_reference.py``;
here the twin is also checked in float32, with replicas and at extreme input scales.

Run the long version with ``HYPOTHESIS_PROFILE=thorough``.
"""

from typing import NamedTuple

import torch
from hypothesis import example, given
from hypothesis import strategies as st

import refnet
from verification.checks.finite_difference import check_backward
from verification.checks.reference import check_against_reference, upstream_gradient
from verification.suite.registry import replica_equivalence
from verification.targets.refnet_target import refnet_component

F32, F64 = torch.float32, torch.float64
LEAVES = ("Linear", "ReLU", "Tanh", "Sigmoid", "Dropout")
ACTIVATIONS = {"ReLU": refnet.ReLU, "Tanh": refnet.Tanh, "Sigmoid": refnet.Sigmoid}
MAX_DEPTH = 2
"""Nesting levels of Sequential inside the outer one."""
ANY_REPLICAS = st.none() | st.integers(1, 3)
"""No replica axis, or R replicas."""


class Spec(NamedTuple):
    """One drawn example (see the module docstring)."""

    layers: tuple
    width: int
    batch: int
    scale_exponent: int
    dtype: torch.dtype
    replicas: int | None
    seed: int


@st.composite
def _layers(draw, depth=0):
    kinds = LEAVES + (("Sequential",) if depth < MAX_DEPTH else ())
    layers = []
    for kind in draw(st.lists(st.sampled_from(kinds), min_size=1, max_size=4)):
        if kind == "Linear":
            layers.append((kind, draw(st.integers(1, 6))))
        elif kind == "Sequential":
            layers.append((kind, draw(_layers(depth + 1))))
        else:
            layers.append((kind,))
    return tuple(layers)


def specs(dtypes=(F64, F32), replicas=ANY_REPLICAS):
    """Examples in the given dtypes, with replicas drawn from ``replicas``."""
    return st.builds(Spec, layers=_layers(), width=st.integers(1, 6), batch=st.integers(1, 6),
                     scale_exponent=st.integers(-3, 2), dtype=st.sampled_from(dtypes),
                     replicas=replicas, seed=st.integers(0, 2**16))


def _build(layers, width, spec, generator):
    """The Sequential of ``layers`` on inputs of ``width`` features, and its output width."""
    modules = []
    for layer in layers:
        if layer[0] == "Linear":
            modules.append(refnet.Linear(width, layer[1], dtype=spec.dtype,
                                         replicas=spec.replicas, generator=generator))
            width = layer[1]
        elif layer[0] == "Sequential":
            inner, width = _build(layer[1], width, spec, generator)
            modules.append(inner)
        elif layer[0] == "Dropout":
            modules.append(refnet.Dropout(0.5, generator=generator).eval())
        else:
            modules.append(ACTIVATIONS[layer[0]]())
    return refnet.Sequential(*modules), width


def _model_and_input(spec):
    """The model (weights drawn from ``spec.seed``) and an input uniform in ±10^k."""
    generator = torch.Generator().manual_seed(spec.seed)
    model, _ = _build(spec.layers, spec.width, spec, generator)
    shape = (spec.batch, spec.width) if spec.replicas is None else (
        spec.replicas, spec.batch, spec.width)
    uniform = 2 * torch.rand(shape, generator=generator, dtype=F64) - 1
    return model, (10.0 ** spec.scale_exponent * uniform).to(spec.dtype)


def _assert_all_pass(results):
    assert results, "the check returned no results"
    failures = [result.detail for result in results if not result.passed]
    assert not failures, "\n".join(failures)


def _assert_equal(what, got, expected, atol=0.0):
    """Equal element by element, or within ``atol``."""
    assert got.shape == expected.shape, (
        f"{what}: shape {list(got.shape)}, not {list(expected.shape)}")
    error = float((got - expected).abs().max()) if got.numel() else 0.0
    assert error <= atol, f"{what}: differs by up to {error:.3g} (allowed {atol:.3g})"


def _gradients(model):
    return [gradient.clone() for _, gradient in model.param()]


REPORT_LIKE = Spec((("Linear", 5), ("ReLU",), ("Sequential", (("Linear", 3), ("Tanh",))),
                    ("Linear", 2), ("Sigmoid",)), width=2, batch=1, scale_exponent=0,
                   dtype=F64, replicas=None, seed=0)


SATURATED_TANH = Spec((("Sequential", (("ReLU",), ("Linear", 5))), ("Tanh",)), width=4, batch=5,
                      scale_exponent=2, dtype=F64, replicas=2, seed=14737)
"""Found by hypothesis: Tanh's 1 − y·y cancels where |y| ≈ 1, so the replica tolerance must
scale with the sizes of the terms (1 + y²), not with the largest gradient value."""


@given(specs(dtypes=(F64,)))
@example(REPORT_LIKE)
def test_finite_differences_agree_in_float64(spec):
    model, x = _model_and_input(spec)
    _assert_all_pass(check_backward(refnet_component(model), x, seed=spec.seed))


@given(specs())
@example(REPORT_LIKE._replace(dtype=F32))
def test_autograd_twin_agrees_in_float32_and_float64(spec):
    model, x = _model_and_input(spec)
    _assert_all_pass(check_against_reference(refnet_component(model), x, seed=spec.seed))


@given(specs(replicas=st.integers(2, 3)))
@example(REPORT_LIKE._replace(dtype=F32, replicas=2))
@example(SATURATED_TANH)
def test_replica_r_equals_a_single_module_with_its_weights(spec):
    model, x = _model_and_input(spec)
    singles = []
    for r in range(spec.replicas):
        single, _ = _model_and_input(spec._replace(replicas=None))
        for (value, _), (batched, _) in zip(single.param(), model.param(), strict=True):
            value.copy_(batched[r])
        singles.append(single)
    _assert_all_pass(replica_equivalence(model, singles, x, seed=spec.seed))


@given(specs())
def test_backward_is_linear_in_grad_output(spec):
    """Scaling by 2 commutes with every rounding except in the subnormal range (a saturated
    Sigmoid's slope in float32), so the doubled pass is twice the single one within the
    smallest normal number; a zero grad_output gives exact zeros."""
    model, x = _model_and_input(spec)
    grad_output = upstream_gradient(model.forward(x), spec.seed)
    passes = {}
    for factor in (1, 2, 0):
        model.zero_grad()
        passes[factor] = [model.backward(factor * grad_output), *_gradients(model)]
    for index, (once, twice, zero) in enumerate(zip(passes[1], passes[2], passes[0],
                                                    strict=True)):
        what = "dL/dx" if index == 0 else f"param[{index - 1}] gradient"
        _assert_equal(f"{what} of backward(2g) against 2·backward(g)", twice, 2 * once,
                      atol=torch.finfo(spec.dtype).tiny)
        _assert_equal(f"{what} of backward(0)", zero, torch.zeros_like(zero))


@given(specs())
def test_zero_grad_zeroes_every_gradient_in_place(spec):
    model, x = _model_and_input(spec)
    model.backward(upstream_gradient(model.forward(x), spec.seed))
    gradients = [gradient for _, gradient in model.param()]
    values = [value.clone() for value, _ in model.param()]
    model.zero_grad()
    for index, ((value, gradient), old_gradient, kept) in enumerate(
            zip(model.param(), gradients, values, strict=True)):
        assert gradient is old_gradient, f"param[{index}]: zero_grad replaced the gradient tensor"
        _assert_equal(f"param[{index}] gradient after zero_grad", gradient,
                      torch.zeros_like(gradient))
        _assert_equal(f"param[{index}] value after zero_grad", value, kept)


@given(specs())
def test_forward_and_backward_leave_their_arguments_unchanged(spec):
    model, x = _model_and_input(spec)
    x_before = x.clone()
    grad_output = upstream_gradient(model.forward(x), spec.seed)
    _assert_equal("input after forward", x, x_before)
    grad_before = grad_output.clone()
    model.backward(grad_output)
    _assert_equal("grad_output after backward", grad_output, grad_before)
    _assert_equal("input after backward", x, x_before)
