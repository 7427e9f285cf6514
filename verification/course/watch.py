"""A course's rules watched while a submission runs: every call it makes into a forbidden
namespace, counted in the process that runs it (the executor).

``Watch(forbidden, allowed).install()``, before the submission is imported, replaces the
namespaces' entry points by counting wrappers: every public function of each forbidden module
and of its submodules already imported, torch's C functions they re-export included
(``torch.nn.functional.relu``, ``conv1d``, ``torch.nn.init.
xavier_uniform_``, ``torch.autograd.grad``), and the constructors, ``__call__`` and ``apply``
of every class they define (an ``nn.Module`` built or called, a ``torch.optim`` optimiser
built, an ``autograd.Function`` applied); for ``torch.autograd``, also ``Tensor.backward``,
``requires_grad_``, ``retain_grad`` and ``register_hook``. A call counts only when it comes
from outside torch's own package, so torch's internal uses (an optimiser's profiler hooks,
printing a tensor, ``nn.Linear`` calling ``Module.__init__``) are not the submission's. What
is defined under an allowed module (``torch.autograd.grad_mode``: ``torch.no_grad``) is left
alone. The executor also notes each tensor it returns that requires grad or has a
``grad_fn`` (``note``).

This sees honest use, the kind a student's code makes. It cannot promise anything against a
submission written to hide (one that restores the originals, or reaches torch's C functions
directly): the source rules (``sources.py``) and the judge's own checks still stand.
"""

import functools
import importlib
import os
import sys
import types

import torch

__all__ = ["Watch"]

_TENSOR_METHODS = ("backward", "requires_grad_", "retain_grad", "register_hook")
_CLASS_ENTRIES = ("__init__", "__call__", "apply")
_TORCH = os.path.dirname(torch.__file__) + os.sep


class Watch:
    """Counts calls into the forbidden namespaces (module docstring).

    Attributes:
        phase: where calls happen now, sent with each count (``"import"`` while the
            submission is imported, then ``""``: the judge's current case).
    """

    def __init__(self, forbidden, allowed=()):
        self.forbidden, self.allowed = tuple(forbidden), tuple(allowed)
        self.phase = "import"
        self.counts = {}

    def install(self):
        """Wrap every entry point (module docstring); returns ``self``."""
        wrapped = set()
        for namespace in self.forbidden:
            try:
                importlib.import_module(namespace)
            except ImportError:
                continue
            modules = sorted((name for name in list(sys.modules)
                              if name == namespace or name.startswith(namespace + ".")),
                             key=lambda name: (name.count("."), name))
            for name in modules:
                module = sys.modules.get(name)
                if module is not None and not self._allowed(name):
                    self._wrap_module(namespace, module, wrapped)
        if "torch.autograd" in self.forbidden:
            for method in _TENSOR_METHODS:
                original = getattr(torch.Tensor, method)
                setattr(torch.Tensor, method,
                        self._wrapper("torch.autograd", f"Tensor.{method}", original))
        return self

    def note(self, namespace, name):
        """Count one use found by other means (a returned tensor that requires grad)."""
        if namespace in self.forbidden:
            key = (namespace, name, self.phase)
            self.counts[key] = self.counts.get(key, 0) + 1

    def take(self):
        """``[[namespace, name, count, phase], …]`` counted since the last ``take``."""
        counts, self.counts = self.counts, {}
        return [[namespace, name, count, phase]
                for (namespace, name, phase), count in counts.items()]

    def _allowed(self, name):
        return any(name == space or name.startswith(space + ".") for space in self.allowed)

    def _wrap_module(self, namespace, module, wrapped):
        for attribute, value in list(vars(module).items()):
            if attribute.startswith("_") or id(value) in wrapped:
                continue
            defined_in = getattr(value, "__module__", None) or ""
            builtin = isinstance(value, types.BuiltinFunctionType)  # ``F.conv1d``: torch's own
            if not (builtin or defined_in.startswith(namespace)) or self._allowed(defined_in):
                continue
            label = f"{module.__name__}.{attribute}"
            if builtin or isinstance(value, types.FunctionType):
                wrapped.add(id(value))
                setattr(module, attribute, self._wrapper(namespace, label, value))
            elif isinstance(value, type):
                wrapped.add(id(value))
                self._wrap_class(namespace, label, value)

    def _wrap_class(self, namespace, label, cls):
        for entry in _CLASS_ENTRIES:
            value = cls.__dict__.get(entry)
            if isinstance(value, types.FunctionType):
                setattr(cls, entry, self._wrapper(namespace, label, value))
            elif isinstance(value, classmethod):
                setattr(cls, entry, classmethod(self._wrapper(namespace, label,
                                                              value.__func__)))

    def _wrapper(self, namespace, label, original):
        @functools.wraps(original)
        def counted(*args, **kwargs):
            caller = sys._getframe(1).f_code.co_filename
            if not caller.startswith(_TORCH):
                self.note(namespace, label)
            return original(*args, **kwargs)

        return counted
