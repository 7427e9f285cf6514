"""The structure of a component, independent of any framework: what the harness builds and twins.

A ``Layer`` says what a module computes (``linear`` with its sizes, an activation, ``dropout``,
a ``sequential`` of children). An extra element-wise activation carries the torch function it
mirrors (``Function``: a name in ``torch.nn.functional`` or ``torch`` and its keyword
arguments), declared by the adapter's ``extra_activations``. A leaf marked ``shared(key, …)``
is ONE module at every position that carries the same key: built once, placed several times.
The harness builds the target's module from it through the adapter (``build``) and the torch
twin from it (``checks/reference.py``), so the ground truth never depends on the target's class
names or attributes: only on the structure the harness asked for and the parameter values the
target exposes through ``param()``, taken in order, a weight then a bias per ``linear`` (and an
extra activation's learned tensors), once per instance.
"""

import reprlib
import warnings
from dataclasses import dataclass, replace

import torch
from torch.nn import functional

from verification.targets.protocol import ModuleView, ProtocolError, one_line_label

__all__ = ["Layer", "Function", "FunctionError", "linear", "relu", "tanh", "sigmoid",
           "activation", "dropout", "sequential", "shared", "report_network", "leaves",
           "instances", "describe", "Component", "as_component", "build", "layer_to_data",
           "layer_from_data", "REPORT_SIZES", "TENSOR_ARGUMENTS"]

REPORT_SIZES = (2, 25, 25, 25, 2)
"""The report's network (Figure 1)."""
TENSOR_ARGUMENTS = {"prelu": ("weight",)}
"""torch's element-wise functions that take a learned tensor after the input: the module's
parameters, listed by its ``param()`` in this order (PReLU's weight: one value, or one per
feature)."""
_PROBE = torch.linspace(-3.0, 3.0, 13, dtype=torch.float64).reshape(1, 13)


class FunctionError(ValueError):
    """A ``Function`` that names no torch function, or whose arguments it does not accept."""


@dataclass(frozen=True)
class Function:
    """A torch element-wise function: ``torch.nn.functional.<name>`` (else ``torch.<name>``)
    applied as ``f(x, *parameters, **options)``.

    Attributes:
        name: the torch function's name, e.g. ``"leaky_relu"``.
        options: its keyword arguments as sorted ``(name, value)`` pairs, e.g.
            ``(("negative_slope", 0.01),)``.
    """

    name: str
    options: tuple = ()

    @classmethod
    def declared(cls, name, options=None):
        """The ``Function`` ``name(x, **options)``, checked: it must exist, accept the options,
        be finite on 13 points of [-3, 3] (a function of part of the line, as log or sqrt, is
        refused by name), and be element-wise (those points at once give what each gives alone,
        to 1e-12: vectorised and scalar kernels differ by an ulp) and deterministic.

        Raises:
            FunctionError: naming what is wrong.
        """
        options = dict(options or {})
        if not isinstance(name, str) or not all(isinstance(key, str) for key in options):
            raise FunctionError(f"expected a torch function name and a dict of keyword "
                                f"arguments, got {name!r}, {options!r}")
        function = cls(name, tuple(sorted(options.items())))
        if function.torch_function is None:
            raise FunctionError(f"torch has no function {name!r} (neither "
                                f"torch.nn.functional.{name} nor torch.{name})")
        probe = function.probe_parameters(1)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                whole, again = function(_PROBE, *probe), function(_PROBE, *probe)
                apart = [function(_PROBE[:, index:index + 1], *probe)
                         for index in range(_PROBE.shape[1])]
        except (TypeError, RuntimeError, ValueError) as error:
            raise FunctionError(f"{function.qualified_name}(x, **{options!r}) raised "
                                f"{type(error).__name__}: {error}") from error
        if isinstance(whole, torch.Tensor) and whole.shape == _PROBE.shape and not bool(
                torch.isfinite(whole).all()):
            where = ", ".join(f"{float(x):g}" for x in _PROBE[~torch.isfinite(whole)])
            raise FunctionError(f"{function.qualified_name}(x, **{options!r}) is not finite at "
                                f"x = {where}: an activation is checked on inputs throughout "
                                "[-3, 3], so it must be defined on the whole line")
        if not isinstance(whole, torch.Tensor) or whole.shape != _PROBE.shape or not (
                torch.allclose(whole, torch.cat(apart, dim=1), rtol=1e-12, atol=1e-300)):
            raise FunctionError(f"{function.qualified_name} is not element-wise: applied to 13 "
                                "points at once it does not give what it gives to each alone")
        if not torch.equal(whole, again):
            raise FunctionError(f"{function.qualified_name}(x, **{options!r}) is random: two "
                                "calls on the same input differ")
        return function

    @property
    def torch_function(self):
        """The callable, or ``None`` when torch has none of that name."""
        found = getattr(functional, self.name, None) or getattr(torch, self.name, None)
        return found if callable(found) else None

    @property
    def qualified_name(self):
        prefix = "torch.nn.functional" if hasattr(functional, self.name) else "torch"
        return f"{prefix}.{self.name}"

    @property
    def parameters(self):
        """The names of its learned tensor arguments (``TENSOR_ARGUMENTS``), in order."""
        return TENSOR_ARGUMENTS.get(self.name, ())

    def probe_parameters(self, features):
        """Parameter values for a trial call: 0.25 for each of ``features`` (PReLU's default
        init)."""
        return [torch.full((features,), 0.25, dtype=torch.float64) for _ in self.parameters]

    def __call__(self, x, *parameters):
        return self.torch_function(x, *parameters, **dict(self.options))

    def __str__(self):
        arguments = ", ".join(f"{key}={value!r}" for key, value in self.options)
        return f"{self.name}({arguments})"


