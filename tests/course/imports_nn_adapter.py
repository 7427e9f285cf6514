"""A submission that imports torch.nn but calls none of it while it is checked: its source
breaks the rule (``rule/torch.nn/source``), its run does not (``rule/torch.nn/run`` passes)."""

import torch.nn as nn
from honest_adapter import Adapter as Honest


def xavier(weight):
    """Never called by the adapter."""
    return nn.init.xavier_uniform_(weight)


class Adapter(Honest):
    pass
