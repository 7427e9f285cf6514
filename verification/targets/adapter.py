"""The adapter contract: how the harness builds each component of a framework under test.

An adapter is any object (a Python module, a class, an instance) with these attributes; a
class is instantiated without arguments. Each factory returns a FRESH object per call:

============================================  ==================================================
``linear(in_features, out_features, generator)``  a fully connected layer (the generator may be
                                              ignored: the harness writes its own values
                                              into ``param()`` before every check)
``relu()``, ``tanh()``, ``sigmoid()``         the activations (eqs. 8-13)
``sequential(*modules)``                      the container (section 2.4)
``mse_loss()``                                the loss (eqs. 14-15): ``forward(prediction,
                                              target) -> 0-d``, ``backward() -> dL/dprediction``
``dropout(p, generator)``                     optional; ``p`` is the DROP probability
``sgd(params, lr)``                           optional; ``params`` is a ``param()`` list
``adam(params, lr, betas, eps)``              optional
``cross_entropy_loss()``, ``bce_loss()``      optional losses (logits with one-hot or index
                                              targets; probabilities with 0/1 targets)
``optimizers``                                optional ``{"Adagrad": "adagrad", …}``: a
                                              ``torch.optim`` class name → the name of the
                                              adapter's factory ``(params, lr)``, compared with
                                              that class at torch's defaults
============================================  ==================================================

Declared facts, read as attributes where they differ from refnet's (``Facts``):
``weight_layout`` (``"out_in"`` as in the report, or ``"in_out"``), ``per_sample`` (modules take
one sample, ``[in] -> [out]``), ``dtype`` (``torch.float32`` for a framework that computes only
in float32), ``mse_reduction`` (``"mean"`` over all elements, ``"sum"``, ``"batch_mean"``: over
the batch only), ``relu_slope_at_zero``, ``cross_entropy_target`` (``"one_hot"`` or ``"index"``)
and ``sequential_returns_grad`` (``False`` for a container whose ``backward`` returns ``None``).

``load_target`` reads an adapter from a file path (``path/to/adapter.py``, optionally
``:Name``), an importable name (``package.module``, optionally ``:Name``) or ``"refnet"``.
Loading runs the adapter's code, and so the framework's, with the user's permissions.
"""

import importlib
import importlib.util
import subprocess
import sys
from dataclasses import dataclass, fields
from pathlib import Path

import torch

from verification.targets.state import torch_state_kept

__all__ = ["Facts", "Target", "TargetError", "load_target", "target_name", "COMPONENTS",
           "OPTIONAL"]

REQUIRED = ("linear", "relu", "tanh", "sigmoid", "sequential", "mse_loss")
OPTIONAL = ("dropout", "sgd", "adam", "cross_entropy_loss", "bce_loss")
COMPONENTS = REQUIRED + OPTIONAL
_LAYOUTS = ("out_in", "in_out")
_REDUCTIONS = ("mean", "sum", "batch_mean")
_CE_TARGETS = ("one_hot", "index")


class TargetError(ValueError):
    """An adapter that cannot be loaded or that breaks the contract; the message says how."""


@dataclass(frozen=True)
class Facts:
    """What a target declares where it differs from refnet; each default is refnet's choice.

    Attributes:
        weight_layout: ``"out_in"`` (the report's ``#out × #in``) or ``"in_out"``.
        per_sample: modules take one sample (``[in] -> [out]``); the harness loops over rows.
        dtype: the dtype the framework computes in; ``None`` for whatever it is given
            (the checks then run in float64).
        mse_reduction: ``"mean"`` (÷ batch × outputs), ``"sum"`` or ``"batch_mean"`` (÷ batch);
            ``None``: not declared, measured and reported.
        relu_slope_at_zero: the derivative its ReLU uses at exactly 0 (torch: 0); ``None``:
            not declared, any single valid value is reported as a convention.
        cross_entropy_target: ``"one_hot"`` ([B, C] floats) or ``"index"`` (int64 [B]).
        sequential_returns_grad: whether the container's ``backward`` returns dL/dx.
    """

    weight_layout: str = "out_in"
    per_sample: bool = False
    dtype: torch.dtype | None = None
    mse_reduction: str | None = None
    relu_slope_at_zero: float | None = None
    cross_entropy_target: str = "one_hot"
    sequential_returns_grad: bool = True

    def __post_init__(self):
        for name, value, allowed in (("weight_layout", self.weight_layout, _LAYOUTS),
                                     ("mse_reduction", self.mse_reduction, _REDUCTIONS),
                                     ("cross_entropy_target", self.cross_entropy_target,
                                      _CE_TARGETS)):
            if value not in allowed and not (name == "mse_reduction" and value is None):
                raise TargetError(f"declared fact {name}={value!r}: expected one of {allowed}")
        if self.dtype not in (None, torch.float32, torch.float64):
            raise TargetError(f"declared fact dtype={self.dtype!r}: expected None, "
                              "torch.float32 or torch.float64")

    @property
    def check_dtype(self):
        """The dtype the checks feed and hold the target to: float64 unless declared."""
        return torch.float64 if self.dtype is None else self.dtype

    def declared(self):
        """``{name: value}`` of the facts that differ from the defaults (for reports)."""
        default = Facts()
        return {f.name: (str(getattr(self, f.name)) if f.name == "dtype"
                         else getattr(self, f.name))
                for f in fields(self) if getattr(self, f.name) != getattr(default, f.name)}


