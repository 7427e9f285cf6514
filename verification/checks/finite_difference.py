"""Finite-difference check of the backward pass of any object that follows the module protocol.

What is checked
    For a module and an input ``x`` (``[B, in]``, or ``[R, B, in]`` with replicas), the check
    builds the scalar ``L = Σ w ⊙ module.forward(x)``, where ``w`` is a fixed random
    "grad_output" of the output's shape drawn from ``torch.Generator().manual_seed(seed)``.
    The analytic side is ``zero_grad(); forward(x); backward(w)``: the returned dL/dx and the
    gradients listed by ``param()``. The numerical side is the central difference, in float64,
    ``g_i ≈ (L(t + h_i) − L(t − h_i)) / 2h_i`` for every element ``t_i`` of ``x`` and of every
    parameter. Each tensor gives one ``CheckResult`` (kind ``finite_difference``, id
    ``finite_difference/<module>/<tensor>``), compared by ``verification.checks.compare.compare``.
    The generic path uses only the protocol (``forward``, ``backward``, ``param``,
    ``zero_grad``), so the check works for any framework; it overwrites the module's
    gradients and cached forward state, and restores every parameter value exactly.

Step size
    The central difference has two errors. Truncation: ``h²·|L'''|/6``. Round-off: if one
    computed ``L`` is off by at most ``δ``, the difference of two is off by ``2δ``, divided by
    ``2h``: ``δ/h``. We write ``δ = γ·u·S`` with ``u = 2⁻⁵³``, ``S = Σ|w ⊙ y|`` the scale of L
    (a sum of magnitudes: cancellation in L does not cancel the rounding) and ``γ = 64`` the
    growth of rounding through a forward pass (in the probabilistic model of Higham & Mary
    2019 a chain of m operations grows like √m·u: √(4 layers × 26 + 16 terms) ≈ 11 for the
    report network, so 64 leaves a margin of about 6). Assuming ``|L'''| ≲ S/s³`` on the
    step's scale ``s = max(1, |t|)`` (a change of t by its own size changes the output by
    about the output's size), the total
    ``γuS/h + h²S/6`` is smallest at ``h* = (3γu)^(1/3) ≈ 3e-5``; we take ``eps = 1e-6``,
    smaller, because curvature is the unknown term (weights above 1 raise it): at 1e-6 the
    truncation term stays below round-off for any ``|L'''| < 6γu/eps³ ≈ 4·10⁴·S``, and a
    smaller step reaches fewer kinks. The step is ``h_i = eps·max(1, |t_i|)``: a fixed
    relative change for large values, an absolute one near zero. The denominator is the
    step actually taken, ``(t + h) − (t − h)`` in floating point.

Tolerance
    ``|numeric − analytic| ≤ atol + rtol·|numeric|`` with (see ``tolerances``)

    - ``atol = 10·δ/eps + 8·T``, ``δ = γ·u·S``, ``T = eps²·S/6``, and
    - ``rtol = 2·γ·u``: the analytic backward's own rounding, a pass as deep as the forward,
      plus the relative part of the numerical one (``L(t ± h)`` differs from ``S`` by ``h·g``).

    The factors 10 and 8 come from the kink test below, which spends half of the tolerance:
    an element that passes it carries a kink error of at most ``tolerance/2 + 4δ/eps + 3T``
    and a finite-difference error of at most ``δ/eps + T``; both together stay within the
    tolerance whenever ``atol ≥ 10·δ/eps + 8·T``. The rule is derived, not fitted: with
    eps = 1e-6 it is 7.1e-8·S (5.5e-7 for the report network and B = 8, where gradients are
    of order 0.1 and measured errors below 1e-9). It assumes the module's outputs are not
    computed by heavy cancellation (``|y|`` much smaller than the terms that produce it);
    for such a module pass ``atol`` explicitly.

Float32
    A module that computes in float32 (float32 parameters, a float32 input, or a float32
    output whatever it is given: a framework that calls ``.float()`` inside) is checked in
    float32: the input is fed in float32, perturbations are taken in float32 (so the step in
    the denominator is the one the module saw), and u = 2⁻²⁴ in δ and ``rtol``. The same
    optimum gives ``h* = (3γu)^(1/3) ≈ 0.023``; ``FLOAT32_EPS = 1e-2`` is smaller for the
    reasons above, where the tolerance is still dominated by round-off
    (``atol ≈ 3.8e-3·S``): a float32 check flags errors of a few parts in a thousand of the
    loss's scale, not the 1e-7·S of float64.

Kinks
    At a kink (ReLU at 0) the derivative jumps and a central difference whose stencil
    straddles it averages the two slopes. The check evaluates five points ``t + k·h``,
    ``k = −2…2`` (like Chainer's ``detect_nondifferentiable``), forms the four slopes between
    neighbours and their second differences ``e`` (third differences of L). For a smooth L,
    ``|e| ≤ 8δ/h + 6T`` (below the tolerance); a kink inside ``[t − 2h, t + 2h]`` adds a jump
    to ``e`` at least twice the error it causes in the central difference. Elements with
    ``max|e| > tolerance`` are therefore left out (``compare(..., excluded=mask)``) and
    counted in ``CheckResult.excluded``; an element that stays in is never spoiled by a kink
    beyond its tolerance, so a kink can never make the check flaky. (Two kinks whose jumps
    cancel exactly in ``e`` would escape; that needs two units to cross zero within ``2h``
    of the same point.) The value exactly at the kink, which finite differences cannot
    decide, is pinned by ``check_kink`` against torch's convention.

    The two outer points cost as much as the central pair, so they are evaluated only for
    the tensors that fail with the central pair alone: a kink can only make a correct
    gradient look wrong (or hide an error by cancelling it to within the tolerance, a
    coincidence), so a tensor that already agrees needs no kink test.

Batching (the cost)
    ``torch.autograd.gradcheck`` runs two forward passes per element. Here:

    - Input, ``row_wise=True`` (default): the module is assumed to treat each sample (each
      row along the second-to-last axis) independently, as every refnet module does outside
      training-mode Dropout. Moving element ``(b, f)`` then changes only output row ``b``,
      so the perturbed copies of every row, ``3·B·in`` rows of width ``in`` (the row and
      its ±h copies; 2·B·in more for the kink test), are stacked into one tall batch and
      run in ONE forward call; each element's loss is its own row's
      ``Σ w_b ⊙ y_b``. Pass ``row_wise=False`` for modules that mix samples (a loss, a
      fixed-mask Dropout): then one element is perturbed at a time.
    - Parameters, ``param_path="auto"``: when the view has a replicated twin
      (``ModuleView.twin``; refnet's views do, for a tree made only of refnet's own classes,
      ``verification/targets/replicas.py``), one replica of the twin per perturbed value:
      replica k holds one perturbed element of the tensor, the other parameters are the
      unperturbed ones. The activations entering the tensor's own layer are computed once,
      without replicas; one forward call of the twin from that layer on, expanded to
      ``[K, B, in]``, gives every loss of the tensor (in chunks of at most
      ``chunk_elements`` stacked numbers): one call per parameter tensor, and the layers
      before a perturbed one never run K times. Replica 0 is unperturbed; if its loss
      differs from the module's own by more than two roundings (the class's replica path
      computes another function), the twin is discarded. Otherwise, and for views without
      a twin, the protocol path perturbs one element at a time in place (2 forward calls
      per element, 2 more where the kink test runs; values restored).

Random projections
    With ``projections=k`` each tensor is checked along k signed random directions
    ``d = s ⊙ v / √n`` (``v_i = ±1``, ``s_i = max(1, |t_i|)``, n elements) instead of along
    every element: the numerical directional derivative is compared with ``⟨dL/dt, d⟩``.
    Cost: 2k evaluations per tensor instead of 2n. Use it where a full Jacobian is too
    costly (tensors with ≳ 10⁴ elements, or an expensive forward without the batched paths).
    For any wrong gradient, one direction misses the error with probability at most 1/2
    (two sign choices of one coordinate cannot both cancel it), so k directions miss with
    probability ≤ 2⁻ᵏ; the price is that a failure names a direction, not an element.

Detection power (``CheckResult.detectable``: the relative error of the compared tensor's
largest element sure to fail; measured over every case of refnet and of the ``float32``
fixture, the README's table, asserted by tests/test_detection_power.py with an error of that
size planted): float64 4e-06, float32 0.21 (the report network's dL/dx).
"""

