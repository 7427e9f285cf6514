"""Torch's global state around a target's code: kept, restored, and any change reported.

A framework may switch autograd off (``torch.set_grad_enabled(False)``, as the course handout
asks) or change the default dtype, at import or inside a call. The harness's own reference
computations need autograd, and later checks need the state they started with, so every check
runs inside ``torch_state_kept`` and a change made by the target's code during a check is a
failure of that check (``state_changes``).
"""

from contextlib import contextmanager
from dataclasses import dataclass

import torch

__all__ = ["TorchState", "torch_state_kept", "state_changes"]


@dataclass(frozen=True)
class TorchState:
    """The global settings a framework can change: autograd's grad mode and the default dtype."""

    grad_enabled: bool
    default_dtype: torch.dtype

    @classmethod
    def now(cls):
        return cls(torch.is_grad_enabled(), torch.get_default_dtype())

    def restore(self):
        torch.set_grad_enabled(self.grad_enabled)
        torch.set_default_dtype(self.default_dtype)


@contextmanager
def torch_state_kept():
    """Restore grad mode and default dtype on exit, whatever the body did or raised."""
    saved = TorchState.now()
    try:
        yield saved
    finally:
        saved.restore()


def state_changes(before, after):
    """A sentence per setting that differs between two ``TorchState``s (empty when none)."""
    changes = []
    if before.grad_enabled != after.grad_enabled:
        changes.append(f"grad mode {before.grad_enabled} → {after.grad_enabled} "
                       "(torch.set_grad_enabled)")
    if before.default_dtype != after.default_dtype:
        changes.append(f"default dtype {before.default_dtype} → {after.default_dtype}")
    return changes
