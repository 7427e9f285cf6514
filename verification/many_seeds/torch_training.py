"""The torch side of the seed-by-seed comparisons: a refnet replica model's twin, built from
torch.nn modules, trained with torch.autograd and torch.optim on refnet's own batch orders.

Used by the reproduction (refnet against torch on the headline's seeds) and by the claims
ledger (the report's "comparable to PyTorch with SGD and Adam").
"""

import torch
from torch import nn
from torch.nn import functional

import refnet
from refnet._random import permutations

__all__ = ["StackedLinear", "torch_network", "train_torch", "predict_torch"]

_ACTIVATIONS = {refnet.ReLU: nn.ReLU, refnet.Tanh: nn.Tanh, refnet.Sigmoid: nn.Sigmoid}


class StackedLinear(nn.Module):
    """R ``torch.nn.Linear`` layers stacked: parameters [R, out, in] and [R, out].

    ``forward`` is ``torch.baddbmm(b, x, wᵀ)`` on x shaped [R, B, in]; torch.autograd
    differentiates it and torch.optim updates it. SGD and Adam act element by element and
    the loss is a sum of per-seed losses, so seed r trains exactly as a lone torch.nn network
    (``tests/test_claims.py`` checks it).
    """

    def __init__(self, linear):
        super().__init__()
        self.weight = nn.Parameter(linear.weight.detach().clone())
        self.bias = nn.Parameter(linear.bias.detach().clone())

    def forward(self, x):
        """``x wᵀ + b`` per seed."""
        return torch.baddbmm(self.bias.unsqueeze(-2), x, self.weight.transpose(-1, -2))


def torch_network(model):
    """A torch.nn network holding a refnet replica ``Sequential``'s current weights."""
    return nn.Sequential(*(StackedLinear(module) if isinstance(module, refnet.Linear)
                           else _ACTIVATIONS[type(module)]() for module in model.modules))


def train_torch(network, x, targets, generators, *, optimizer, batch_size, epochs,
                reduction="sum"):
    """Mini-batch training on the MSE, each epoch in refnet's batch order.

    Each epoch's order is drawn with refnet's recipe (``permutations``) from the seeds'
    generators, so generators that stand where ``refnet.train`` would start drawing give
    exactly refnet's batches.

    Args:
        network: from ``torch_network``.
        x: inputs, [R, N, features].
        targets: one-hot targets, [R, N, classes].
        generators: R generators, one per seed.
        optimizer: a torch.optim optimiser over ``network.parameters()``.
        batch_size: samples per batch.
        epochs: passes over the data.
        reduction: each seed's batch loss, as ``refnet.MSELoss``: ``"sum"`` of the squared
            errors or their ``"mean"`` over the batch's elements.

    Returns:
        The summed batch losses of each epoch: a list of ``epochs`` lists of R floats.
    """
    replicas, samples = x.shape[:2]
    epoch_losses = []
    for _ in range(epochs):
        order = permutations(samples, generator=generators, replicas=replicas,
                             device=x.device).unsqueeze(-1)
        batches = zip(torch.take_along_dim(x, order, dim=-2).split(batch_size, dim=-2),
                      torch.take_along_dim(targets, order, dim=-2).split(batch_size, dim=-2),
                      strict=True)
        total = torch.zeros(replicas, dtype=torch.float64, device=x.device)
        for x_batch, target_batch in batches:
            losses = functional.mse_loss(network(x_batch), target_batch,
                                         reduction="none").sum(dim=(-2, -1))
            if reduction == "mean":
                losses = losses / (target_batch.shape[-2] * target_batch.shape[-1])
            optimizer.zero_grad()
            losses.sum().backward()
            optimizer.step()
            total += losses.detach()
        epoch_losses.append(total.tolist())
    return epoch_losses


def predict_torch(network, x):
    """Predicted classes, int64 [R, N]."""
    with torch.no_grad():
        return network(x).argmax(dim=-1)
