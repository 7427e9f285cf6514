"""The adapter contract: how the harness builds each component of a framework under test.

An adapter is any object (a Python module, a class, an instance) with these attributes; a
class is instantiated without arguments. Each factory returns a FRESH object per call. Only
``linear`` and one loss are required: a target cannot be judged without them. The other
components are checked where present, and the cases that need a missing one are skipped and
listed as such (``verification/suite/conformance.py``).

==================================================  ============================================
``linear(in_features, out_features, generator)``    a fully connected layer (the generator may
                                                    be ignored: the harness writes its own
                                                    values into the parameters before every
                                                    check)
``mse_loss()``, ``cross_entropy_loss()``,           the losses, at least one: ``forward(
``bce_loss()``                                      prediction, target) -> 0-d``,
                                                    ``backward() -> dL/dprediction`` (MSE eqs.
                                                    14-15; logits with one-hot or index
                                                    targets; probabilities with 0/1 targets)
``relu()``, ``tanh()``, ``sigmoid()``               the activations (eqs. 8-13)
``sequential(*modules)``                            the container (section 2.4)
``dropout(p, generator)``                           ``p`` is the DROP probability
``sgd(params, lr)``, ``adam(params, lr, betas,      optimisers; ``params`` is a ``param()`` list
eps)``                                              (the module, ``optimizer_takes_module``)
``optimizers``                                      ``{"Adagrad": "adagrad", …}``: a
                                                    ``torch.optim`` class name → the name of the
                                                    adapter's factory ``(params, lr)``, compared
                                                    with that class
``extra_losses``                                    ``{"huber": ("huber_loss", {"delta": 1.0}),
                                                    …}``: a component name → (a
                                                    ``torch.nn.functional`` element-wise loss's
                                                    name, its keyword arguments); the adapter's
                                                    factory of that name builds the loss (the
                                                    protocol of ``mse_loss()``), checked against
                                                    that function (verification/checks/loss/)
``extra_activations``                               ``{"leaky_relu": ("leaky_relu",
                                                    {"negative_slope": 0.01}), "prelu": "prelu",
                                                    …}``: the adapter's factory name → the
                                                    torch element-wise function it mirrors
                                                    (``torch.nn.functional.<name>``, else
                                                    ``torch.<name>``) and its keyword arguments
                                                    (a bare name: none); the factory takes no
                                                    positional argument, as ``relu()``
``optimizer_settings``                              ``{"sgd": ("momentum", "nesterov"), …}``: an
                                                    optimiser factory (``sgd``, ``adam`` or one
                                                    named in ``optimizers``) → the keywords of
                                                    its ``torch.optim`` class it also takes, by
                                                    keyword (``adam`` takes betas and eps by
                                                    position already)
==================================================  ============================================

Every optimiser is compared with its ``torch.optim`` class at torch's defaults and at other
values of its settings (``setting_cases`` of ``verification/vocabulary/optimizer_settings.py``):
``betas`` and ``eps`` for ``adam``, and what ``optimizer_settings`` declares. Each declared
setting is passed in every case, its default included, so the framework's own defaults never
matter.

A factory whose signature names a parameter ``features`` receives the width of the module's
input (for constructors that need the input size), and one that names ``name`` a name unique
within the run (``"tanh_3"``), both by keyword.

An extra activation's learned tensors (PReLU's ``weight``, ``spec.TENSOR_ARGUMENTS``) are its
parameters, listed by its ``param()``: one value, or one per feature.

Hooks, optional methods of the adapter (``protocol.Hooks``): ``params(module)`` (the parameters
in any structure, instead of ``param()``), ``set_training(module, training)`` (instead of
``train()``/``eval()``), ``output(module, returned)`` (what ``forward`` produced),
``loss_value(returned)`` (the loss, from what the loss's forward returned), and the calls
themselves: ``module_forward(module, x)``, ``module_backward(module, gradient)``,
``loss_forward(loss, prediction, target)`` and ``loss_backward(loss)``.

A fast path, optional: ``replicated_twin(module, tensor, x)``, the framework's replicated twin
of its module for many values of one parameter tensor at once (``protocol.ModuleView.twin``),
used by the finite differences; refnet's adapter has one (``replicas.refnet_twin``).

Declared facts, read as attributes where they differ from refnet's (``Facts``):
``weight_layout`` (``"out_in"`` as in the report, or ``"in_out"``), ``per_sample`` (modules take
one sample, ``[in] -> [out]``), ``column_vectors`` (samples are columns), ``dtype``
(``torch.float32`` for a framework that computes only in float32: it is checked in float32
alone; a framework declaring none is checked in float64 and in float32), ``mse_reduction``
(``"mean"`` over all elements, ``"sum"``, ``"batch_mean"``: over the batch only),
``relu_slope_at_zero``, ``cross_entropy_target`` (``"one_hot"`` or ``"index"``),
``sequential_returns_grad`` (``False`` for a container whose ``backward`` returns ``None``),
``optimizer_takes_module`` (optimiser factories take the module), ``loss_takes_model`` (loss
factories take a model whose ``backward`` the loss's ``backward`` calls) and ``loss_flat``
(losses take 1-D predictions: ``True`` for all, or a tuple of the loss components that do).

``load_target`` reads an adapter from a file path (``path/to/adapter.py``, optionally
``:Name``), an importable name (``package.module``, optionally ``:Name``) or ``"refnet"``.
Loading runs the adapter's code, and so the framework's, with the user's permissions.
"""