import math
from dataclasses import dataclass, replace

import torch

from verification.checks.compare import compare, computed_dtype, unit_roundoff
from verification.checks.diagnosis import prediction_sizes
from verification.checks.result import CheckFailure, CheckResult
from verification.targets.protocol import NoTwin, ProtocolError
from verification.targets.spec import as_component

__all__ = [
    "check_backward", "assert_backward_matches", "finite_differences",
    "tolerances", "DEFAULT_EPS", "FLOAT32_EPS", "ROUNDOFF_GROWTH", "DEFAULT_CHUNK_ELEMENTS",
]

DEFAULT_EPS = 1e-6
"""Relative step in float64: ``h = eps·max(1, |t|)`` (derivation in the module docstring)."""
FLOAT32_EPS = 1e-2
"""Relative step for a module that computes in float32 (module docstring, "Float32")."""
_ROWS_PER_CALL = 256
"""Perturbed values of a parameter per ``forward_each`` call (each call holds them all)."""
ROUNDOFF_GROWTH = 64
"""γ: the error of one computed L in units of ``u·S`` (module docstring)."""
DEFAULT_CHUNK_ELEMENTS = 2 ** 24
"""Most stacked numbers (parameter copies and activations) in one twin forward: 128 MiB."""

_CENTRAL = (0, -1, 1)
"""Step multiples always evaluated: the point and its central-difference neighbours."""
_OUTER = (-2, 2)
"""Step multiples added for the kink test, only for tensors that fail at ±h."""
_OFFSETS = (-2, -1, 0, 1, 2)
_PARAM_PATHS = ("auto", "replica", "protocol")


