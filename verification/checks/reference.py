"""Autograd reference: any module of known structure checked against a torch twin.

The twin is built from the STRUCTURE the harness asked for (``verification/targets/spec.py``)
and float64 copies of the parameter values the module lists in ``param()`` (a weight, then a
bias, per Linear; a weight stored ``[in, out]`` is transposed by the declared
``weight_layout``), written with ``torch.nn`` and ``torch.nn.functional`` so that
torch.autograd, not the module, differentiates it. Nothing depends on the module's class names
or attributes, so the same check judges refnet and any other framework:

- ``linear``: ``F.linear(x, w, b)``; with replicas, one ``F.linear`` per replica, stacked
  (refnet computes all replicas with one ``baddbmm``).
- ``relu``, ``tanh``, ``sigmoid``: ``nn.ReLU``, ``nn.Tanh``, ``nn.Sigmoid``.
- an extra activation (``spec.Function``): its torch function with its keyword arguments, and
  float64 copies of its learned tensors (``F.prelu(x, weight)``, the weight as ``param()``
  lists it: one value or one per feature).
- ``dropout``: in training mode, the product with the scaled mask of the module's last forward
  (``last_scaled_mask``: refnet's public ``last_mask``); in evaluation mode, the identity.
- ``sequential``: ``nn.Sequential`` of the twins, nested as the structure. A ``shared``
  instance is ONE twin placed at each of its positions, so its parameters' gradients add up
  the positions' contributions, as they must in a framework that supports the reuse.

``param()`` lists each instance's parameters once, in order of first position (a weight then a
bias per Linear, the learned tensors of an extra activation); a container that lists a shared
instance's parameters again at each later position is read at the first one.

``check_against_reference`` runs the module through the protocol (``zero_grad``, ``forward``,
``backward``, ``param``) with a random upstream gradient g = dL/dy, i.e. L = Σ g ⊙ y, runs the
twin with ``torch.autograd`` on the same input and g (with grad mode switched on for the twin
alone, whatever the framework did to it), and compares the forward output, dL/dx and every
dL/dθ, one ``CheckResult`` per tensor.

Tolerance (``autograd_tolerance``): both sides evaluate the same sums of products, possibly in
a different order and with or without fused multiply-adds (refnet's ``addmm``/``baddbmm`` and
``1 - y*y`` against ``F.linear`` and autograd's kernels). Rounding a sum of n terms in any order
moves it by at most γ_n·Σ|terms| ≈ n·u·Σ|terms| (Higham, *Accuracy and Stability of Numerical
Algorithms*, §3.1 and §4.2), u the unit round-off, and an error already in an operand
propagates with the operand's coefficient. ``term_magnitudes`` computes, for every compared
element, an error scale E with |error| ≤ n·u·E to first order, by running the chain on
absolute values (a running-error bound). Forward, E is Σ|terms|: |x| through |W| and |b|, each
activation's own size plus its slope times its input's E. Backward carries two bounds for each
gradient: T, the Σ|terms| of its exact computation, and E, its error scale. Through a Linear
both go through |W|; dL/dW = gᵀx gets E_g·|x| + T_g·E_x (the error of g times x, g times the
error of x); an activation's derivative computed from y has term sizes s (1 + y² for Tanh's
1 − y·y, y + y² for Sigmoid's y·(1 − y)) and sensitivity d to the error of y (2|y|, |1 − 2y|):
T ← T·s and E ← E·s + T·d·E_y. An extra activation, whose formula the harness does not know,
is charged |y| + |f′(x)|·E_x forward and, backward, s = |f′(x)| and T·d·E_y replaced by
T·|f″(x)|·(|x| + E_x) (its slope, plus the slope's change under an error of x's own size),
with f′ and f″ from torch.autograd; its parameter's gradient Σ(E_g·|∂y/∂θ| + T_g·(|∂y/∂θ| +
E_x)) (∂y/∂θ of the parameterised activations torch has, PReLU's min(x, 0), is 1-Lipschitz in
x), the last term where ∂y/∂θ ≠ 0. (Multiplying the sensitivity by E rather than T, as an
earlier version did, compounds the bound layer by layer: in float32, on the report network, it
reached 6.4 times the largest gradient, so the check could not fail; it is now 0.34.) n is the
summation length of the whole chain (``summation_length``: per Linear, ``in + out + batch`` —
the sums of the forward, of dL/dx and of dL/dw — plus ``ELEMENTWISE_TERMS`` per element-wise
module, and ``batch·features`` more for one with a parameter, whose gradient is a batch sum).
With ``SAFETY`` = 4 (2 because both sides round, 2 for slack): ``rtol = 4·n·u`` and
``atol = rtol·max E`` over the compared tensor. The twin always computes in float64; for a
float32 module (one that computes in float32 whatever it is given, or is given float32),
u = 2⁻²⁴ is the round-off of the module's side alone. A pre-activation within n·u·Σ|terms| of
a ReLU's kink could take different branches on the two sides; random inputs do not get there.

Detection power (``CheckResult.detectable``: the relative error of the compared tensor's
largest element sure to fail; measured over every case of refnet and of the ``float32``
fixture, the README's table, asserted by tests/test_detection_power.py with an error of that
size planted): float64 7e-10, float32 0.34 (the report network's dL/dx).
"""

