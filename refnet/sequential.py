"""Container that chains modules (report section 2.4)."""

from refnet.module import Module

__all__ = ["Sequential"]


class Sequential(Module):
    """``y = m_k(… m_2(m_1(x)))``; backward runs the modules in reverse order.

    Each module instance may appear once only: a module caches its forward state, so an
    instance used at two positions would have its first cache overwritten by the second and
    return wrong gradients. The loss is not part of the container: ``backward`` takes
    dL/dy, which ``MSELoss.backward`` returns.

    Args:
        *modules: objects following the module protocol, applied in order.
    """

    def __init__(self, *modules):
        for position, module in enumerate(modules):
            if not (callable(getattr(module, "forward", None))
                    and callable(getattr(module, "backward", None))):
                raise TypeError(f"Sequential: item {position} ({module!r}) is not a module "
                                "(it needs forward and backward)")
        self.modules = list(modules)
        self._check_unique_instances()

    def _check_unique_instances(self):
        first_position = {}
        for position, module in enumerate(self._leaves()):
            if id(module) in first_position:
                raise ValueError(
                    f"Sequential: the same {module!r} instance is placed at positions "
                    f"{first_position[id(module)]} and {position}; its cached forward state "
                    "would be overwritten. Create a separate instance for each position."
                )
            first_position[id(module)] = position

    def _leaves(self):
        for module in self.modules:
            if isinstance(module, Sequential):
                yield from module._leaves()
            else:
                yield module

    def forward(self, x):
        """Apply each module in order."""
        for module in self.modules:
            x = module.forward(x)
        return x

    def backward(self, grad_output):
        """Back-propagate dL/dy through the modules in reverse order; return dL/dx."""
        for module in reversed(self.modules):
            grad_output = module.backward(grad_output)
        return grad_output

    def param(self):
        """Every module's ``(value, gradient)`` pairs, in module order."""
        return [pair for module in self.modules for pair in module.param()]

    def train(self):
        """Put this container and every module in training mode."""
        self.training = True
        for module in self.modules:
            module.train()
        return self

    def eval(self):
        """Put this container and every module in evaluation mode."""
        self.training = False
        for module in self.modules:
            module.eval()
        return self

    def __repr__(self):
        inner = "".join(f"\n  {module!r}," for module in self.modules)
        return f"Sequential({inner}\n)"