@dataclass(frozen=True)
class Layer:
    """One module's structure.

    Attributes:
        kind: ``"linear"``, ``"relu"``, ``"tanh"``, ``"sigmoid"``, ``"dropout"``,
            ``"sequential"``, or the adapter's name of an extra activation (its factory's).
        in_features: inputs of a ``linear``; the input's width of an element-wise module,
            where known (0 otherwise), for constructors that need it.
        out_features: outputs of a ``linear``.
        p: drop probability of a ``dropout``.
        children: the modules of a ``sequential``, in order.
        replicas: stacked replicas of a ``linear`` (refnet's replica axis), else ``None``.
        function: the torch function of an extra activation, else ``None``.
        shared: a key naming one module instance; every leaf with the same key is that one
            module (``shared``), ``""`` for a module of its own.
    """

    kind: str
    in_features: int = 0
    out_features: int = 0
    p: float = 0.0
    children: tuple = ()
    replicas: int | None = None
    function: Function | None = None
    shared: str = ""


def linear(in_features, out_features, replicas=None):
    return Layer("linear", in_features, out_features, replicas=replicas)


def relu(features=0):
    return Layer("relu", features)


def tanh(features=0):
    return Layer("tanh", features)


def sigmoid(features=0):
    return Layer("sigmoid", features)


def activation(kind, features=0, function=None):
    """The element-wise module ``kind``: ``"relu"``, ``"tanh"``, ``"sigmoid"``, or an extra
    activation named as the adapter names it, computing the torch ``function``."""
    return Layer(kind, features, function=function)


def dropout(p, features=0):
    """Dropout with drop probability ``p`` on inputs ``features`` wide (passed to a factory
    that asks for ``features``, as to an activation's)."""
    return Layer("dropout", features, p=p)


def sequential(*children):
    return Layer("sequential", children=tuple(children))


def shared(key, layer):
    """``layer`` as the module instance ``key``: every leaf of a structure marked with the same
    key is one module, built once (the first time) and placed at each position."""
    if layer.kind == "sequential":
        raise ValueError("shared: mark leaves, not containers")
    return replace(layer, shared=key)


def layer_to_data(layer):
    """``layer`` as plain data (a dict of numbers, strings and lists) to send to another
    process; ``layer_from_data`` reads it back."""
    return {"kind": layer.kind, "in_features": layer.in_features,
            "out_features": layer.out_features, "p": layer.p,
            "children": [layer_to_data(child) for child in layer.children],
            "replicas": layer.replicas, "shared": layer.shared,
            "function": None if layer.function is None else [layer.function.name,
                                                             list(map(list,
                                                                      layer.function.options))]}


def layer_from_data(data):
    """The ``Layer`` that ``layer_to_data`` wrote (its function taken as written: the process
    that reads it builds the layer, the one that wrote it checked the function)."""
    function = data["function"]
    return Layer(str(data["kind"]), int(data["in_features"]), int(data["out_features"]),
                 float(data["p"]), tuple(layer_from_data(child) for child in data["children"]),
                 data["replicas"], None if function is None else Function(
                     str(function[0]), tuple(tuple(option) for option in function[1])),
                 str(data["shared"]))


def report_network(hidden, output="sigmoid"):
    """``Linear → hidden → … → Linear → output`` (the report's Figure 1, ``REPORT_SIZES``, with
    its Sigmoid output); ``output=None`` ends with the last Linear (for a framework without
    Sigmoid)."""
    sizes, layers = REPORT_SIZES, []
    for index, (inputs, outputs) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        last = index == len(sizes) - 2
        layers.append(linear(inputs, outputs))
        if not last or output is not None:
            layers.append(Layer(output if last else hidden, outputs))
    return sequential(*layers)


def leaves(layer):
    """The non-container layers, in forward order."""
    if layer.kind == "sequential":
        for child in layer.children:
            yield from leaves(child)
    else:
        yield layer


def instances(layer):
    """The distinct module instances, in order of first position: each leaf, once per
    ``shared`` key."""
    seen = set()
    for leaf in leaves(layer):
        if not leaf.shared or leaf.shared not in seen:
            seen.add(leaf.shared)
            yield leaf