import importlib
import importlib.util
import inspect
import itertools
import subprocess
import sys
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import torch

from verification.targets.protocol import GradientProbe, Hooks, LossView
from verification.targets.spec import Function, FunctionError
from verification.targets.spec import build as build_component
from verification.targets.state import torch_state_kept
from verification.vocabulary.losses import loss_kind
from verification.vocabulary.optimizer_settings import settings_problems, torch_defaults

__all__ = ["Facts", "Target", "TargetError", "load_target", "target_name", "COMPONENTS",
           "OPTIONAL", "LOSSES", "HOOKS", "CHECK_DTYPES"]

REQUIRED = ("linear",)
LOSSES = ("mse_loss", "cross_entropy_loss", "bce_loss")
"""At least one of these is required."""
OPTIONAL = ("relu", "tanh", "sigmoid", "sequential", "dropout", "sgd", "adam")
COMPONENTS = ("linear", "relu", "tanh", "sigmoid", "sequential", *LOSSES, "dropout", "sgd",
              "adam")
HOOKS = ("params", "set_training", "output", "loss_value", "module_forward", "module_backward",
         "loss_forward", "loss_backward")
POSITIONAL_SETTINGS = {"sgd": (), "adam": ("betas", "eps")}
"""The settings the contract's optimiser factories take by position, after ``(params, lr)``."""
"""The adapter's optional hook methods (``protocol.Hooks``)."""
CHECK_DTYPES = (torch.float64, torch.float32)
"""The dtypes a target that declares none is checked in, in this order (``Facts.dtypes``)."""
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
            (the checks then run in float64 and in float32, ``dtypes``).
        mse_reduction: ``"mean"`` (÷ batch × outputs), ``"sum"`` or ``"batch_mean"`` (÷ batch);
            ``None``: not declared, measured and reported.
        relu_slope_at_zero: the derivative its ReLU uses at exactly 0 (torch: 0); ``None``:
            not declared, any single valid value is reported as a convention.
        cross_entropy_target: ``"one_hot"`` ([B, C] floats) or ``"index"`` (int64 [B]).
        sequential_returns_grad: whether the container's ``backward`` returns dL/dx.
        column_vectors: samples are columns (``[in, B]``; one sample ``[in, 1]``).
        optimizer_takes_module: optimiser factories take the module, not its ``param()``.
        loss_takes_model: loss factories take a model; the loss's ``backward`` calls the
            model's ``backward(dL/dprediction)``.
        loss_flat: losses take 1-D predictions and targets: ``True`` for every loss, or a
            tuple of the loss components that do (``("mse_loss",)``).
    """

    weight_layout: str = "out_in"
    per_sample: bool = False
    dtype: torch.dtype | None = None
    mse_reduction: str | None = None
    relu_slope_at_zero: float | None = None
    cross_entropy_target: str = "one_hot"
    sequential_returns_grad: bool = True
    column_vectors: bool = False
    optimizer_takes_module: bool = False
    loss_takes_model: bool = False
    loss_flat: bool | tuple = False

    def __post_init__(self):
        if isinstance(self.loss_flat, list):  # a tuple that crossed a process as JSON
            object.__setattr__(self, "loss_flat", tuple(self.loss_flat))
        if not (isinstance(self.loss_flat, bool) or (isinstance(self.loss_flat, tuple) and all(
                isinstance(name, str) for name in self.loss_flat))):
            raise TargetError(f"declared fact loss_flat={self.loss_flat!r}: expected True, "
                              "False or a tuple of loss component names")
        for name, value, allowed in (("weight_layout", self.weight_layout, _LAYOUTS),
                                     ("mse_reduction", self.mse_reduction, _REDUCTIONS),
                                     ("cross_entropy_target", self.cross_entropy_target,
                                      _CE_TARGETS)):
            if value not in allowed and not (name == "mse_reduction" and value is None):
                raise TargetError(f"declared fact {name}={value!r}: expected one of {allowed}")
        if self.dtype not in (None, torch.float32, torch.float64):
            raise TargetError(f"declared fact dtype={self.dtype!r}: expected None, "
                              "torch.float32 or torch.float64")

    def flat(self, component):
        """Whether the loss ``component`` takes 1-D predictions and targets (``loss_flat``)."""
        return self.loss_flat is True or (isinstance(self.loss_flat, tuple)
                                          and component in self.loss_flat)

    @property
    def dtypes(self):
        """The dtypes the checks feed and hold the target to by default: the declared one, else
        float64 then float32."""
        return CHECK_DTYPES if self.dtype is None else (self.dtype,)

    def declared(self):
        """``{name: value}`` of the facts that differ from the defaults (for reports)."""
        default = Facts()
        return {f.name: (str(getattr(self, f.name)) if f.name == "dtype"
                         else getattr(self, f.name))
                for f in fields(self) if getattr(self, f.name) != getattr(default, f.name)}


@dataclass(frozen=True)
class Target:
    """A framework under test: its name, adapter, declared facts, extra optimisers
    (``torch.optim`` class name → factory name), the settings each optimiser factory takes by
    keyword (``{factory: (keyword, …)}``, every optimiser factory listed), extra losses
    (component name → ``LossKind``, the factory having the component's name) and extra
    activations (factory name → ``spec.Function``).

    Build components with ``build(component, *args, dtype=...)``; it runs the factory with
    torch's default dtype set to the dtype being checked (so that ``torch.empty(out, in)`` in
    a handout-style framework gives parameters of that dtype) and torch's global state
    restored afterwards.
    """

    name: str
    adapter: object
    facts: Facts
    optimizers: dict
    source: str = ""
    optimizer_settings: dict = field(default_factory=dict)
    extra_losses: dict = field(default_factory=dict)
    """``{component: LossKind}``: the extra losses (``extra_losses``)."""
    activations: dict = field(default_factory=dict)
    """``{factory name: spec.Function}``: the extra activations (``extra_activations``)."""
    twins: object = None
    """The adapter's ``replicated_twin``, held by the views of the modules it builds."""
    _names: object = field(default_factory=itertools.count, repr=False, compare=False)

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
        if not any(callable(getattr(adapter, loss, None)) for loss in LOSSES):
            missing.append(" or ".join(LOSSES))
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
        settings = _optimizer_settings(adapter, optimizers, label)
        return cls(label, adapter, Facts(**values), optimizers, source, settings,
                   _extra_losses(adapter), _extra_activations(adapter),
                   getattr(adapter, "replicated_twin", None))

    def optimizer_classes(self):
        """``{factory: torch.optim class}``: ``sgd`` and ``adam`` (whether the adapter has
        them or not), then the extra optimisers by class name."""
        return _optimizer_classes(self.optimizers)

    def default_settings(self, factory):
        """``{keyword: torch's default}`` of the settings ``factory`` declares (empty for a
        factory that is no optimiser or declares none)."""
        keywords = self.optimizer_settings.get(factory, ())
        return torch_defaults(self.optimizer_classes()[factory], keywords) if keywords else {}

    def has(self, component):
        """Whether the adapter provides ``component`` (a factory name or an optimiser)."""
        return callable(getattr(self.adapter, component, None))

    @property
    def hooks(self):
        """The adapter's ``Hooks``: its hook methods and the facts that change the calls."""
        facts = self.facts
        return Hooks(**{hook: getattr(self.adapter, hook) for hook in HOOKS
                        if callable(getattr(self.adapter, hook, None))},
                     per_sample=facts.per_sample, column_vectors=facts.column_vectors,
                     optimizer_takes_module=facts.optimizer_takes_module,
                     loss_takes_model=facts.loss_takes_model,
                     loss_flat=facts.loss_flat is True)

    def build(self, component, *args, dtype=None, features=None, settings=None):
        """Call the adapter's factory ``component`` with torch's default dtype set to
        ``dtype`` (the dtype being checked; ``None``: the first of ``facts.dtypes``); return the
        object.

        ``features`` (the input's width) and a fresh unique ``name`` are passed by keyword to
        a factory whose signature names them; ``settings`` (an optimiser's declared
        settings, ``{keyword: value}``; torch's defaults when ``None``) by keyword always.
        """
        factory = getattr(self.adapter, component)
        wanted = _keyword_parameters(factory)
        keywords = dict(self.default_settings(component) if settings is None else settings)
        if "features" in wanted and features:
            keywords["features"] = features
        if "name" in wanted:
            keywords["name"] = f"{component}_{next(self._names)}"
        with torch_state_kept():
            torch.set_default_dtype(self.facts.dtypes[0] if dtype is None else dtype)
            return factory(*args, **keywords)

    def component(self, layer, seed, name=None, dtype=None):
        """The target's module for ``layer`` (``spec.build``), its factories given a generator
        seeded ``seed``, under ``dtype`` (``build``'s)."""
        return build_component(self, layer, torch.Generator().manual_seed(seed), name=name,
                               dtype=dtype)

    def loss(self, component, name=None, dtype=None):
        """A ``LossView`` of a fresh loss from the factory ``component`` (built on a
        ``GradientProbe`` when the loss takes the model), under ``dtype`` (``build``'s)."""
        probe = GradientProbe() if self.facts.loss_takes_model else None
        loss = self.build(component, *([probe] if probe is not None else []), dtype=dtype)
        hooks = replace(self.hooks, loss_flat=self.facts.flat(component))
        return LossView(loss, name or component, hooks=hooks, probe=probe)

    def forbidden_calls(self):
        """The calls into a course's forbidden namespaces counted while the target ran
        (``{(namespace, name): {"count", "where"}}``); ``None`` here: a target loaded in this
        process is not watched (``remote.RemoteTarget``, run in an executor, is)."""
        return None

    def description(self):
        """The JSON form recorded in a report's ``target`` object."""
        return {"name": self.name, "adapter": self.source or type(self.adapter).__name__,
                "version": _version(self.adapter, self.source),
                "declared_facts": self.facts.declared(),
                "components": [c for c in COMPONENTS if self.has(c)] + sorted(
                    self.extra_losses),
                "hooks": [hook for hook in HOOKS if self.has(hook)],
                "optimizers": sorted(self.optimizers),
                "extra_activations": {component: str(function)
                                      for component, function in self.activations.items()},
                "optimizer_settings": {factory: list(keywords) for factory, keywords
                                       in self.optimizer_settings.items() if keywords}}


