"""Mean-squared error on one-hot targets (report section 2.3)."""

from refnet._checks import Where, check_cached, check_same_dtype_device, check_shape, check_tensor

__all__ = ["MSELoss"]


class MSELoss:
    """Squared error between a prediction x and a target t, with a consistent gradient.

    - ``reduction="mean"``: L = (1/N) Σ (x_i - t_i)² (eq. 14), dL/dx = 2 (x - t) / N.
    - ``reduction="sum"``:  L = Σ (x_i - t_i)², dL/dx = 2 (x - t) (eq. 15).

    N is the number of elements of one network's prediction (batch × outputs), as in
    ``torch.nn.MSELoss``. The report pairs eq. 14 with eq. 15, which are not a function and
    its derivative (they differ by the factor N); refnet keeps each pair consistent.

    Predictions are ``[B, C]``, giving a scalar loss, or ``[R, B, C]`` with replicas, giving
    one loss per replica (shape ``[R]``); each replica's gradient is that of its own loss.

    Args:
        reduction: ``"mean"`` (default, as torch) or ``"sum"``.
    """

    def __init__(self, reduction="mean"):
        if reduction not in ("mean", "sum"):
            raise ValueError(f"MSELoss: reduction must be 'mean' or 'sum', got {reduction!r}")
        self.reduction = reduction
        self._difference = None

    def forward(self, prediction, target):
        """Return the loss: a 0-d tensor, or shape ``[R]`` with replicas."""
        where = Where(self, "forward")
        check_tensor(where, prediction, "prediction")
        check_tensor(where, target, "target")
        if prediction.ndim not in (2, 3):
            raise ValueError(f"{where}: expected prediction of shape [B, C] or [R, B, C], "
                             f"got {list(prediction.shape)}")
        if prediction.numel() == 0:
            raise ValueError(f"{where}: expected a non-empty prediction (at least one sample and "
                             f"one output), got shape {list(prediction.shape)}")
        check_shape(where, target, prediction.shape, "target (same shape as prediction)")
        check_same_dtype_device(where, target, prediction, "target", "prediction")
        self._difference = prediction - target
        loss = self._difference.square().sum(dim=(-2, -1))
        return loss / self._count() if self.reduction == "mean" else loss

    def backward(self):
        """Return dL/dprediction for the last ``forward``."""
        check_cached(Where(self, "backward"), self._difference)
        if self.reduction == "mean":
            return (2 / self._count()) * self._difference
        return self._difference + self._difference  # 2(x - t), exactly, in one fast call

    def _count(self):
        return self._difference.shape[-2] * self._difference.shape[-1]

    def __call__(self, prediction, target):
        return self.forward(prediction, target)

    def __repr__(self):
        return f"MSELoss(reduction={self.reduction!r})"
