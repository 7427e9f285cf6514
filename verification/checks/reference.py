"""Autograd reference: every refnet module checked against an independently written torch twin.

The twin of a module is a ``torch.nn.Module`` holding float64 copies of the SAME parameter
values, written with ``torch.nn`` and ``torch.nn.functional`` so that torch.autograd, not
refnet, differentiates it:

- ``Linear``: ``F.linear(x, w, b)``; with replicas, one ``F.linear`` per replica, stacked
  (refnet computes all replicas with one ``baddbmm``).
- ``ReLU``, ``Tanh``, ``Sigmoid``: ``nn.ReLU``, ``nn.Tanh``, ``nn.Sigmoid``.
- ``Dropout``: in training mode, the product with the scaled mask that refnet's last forward
  drew (``last_scaled_mask``); in evaluation mode, the identity.
- ``Sequential``: ``nn.Sequential`` of the twins, nested as the original.

``check_against_reference`` runs the module through the protocol (``zero_grad``, ``forward``,
``backward``, ``param``) with a random upstream gradient g = dL/dy, i.e. L = Σ g ⊙ y, runs the
twin with ``torch.autograd`` on the same input and g, and compares the forward output, dL/dx
and every dL/dθ, one ``CheckResult`` per tensor.

Tolerance (``autograd_tolerance``): both sides evaluate the same sums of products, possibly in
a different order and with or without fused multiply-adds (refnet's ``addmm``/``baddbmm`` and
``1 - y*y`` against ``F.linear`` and autograd's kernels). Rounding a sum of n terms in any order
moves it by at most γ_n·Σ|terms| ≈ n·u·Σ|terms| (Higham, *Accuracy and Stability of Numerical
Algorithms*, §3.1 and §4.2), u the unit round-off, and an error already in an operand
propagates with the operand's coefficient. ``term_magnitudes`` computes that Σ|terms| for every
compared element by running the chain on absolute values (a running-error bound): |x| through
|W| and |b|, each activation's own size plus its slope times its input's bound, and in backward
the size of every term of each derivative formula — 1 + y² for Tanh's 1 − y·y, y + y² for
Sigmoid's y·(1 − y) — plus its sensitivity to the error of y. n is the summation length of the
whole chain (``summation_length``: per Linear, ``in + out + batch`` — the sums of the forward,
of dL/dx and of dL/dw — plus ``ELEMENTWISE_TERMS`` per element-wise module). With ``SAFETY`` = 4
(2 because both sides round, 2 for slack): ``rtol = 4·n·u`` and ``atol = rtol·max Σ|terms|``
over the compared tensor. The twin always computes in float64; for a float32 module,
u = 2⁻²⁴ is the round-off of refnet's side alone. A pre-activation within n·u·Σ|terms| of a
ReLU's kink could take different branches on the two sides; random inputs do not get there.
"""

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn
from torch.nn import functional

import refnet
from verification.checks.compare import compare
from verification.checks.result import CheckResult

__all__ = [
    "SAFETY", "ELEMENTWISE_TERMS", "EXACT_ATOL", "Tolerance", "unit_roundoff",
    "autograd_tolerance", "summation_length", "describe", "torch_twin", "ParameterLabel",
    "parameter_labels", "last_scaled_mask", "upstream_gradient", "Pass", "term_magnitudes",
    "raised_result", "guarded", "check_against_reference",
]

KIND = "autograd"
SAFETY = 4
"""Factor over n·u·Σ|terms|: 2 because both sides round, 2 for slack (the module docstring)."""
ELEMENTWISE_TERMS = 2
"""Summation length charged to an element-wise module: its function and derivative, an ulp each."""
EXACT_ATOL = torch.finfo(torch.float64).tiny
"""The smallest normal float64: the ``atol`` of an exact comparison. ``compare`` divides the
error by the tolerance, so a tolerance of exactly 0 would turn a zero error into 0/0."""

_ELEMENTWISE_TWINS = {refnet.ReLU: nn.ReLU, refnet.Tanh: nn.Tanh, refnet.Sigmoid: nn.Sigmoid}