class _ModuleError(RuntimeError):
    """The module under test raised; the message names the stage."""


def tolerances(scale, eps=DEFAULT_EPS, dtype=torch.float64):
    """The derived ``(atol, rtol)`` for a loss of scale ``S`` (module docstring, "Tolerance").

    Args:
        scale: ``S = Σ|w ⊙ y|`` at the checked point.
        eps: the relative step.
        dtype: the dtype the module computes in (u = 2⁻⁵³ or 2⁻²⁴).

    Returns:
        ``(atol, rtol)`` with ``atol = 10·γ·u·S/eps + 8·eps²·S/6`` and ``rtol = 2·γ·u``.
    """
    roundoff = _roundoff(scale, dtype)
    truncation = eps ** 2 * scale / 6
    return 10 * roundoff / eps + 8 * truncation, 2 * ROUNDOFF_GROWTH * unit_roundoff(dtype)


def _bounds(scale, eps, atol, rtol, dtype):
    """``(atol, rtol)``: the derived ones unless the caller gave them."""
    derived_atol, derived_rtol = tolerances(scale, eps, dtype)
    return (derived_atol if atol is None else atol, derived_rtol if rtol is None else rtol)


def check_backward(module, x, *, seed=0, eps=None, atol=None, rtol=None, row_wise=True,
                   param_path="auto", projections=None, chunk_elements=DEFAULT_CHUNK_ELEMENTS,
                   name=None):
    """Compare ``module.backward`` with central differences of its ``forward``.

    Never raises on a mismatch, nor when the module raises: that becomes a failed result.

    Args:
        module: any object with the module protocol (or a ``Component``), float64 or float32
            (module docstring, "Float32").
        x: the input, ``[B, in]`` or ``[R, B, in]`` (``[B, in]`` for a per-sample module's
            ``Component``); converted to the dtype the module computes in.
        seed: seeds the random grad_output ``w`` (and the projection directions).
        eps: relative step, ``h = eps·max(1, |t|)``; ``DEFAULT_EPS`` in float64 and
            ``FLOAT32_EPS`` in float32 when ``None``.
        atol: absolute tolerance; derived by ``tolerances`` when ``None``.
        rtol: relative tolerance; derived by ``tolerances`` when ``None``.
        row_wise: whether samples (rows) are independent, allowing the one-call input path.
        param_path: ``"auto"`` (the view's replica twin where it has one, else protocol),
            ``"replica"`` (twin or ``ValueError``) or ``"protocol"`` (one element at
            a time).
        projections: ``None`` to check every element, or the number k of signed random
            directions per tensor.
        chunk_elements: most stacked numbers per twin forward call.
        name: the module's label in ids and messages; a one-line ``repr`` when ``None``.

    Returns:
        One ``CheckResult`` per tensor: ``input``, then ``param[i] (...)`` in ``param()``
        order; a single failed result when the module raised.
    """
    module = _view(module, name)
    label = module.name
    generator = torch.Generator().manual_seed(seed)
    paths = _Paths(row_wise, param_path, chunk_elements)
    try:
        point = _analytic_pass(module, x, generator)
        eps = _default_eps(point.dtype) if eps is None else eps
        targets = _targets(module, point, eps, projections, generator)
        losses, path = _estimate(module, point, targets, _CENTRAL, paths)
        bounds = _bounds(point.scale, eps, atol, rtol, point.dtype)
        path += _kink_test_where_needed(module, point, targets, losses, bounds, paths)
    except _ModuleError as error:
        return [_error_result("finite_difference", label, error, seed)]
    context = f"eps={eps:g}, seed={seed}, {point.dtype}, {path}"
    return [_compare_target(label, target, gradient, losses[target.name], bounds, context)
            for target, gradient in zip(targets, point.gradients, strict=True)]


def assert_backward_matches(module, x, *, seed=0, **options):
    """Like ``check_backward``, but raise when a tensor disagrees.

    Args:
        module: any object with the module protocol.
        x: the input, ``[B, in]`` or ``[R, B, in]``.
        seed: seeds the random grad_output.
        **options: the other keyword arguments of ``check_backward``.

    Returns:
        The list of passing ``CheckResult`` (one per tensor).

    Raises:
        CheckFailure: naming the module, each failing tensor with its worst element
            (index, expected, got, errors, atol, rtol, eps, seed), worst tensor first, and
            a line that reproduces the check.
    """
    results = check_backward(module, x, seed=seed, **options)
    failed = sorted((r for r in results if not r.passed), key=lambda r: -r.error_ratio)
    if failed:
        raise CheckFailure(replace(failed[0], detail=_failure_message(failed, results, seed,
                                                                      options)))
    return results