import ast
import re
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn
from torch.nn import functional

from verification.checks.compare import EXACT, compare, computed_dtype, unit_roundoff
from verification.checks.diagnosis import diagnose_shape, prediction_sizes
from verification.checks.result import CheckResult
from verification.targets.protocol import ProtocolError
from verification.targets.spec import Layer, as_component, instances, leaves
from verification.targets.spec import describe as describe_layer
from verification.targets.state import TorchState, state_changes, torch_state_kept

__all__ = [
    "SAFETY", "ELEMENTWISE_TERMS", "EXACT_ATOL", "Tolerance", "unit_roundoff",
    "autograd_tolerance", "summation_length", "describe", "torch_twin", "ParameterLabel",
    "parameter_labels", "last_scaled_mask", "upstream_gradient", "Pass", "term_magnitudes",
    "raised_result", "guarded", "check_against_reference", "canonical_pairs",
    "instance_pairs",
]

KIND = "autograd"
SAFETY = 4
"""Factor over n·u·Σ|terms|: 2 because both sides round, 2 for slack (the module docstring)."""
ELEMENTWISE_TERMS = 2
"""Summation length charged to an element-wise module: its function and derivative, an ulp each."""
EXACT_ATOL = EXACT
"""The ``atol`` of an exact comparison (``verification.checks.compare.EXACT``)."""

_ELEMENTWISE_TWINS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}


@dataclass(frozen=True)
class Tolerance:
    """The pair of ``|got - expected| <= atol + rtol·|expected|``."""

    atol: float
    rtol: float


def autograd_tolerance(dtype, terms, scale):
    """Tolerance for two evaluations of the same sums (see the module docstring).

    Args:
        dtype: the dtype the module computed in (the twin is float64).
        terms: the summation length n, from ``summation_length``.
        scale: the largest Σ|terms| over the compared tensor (``term_magnitudes``).

    Returns:
        ``Tolerance(atol=SAFETY·n·u·scale, rtol=SAFETY·n·u)``; ``atol`` is never below
        ``EXACT_ATOL``.
    """
    rtol = SAFETY * terms * unit_roundoff(dtype)
    return Tolerance(atol=max(rtol * scale, EXACT_ATOL), rtol=rtol)


def _layer_of(module):
    """The structure of a ``Layer`` or a ``Component`` (``ValueError`` where unknown)."""
    if isinstance(module, Layer):
        return module
    component = as_component(module)
    if component.layer is None:
        raise ValueError(_unknown_structure(component))
    return component.layer


def _unknown_structure(component):
    return (f"the structure of {component.name} is unknown: give layer=verification.targets."
            "spec.…, or a Component that knows it (a Target's, which knows what it built; "
            "verification.targets.refnet_target.refnet_component(module) for refnet's modules)")


def summation_length(module, batch):
    """The number of terms n that one output or gradient element accumulates along the chain.

    Args:
        module: a ``Layer`` or a ``Component`` (nested to any depth).
        batch: samples per replica, the length of the batch sums of dL/dθ.

    Returns:
        Σ over Linear layers of ``in + out + batch`` plus ``ELEMENTWISE_TERMS`` per other leaf
        (and ``batch·features`` for an activation with a parameter).
    """
    return sum(leaf.in_features + leaf.out_features + batch if leaf.kind == "linear"
               else ELEMENTWISE_TERMS + (batch * max(leaf.in_features, 1)
                                         if _parameter_names(leaf) else 0)
               for leaf in leaves(_layer_of(module)))