def _optimizer_classes(optimizers):
    return {"sgd": torch.optim.SGD, "adam": torch.optim.Adam} | {
        factory: getattr(torch.optim, torch_name)
        for torch_name, factory in sorted(optimizers.items())}


def _optimizer_settings(adapter, optimizers, label):
    """``{factory: keywords}`` from the adapter's ``optimizer_settings``, for every optimiser
    factory (empty where none is declared).

    Raises:
        TargetError: a declaration names no optimiser factory of the adapter, a keyword its
            ``torch.optim`` class does not take (or one passed by position already), or a
            keyword the factory's signature cannot receive.
    """
    declared = getattr(adapter, "optimizer_settings", None) or {}
    classes = _optimizer_classes(optimizers)
    where = f"adapter {label!r}: optimizer_settings"
    if not isinstance(declared, dict):
        raise TargetError(f"{where} = {declared!r}: expected a dict {{factory: (keyword, …)}}")
    settings = {factory: () for factory in classes}
    for factory, keywords in declared.items():
        if factory not in classes or not callable(getattr(adapter, factory, None)):
            provided = [name for name in classes if callable(getattr(adapter, name, None))]
            raise TargetError(f"{where}[{factory!r}]: no such optimiser factory; the "
                              f"adapter's optimisers are {provided}")
        if isinstance(keywords, str) or not all(isinstance(k, str) for k in keywords):
            raise TargetError(f"{where}[{factory!r}] = {keywords!r}: expected a tuple of "
                              "torch.optim keyword names")
        keywords = tuple(keywords)
        positional = [k for k in keywords if k in POSITIONAL_SETTINGS.get(factory, ())]
        problems = ([f"{positional} are passed by position already"] if positional else []) + (
            settings_problems(classes[factory], keywords))
        accepted = _keyword_parameters(getattr(adapter, factory))
        if accepted and not _takes_any_keyword(getattr(adapter, factory)):
            problems += [f"the factory {factory}() has no parameter {k!r}"
                         for k in keywords if k not in accepted]
        if problems:
            raise TargetError(f"{where}[{factory!r}] = {keywords!r}: " + "; ".join(problems))
        settings[factory] = keywords
    return settings