def finite_differences(module, x, *, seed=0, eps=None, row_wise=True,
                       param_path="auto", chunk_elements=DEFAULT_CHUNK_ELEMENTS):
    """Central differences of ``L = Σ w ⊙ module.forward(x)``, as a reference.

    Args:
        module: any object with the module protocol (float64 parameters).
        x: the input, ``[B, in]`` or ``[R, B, in]``.
        seed: seeds the random grad_output ``w``.
        eps: relative step.
        row_wise: whether samples are independent (one-call input path).
        param_path: ``"auto"``, ``"replica"`` or ``"protocol"``.
        chunk_elements: most stacked numbers per twin forward call.

    Returns:
        A dict from tensor name (``"input"``, ``"param[0] (weight)"``, ...) to dL/d tensor,
        shaped like the tensor.

    Raises:
        RuntimeError: when the module raises; the message names the stage.
    """
    module = _view(module, None)
    generator = torch.Generator().manual_seed(seed)
    point = _analytic_pass(module, x, generator)
    eps = _default_eps(point.dtype) if eps is None else eps
    targets = _targets(module, point, eps, None, generator)
    paths = _Paths(row_wise, param_path, chunk_elements)
    losses, _ = _estimate(module, point, targets, _CENTRAL, paths)
    return {target.name: target.directions.central(losses[target.name]).view(target.tensor.shape)
            for target in targets}


def _view(module, name):
    """The ``ModuleView`` the check calls (a ``Component``'s, or a new one for a module)."""
    return as_component(module, name=name).view


def _default_eps(dtype):
    return FLOAT32_EPS if dtype == torch.float32 else DEFAULT_EPS


# --- step 1: the analytic pass --------------------------------------------------------------

@dataclass(frozen=True)
class _Point:
    """The checked point: input ``x`` in the module's dtype, grad_output ``weights`` (float64,
    the output's shape), the loss ``Σ w ⊙ y`` and its scale ``Σ|w ⊙ y|``, the analytic
    gradients (dL/dx first, unless a container is declared not to return it, then each
    parameter's, in ``param()`` order) and the dtype the module computes in."""

    x: torch.Tensor
    weights: torch.Tensor
    loss: float
    scale: float
    gradients: list
    dtype: torch.dtype
    has_input_gradient: bool = True


def _analytic_pass(module, x, generator):
    """``zero_grad(); forward(x); backward(w)`` with ``w`` drawn from ``generator``.

    Run in float64 unless the module computes in float32 (float32 parameters or input, or a
    float32 output or gradient for a float64 input), then again in float32.
    """
    parameters = [value for value, _ in _call("param", module.param)]
    dtype = computed_dtype(x, *parameters)
    x = x.detach().to(dtype)
    state = torch.Generator().set_state(generator.get_state())
    point = _pass_at(module, x, generator)
    if point.dtype != dtype:
        generator.set_state(state.get_state())
        point = _pass_at(module, x.to(point.dtype), generator)
    return point


def _pass_at(module, x, generator):
    _call("zero_grad", module.zero_grad)
    y = _require_finite("forward", x, _call("forward", module.forward, x))
    weights = torch.randn(y.shape, generator=generator, dtype=torch.float64).to(y.device)
    grad_x = _call("backward", module.backward, weights.to(y.dtype))
    gradients = [gradient.detach().clone() for _, gradient in _call("param", module.param)]
    if grad_x is not None:
        gradients.insert(0, _require_finite("backward", x, grad_x).detach().clone())
    dtype = computed_dtype(x, y, *gradients)  # a float32 gradient is held to float32's u
    return _Point(x, weights, float(_loss(weights, y)), float((weights * y).abs().sum()),
                  gradients, dtype, grad_x is not None)


def _require_finite(stage, x, value):
    """``value``, unless it holds NaN or ±inf: then say where, and for which input."""
    finite = torch.isfinite(value)
    if bool(finite.all()):
        return value
    index = _unravel_first(~finite)
    kind = "NaN" if bool(torch.isnan(value).any()) else "an infinite value"
    raise _ModuleError(f"{stage} returned {kind} at element {index} for this input (x from "
                       f"{float(x.min()):.6g} to {float(x.max()):.6g}): the module is not "
                       "finite where its function is")


def _unravel_first(mask):
    flat = int(mask.flatten().nonzero()[0])
    index = []
    for size in reversed(mask.shape):
        flat, position = divmod(flat, size)
        index.append(position)
    return index[::-1]