@dataclass(frozen=True)
class Tolerance:
    """The pair of ``|got - expected| <= atol + rtol·|expected|``."""

    atol: float
    rtol: float


def unit_roundoff(dtype):
    """u = half the machine epsilon: 2⁻⁵³ for float64, 2⁻²⁴ for float32."""
    return torch.finfo(dtype).eps / 2


def autograd_tolerance(dtype, terms, scale):
    """Tolerance for two evaluations of the same sums (see the module docstring).

    Args:
        dtype: the dtype refnet computed in (the twin is float64).
        terms: the summation length n, from ``summation_length``.
        scale: the largest Σ|terms| over the compared tensor (``term_magnitudes``).

    Returns:
        ``Tolerance(atol=SAFETY·n·u·scale, rtol=SAFETY·n·u)``; ``atol`` is never below
        ``EXACT_ATOL``.
    """
    rtol = SAFETY * terms * unit_roundoff(dtype)
    return Tolerance(atol=max(rtol * scale, EXACT_ATOL), rtol=rtol)


def summation_length(module, batch):
    """The number of terms n that one output or gradient element accumulates along the chain.

    Args:
        module: a refnet module (``Sequential``s nested to any depth).
        batch: samples per replica, the length of the batch sums of dL/dθ.

    Returns:
        Σ over Linear layers of ``in + out + batch`` plus ``ELEMENTWISE_TERMS`` per other module.
    """
    if isinstance(module, refnet.Sequential):
        return sum(summation_length(inner, batch) for inner in module.modules)
    if isinstance(module, refnet.Linear):
        out_features, in_features = module.weight.shape[-2:]
        return in_features + out_features + batch
    return ELEMENTWISE_TERMS


def describe(module):
    """A one-line description: ``repr`` for leaves, ``Sequential(Linear(2, 25), ReLU(), …)``."""
    if isinstance(module, refnet.Sequential):
        return f"Sequential({', '.join(describe(inner) for inner in module.modules)})"
    return repr(module)


class _LinearTwin(nn.Module):
    """``F.linear`` on float64 copies of a refnet ``Linear``'s weight ``[(R,) out, in]``."""

    def __init__(self, linear):
        super().__init__()
        self.weight = nn.Parameter(linear.weight.detach().to(torch.float64, copy=True))
        self.bias = nn.Parameter(linear.bias.detach().to(torch.float64, copy=True))
        self.label = repr(linear)

    def forward(self, x):
        """``x wᵀ + b`` for ``x`` shaped [batch, in], or replica by replica for [R, batch, in]."""
        if self.weight.ndim == 2:
            return functional.linear(x, self.weight, self.bias)
        replicas = zip(x, self.weight, self.bias, strict=True)
        return torch.stack([functional.linear(*replica) for replica in replicas])


class _DropoutTwin(nn.Module):
    """Multiplies by the scaled mask of the refnet ``Dropout``'s last forward (training mode)."""

    def __init__(self, dropout):
        super().__init__()
        self.source = dropout
        self.label = repr(dropout)

    def forward(self, x):
        """``x ⊙ m / (1 - p)`` with refnet's own mask in training mode, ``x`` in evaluation."""
        return x * _dropout_factor(self.source)


def torch_twin(module):
    """The float64 torch twin of a refnet module (see the module docstring).

    Args:
        module: ``Linear``, ``ReLU``, ``Tanh``, ``Sigmoid``, ``Dropout`` or ``Sequential``.

    Returns:
        A ``torch.nn.Module`` whose ``parameters()`` correspond, in order, to ``module.param()``.
        A Dropout twin reads the mask of the refnet module's latest forward, so run refnet's
        forward before the twin's.

    Raises:
        TypeError: for a module kind the harness has no twin for.
    """
    if isinstance(module, refnet.Sequential):
        return nn.Sequential(*(torch_twin(inner) for inner in module.modules))
    if isinstance(module, refnet.Linear):
        return _LinearTwin(module)
    if isinstance(module, refnet.Dropout):
        return _DropoutTwin(module)
    if type(module) in _ELEMENTWISE_TWINS:
        twin = _ELEMENTWISE_TWINS[type(module)]()
        twin.label = repr(module)
        return twin
    raise TypeError(f"torch_twin: no torch twin for {module!r} ({type(module).__name__}); "
                    "supported: Linear, ReLU, Tanh, Sigmoid, Dropout, Sequential")


