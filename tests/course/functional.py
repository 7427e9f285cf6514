"""A submission whose forwards call torch.nn.functional (its backwards are by hand): right
numbers, a broken rule (``rule/torch.nn/source`` and ``rule/torch.nn/run``)."""

import torch
from handmade import MSE, SGD, Linear, Sequential, Tanh
from torch.nn import functional as F


class ReLU:
    def param(self):
        return []

    def zero_grad(self):
        pass

    def forward(self, x):
        self.x = x
        return F.relu(x)

    def backward(self, gradient):
        return gradient * (self.x > 0).to(gradient.dtype)


__all__ = ["Linear", "ReLU", "Tanh", "Sequential", "MSE", "SGD", "torch"]