@dataclass(frozen=True)
class Target:
    """A framework under test: its name, adapter, declared facts and extra optimisers.

    Build components with ``build(component, *args)``; it runs the factory with torch's
    default dtype set to the check dtype (so that ``torch.empty(out, in)`` in a handout-style
    framework gives float64 parameters) and torch's global state restored afterwards.
    """

    name: str
    adapter: object
    facts: Facts
    optimizers: dict
    source: str = ""

    @classmethod
    def from_adapter(cls, adapter, name=None, source=""):
        """Wrap an adapter object (instantiating a class), read its facts, check the contract.

        Raises:
            TargetError: a required factory is missing, or a declared fact is malformed.
        """
        if isinstance(adapter, type):
            adapter = adapter()
        missing = [component for component in REQUIRED
                   if not callable(getattr(adapter, component, None))]
        if missing:
            raise TargetError(f"adapter {name or adapter!r} lacks the required factories "
                              f"{missing}; see verification/targets/adapter.py")
        values = {f.name: getattr(adapter, f.name) for f in fields(Facts)
                  if hasattr(adapter, f.name)}
        optimizers = dict(getattr(adapter, "optimizers", None) or {})
        for torch_name, factory in optimizers.items():
            if not hasattr(torch.optim, torch_name) or not callable(getattr(adapter, factory,
                                                                            None)):
                raise TargetError(f"adapter optimizers[{torch_name!r}] = {factory!r}: needs a "
                                  "torch.optim class name and the name of an adapter factory")
        label = name or getattr(adapter, "NAME", None) or type(adapter).__name__
        return cls(label, adapter, Facts(**values), optimizers, source)

    def has(self, component):
        """Whether the adapter provides ``component`` (a factory name or an optimiser)."""
        return callable(getattr(self.adapter, component, None))

    def build(self, component, *args):
        """Call the adapter's factory ``component`` under the check dtype; return the object."""
        with torch_state_kept():
            torch.set_default_dtype(self.facts.check_dtype)
            return getattr(self.adapter, component)(*args)

    def description(self):
        """The JSON form recorded in a report's ``target`` object."""
        return {"name": self.name, "adapter": self.source or type(self.adapter).__name__,
                "version": _version(self.adapter, self.source),
                "declared_facts": self.facts.declared(),
                "components": [c for c in COMPONENTS if self.has(c)],
                "optimizers": sorted(self.optimizers)}


def _version(adapter, source):
    """The target's ``__version__`` (or ``VERSION``), else the git commit of the adapter's
    folder, else ``None``."""
    for holder in (adapter, sys.modules.get(type(adapter).__module__)):
        value = getattr(holder, "__version__", None) or getattr(holder, "VERSION", None)
        if value:
            return str(value)
    location = source.partition(":")[0]
    if not location.endswith(".py"):
        return None
    try:
        completed = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                                   cwd=Path(location).resolve().parent, timeout=10, check=False)
    except OSError:
        return None
    commit = completed.stdout.strip() if completed.returncode == 0 else ""
    return f"git {commit}" if commit else None


def load_target(spec):
    """The ``Target`` named by ``spec``: ``"refnet"``, a file path or an importable name.

    Either form may end in ``:Name`` to pick an attribute of the loaded module (a class is
    instantiated); otherwise the module's ``Adapter`` attribute is used when present, else
    the module itself. A file's folder is put on ``sys.path`` so its sibling imports work.
    Torch's global state (grad mode, default dtype) is restored after the import, so a
    framework that switches autograd off at import cannot break the harness.

    Raises:
        TargetError: the file or module cannot be found or raises on import, or the adapter
            breaks the contract; the message names the spec.
    """
    if spec == "refnet":
        from verification.targets.refnet_target import RefnetAdapter
        return Target.from_adapter(RefnetAdapter, name="refnet", source="refnet")
    location, _, attribute = spec.partition(":")
    with torch_state_kept():
        module = _import(location, spec)
    if attribute:
        if not hasattr(module, attribute):
            raise TargetError(f"target {spec!r}: {location} has no attribute {attribute!r}")
        adapter = getattr(module, attribute)
    else:
        adapter = getattr(module, "Adapter", module)
    name = target_name(spec)
    return Target.from_adapter(adapter, name=name, source=spec)


def target_name(spec):
    """A target's name from its spec: ``handout`` for ``…/handout_adapter.py``,
    ``handout:WrongTanhDerivative`` with an attribute, the module name for an importable one."""
    location, _, attribute = spec.partition(":")
    base = Path(location).stem if location.endswith(".py") else location
    base = base.removesuffix("_adapter")
    return f"{base}:{attribute}" if attribute else base


def _import(location, spec):
    try:
        if location.endswith(".py") or Path(location).is_file():
            return _import_file(Path(location))
        return importlib.import_module(location)
    except TargetError:
        raise
    except Exception as error:  # the target's own import failed: say so, never crash
        raise TargetError(f"target {spec!r} failed to import: {type(error).__name__}: "
                          f"{error}") from error


def _import_file(path):
    if not path.is_file():
        raise TargetError(f"target file {path} does not exist")
    folder = str(path.resolve().parent)
    module_name = f"_refnet_target_{path.stem}_{abs(hash(str(path.resolve())))}"
    specification = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(specification)
    sys.path.insert(0, folder)
    try:
        specification.loader.exec_module(module)
    finally:
        sys.path.remove(folder)
    return module