class ParameterLabel(NamedTuple):
    """A twin parameter's name (``"2.weight"``) and its owner (``"Linear(2, 25)"``)."""

    name: str
    owner: str

    def __str__(self):
        return f"{self.name} of {self.owner}"


def parameter_labels(twin):
    """One ``ParameterLabel`` per twin parameter, in ``parameters()`` order."""
    return [ParameterLabel(name, twin.get_submodule(name.rpartition(".")[0]).label)
            for name, _ in twin.named_parameters()]


def last_scaled_mask(dropout):
    """The scaled mask ``m / (1 - p)`` that a refnet ``Dropout`` used in its last forward.

    Read through refnet's public ``Dropout.last_mask``.

    Args:
        dropout: a refnet ``Dropout`` whose latest forward ran in training mode.

    Returns:
        A tensor shaped like that forward's input, each element 0 or 1 / (1 - p).

    Raises:
        RuntimeError: before the first forward.
    """
    mask = dropout.last_mask
    if mask is None:
        raise RuntimeError(f"last_scaled_mask: {dropout!r} has not run forward yet")
    return mask


@dataclass(frozen=True)
class Pass:
    """One forward and backward: the output, dL/dy, dL/dx and each dL/dθ in ``param()`` order.

    Holds refnet's values, the twin's, or their Σ|terms| bounds (``term_magnitudes``).
    """

    output: torch.Tensor
    grad_output: torch.Tensor
    grad_input: torch.Tensor
    grad_params: list


def _dropout_factor(dropout):
    """The float64 scaled mask of the last forward in training mode; 1 in evaluation mode."""
    if not dropout.training:
        return 1.0
    return last_scaled_mask(dropout).to(torch.float64)


def upstream_gradient(output, seed):
    """The random dL/dy of a check: standard normal, drawn on the CPU from ``seed``.

    Args:
        output: the module's output; the gradient takes its shape, dtype and device.
        seed: seed of a fresh ``torch.Generator``; the same seed gives the same gradient.
    """
    generator = torch.Generator().manual_seed(seed)
    gradient = torch.randn(output.shape, generator=generator, dtype=torch.float64)
    return gradient.to(dtype=output.dtype, device=output.device)


def raised_result(check_id, module, kind, error):
    """A failed ``CheckResult`` for a check that could not finish because ``error`` was raised."""
    inf = float("inf")
    detail = (f"{kind} check FAILED for {module}: it raised {type(error).__name__}: {error}")
    return CheckResult(check_id, module, kind, False, inf, inf, 0.0, inf, detail)


def guarded(check_id, module, kind, run):
    """``run()`` (a list of results), or ``[raised_result(...)]`` when it raises."""
    try:
        return run()
    except Exception as error:  # any refnet failure becomes a failed check, not a crash
        return [raised_result(check_id, module, kind, error)]


@dataclass(frozen=True)
class _Forward:
    """One leaf's forward on values and on magnitudes: its input and output, each with bound."""

    leaf: object
    value_in: torch.Tensor
    bound_in: torch.Tensor
    value: torch.Tensor
    bound: torch.Tensor


def _leaves(module):
    if isinstance(module, refnet.Sequential):
        for inner in module.modules:
            yield from _leaves(inner)
    else:
        yield module


def _linear_forward(leaf, value, bound):
    weight = leaf.weight.to(torch.float64).transpose(-1, -2)
    bias = leaf.bias.to(torch.float64).unsqueeze(-2)
    return value.matmul(weight) + bias, bound.matmul(weight.abs()) + bias.abs()