def _call(stage, function, *args):
    """Run one of the module's methods; turn any exception into ``_ModuleError``."""
    try:
        return function(*args)
    except ProtocolError as error:
        raise _ModuleError(str(error)) from error
    except Exception as error:
        raise _ModuleError(f"{stage} raised {type(error).__name__}: {error}") from error


def _loss(weights, y):
    return (weights * y).sum()


def _roundoff(scale, dtype=torch.float64):
    """δ: the error bound of one computed L."""
    return ROUNDOFF_GROWTH * unit_roundoff(dtype) * scale


# --- step 2: what is perturbed, and along which directions ---------------------------------

class _Directions:
    """Perturbations of one flattened tensor (``base``, n numbers) along ``count`` directions.

    Subclasses give ``write`` (put the values at ``multiple`` steps along some directions
    into rows of a stack), ``central`` (the central differences from the losses),
    ``analytic`` (the backward's gradient along the same directions), ``row_block`` and
    ``row_losses`` (the row-wise input path), ``describe``, ``step`` (h per direction),
    ``count`` and ``result_shape`` (the shape of the compared tensors).
    """

    def __init__(self, tensor):
        self.shape = tuple(tensor.shape)
        self.base = tensor.detach().reshape(-1).clone()

    def rows(self, multiple, indices):
        """``[len(indices), n]`` copies of ``base``, each moved along one direction."""
        rows = self.base.expand(len(indices), -1).clone()
        self.write(rows, torch.arange(len(indices)), multiple, indices)
        return rows


class _Elements(_Directions):
    """One direction per element: ``t_i`` moves by ``k·h_i``, ``h_i = eps·max(1, |t_i|)``."""

    def __init__(self, tensor, eps):
        super().__init__(tensor)
        self.step = eps * self.base.abs().clamp_min(1)
        self.count = self.base.numel()
        self.result_shape = self.shape

    def values(self, multiple):
        """``[n]``: every element moved by ``multiple`` steps (each on its own)."""
        return self.base + multiple * self.step

    def write(self, stack, positions, multiple, indices):
        stack[positions, indices] = self.values(multiple)[indices]

    def central(self, losses):
        return (losses[1] - losses[-1]) / (self.values(1) - self.values(-1))

    def analytic(self, gradient):
        return gradient.reshape(-1)

    def describe(self, name):
        return f"dL/d {name} (shape {list(self.shape)})"

    def row_block(self, multiple):
        """``[*lead, B·in, in]``: row ``(b, f)`` is sample b with element f moved."""
        x = self.base.view(self.shape)
        moved = self.values(multiple).view(self.shape).unsqueeze(-1)
        diagonal = torch.eye(self.shape[-1], dtype=torch.bool, device=x.device)
        return torch.where(diagonal, moved, x.unsqueeze(-2)).flatten(-3, -2)

    def row_losses(self, weights, outputs):
        """``[count]``: each row's ``Σ w_b ⊙ y``, in the element order of the input."""
        outputs = outputs.unflatten(-2, self.shape[-2:])
        return (weights.unsqueeze(-2) * outputs).sum(dim=-1).reshape(-1)


class _Projections(_Directions):
    """``count`` signed random directions ``d = s ⊙ v / √n``, ``v_i = ±1``, ``s = max(1, |t|)``."""

    def __init__(self, tensor, eps, count, generator):
        super().__init__(tensor)
        signs = torch.randint(0, 2, (count, self.base.numel()), generator=generator)
        scale = self.base.abs().clamp_min(1) / math.sqrt(self.base.numel())
        self.directions = (2 * signs - 1).to(self.base) * scale
        self.eps, self.count, self.result_shape = eps, count, (count,)
        self.step = torch.full((count,), eps, dtype=self.base.dtype, device=self.base.device)

    def write(self, stack, positions, multiple, indices):
        stack[positions] = self.base + (multiple * self.eps) * self.directions[indices]

    def central(self, losses):
        return (losses[1] - losses[-1]) / (2 * self.eps)

    def analytic(self, gradient):
        """``⟨g, d⟩`` along the steps actually taken, ``((t + eps·d) − (t − eps·d)) / 2eps``."""
        every = torch.arange(self.count)
        taken = (self.rows(1, every) - self.rows(-1, every)) / (2 * self.eps)
        return taken @ gradient.reshape(-1).to(taken)

    def describe(self, name):
        return (f"dL/d {name} (shape {list(self.shape)}) along {self.count} signed random "
                "directions")

    def row_block(self, multiple):
        """``[*lead, k·B, in]``: the whole input moved along each direction in turn."""
        moved = self.rows(multiple, torch.arange(self.count)).view(self.count, *self.shape)
        return moved.movedim(0, -3).flatten(-3, -2)

    def row_losses(self, weights, outputs):
        outputs = outputs.unflatten(-2, (self.count, self.shape[-2]))
        products = (weights.unsqueeze(-3) * outputs).movedim(-3, 0)
        return products.reshape(self.count, -1).sum(dim=1)


