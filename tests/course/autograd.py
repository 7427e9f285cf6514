"""A submission whose Tanh computes its backward with torch.autograd, switching autograd on
inside (the course runs it with autograd off): right numbers, a broken rule
(``rule/torch.autograd/source`` and ``rule/torch.autograd/run``)."""

import handmade
import torch


class Tanh(handmade.Tanh):
    def forward(self, x):
        self.x = x
        return super().forward(x)

    def backward(self, gradient):
        with torch.enable_grad():
            x = self.x.detach().requires_grad_()
            (derivative,) = torch.autograd.grad(torch.tanh(x), x, gradient)
        return derivative