def _linear_backward(record, grad_bound):
    weight_bound = record.leaf.weight.to(torch.float64).abs()
    params = [grad_bound.transpose(-1, -2).matmul(record.bound_in), grad_bound.sum(dim=-2)]
    return grad_bound.matmul(weight_bound), params


def _relu_forward(leaf, value, bound):
    return value.clamp_min(0), bound


def _relu_backward(record, grad_bound):
    return grad_bound * (record.value_in > 0), []


def _tanh_forward(leaf, value, bound):
    y = torch.tanh(value)
    return y, y.abs() + (1 - y * y) * bound


def _tanh_backward(record, grad_bound):
    y = record.value
    return grad_bound * (1 + y * y + 2 * y.abs() * record.bound), []


def _sigmoid_forward(leaf, value, bound):
    y = torch.sigmoid(value)
    return y, y + y * (1 - y) * bound


def _sigmoid_backward(record, grad_bound):
    y = record.value
    return grad_bound * (y + y * y + (1 - 2 * y).abs() * record.bound), []


def _dropout_forward(leaf, value, bound):
    factor = _dropout_factor(leaf)
    return value * factor, bound * factor


def _dropout_backward(record, grad_bound):
    return grad_bound * _dropout_factor(record.leaf), []


_MAGNITUDE_RULES = {
    refnet.Linear: (_linear_forward, _linear_backward),
    refnet.ReLU: (_relu_forward, _relu_backward),
    refnet.Tanh: (_tanh_forward, _tanh_backward),
    refnet.Sigmoid: (_sigmoid_forward, _sigmoid_backward),
    refnet.Dropout: (_dropout_forward, _dropout_backward),
}
"""Per leaf kind: (value, bound) forward and the backward of the bound, as in the docstring."""


def term_magnitudes(module, x, grad_output_bound_of):
    """Σ|terms| of every output and gradient element: the chain run on absolute values.

    Forward: x and its bound |x| go through each leaf (|W|, |b| for Linear; an activation's
    own size plus its slope times its input's bound). Backward: the bound of dL/dy goes back
    through |W| and the term sizes of each derivative formula plus their sensitivity to the
    error of y (module docstring). Parameters are the module's current ones; a Dropout uses the
    mask of its latest forward, so run refnet's forward first.

    Args:
        module: a refnet module.
        x: input, [batch, features] or [R, batch, features].
        grad_output_bound_of: maps the output's bound to a bound on |dL/dy| and on its error
            scale, shaped like the output (``lambda bound: g.abs()`` for a fixed g).

    Returns:
        A ``Pass`` of float64 bounds shaped like the output, dL/dy, x and each parameter.
    """
    value = x.detach().to(torch.float64)
    bound = value.abs()
    records = []
    for leaf in _leaves(module):
        forward, _ = _MAGNITUDE_RULES[type(leaf)]
        records.append(_Forward(leaf, value, bound, *forward(leaf, value, bound)))
        value, bound = records[-1].value, records[-1].bound
    grad_output_bound = grad_output_bound_of(bound).to(torch.float64)
    grad_bound, grad_params = grad_output_bound, []
    for record in reversed(records):
        _, backward = _MAGNITUDE_RULES[type(record.leaf)]
        grad_bound, params = backward(record, grad_bound)
        grad_params = params + grad_params
    return Pass(bound, grad_output_bound, grad_bound, grad_params)


def _refnet_pass(module, x, grad_output_seed):
    """Run the module through the protocol: zero_grad, forward, backward with a random g."""
    module.zero_grad()
    output = module.forward(x)
    grad_output = upstream_gradient(output, grad_output_seed)
    grad_input = module.backward(grad_output)
    grad_params = [gradient.clone() for _, gradient in module.param()]
    return Pass(output, grad_output, grad_input, grad_params)


def _twin_pass(twin, x, grad_output):
    """The same pass through the twin, differentiated by torch.autograd in float64."""
    x = x.detach().to(torch.float64).requires_grad_()
    output = twin(x)
    output.backward(grad_output.to(torch.float64))
    grad_params = [parameter.grad for parameter in twin.parameters()]
    return Pass(output.detach(), grad_output, x.grad, grad_params)