@dataclass(frozen=True)
class _Target:
    """One checked tensor: its name, the live tensor (x or a parameter), its directions."""

    name: str
    tensor: torch.Tensor
    directions: _Directions
    is_input: bool = False


def _targets(module, point, eps, projections, generator):
    """The input, then every parameter, each with its perturbation directions."""
    def directions(tensor):
        if projections is None:
            return _Elements(tensor, eps)
        return _Projections(tensor, eps, projections, generator)

    names = _call("param", module.parameter_names)
    parameters = [value for value, _ in _call("param", module.param)]
    inputs = [_Target("input", point.x, directions(point.x), is_input=True)]
    return inputs[:int(point.has_input_gradient)] + [
        _Target(f"param[{index}] ({name})", value, directions(value))
        for index, (name, value) in enumerate(zip(names, parameters, strict=True))
    ]


# --- step 3: the losses at t + k·h -------------------------------------------------------

@dataclass(frozen=True)
class _Paths:
    """How the losses are evaluated (see ``check_backward``'s arguments)."""

    row_wise: bool
    param_path: str
    chunk_elements: int

    def __post_init__(self):
        if self.param_path not in _PARAM_PATHS:
            raise ValueError(f"param_path must be one of {_PARAM_PATHS}, got {self.param_path!r}")


def _estimate(module, point, targets, multiples, paths):
    """Losses ``{k: [count]}`` for each k in ``multiples``, by target name, and the paths."""
    losses, descriptions = {}, []
    inputs = [target for target in targets if target.is_input]
    parameters = [target for target in targets if not target.is_input]
    for target in inputs:
        losses[target.name], text = _input_losses(module, point, target, multiples,
                                                  paths.row_wise)
        descriptions.append(f"input: {text}")
    if parameters:
        parameter_losses, text = _parameter_losses(module, point, parameters, multiples, paths)
        losses.update(zip((target.name for target in parameters), parameter_losses,
                          strict=True))
        descriptions.append(f"parameters: {text}")
    return losses, "; ".join(descriptions)


def _input_losses(module, point, target, multiples, row_wise):
    directions = target.directions
    if not (row_wise and point.x.ndim >= 2):
        def evaluate(values):
            return _forward_loss(module, point, values.view_as(point.x))
        losses = _one_at_a_time(evaluate, directions, multiples, point.loss)
        return losses, f"one element at a time ({_calls(directions, multiples)} forward calls)"
    blocks = [directions.row_block(multiple) for multiple in multiples]
    tall = torch.cat(blocks, dim=-2)
    try:
        outputs = _call("forward", module.forward, tall)
    except _ModuleError as error:
        raise _ModuleError(f"on the tall batch of perturbed rows, {error} (a module that mixes "
                           "samples needs row_wise=False)") from error
    _require_rows(outputs, point, tall.shape[-2])
    pieces = outputs.split([block.shape[-2] for block in blocks], dim=-2)
    losses = {multiple: directions.row_losses(point.weights, piece)
              for multiple, piece in zip(multiples, pieces, strict=True)}
    return losses, "one tall batch of perturbed rows (1 forward call)"


def _require_rows(outputs, point, rows):
    """Raise unless the tall batch gave one output row per input row, as row-wise modules do."""
    weights = point.weights
    expected = (*weights.shape[:-2], rows, *weights.shape[-1:]) if weights.ndim >= 2 else None
    if not isinstance(outputs, torch.Tensor) or tuple(outputs.shape) != expected:
        shape = list(getattr(outputs, "shape", [])) or type(outputs).__name__
        raise _ModuleError(
            f"forward on a tall batch of {rows} rows returned {shape}, not one row per input "
            f"row (expected {list(expected) if expected else 'one row each'}): the module "
            "keeps an output of an earlier call, or mixes rows (for a module that really mixes "
            "rows, check_backward takes row_wise=False)"
        )


def _parameter_losses(module, point, targets, multiples, paths):
    reason = "param_path='protocol'"
    if paths.param_path != "protocol":
        losses, reason = _replica_losses(module, point, targets, multiples, paths.chunk_elements)
        if losses is not None:
            return losses, reason
        if paths.param_path == "replica":
            raise ValueError(f"param_path='replica': {reason}")
    all_losses = [_each_parameter_value(module, point, target, multiples)
                  for target in targets]
    calls = sum(_calls(target.directions, multiples) for target in targets)
    return all_losses, f"protocol, one element at a time ({calls} forward calls; {reason})"


