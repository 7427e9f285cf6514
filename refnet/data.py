"""The report's data set (section 1) and one-hot targets (section 2.3)."""

import math

import torch

from refnet._checks import check_number, check_numbers, check_positive_int
from refnet._random import draw

__all__ = ["disk_dataset", "one_hot", "DISK_RADIUS"]

DISK_RADIUS = 1 / math.sqrt(2 * math.pi)
"""The report's radius: a full disk of this radius has area 1/2."""


def disk_dataset(n, *, center=(0.0, 0.0), radius=DISK_RADIUS, replicas=None, generator=None,
                 dtype=None, device=None):
    """Points uniform in [0, 1]², labelled 1 inside the disk and 0 outside (section 1).

    The report centres the disk at [0, 0] (so a quarter of it lies in the square and 1/8 of
    the points are inside); the course handout centres it at (0.5, 0.5) (half the points
    inside). The default follows the report's text; pass ``center=(0.5, 0.5)`` for the
    handout's. A point exactly on the circle counts as inside.

    Args:
        n: number of points per replica.
        center: the disk's centre (x, y), two finite numbers.
        radius: the disk's radius, finite and > 0.
        replicas: ``None``, or R to draw R independent data sets on a leading axis.
        generator: a ``torch.Generator``, or with replicas a sequence of R generators.
        dtype: dtype of the points; torch's default dtype when ``None``.
        device: device of the results.

    Returns:
        ``(x, labels)``: x shaped ``[n, 2]`` (``[R, n, 2]``), labels int64 ``[n]`` (``[R, n]``).
    """
    check_positive_int("disk_dataset", "n", n, 1)
    if replicas is not None:
        check_positive_int("disk_dataset", "replicas", replicas, 1)
    center = check_numbers("disk_dataset", "center", center, 2)
    radius = check_number("disk_dataset", "radius", radius, above=0)
    dtype = torch.get_default_dtype() if dtype is None else dtype
    points = draw(torch.rand, (n, 2), generator=generator, replicas=replicas,
                  dtype=dtype, device=device)
    centre = torch.tensor(center, dtype=dtype, device=points.device)
    inside = (points - centre).square().sum(dim=-1) <= radius ** 2
    return points, inside.long()


def one_hot(labels, num_classes=2, *, dtype=None):
    """One-hot targets: class c becomes the vector with a 1 at position c (section 2.3).

    Args:
        labels: int64 labels in ``[0, num_classes)``, any shape (``[n]`` or ``[R, n]``).
        num_classes: number of classes.
        dtype: dtype of the result; torch's default dtype (float32) when ``None``.

    Returns:
        A tensor shaped ``[*labels.shape, num_classes]``.
    """
    check_positive_int("one_hot", "num_classes", num_classes, 1)
    if not isinstance(labels, torch.Tensor) or labels.dtype != torch.int64:
        received = labels.dtype if isinstance(labels, torch.Tensor) else type(labels).__name__
        raise TypeError(f"one_hot: expected int64 labels, got {received}")
    if labels.numel() and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"one_hot: labels must lie in [0, {num_classes - 1}], got values from "
                         f"{int(labels.min())} to {int(labels.max())}")
    classes = torch.arange(num_classes, device=labels.device)
    dtype = torch.get_default_dtype() if dtype is None else dtype
    return (labels.unsqueeze(-1) == classes).to(dtype)