def _batch_size(x):
    return x.shape[-2] if x.ndim >= 2 else 1


def _compare_tensor(check_id, module, what, expected, got, magnitude, budget):
    tolerance = budget(float(magnitude.max()) if magnitude.numel() else 0.0)
    return compare(check_id=check_id, module=module, kind=KIND, expected=expected, got=got,
                   atol=tolerance.atol, rtol=tolerance.rtol, what=what, context=budget.context)


@dataclass(frozen=True)
class _Budget:
    """``autograd_tolerance`` for one check: the dtype, the summation length, the context."""

    dtype: torch.dtype
    terms: int
    context: str

    def __call__(self, scale):
        return autograd_tolerance(self.dtype, self.terms, scale)


def _compare_passes(name, labels, expected, got, magnitudes, budget):
    """One result for the output, one for dL/dx, one per parameter gradient."""
    prefix = f"{KIND}/{name}"
    results = [
        _compare_tensor(f"{prefix}/output", name, "forward output", expected.output,
                        got.output, magnitudes.output, budget),
        _compare_tensor(f"{prefix}/grad_input", name, "dL/dx", expected.grad_input,
                        got.grad_input, magnitudes.grad_input, budget),
    ]
    if len(got.grad_params) != len(labels):
        return [*results, _parameter_count_mismatch(prefix, name, labels, got.grad_params)]
    for label, expected_grad, got_grad, magnitude in zip(
            labels, expected.grad_params, got.grad_params, magnitudes.grad_params, strict=True):
        results.append(_compare_tensor(f"{prefix}/grad_{label.name}", name, f"dL/d {label}",
                                       expected_grad, got_grad, magnitude, budget))
    return results


def _parameter_count_mismatch(prefix, name, labels, got_grads):
    inf = float("inf")
    detail = (f"{KIND} check FAILED for {name}: param() returned {len(got_grads)} pairs, "
              f"the torch twin has {len(labels)} parameters ({', '.join(map(str, labels))})")
    return CheckResult(f"{prefix}/param", name, KIND, False, inf, inf, 0.0, inf, detail)


def check_against_reference(module, x, *, seed=0, name=None):
    """Compare a refnet module's forward, dL/dx and every dL/dθ with its autograd twin.

    Steps: build the twin from the module's current parameters; run refnet (zero_grad,
    forward, backward with g = dL/dy drawn from ``seed``); run the twin with autograd on the
    same x and g; compare each tensor with ``autograd_tolerance``. The module's gradients are
    overwritten; its parameter values are left unchanged.

    Args:
        module: a refnet module (``Sequential`` nested to any depth); Dropout is checked under
            the mask its own forward draws.
        x: input, [batch, features] or [R, batch, features] with replicas; float32 or float64.
        seed: seed of the random upstream gradient g.
        name: the module's name in the ids; ``describe(module)`` when ``None``.

    Returns:
        ``CheckResult``s with ids ``autograd/<name>/output``, ``…/grad_input`` and
        ``…/grad_<parameter>`` (e.g. ``grad_0.weight``); a single failed
        ``autograd/<name>/raised`` when refnet raises.
    """
    name = describe(module) if name is None else name
    twin = torch_twin(module)
    return guarded(f"{KIND}/{name}/raised", name, KIND,
                   lambda: _check_against_twin(module, twin, x, seed, name))


def _check_against_twin(module, twin, x, seed, name):
    """The steps of ``check_against_reference`` once the twin exists."""
    got = _refnet_pass(module, x, seed)
    expected = _twin_pass(twin, x, got.grad_output)
    magnitudes = term_magnitudes(module, x, lambda _: got.grad_output.abs())
    terms = summation_length(module, _batch_size(x))
    budget = _Budget(x.dtype, terms, f"upstream-gradient seed {seed}, input {list(x.shape)} "
                                     f"{x.dtype}, summation length n={terms}")
    return _compare_passes(name, parameter_labels(twin), expected, got, magnitudes, budget)