def _parameter_names(leaf):
    """The names of a leaf's parameters in ``param()`` order."""
    if leaf.kind == "linear":
        return ("weight", "bias")
    return leaf.function.parameters if leaf.function is not None else ()


def instance_pairs(component, pairs=None):
    """``[(leaf, its param() pairs)]`` per module instance, in order of first position.

    Args:
        component: a ``Component`` with a known structure.
        pairs: ``param()`` pairs; the component's current ones when ``None``.

    Raises:
        ProtocolError: ``param()`` lists neither each instance's parameters once nor each
            position's.
    """
    pairs = component.view.param() if pairs is None else pairs
    unique = list(instances(component.layer))
    wanted = sum(len(_parameter_names(leaf)) for leaf in unique)
    if len(pairs) == wanted:
        flat = iter(pairs)
        return [(leaf, [next(flat) for _ in _parameter_names(leaf)]) for leaf in unique]
    positions = list(leaves(component.layer))
    if len(pairs) == sum(len(_parameter_names(leaf)) for leaf in positions) and len(
            positions) > len(unique):
        flat, read = iter(pairs), {}
        for leaf in positions:
            taken = [next(flat) for _ in _parameter_names(leaf)]
            read.setdefault(leaf.shared or id(leaf), (leaf, taken))
        return list(read.values())
    counts = ", ".join(f"{describe_layer(leaf)}: {len(_parameter_names(leaf))}"
                       for leaf in unique if _parameter_names(leaf))
    raise ProtocolError(f"{component.name}.{component.view.param_source} lists {len(pairs)} "
                        f"pairs; its structure has {wanted} parameters ({counts or 'none'})")


def describe(module):
    """A one-line description: ``Linear(2, 25)``, ``Sequential(Linear(2, 25), ReLU(), …)``."""
    if isinstance(module, Layer):
        return describe_layer(module)
    return as_component(module).name


def canonical_pairs(component, pairs=None):
    """float64 ``(value, gradient)`` per parameter, weights in the report's ``[(R,) out, in]``.

    Args:
        component: a ``Component`` with a known structure.
        pairs: ``param()`` pairs to convert; the component's current ones when ``None``.

    Raises:
        ProtocolError: ``param()`` does not list a weight and a bias per Linear of the
            structure (and an extra activation's learned tensors), or a shape contradicts it
            (the message suggests the declaration).
    """
    converted, index = [], 0
    for leaf, leaf_pairs in instance_pairs(component, pairs):
        if leaf.kind == "linear":
            (weight, grad_weight), (bias, grad_bias) = leaf_pairs
            to_weight = _weight_converter(component, leaf, weight, index)
            to_bias = _bias_converter(component, leaf, bias, index + 1)
            converted += [(to_weight(weight), to_weight(grad_weight)),
                          (to_bias(bias), to_bias(grad_bias))]
        else:
            for offset, (value, gradient) in enumerate(leaf_pairs):
                to_flat = _activation_converter(component, leaf, value, index + offset)
                converted.append((to_flat(value), to_flat(gradient)))
        index += len(leaf_pairs)
    return converted


def _activation_converter(component, leaf, value, index):
    """An extra activation's learned tensor as float64 ``[1]`` or ``[features]``."""
    if value.numel() not in (1, leaf.in_features):
        raise ProtocolError(f"{component.name}.{component.view.param_source}[{index}], a "
                            f"parameter of {describe_layer(leaf)}, has shape "
                            f"{list(value.shape)}; expected one value or one per feature "
                            f"({leaf.in_features})")
    return lambda tensor: tensor.detach().to(torch.float64, copy=True).reshape(-1)


def _replica_shape(linear):
    return (linear.replicas,) if linear.replicas else ()


def _weight_converter(component, linear, weight, index):
    out_in = (linear.out_features, linear.in_features)
    layout = component.weight_layout
    stored = _replica_shape(linear) + (out_in if layout == "out_in" else out_in[::-1])
    if tuple(weight.shape) != stored:
        other = "in_out" if layout == "out_in" else "out_in"
        hint = (f"; it is stored [{'in, out' if other == 'in_out' else 'out, in'}]: declare "
                f"weight_layout = {other!r}"
                if tuple(weight.shape) == _replica_shape(linear) + stored[-2:][::-1] else "")
        raise ProtocolError(f"{component.name}.{component.view.param_source}[{index}], the "
                            "weight of "
                            f"{describe_layer(linear)}, has shape {list(weight.shape)}; "
                            f"expected {list(stored)} for weight_layout={layout!r}{hint}")
    if layout == "out_in":
        return lambda tensor: tensor.detach().to(torch.float64, copy=True)
    return lambda tensor: tensor.detach().to(torch.float64, copy=True).transpose(-1, -2)