def _takes_any_keyword(factory):
    try:
        return any(parameter.kind is inspect.Parameter.VAR_KEYWORD
                   for parameter in inspect.signature(factory).parameters.values())
    except (TypeError, ValueError):
        return True


def _declared_functions(adapter, attribute, build, example):
    """``{component: build(torch name, keyword arguments)}`` from the adapter's ``attribute``
    (``extra_activations`` or ``extra_losses``), each declaration checked.

    Raises:
        TargetError: naming the declaration: not a dict; a key that is a standard component or
            no factory of the adapter; not a torch name or a pair (name, {keyword: value});
            ``build`` refuses it (an unknown function, arguments it does not take, …).
    """
    declared = getattr(adapter, attribute, None) or {}
    if not isinstance(declared, dict):
        raise TargetError(f"adapter {attribute} = {declared!r}: expected a dict such as "
                          f"{example}")
    functions = {}
    for component, declaration in declared.items():
        where = f"adapter {attribute}[{component!r}] = {declaration!r}"
        if component in COMPONENTS or not callable(getattr(adapter, component, None)):
            raise TargetError(f"{where}: the key must name a factory of the adapter (a "
                              f"method {component}()) other than the standard {COMPONENTS}")
        if isinstance(declaration, str):
            declaration = (declaration, {})
        if (not isinstance(declaration, (tuple, list)) or len(declaration) != 2
                or not isinstance(declaration[1], dict)):
            raise TargetError(f"{where}: expected a torch function name, or a pair (name, "
                              f"{{keyword: value}}), as in {example}")
        try:
            functions[component] = build(*declaration)
        except (FunctionError, ValueError) as error:
            raise TargetError(f"{where}: {error}") from error
    return functions