def _each_parameter_value(module, point, target, multiples):
    """Losses ``{k: [count]}`` of one parameter tensor moved along each direction in turn
    (``ModuleView.forward_each``: one forward per perturbed value, the values restored
    afterwards), relative to the unperturbed loss, as the replica path's are, so that losses of
    the two paths can meet in one kink test."""
    directions = target.directions

    def along(multiple):
        if multiple == 0:
            return torch.zeros(directions.count, dtype=torch.float64,
                               device=directions.base.device)
        losses = []
        for start in range(0, directions.count, _ROWS_PER_CALL):
            rows = directions.rows(multiple, torch.arange(
                start, min(start + _ROWS_PER_CALL, directions.count)))
            outputs = _call("forward", module.forward_each, target.tensor, rows, point.x)
            losses += [_loss(point.weights, output) - point.loss for output in outputs]
        return torch.stack(losses)
    return {multiple: along(multiple) for multiple in multiples}


def _one_at_a_time(evaluate, directions, multiples, base_loss):
    """Losses ``{k: [count]}`` from one ``evaluate(flat values)`` per perturbed point.

    The unperturbed loss (k = 0) is the analytic pass's: the same forward on the same values.
    """
    def along(multiple):
        if multiple == 0:
            return torch.full((directions.count,), base_loss, dtype=torch.float64,
                              device=directions.base.device)
        return torch.stack([evaluate(directions.rows(multiple, torch.tensor([index]))[0])
                            for index in range(directions.count)])
    return {multiple: along(multiple) for multiple in multiples}


def _calls(directions, multiples):
    """Forward calls of ``_one_at_a_time``: one per direction and non-zero multiple."""
    return sum(1 for multiple in multiples if multiple) * directions.count


def _forward_loss(module, point, x):
    return _loss(point.weights, _call("forward", module.forward, x))


# --- step 3, fast path: the replicated twin ------------------------------------------------

@dataclass(frozen=True)
class _Plan:
    """Which replica moves what: perturbation p moves target ``target_of[p]`` by
    ``multiple_of[p]`` steps along direction ``direction_of[p]`` (nested in that order)."""

    target_of: torch.Tensor
    multiple_of: torch.Tensor
    direction_of: torch.Tensor
    steps: tuple

    @classmethod
    def build(cls, targets, steps):
        counts = [target.directions.count for target in targets]
        return cls(
            torch.cat([torch.full((len(steps) * n,), j) for j, n in enumerate(counts)]),
            torch.cat([torch.tensor(steps).repeat_interleave(n) for n in counts]),
            torch.cat([torch.arange(n).repeat(len(steps)) for n in counts]),
            steps,
        )

    def chunks(self, size):
        total = len(self.target_of)
        return [slice(start, min(start + size, total)) for start in range(0, total, size)]


def _replica_losses(module, point, targets, multiples, chunk_elements):
    """Every parameter perturbation as one replica of the view's twin (``ModuleView.twin``:
    refnet's, for a tree of its own classes); ``(None, reason)`` where it has none.

    For each parameter tensor, the twin computes the unperturbed activations entering its
    layer once, and only the layers from there on run with replicas: perturbation p of a
    chunk is replica p + 1, replica 0 is unperturbed.
    """
    steps = tuple(multiple for multiple in multiples if multiple)
    try:
        twins = [module.twin(target.tensor, point.x) for target in targets]
        chunk_losses = [losses for target, twin in zip(targets, twins, strict=True)
                        for losses in _target_losses(twin, point, target, steps,
                                                     chunk_elements)]
    except NoTwin as reason:
        return None, f"replica twin not used: {reason}"
    except Exception as error:  # the twin is an optimisation: any failure falls back
        return None, f"replica twin not used: it raised {type(error).__name__}: {error}"
    base_losses = torch.stack([base for base, _ in chunk_losses])
    if (base_losses - point.loss).abs().max() > 2 * _roundoff(point.scale):
        return None, ("replica twin not used: its unperturbed replica computes another loss "
                      f"({float(base_losses[0]):.17g} vs {point.loss:.17g})")
    changes = torch.cat([change for _, change in chunk_losses])
    return (_split_by_target(changes, changes.new_zeros(()), targets, steps, multiples),
            f"replica twin, {len(changes) + len(chunk_losses)} replicas in "
            f"{len(chunk_losses)} forward call(s), each from the perturbed layer on; losses "
            "relative to the unperturbed replica")