def _bias_converter(component, linear, bias, index):
    shape = _replica_shape(linear) + (linear.out_features,)
    if bias.numel() != linear.out_features * (linear.replicas or 1):
        raise ProtocolError(f"{component.name}.{component.view.param_source}[{index}], the "
                            "bias of "
                            f"{describe_layer(linear)}, has shape {list(bias.shape)}; expected "
                            f"{linear.out_features} elements")
    return lambda tensor: tensor.detach().to(torch.float64, copy=True).reshape(shape)


class _LinearTwin(nn.Module):
    """``F.linear`` on float64 copies of a Linear's weight ``[(R,) out, in]`` and bias."""

    def __init__(self, weight, bias, label):
        super().__init__()
        self.weight = nn.Parameter(weight.clone())
        self.bias = nn.Parameter(bias.clone())
        self.label = label

    def forward(self, x):
        """``x wᵀ + b`` for ``x`` shaped [batch, in], or replica by replica for [R, batch, in]."""
        if self.weight.ndim == 2:
            return functional.linear(x, self.weight, self.bias)
        replicas = zip(x, self.weight, self.bias, strict=True)
        return torch.stack([functional.linear(*replica) for replica in replicas])


class _DropoutTwin(nn.Module):
    """Multiplies by the scaled mask of the module's last forward (training mode), else 1."""

    def __init__(self, dropout, label):
        super().__init__()
        self.source = dropout
        self.label = label

    def forward(self, x):
        """``x ⊙ m / (1 - p)`` with the module's own mask in training mode, ``x`` in evaluation."""
        return x * _dropout_factor(self.source)


class _FunctionTwin(nn.Module):
    """An extra activation: its torch function on x and float64 copies of its tensors."""

    def __init__(self, function, parameters, label):
        super().__init__()
        self.function, self.label = function, label
        for name, value in zip(function.parameters, parameters, strict=True):
            self.register_parameter(name, nn.Parameter(value.clone()))

    def forward(self, x):
        """``f(x, *learned tensors, **options)``."""
        return self.function(x, *(getattr(self, name) for name in self.function.parameters))


def _twin(component, values):
    """The nested ``nn.Sequential`` of leaf twins for ``component.layer`` (module docstring);
    a shared instance's twin is made at its first position and placed again at the others."""
    values, objects, made = iter(values), iter(component.leaves or []), {}

    def make(node):
        if node.kind == "sequential":
            return nn.Sequential(*(make(child) for child in node.children))
        source = next(objects, None)
        if node.shared not in made:
            made[node.shared] = _leaf_twin(node, source, values)
        twin = made[node.shared]
        if not node.shared:
            del made[node.shared]
        return twin

    return make(component.layer)


def _leaf_twin(node, source, values):
    label = describe_layer(node)
    if node.kind == "linear":
        return _LinearTwin(next(values), next(values), label)
    if node.kind == "dropout":
        return _DropoutTwin(source, label)
    if node.function is not None:
        return _FunctionTwin(node.function, [next(values) for _ in node.function.parameters],
                             label)
    twin = _ELEMENTWISE_TWINS[node.kind]()
    twin.label = label
    return twin


def torch_twin(module, layer=None, *, weight_layout="out_in"):
    """The float64 torch twin of a module of known structure (see the module docstring).

    Args:
        module: a ``Component`` (``refnet_target.refnet_component`` for a refnet module), or
            any module with ``layer`` given.
        layer: its structure (``verification.targets.spec``); the ``Component``'s when
            ``None``.
        weight_layout: how ``param()`` stores weights, ``"out_in"`` or ``"in_out"``.

    Returns:
        A ``torch.nn.Module`` whose ``parameters()`` correspond, in order, to ``param()``.
        A Dropout twin reads the mask of the module's latest forward, so run the module's
        forward before the twin's.

    Raises:
        ValueError: the structure is unknown (a foreign module without ``layer``).
        ProtocolError: ``param()`` contradicts the structure.
    """
    component = as_component(module, layer, weight_layout=weight_layout)
    if component.layer is None:
        raise ValueError(f"torch_twin: {_unknown_structure(component)}")
    return _twin(component, [value for value, _ in canonical_pairs(component)])


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
    """The scaled mask ``m / (1 - p)`` that a Dropout used in its last forward.

    Read through the module's public ``last_mask`` (refnet's ``Dropout`` has one; a Dropout of
    another framework inside a twinned network needs one too).

    Raises:
        RuntimeError: before the first forward, or when the module exposes no mask.
    """
    if not hasattr(dropout, "last_mask"):
        raise RuntimeError(f"last_scaled_mask: {dropout!r} exposes no last_mask, so a twin of "
                           "a network with a training-mode Dropout cannot use its mask")
    mask = dropout.last_mask
    if mask is None:
        raise RuntimeError(f"last_scaled_mask: {dropout!r} has not run forward yet")
    return mask


