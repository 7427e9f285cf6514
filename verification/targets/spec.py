"""The structure of a component, independent of any framework: what the harness builds and twins.

A ``Layer`` says what a module computes (``linear`` with its sizes, an activation, ``dropout``,
a ``sequential`` of children). The harness builds the target's module from it through the
adapter (``build``) and the torch twin from it (``checks/reference.py``), so the ground truth
never depends on the target's class names or attributes: only on the structure the harness
asked for and the parameter values the target exposes through ``param()``, taken in order, a
weight then a bias per ``linear``.
"""

from dataclasses import dataclass

from verification.targets.protocol import ModuleView

__all__ = ["Layer", "linear", "relu", "tanh", "sigmoid", "activation", "dropout", "sequential",
           "report_network", "leaves", "describe", "Component", "build", "REPORT_SIZES"]

REPORT_SIZES = (2, 25, 25, 25, 2)
"""The report's network (Figure 1)."""


@dataclass(frozen=True)
class Layer:
    """One module's structure.

    Attributes:
        kind: ``"linear"``, ``"relu"``, ``"tanh"``, ``"sigmoid"``, ``"dropout"`` or
            ``"sequential"``.
        in_features: inputs of a ``linear``; the input's width of an element-wise module,
            where known (0 otherwise), for constructors that need it.
        out_features: outputs of a ``linear``.
        p: drop probability of a ``dropout``.
        children: the modules of a ``sequential``, in order.
        replicas: stacked replicas of a ``linear`` (refnet's replica axis), else ``None``.
    """

    kind: str
    in_features: int = 0
    out_features: int = 0
    p: float = 0.0
    children: tuple = ()
    replicas: int | None = None


def linear(in_features, out_features, replicas=None):
    return Layer("linear", in_features, out_features, replicas=replicas)


def relu(features=0):
    return Layer("relu", features)


def tanh(features=0):
    return Layer("tanh", features)


def sigmoid(features=0):
    return Layer("sigmoid", features)


def activation(kind, features=0):
    """The element-wise module ``kind`` (``"relu"``, ``"tanh"`` or ``"sigmoid"``)."""
    return Layer(kind, features)


def dropout(p):
    return Layer("dropout", p=p)


def sequential(*children):
    return Layer("sequential", children=tuple(children))


def report_network(hidden, sizes=REPORT_SIZES, output="sigmoid"):
    """``Linear → hidden → … → Linear → output`` (the report's Figure 1, with its Sigmoid
    output); ``output=None`` ends with the last Linear (for a framework without Sigmoid)."""
    layers = []
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


def describe(layer):
    """A one-line name: ``Linear(2, 25)``, ``Sequential(Linear(2, 25), ReLU(), …)``."""
    if layer.kind == "sequential":
        return f"Sequential({', '.join(describe(child) for child in layer.children)})"
    if layer.kind == "linear":
        extra = f", replicas={layer.replicas}" if layer.replicas else ""
        return f"Linear({layer.in_features}, {layer.out_features}{extra})"
    if layer.kind == "dropout":
        return f"Dropout(p={layer.p:g})"
    return {"relu": "ReLU()", "tanh": "Tanh()", "sigmoid": "Sigmoid()"}[layer.kind]


@dataclass
class Component:
    """A module built for a check: the view the harness calls, its structure, its leaves.

    Attributes:
        view: the ``ModuleView`` the checks call.
        layer: the structure it was built from.
        leaves: the target's leaf objects in forward order (Dropout twins read their mask);
            ``None`` where unknown.
        weight_layout: ``"out_in"`` or ``"in_out"`` (declared by the target).
    """

    view: ModuleView
    layer: Layer
    leaves: list | None = None
    weight_layout: str = "out_in"

    @property
    def name(self):
        return self.view.name


def build(target, layer, generator, name=None):
    """The target's module for ``layer``, built through its adapter, as a ``Component``.

    Args:
        target: a ``Target``.
        layer: the structure.
        generator: passed to the factories that take one (``linear``, ``dropout``).
        name: the label in messages; ``describe(layer)`` when ``None``.
    """
    built = []

    def make(node):
        if node.kind == "sequential":
            return target.build("sequential", *(make(child) for child in node.children))
        if node.kind == "linear":
            module = target.build("linear", node.in_features, node.out_features, generator,
                                  features=node.in_features)
        elif node.kind == "dropout":
            module = target.build("dropout", node.p, generator, features=node.in_features)
        else:
            module = target.build(node.kind, features=node.in_features)
        built.append(module)
        return module

    module = make(layer)
    facts = target.facts
    view = ModuleView(module, describe(layer) if name is None else name, hooks=target.hooks,
                      returns_grad=layer.kind != "sequential" or facts.sequential_returns_grad)
    return Component(view, layer, built, facts.weight_layout)
