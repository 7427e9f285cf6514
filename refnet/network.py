"""The report's network (Figure 1): 2 inputs, three hidden layers of 25 units, 2 outputs."""

import torch

from refnet.activations import ReLU, Sigmoid, Tanh
from refnet.linear import Linear
from refnet.sequential import Sequential

__all__ = ["report_network", "ACTIVATIONS", "LAYER_SIZES"]

LAYER_SIZES = (2, 25, 25, 25, 2)
ACTIVATIONS = {"relu": ReLU, "tanh": Tanh}


def report_network(activation="relu", *, init="xavier", generator=None, replicas=None,
                   dtype=None, device=None, sizes=LAYER_SIZES):
    """``Linear → act → … → Linear → Sigmoid`` with the report's layer sizes.

    The hidden activation is not stated by the report, which implemented both ReLU and
    Tanh; the output is a Sigmoid (section 2.2.3). Layers draw their weights in order from
    ``generator`` (one generator, or one per replica).

    Args:
        activation: ``"relu"`` or ``"tanh"`` for the hidden layers.
        init: ``"xavier"`` or ``"normal"``, passed to every ``Linear``.
        generator: a ``torch.Generator`` or a sequence of R generators.
        replicas: ``None`` or the number of replicas R.
        dtype: parameter dtype (torch's default when ``None``).
        device: parameter device.
        sizes: layer widths from input to output.

    Returns:
        A ``Sequential``.
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f"report_network: activation must be one of {sorted(ACTIVATIONS)}, "
                         f"got {activation!r}")
    dtype = torch.get_default_dtype() if dtype is None else dtype
    modules = []
    for layer, (inputs, outputs) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        modules.append(Linear(inputs, outputs, init=init, generator=generator, dtype=dtype,
                              device=device, replicas=replicas))
        is_output = layer == len(sizes) - 2
        modules.append(Sigmoid() if is_output else ACTIVATIONS[activation]())
    return Sequential(*modules)