@dataclass(frozen=True)
class Pass:
    """One forward and backward: the output, dL/dy, dL/dx and each dL/dθ in ``param()`` order.

    Holds the module's values, the twin's, or their Σ|terms| bounds (``term_magnitudes``).
    ``grad_input`` is ``None`` for a container declared not to return dL/dx.
    """

    output: torch.Tensor
    grad_output: torch.Tensor
    grad_input: torch.Tensor | None
    grad_params: list


def _dropout_factor(dropout):
    """The float64 scaled mask of the last forward in training mode; 1 in evaluation mode."""
    if dropout is None or not getattr(dropout, "training", True):
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
    text = str(error) if isinstance(error, ProtocolError) else f"{type(error).__name__}: {error}"
    detail = f"{kind} check FAILED for {module}: it raised {text}"
    return CheckResult(check_id, module, kind, False, inf, inf, 0.0, inf, detail,
                       diagnosis=_raised_diagnosis(text))


_PAIR_SHAPES = re.compile(r"value shape (\[[\d, ]*\]) but gradient shape (\[[\d, ]*\])")
"""``protocol.parameter_pairs``'s message for a gradient shaped unlike its value."""


def _raised_diagnosis(text):
    """A raised check's diagnosis: "transposed" for a gradient whose shape is its value's
    transposed (the protocol's own message, ``_PAIR_SHAPES``), else that nothing came back to
    compare."""
    shapes = _PAIR_SHAPES.search(text)
    if shapes:
        found = diagnose_shape(*(ast.literal_eval(shape) for shape in shapes.groups()))
        if found.startswith("transposed"):
            return found
    return "no recognisable pattern (it raised: no tensor came back to compare)"


def guarded(check_id, module, kind, run):
    """``run()`` (a list of results) with torch's global state kept, never raising.

    A ``run`` that raises gives ``[raised_result(...)]``. A ``run`` during which the target
    changed grad mode or the default dtype gets one more failed result,
    ``<check_id>/global-state``, naming the change; the state is restored either way.
    """
    with torch_state_kept() as before:
        try:
            results = run()
        except Exception as error:  # any failure of the target is a failed check, not a crash
            results = [raised_result(check_id, module, kind, error)]
        changes = state_changes(before, TorchState.now())
    if changes:
        inf = float("inf")
        results = [*results, CheckResult(
            f"{check_id}/global-state", module, kind, False, inf, inf, 0.0, inf,
            f"{kind} check FAILED for {module}: it changed torch's global state "
            f"({'; '.join(changes)}); callers rely on a module leaving it alone")]
    return results


@dataclass(frozen=True)
class _Forward:
    """One leaf's forward on values and on magnitudes: its input and output, each with bound."""

    leaf: Layer
    source: object
    params: tuple
    value_in: torch.Tensor
    bound_in: torch.Tensor
    value: torch.Tensor
    bound: torch.Tensor


def _linear_forward(params, source, value, bound):
    weight = params[0].transpose(-1, -2)
    bias = params[1].unsqueeze(-2)
    return value.matmul(weight) + bias, bound.matmul(weight.abs()) + bias.abs()


@dataclass(frozen=True)
class _GradBound:
    """The two bounds backward carries for dL/d(value): ``terms``, Σ|terms| of the exact
    computation (what it rounds), and ``error``, the scale E of its error, |δ| ≤ ε·E."""

    terms: torch.Tensor
    error: torch.Tensor

    def times(self, factor):
        return _GradBound(self.terms * factor, self.error * factor)