def _extra_activations(adapter):
    """``{factory name: spec.Function}``: element-wise torch functions (``Function.declared``:
    known, taking those arguments, element-wise)."""
    return _declared_functions(adapter, "extra_activations", Function.declared,
                               '{"leaky_relu": ("leaky_relu", {"negative_slope": 0.01})}')


def _extra_losses(adapter):
    """``{component: LossKind}``: element-wise ``torch.nn.functional`` losses (``loss_kind``)."""
    return _declared_functions(adapter, "extra_losses", loss_kind,
                               '{"huber": ("huber_loss", {"delta": 1.0})}')


def _keyword_parameters(factory):
    """The names of the parameters ``factory`` takes (empty when it cannot be inspected)."""
    try:
        return set(inspect.signature(factory).parameters)
    except (TypeError, ValueError):
        return set()


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
        TargetError: the spec is no string, names a folder or nothing importable, the file or
            module cannot be found or raises on import, the adapter class cannot be
            instantiated without arguments, or the adapter breaks the contract; the message
            names the spec.
    """
    if not isinstance(spec, str) or not spec:
        raise TargetError(f"target spec {spec!r}: expected a non-empty string: a file path "
                          "(path/to/adapter.py), an importable name (package.module), "
                          "optionally ending in :Name, or 'refnet'")
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
    if isinstance(adapter, type):
        try:
            adapter = adapter()
        except Exception as error:  # a class that is no adapter (refnet:Linear), or raises
            raise TargetError(f"target {spec!r}: {location}.{adapter.__name__}() cannot be "
                              f"built without arguments ({type(error).__name__}: {error}); "
                              "expected an adapter class, whose factories build the modules "
                              "(see verification/targets/adapter.py)") from error
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
    is_module_name = all(part.isidentifier() for part in location.split("."))
    if not (location.endswith(".py") or Path(location).is_file() or is_module_name):
        what = "a folder" if Path(location).is_dir() else "no .py file and no importable name"
        raise TargetError(f"target {spec!r}: {location} is {what}; expected an adapter file "
                          "(path/to/adapter.py) or an importable name (package.module)")
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
    # its own name, nothing of the harness's: the module is not put in ``sys.modules``, so two
    # adapters of the same name loaded in one process never meet
    specification = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(specification)
    sys.path.insert(0, folder)
    try:
        specification.loader.exec_module(module)
    finally:
        sys.path.remove(folder)
    return module