def _target_losses(twin, point, target, steps, chunk_elements):
    """One tensor's perturbations, per chunk: the unperturbed replica's loss and the changes
    ``Σ w ⊙ (y_k − y_0)`` of the others (``[chunk length]``).

    The outputs are subtracted before they are weighted and summed: ``y_k`` and ``y_0`` agree
    in most digits, so their difference is nearly exact, whereas the difference of two summed
    losses would carry the rounding of sums of size ``S``. Every consumer of these losses
    (central differences, the kink test) uses only differences, so the unperturbed loss is 0.
    """
    plan = _Plan.build([target], steps)
    losses = []
    for chunk in plan.chunks(max(1, chunk_elements // twin.per_replica)):
        replicas = 1 + chunk.stop - chunk.start
        y = twin.outputs(_replica_stack(target, 0, plan, chunk, replicas))
        losses.append(((point.weights * y[0]).sum(),
                       (point.weights * (y[1:] - y[0])).sum(dim=(-2, -1))))
    return losses


def _replica_stack(target, j, plan, chunk, replicas):
    """``[replicas, *shape]``: the tensor in every replica, moved in its own ones."""
    target_of, multiple_of, direction_of = (plan.target_of[chunk], plan.multiple_of[chunk],
                                            plan.direction_of[chunk])
    directions = target.directions
    stack = directions.base.expand(replicas, -1).clone()
    for multiple in plan.steps:
        chosen = (target_of == j) & (multiple_of == multiple)
        directions.write(stack, 1 + chosen.nonzero().squeeze(1), multiple, direction_of[chosen])
    return stack.view(replicas, *target.tensor.shape)


def _split_by_target(perturbed, base_loss, targets, steps, multiples):
    """Cut the replicas' losses (in ``_Plan`` order) into ``{k: [count]}`` per target."""
    all_losses, start = [], 0
    for target in targets:
        count = target.directions.count
        block = perturbed[start:start + len(steps) * count].view(len(steps), count)
        losses = dict(zip(steps, block, strict=True))
        if 0 in multiples:
            losses[0] = base_loss.expand(count)
        all_losses.append(losses)
        start += len(steps) * count
    return all_losses


# --- steps 4 and 5: the kink test where needed, and the comparison ------------------------

def _kink_test_where_needed(module, point, targets, losses, bounds, paths):
    """Add the points ``t ± 2h`` for the targets that fail at ``t ± h``; describe the paths.

    A kink can only make a correct gradient look wrong (or hide an error by cancelling it
    within the tolerance, a coincidence), so a tensor that already agrees needs no test.
    """
    suspects = [target for target, gradient in zip(targets, point.gradients, strict=True)
                if gradient.shape == target.tensor.shape
                and not _compare_target("", target, gradient, losses[target.name], bounds,
                                        "").passed]
    if not suspects:
        return ""
    outer, path = _estimate(module, point, suspects, _OUTER, paths)
    for name, more in outer.items():
        losses[name].update(more)
    return f"; kink test at t ± 2h for {len(suspects)} tensor(s), {path}"


def _compare_target(label, target, gradient, losses, bounds, context):
    """One ``CheckResult``: numerical vs analytic along the target's directions."""
    atol, rtol = bounds
    directions = target.directions
    check_id = f"finite_difference/{label}/{target.name}"
    what = directions.describe(target.name)
    if gradient.shape != target.tensor.shape:
        return compare(check_id=check_id, module=label, kind="finite_difference",
                       expected=target.tensor, got=gradient, atol=atol, rtol=rtol,
                       what=f"shape of {what}", context=context)
    numeric = directions.central(losses)
    shape = directions.result_shape
    near_kink = None
    if all(multiple in losses for multiple in _OFFSETS):
        near_kink = _near_kink(losses, directions.step, atol + rtol * numeric.abs()).view(shape)
    kinks = 0 if near_kink is None else int(near_kink.sum())
    note = f"; {kinks} element(s) within 2 steps of a kink left out" if kinks else ""
    return compare(
        check_id=check_id, module=label, kind="finite_difference",
        expected=numeric.view(shape), got=directions.analytic(gradient).view(shape),
        atol=atol, rtol=rtol, what=what, context=context + note, excluded=near_kink,
        sizes=prediction_sizes(shape, "features") if target.is_input else None,
    )


def _near_kink(losses, step, allowed):
    """Five-point kink test: third differences of L larger than the tolerance."""
    points = torch.stack([losses[multiple] for multiple in _OFFSETS])
    slopes = points.diff(dim=0) / step
    return slopes.diff(n=2, dim=0).abs().amax(dim=0) > allowed


# --- messages ------------------------------------------------------------------------------

def _error_result(kind, label, error, seed):
    inf = float("inf")
    detail = f"{kind} check FAILED for {label}: {error} (seed={seed})"
    return CheckResult(f"{kind}/{label}/error", label, kind, False, inf, inf, 0.0, inf, detail)


def _failure_message(failed, results, seed, options):
    lines = [f"check_backward failed for {failed[0].module}: {len(failed)} of {len(results)} "
             "tensor(s) disagree with central differences, worst first:"]
    lines += [f"  {rank}. {result.detail}; max rel error {result.max_rel_error:.3g}"
              for rank, result in enumerate(failed, start=1)]
    extra = "".join(f", {key}={value!r}" for key, value in options.items())
    lines.append(f"reproduce: verification.assert_backward_matches(module, x, seed={seed}{extra})"
                 f" with module = {failed[0].module}")
    return "\n".join(lines)