def _linear_backward(record, grad):
    """dL/dx = g W: both bounds through |W| (W is exact). dL/dW = gᵀx: the error of g times
    |x|, plus the terms of g times the forward error scale of x (which covers |x|, so the
    product's own rounding too); dL/db = Σ g."""
    weight_bound = record.params[0].abs()
    weight_error = (grad.error.transpose(-1, -2).matmul(record.value_in.abs())
                    + grad.terms.transpose(-1, -2).matmul(record.bound_in))
    grad_input = _GradBound(grad.terms.matmul(weight_bound), grad.error.matmul(weight_bound))
    return grad_input, [weight_error, grad.error.sum(dim=-2)]


def _relu_backward(record, grad):
    return grad.times(record.value_in > 0), []


def _elementwise_backward(grad, term_sizes, sensitivity, bound_in):
    """g·f'(y) with f' computed from y: terms g·(term sizes of f'), error δg·(term sizes)
    plus the terms of g times f'\'s sensitivity to y times the error scale of y."""
    return _GradBound(grad.terms * term_sizes,
                      grad.error * term_sizes + grad.terms * sensitivity * bound_in)


def _tanh_backward(record, grad):
    """1 − y·y: terms 1 + y², sensitivity 2|y|."""
    y = record.value
    return _elementwise_backward(grad, 1 + y * y, 2 * y.abs(), record.bound), []


def _sigmoid_backward(record, grad):
    """y·(1 − y): terms y + y², sensitivity |1 − 2y|."""
    y = record.value
    return _elementwise_backward(grad, y + y * y, (1 - 2 * y).abs(), record.bound), []


def _dropout_backward(record, grad):
    return grad.times(_dropout_factor(record.source)), []


def _relu_forward(params, source, value, bound):
    return value.clamp_min(0), bound


def _tanh_forward(params, source, value, bound):
    y = torch.tanh(value)
    return y, y.abs() + (1 - y * y) * bound


def _sigmoid_forward(params, source, value, bound):
    y = torch.sigmoid(value)
    return y, y + y * (1 - y) * bound


def _dropout_forward(params, source, value, bound):
    factor = _dropout_factor(source)
    return value * factor, bound * factor


def _slopes(function, x, params):
    """f′(x) and f″(x) of an element-wise torch function, by torch.autograd (a missing second
    derivative, as of a piecewise-linear function, is 0)."""
    with torch.enable_grad():
        x = x.detach().clone().requires_grad_()
        (first,) = torch.autograd.grad(function(x, *params).sum(), x, create_graph=True)
        second = (torch.autograd.grad(first.sum(), x, allow_unused=True)[0]
                  if first.requires_grad else None)
    return first.detach(), torch.zeros_like(x) if second is None else second.detach()


def _function_forward(params, source, value, bound, function):
    first, _ = _slopes(function, value, params)
    y = function(value, *params)
    return y, y.abs() + first.abs() * bound


def _function_backward(record, grad, function):
    first, second = _slopes(function, record.value_in, record.params)
    sensitivity = second.abs() * (record.value_in.abs() + record.bound_in)
    grad_input = _GradBound(grad.terms * first.abs(),
                            grad.error * first.abs() + grad.terms * sensitivity)
    grad_params = []
    for index, param in enumerate(record.params):
        def of_param(value, index=index):
            return function(record.value_in, *record.params[:index], value,
                            *record.params[index + 1:])

        with torch.enable_grad():
            jacobian = torch.autograd.functional.jacobian(of_param, param).abs()
        moved = record.bound_in.unsqueeze(-1) * (jacobian != 0)
        error = (grad.error.unsqueeze(-1) * jacobian
                 + grad.terms.unsqueeze(-1) * (jacobian + moved))
        grad_params.append(error.reshape(-1, param.numel()).sum(dim=0))
    return grad_input, grad_params


_MAGNITUDE_RULES = {
    "linear": (_linear_forward, _linear_backward),
    "relu": (_relu_forward, _relu_backward),
    "tanh": (_tanh_forward, _tanh_backward),
    "sigmoid": (_sigmoid_forward, _sigmoid_backward),
    "dropout": (_dropout_forward, _dropout_backward),
}
"""Per leaf kind: the forward ``(params, source, value, bound) -> (value, bound)`` and the
backward of the bounds ``(record, _GradBound) -> (_GradBound, parameter error scales)``."""


