"""A submission whose forwards call torch.nn.functional (its backwards are by hand): right
numbers, a broken rule (``rule/torch.nn/source`` and ``rule/torch.nn/run``)."""

import handmade
from torch.nn import functional as F


class ReLU(handmade.ReLU):
    def forward(self, x):
        self.x = x
        return F.relu(x)