def describe(layer):
    """A one-line name: ``Linear(2, 25)``, ``Sequential(Linear(2, 25), ReLU(), …)``; a shared
    instance ends with its key, ``Tanh() [act]``."""
    if layer.kind == "sequential":
        return f"Sequential({', '.join(describe(child) for child in layer.children)})"
    if layer.kind == "linear":
        extra = f", replicas={layer.replicas}" if layer.replicas else ""
        text = f"Linear({layer.in_features}, {layer.out_features}{extra})"
    elif layer.kind == "dropout":
        text = f"Dropout(p={layer.p:g})"
    elif layer.function is not None:
        text = f"{layer.kind}: {layer.function}"
    else:
        text = {"relu": "ReLU()", "tanh": "Tanh()", "sigmoid": "Sigmoid()"}[layer.kind]
    return f"{text} [{layer.shared}]" if layer.shared else text


@dataclass
class Component:
    """A module built for a check: the view the harness calls, its structure, its leaves.

    Attributes:
        view: the ``ModuleView`` the checks call.
        layer: the structure it was built from.
        leaves: the target's leaf objects in forward order, one per position (a shared
            instance at each of its positions; Dropout twins read their mask); ``None`` where
            unknown.
        weight_layout: ``"out_in"`` or ``"in_out"`` (declared by the target).
    """

    view: ModuleView
    layer: Layer
    leaves: list | None = None
    weight_layout: str = "out_in"

    @property
    def name(self):
        return self.view.name


def as_component(module, layer=None, *, weight_layout="out_in", per_sample=False, name=None):
    """A ``Component`` for ``module``, as a public check receives it: itself if it is one,
    else a ``ModuleView`` of it with the structure ``layer`` (``None``: unknown, which finite
    differences do not need and twins do; a refnet module's is read from its classes by
    ``refnet_target.refnet_component``)."""
    if isinstance(module, Component):
        return module
    label = name or (describe(layer) if layer is not None else one_line_label(module))
    view = module if isinstance(module, ModuleView) else ModuleView(module, label,
                                                                  per_sample=per_sample)
    return Component(view, layer, None, weight_layout)


def build(target, layer, generator, name=None, dtype=None):
    """The target's module for ``layer``, built through its adapter, as a ``Component``.

    Args:
        target: a ``Target``.
        layer: the structure.
        generator: passed to the factories that take one (``linear``, ``dropout``).
        name: the label in messages; ``describe(layer)`` when ``None``.
        dtype: torch's default dtype while the factories run (``Target.build``'s).

    Raises:
        ProtocolError: a factory returned no module (``_module``).
    """
    built, instances = [], {}

    def make(node):
        if node.kind == "sequential":
            return _module(node, target.build("sequential", *(make(child)
                                                              for child in node.children),
                                                dtype=dtype))
        if node.shared in instances:
            built.append(instances[node.shared])
            return instances[node.shared]
        if node.kind == "linear":
            module = target.build("linear", node.in_features, node.out_features, generator,
                                  dtype=dtype, features=node.in_features)
        elif node.kind == "dropout":
            module = target.build("dropout", node.p, generator, dtype=dtype,
                                  features=node.in_features)
        else:
            module = target.build(node.kind, dtype=dtype, features=node.in_features)
        module = _module(node, module)
        if node.shared:
            instances[node.shared] = module
        built.append(module)
        return module

    module = make(layer)
    facts = target.facts
    view = ModuleView(module, describe(layer) if name is None else name, hooks=target.hooks,
                      returns_grad=layer.kind != "sequential" or facts.sequential_returns_grad,
                      twins=target.twins,
                      zero_sample=_zero_sample(layer, target.facts.dtypes[0] if dtype is None
                                               else dtype))
    return Component(view, layer, built, facts.weight_layout)


def _zero_sample(layer, dtype):
    """One zero sample of ``layer``'s input (``None`` where its width is unknown: a lone
    element-wise module built without one)."""
    width = next(leaves(layer)).in_features
    return torch.zeros(1, width, dtype=dtype) if width else None


def _module(node, returned):
    """``returned``, what the adapter's factory built for ``node``, when it is a module: an
    object with ``forward`` and ``backward`` methods. Otherwise ``ProtocolError`` saying what
    the factory returned (``None``, a number, a list, a tensor …) and what was expected."""
    try:
        is_module = all(callable(getattr(returned, method, None))
                        for method in ("forward", "backward"))
    except Exception:  # an attribute that raises on a foreign object: no module
        is_module = False
    if is_module:
        return returned
    if isinstance(returned, torch.Tensor):
        what = (f"a tensor (dtype {returned.dtype}, shape {list(returned.shape)}, on "
                f"{returned.device})")
    else:
        what = "None" if returned is None else f"{type(returned).__name__} {reprlib.repr(returned)}"
    raise ProtocolError(f"the adapter's {node.kind}() returned {what} for {describe(node)}; "
                        "expected a module: an object with forward() and backward() methods")