def _rules(leaf):
    """The magnitude rules of a leaf: ``_MAGNITUDE_RULES``, or an extra activation's."""
    if leaf.function is None:
        return _MAGNITUDE_RULES[leaf.kind]
    function = leaf.function
    return (lambda params, source, value, bound: _function_forward(params, source, value,
                                                                   bound, function),
            lambda record, grad: _function_backward(record, grad, function))


def term_magnitudes(module, x, grad_output_bound_of):
    """Σ|terms| of every output and gradient element: the chain run on absolute values.

    Forward: x and its bound |x| go through each leaf (|W|, |b| for Linear; an activation's
    own size plus its slope times its input's bound). Backward: the bound of dL/dy goes back
    through |W| and the term sizes of each derivative formula plus their sensitivity to the
    error of y (module docstring). Parameters are the module's current ones (``param()``); a
    shared instance's parameter bounds add up its positions'. A Dropout uses the mask of its
    latest forward, so run the module's forward first.

    Args:
        module: a ``Component`` of known structure.
        x: input, [batch, features] or [R, batch, features].
        grad_output_bound_of: ``(output, output bound) -> bound``: maps the output's value and
            its error scale to a bound on dL/dy's terms and on its error scale, shaped like
            the output (``lambda output, bound: g.abs()`` for a fixed g), or to a pair
            ``(terms, error)`` of the two.

    Returns:
        A ``Pass`` of float64 bounds shaped like the output, dL/dy, x and each parameter
        (parameters in the report's layout).
    """
    component = as_component(module)
    values = iter(value for value, _ in canonical_pairs(component))
    sources = iter(component.leaves or [])
    value = x.detach().to(torch.float64)
    bound = value.abs()
    records, instance_params, order = [], {}, []
    for position, leaf in enumerate(leaves(component.layer)):
        key = leaf.shared or position
        if key not in instance_params:
            order.append(key)
            instance_params[key] = tuple(next(values) for _ in _parameter_names(leaf))
        params = instance_params[key]
        source = next(sources, None)
        forward, _ = _rules(leaf)
        out_value, out_bound = forward(params, source, value, bound)
        records.append((key, _Forward(leaf, source, params, value, bound, out_value, out_bound)))
        value, bound = out_value, out_bound
    grad_output_bounds = grad_output_bound_of(value, bound)
    terms, error = (grad_output_bounds if isinstance(grad_output_bounds, tuple)
                    else (grad_output_bounds, grad_output_bounds))
    grad_output_bound = torch.maximum(terms, error).to(torch.float64)
    grad, grad_params = _GradBound(terms.to(torch.float64), error.to(torch.float64)), {}
    for key, record in reversed(records):
        _, backward = _rules(record.leaf)
        grad, params = backward(record, grad)
        if params:
            grad_params[key] = [earlier + bound_ for earlier, bound_ in zip(
                grad_params[key], params, strict=True)] if key in grad_params else params
    return Pass(bound, grad_output_bound, grad.error,
                [bound_ for key in order for bound_ in grad_params.get(key, [])])


def _protocol_pass(component, x, grad_output_seed):
    """Run the module through the protocol: zero_grad, forward, backward with a random g."""
    view = component.view
    view.zero_grad()
    output = view.forward(x)
    grad_output = upstream_gradient(output, grad_output_seed)
    grad_input = view.backward(grad_output)
    grad_params = [gradient for _, gradient in canonical_pairs(component)]
    return Pass(output, grad_output, grad_input, grad_params)


def _twin_pass(twin, x, grad_output):
    """The same pass through the twin, differentiated by torch.autograd in float64."""
    with torch.enable_grad():
        x = x.detach().to(torch.float64).requires_grad_()
        output = twin(x)
        output.backward(grad_output.to(torch.float64))
    grad_params = [parameter.grad for parameter in twin.parameters()]
    return Pass(output.detach(), grad_output, x.grad, grad_params)


def _batch_size(x):
    return x.shape[-2] if x.ndim >= 2 else 1


def _compare_tensor(check_id, module, what, expected, got, magnitude, budget, **diagnosis):
    """``compare`` under the budget's tolerance, in float32's u where ``got`` is float32
    (a tolerance is never taken from another dtype than the compared tensor's); ``diagnosis``:
    ``compare``'s ``sizes`` and ``inputs``."""
    tolerance = budget(float(magnitude.max()) if magnitude.numel() else 0.0, got.dtype)
    return compare(check_id=check_id, module=module, kind=KIND, expected=expected, got=got,
                   atol=tolerance.atol, rtol=tolerance.rtol, what=what, context=budget.context,
                   **diagnosis)


