"""Step 2, what is perturbed and along which directions: the input (unless a container
declares it returns no dL/dx), then every parameter in ``param()`` order, each along every
element (``_Elements``: ``t_i`` moves by ``k·h_i``, ``h_i = eps·max(1, |t_i|)``) or along
random projections (``_Projections``).

Random projections
    With ``projections=k`` each tensor is checked along k signed random directions
    ``d = s ⊙ v / √n`` (``v_i = ±1``, ``s_i = max(1, |t_i|)``, n elements) instead of along
    every element: the numerical directional derivative is compared with ``⟨dL/dt, d⟩``.
    Cost: 2k evaluations per tensor instead of 2n. Use it where a full Jacobian is too
    costly (tensors with ≳ 10⁴ elements, or an expensive forward without the batched paths).
    For any wrong gradient, one direction misses the error with probability at most 1/2
    (two sign choices of one coordinate cannot both cancel it), so k directions miss with
    probability ≤ 2⁻ᵏ; the price is that a failure names a direction, not an element.
"""

import math
from dataclasses import dataclass

import torch

from verification.checks.finite_difference.analytic import _call


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
