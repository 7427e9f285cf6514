"""refnet: the framework of the EE-559 mini-project 2 report, written with tensor operations only.

No torch.autograd, torch.nn or torch.optim: every backward pass is written by hand. Models
may carry a leading replica axis (``replicas=R``) so that R seeds train in one batched run.
"""

from refnet._random import generators
from refnet.activations import Dropout, ReLU, Sigmoid, Tanh
from refnet.data import DISK_RADIUS, disk_dataset, one_hot
from refnet.linear import NORMAL_INIT_STD, Linear
from refnet.loss import MSELoss
from refnet.module import Module
from refnet.network import report_network
from refnet.optim import SGD, Adam
from refnet.sequential import Sequential
from refnet.training import error, predict, train

__all__ = [
    "Module", "Linear", "ReLU", "Tanh", "Sigmoid", "Dropout", "Sequential", "MSELoss",
    "SGD", "Adam", "train", "error", "predict", "disk_dataset", "one_hot", "generators",
    "report_network", "DISK_RADIUS", "NORMAL_INIT_STD",
]
