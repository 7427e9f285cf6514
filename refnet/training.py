"""Mini-batch training (report section 2.5) and the error count (section 2.6)."""

import torch

from refnet._checks import check_positive_int, check_shape, check_tensor
from refnet._random import permutations
from refnet.loss import MSELoss
from refnet.optim import SGD

__all__ = ["train", "error", "predict", "TRAIN_DEFAULTS"]

TRAIN_DEFAULTS = {
    "seed": 0,
    "activation": "relu",
    "lr": 0.01,
    "batch_size": 10,
    "epochs": 50,
    "center": (0.0, 0.0),
    "samples": 1000,
    "out": "reports/train",
}
"""The single run's defaults; the README documents why each was chosen."""


def train(model, x, targets, *, lr=None, batch_size, epochs, loss=None, optimizer=None,
          generator=None):
    """Train ``model`` by mini-batches, as in the report's section 2.5.

    Each epoch draws a fresh random order of the samples (from ``generator``), cuts it into
    consecutive batches of ``batch_size`` (the last one smaller when ``batch_size`` does not
    divide the sample count) and, for each batch: forward, loss, zero the gradients,
    backward, optimiser step. With replicas every replica has its own order, drawn from its
    own generator when ``generator`` is a sequence.

    Args:
        model: a module (``Sequential`` of refnet modules, or anything with the protocol).
        x: inputs, ``[N, features]`` or ``[R, N, features]``, with N >= 1.
        targets: targets (one-hot for the report's task), ``[N, C]`` or ``[R, N, C]``.
        lr: learning rate of the default optimiser ``SGD(model.param(), lr)``. Leave it out
            when passing ``optimizer``, which carries its own rate.
        batch_size: samples per mini-batch, at least 1.
        epochs: passes over the data, at least 0.
        loss: the loss module; ``MSELoss(reduction="sum")`` when ``None``, whose gradient
            2(x - t) is the report's eq. 15.
        optimizer: an object with ``step()`` over ``model.param()``; SGD when ``None``.
        generator: ``None``, a ``torch.Generator``, or a sequence of R generators.

    Returns:
        The summed loss of each epoch: a list of ``epochs`` floats, or with replicas a list
        of ``epochs`` lists of R floats.

    Raises:
        FloatingPointError: when a batch loss is not finite; the message names the epoch,
            the batch and the replica.
    """
    check_positive_int("train", "batch_size", batch_size, 1)
    check_positive_int("train", "epochs", epochs, 0)
    check_tensor("train", x, "x")
    check_tensor("train", targets, "targets")
    if x.ndim not in (2, 3):
        raise ValueError(f"train: expected x of shape [N, features] or [R, N, features], "
                         f"got {list(x.shape)}")
    if x.shape[-2] == 0:
        raise ValueError(f"train: expected at least one sample in x, got shape {list(x.shape)}")
    check_shape("train", targets, (*x.shape[:-1], "C"), "targets (one row per sample of x)")
    loss = MSELoss(reduction="sum") if loss is None else loss
    optimizer = _default_optimizer(model, lr, optimizer)
    replicas = x.shape[0] if x.ndim == 3 else None
    sample_count = x.shape[-2]
    epoch_losses = []

    model.train()
    for epoch in range(epochs):
        order = permutations(sample_count, generator=generator, replicas=replicas,
                             device=x.device).unsqueeze(-1)
        x_batches = torch.take_along_dim(x, order, dim=-2).split(batch_size, dim=-2)
        target_batches = torch.take_along_dim(targets, order, dim=-2).split(batch_size, dim=-2)
        batch_losses = []
        for x_batch, target_batch in zip(x_batches, target_batches, strict=True):
            batch_losses.append(loss.forward(model.forward(x_batch), target_batch))
            model.zero_grad()
            model.backward(loss.backward())
            optimizer.step()
        # [R, batches]: each replica's batch losses contiguous, so that its epoch loss is summed
        # exactly as its run alone would sum it, whatever R and its position among the replicas
        # (torch's sum over a leading axis rounds differently for different R).
        batch_losses = torch.stack(batch_losses, dim=-1)
        _check_finite(batch_losses, epoch)
        epoch_losses.append(batch_losses.sum(dim=-1))
    return torch.stack(epoch_losses).tolist() if epoch_losses else []


def _default_optimizer(model, lr, optimizer):
    if optimizer is None:
        if lr is None:
            raise ValueError("train: pass lr (for the default SGD) or an optimizer")
        return SGD(model.param(), lr)
    if lr is not None:
        raise ValueError("train: pass lr to the optimizer, not to train, when giving an optimizer")
    return optimizer


def _check_finite(epoch_batch_losses, epoch):
    """Raise FloatingPointError naming the first non-finite batch loss of this epoch, given the
    losses shaped ``[batches]`` or ``[R, batches]``."""
    by_batch = epoch_batch_losses.transpose(0, -1)  # [batches] or [batches, R]
    finite = torch.isfinite(by_batch)
    if bool(finite.all()):
        return
    position = (~finite).nonzero()[0].tolist()  # the earliest batch first
    batch = position[0]
    replica = f", replica {position[1]}" if len(position) > 1 else ""
    value = float(by_batch[tuple(position)])
    raise FloatingPointError(
        f"train: loss is {value} at epoch {epoch}, batch {batch}{replica}; the training "
        "diverged: lower the learning rate or check the inputs for inf/nan"
    )


def _evaluate(model, x):
    """Forward pass in evaluation mode, restoring the model's previous mode afterwards."""
    was_training = getattr(model, "training", False)
    model.eval()
    try:
        return model.forward(x)
    finally:
        if was_training:
            model.train()


def predict(model, x):
    """Predicted class of each sample: the argmax of the model's output, in evaluation mode.

    Args:
        model: a module; evaluated in evaluation mode, then returned to its previous mode.
        x: inputs, ``[N, features]`` or ``[R, N, features]``.

    Returns:
        int64 labels shaped ``[N]`` (``[R, N]``).
    """
    return _evaluate(model, x).argmax(dim=-1)


def error(model, x, labels):
    """Number of misclassified samples (section 2.6), by argmax of the output.

    Args:
        model: a module whose output has one column per class; evaluated in evaluation mode.
        x: inputs, ``[N, features]`` or ``[R, N, features]``.
        labels: int64 true classes, ``[N]`` (``[R, N]``), each in ``[0, classes)``.

    Returns:
        An int, or with replicas an int64 tensor of R counts.
    """
    if not isinstance(labels, torch.Tensor) or labels.dtype != torch.int64:
        received = labels.dtype if isinstance(labels, torch.Tensor) else type(labels).__name__
        raise TypeError(f"error: expected int64 labels, got {received}")
    check_tensor("error", x, "x")
    check_shape("error", labels, x.shape[:-1], "labels (one per sample of x)")
    output = _evaluate(model, x)
    classes = output.shape[-1]
    if labels.numel() and (labels.min() < 0 or labels.max() >= classes):
        raise ValueError(f"error: labels must lie in [0, {classes - 1}], got values from "
                         f"{int(labels.min())} to {int(labels.max())}")
    wrong = (output.argmax(dim=-1) != labels).sum(dim=-1)
    return int(wrong) if wrong.ndim == 0 else wrong