@dataclass(frozen=True)
class _Budget:
    """``autograd_tolerance`` for one check: the dtype, the summation length, the context."""

    dtype: torch.dtype
    terms: int
    context: str

    def __call__(self, scale, compared_dtype=torch.float64):
        dtype = torch.float32 if torch.float32 in (self.dtype, compared_dtype) else self.dtype
        return autograd_tolerance(dtype, self.terms, scale)


def _compare_passes(name, labels, expected, got, magnitudes, budget, x=None):
    """One result for the output, one for dL/dx (unless declared absent), one per dL/dθ;
    ``x`` the input of an element-wise module (its elements' inputs, for a NaN's diagnosis)."""
    prefix = f"{KIND}/{name}"
    per_sample = {"inputs": x} if x is not None else {}
    results = [_compare_tensor(f"{prefix}/output", name, "forward output", expected.output,
                               got.output, magnitudes.output, budget, **per_sample,
                               sizes=prediction_sizes(expected.output.shape, "outputs"))]
    if got.grad_input is not None:
        results.append(_compare_tensor(f"{prefix}/grad_input", name, "dL/dx",
                                       expected.grad_input, got.grad_input,
                                       magnitudes.grad_input, budget, **per_sample,
                                       sizes=prediction_sizes(expected.grad_input.shape,
                                                              "features")))
    for label, expected_grad, got_grad, magnitude in zip(
            labels, expected.grad_params, got.grad_params, magnitudes.grad_params, strict=True):
        results.append(_compare_tensor(f"{prefix}/grad_{label.name}", name, f"dL/d {label}",
                                       expected_grad, got_grad, magnitude, budget))
    return results


def check_against_reference(module, x, *, seed=0, name=None, layer=None, weight_layout="out_in"):
    """Compare a module's forward, dL/dx and every dL/dθ with its autograd twin.

    Steps: build the twin from the structure and the module's current parameter values; run
    the module (zero_grad, forward, backward with g = dL/dy drawn from ``seed``); run the twin
    with autograd on the same x and g; compare each tensor with ``autograd_tolerance`` for the
    dtype the module computed in. The module's gradients are overwritten; its parameter values
    are left unchanged.

    Args:
        module: a ``Component`` (what a ``Target`` builds;
            ``refnet_target.refnet_component`` for a refnet module), or any module with
            ``layer`` given. Dropout in training mode is checked under its own mask.
        x: input, [batch, features] or [R, batch, features] with replicas; float32 or float64.
        seed: seed of the random upstream gradient g.
        name: the module's name in the ids; ``describe(module)`` when ``None``.
        layer: the structure of a module that is no ``Component``.
        weight_layout: ``"out_in"`` or ``"in_out"`` for such a module.

    Returns:
        ``CheckResult``s with ids ``autograd/<name>/output``, ``…/grad_input`` and
        ``…/grad_<parameter>`` (e.g. ``grad_0.weight``); a single failed
        ``autograd/<name>/raised`` when the module raises or breaks the protocol.

    Raises:
        ValueError: the structure is unknown (a foreign module without ``layer``).
    """
    component = as_component(module, layer, weight_layout=weight_layout, name=name)
    if component.layer is None:
        raise ValueError(f"check_against_reference: {_unknown_structure(component)}")
    name = component.name
    return guarded(f"{KIND}/{name}/raised", name, KIND,
                   lambda: _check_against_twin(component, x, seed, name))


def _check_against_twin(component, x, seed, name):
    """The steps of ``check_against_reference``."""
    twin = _twin(component, [value for value, _ in canonical_pairs(component)])
    got = _protocol_pass(component, x, seed)
    expected = _twin_pass(twin, x, got.grad_output)
    magnitudes = term_magnitudes(component, x, lambda _output, _bound: got.grad_output.abs())
    terms = summation_length(component.layer, _batch_size(x))
    dtype = computed_dtype(x, got.output, *(value for value, _ in component.view.param()))
    budget = _Budget(dtype, terms, f"upstream-gradient seed {seed}, input {list(x.shape)} "
                                   f"{x.dtype}, computed in {dtype}, summation length n={terms}")
    elementwise = component.layer.kind not in ("linear", "sequential")
    return _compare_passes(name, parameter_labels(twin), expected, got, magnitudes, budget,
                           x if elementwise else None)
