"""The judge's side of a target run in another process: a ``Target`` whose code never runs here.

``connect(started, spec)`` takes the executor ``launch.start`` started (``executor.py``: the
one process that imports the target) and returns a ``RemoteTarget``. It is a ``Target``
(``adapter.py``) rebuilt and checked here from the facts the executor reports, and the cases of
``verification.suite.conformance`` run on it unchanged: every reference (torch twins, finite
differences, ``torch.optim``), every tolerance and every status is computed in this process,
from tensors the executor returns for inputs this process chose. The executor is asked only to
build, call and read the target's objects, through the same protocol views the in-process path
uses (``protocol.py``).

- ``RemoteModuleView`` and ``RemoteLossView`` stand for the executor's ``ModuleView`` and
  ``LossView``: each method is one request.
- ``RemoteObject`` stands for any other object of the target's (a module inside a view, an
  optimiser, a Dropout leaf whose mask a twin reads): reading an attribute or calling it is one
  request.
- Parameter values and gradients are SHARED tensors: ``param()`` gives tensors of this process
  (mirrors) that the checks read and write as if they were the target's. Before each request
  the mirrors written here since the last one travel to the executor, and after it the tensors
  the target changed come back into the same mirrors, in place. A tensor of this process that a
  factory receives (the fresh pairs an optimiser is built on) is shared from then on.
- Torch's global state (grad mode, default dtype) travels with every request and reply, so a
  target that switches autograd off inside a call is caught by the same ``guarded`` as in one
  process, and the state is restored here.
- Under a course, each reply may carry the calls into its forbidden namespaces the executor
  counted (``executor.py``); they are filed under the case running (``Channel.reset``) and
  judged by the course's run rules (``verification/course/rules.py``).

Replies are read with ``wire`` (safe ``torch.load``) and checked; an executor that dies, runs
out of memory or sends anything malformed raises ``ExecutorGone``, a ``BaseException`` the
checks' guards let through, so the run ends naming the case (``worker.py``). A target's error
inside a call is a ``ProtocolError``, as in one process.
"""

import inspect
import itertools
import subprocess

import torch

from verification.confined import wire
from verification.confined.launch import exit_status
from verification.targets.adapter import COMPONENTS, HOOKS, Facts, Target, TargetError
from verification.targets.protocol import Hooks, LossView, ModuleView, ProtocolError
from verification.targets.spec import Component, layer_to_data

__all__ = ["ExecutorGone", "Channel", "RemoteObject", "RemoteModuleView", "RemoteLossView",
           "RemoteTarget", "connect"]

_REPLY_KEYS = {"value", "error", "missing", "memory", "state", "changed", "shared", "calls"}
_CALLS_LIMIT = 1000
"""Entries of a reply's ``calls`` at most, each text at most ``_CALL_TEXT`` characters."""
_CALL_TEXT = 300
_STATE_DTYPES = (torch.float32, torch.float64)


class ExecutorGone(BaseException):
    """The executor cannot answer any more: it died, ran out of memory, or broke the protocol.

    Attributes:
        message: what happened, in a sentence.
        memory: it ran out of its address space.
        code: its exit status when it exited (``Popen.returncode``), else ``None``.
    """

    def __init__(self, message, *, memory=False, code=None):
        super().__init__(message)
        self.message, self.memory, self.code = message, memory, code


class Channel:
    """Requests to one executor and its replies, with the shared tensors kept in step (module
    docstring)."""

    def __init__(self, process, requests, replies, bwrap=None):
        self.process, self.requests, self.replies = process, requests, replies
        self.bwrap = bwrap
        self.mirrors, self.seen, self.numbers = {}, {}, {}
        self.local = itertools.count()
        self.case, self.calls = "", {}

    def hello(self):
        """The executor's first message: the target's facts, else ``TargetError``."""
        try:
            message = wire.receive(self.replies)
        except EOFError:
            raise TargetError(f"the target's process ended before it loaded the target "
                              f"({self._ending()})") from None
        except wire.WireError as error:
            raise TargetError(f"the target's process sent a malformed first message: "
                              f"{error}") from error
        if isinstance(message.get("error"), str):
            raise TargetError(message["error"])
        if "ready" not in message:
            raise TargetError("the target's process sent no facts")
        return self._decode(message["ready"])

    def reset(self, case=""):
        """A new case (named ``case``: the calls the executor counts from now on are filed
        under it): the executor forgets every object and shared tensor, and so does this
        side."""
        self.case = case
        self.request("reset")
        self.mirrors, self.seen, self.numbers = {}, {}, {}

    def request(self, op, *, share=False, **fields):
        """Send ``op`` with ``fields`` (tensors by value; with ``share``, tensors are shared),
        and return the reply's value.

        Raises:
            ProtocolError: the target raised or broke the protocol in the executor.
            AttributeError: the object has no such attribute.
            ExecutorGone: module docstring.
        """
        pending = {}
        message = {"op": op, "state": [torch.is_grad_enabled(), wire.tag(
            "$dtype", wire.dtype_name(torch.get_default_dtype()))], "writes": self._writes(),
            **{key: self._encode(value, pending, share) for key, value in fields.items()}}
        try:
            wire.send(self.requests, message)
            reply = wire.receive(self.replies)
        except (EOFError, OSError):
            raise ExecutorGone(f"the target's process {self._ending()}",
                               code=self.process.poll()) from None
        except wire.WireError as error:
            raise ExecutorGone(f"the target's process sent a malformed reply: {error}") from None
        if reply.get("memory") is True:
            raise ExecutorGone("the target's process ran out of memory", memory=True)
        self._take(reply, pending)
        if "error" in reply:
            raise ProtocolError(reply["error"])
        if "missing" in reply:
            raise AttributeError(reply["missing"])
        return self._decode(reply["value"])

    def close(self):
        """Close the pipes and wait a moment for the executor to end (``0`` when it has)."""
        for stream in (self.requests, self.replies):
            try:
                stream.close()
            except OSError:
                pass
        try:
            code = self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        return exit_status(code, self.bwrap)

    def _ending(self):
        try:
            code = exit_status(self.process.wait(timeout=5), self.bwrap)
        except subprocess.TimeoutExpired:
            return "stopped answering"
        return f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"

    def _writes(self):
        """``[[number, value]]`` of the mirrors this side changed since they were last seen."""
        return wire.changes(self.mirrors, self.seen)

    def _take(self, reply, pending):
        """Check the reply's layout, adopt its shared tensors and its torch state."""
        problem = _reply_problem(reply, pending)
        if problem:
            raise ExecutorGone(f"the target's process sent a malformed reply: {problem}")
        for local, number in reply.get("shared", []):
            tensor = pending[local]
            self.mirrors[number], self.numbers[id(tensor)] = tensor, number
            self.seen[number] = wire.plain(tensor)
        for number, value in reply["changed"]:
            mirror = self.mirrors.get(number)
            if mirror is None:
                self.mirrors[number] = value.clone()
                self.numbers[id(self.mirrors[number])] = number
            elif mirror.shape == value.shape and mirror.dtype == value.dtype:
                mirror.copy_(value)
            else:
                mirror.set_(value.clone())
            self.seen[number] = value
        for namespace, name, count, phase in reply.get("calls", []):
            entry = self.calls.setdefault((namespace, name), {"count": 0, "where": (
                "while the target was imported" if phase == "import"
                else f"in case {self.case!r}")})
            entry["count"] += count
        grad_enabled, dtype = reply["state"]
        torch.set_grad_enabled(grad_enabled)
        torch.set_default_dtype(wire.dtype_of(dtype["$dtype"]))

    def _encode(self, value, pending, share, depth=0):
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        if isinstance(value, torch.Tensor):
            number = self.numbers.get(id(value))
            if number is not None and self.mirrors.get(number) is value:
                return wire.tag("$shared", number)  # a mirror stands for the target's tensor
            if not share:
                return wire.plain(value)
            local = next(self.local)
            pending[local] = value
            return wire.tag("$new", [local, wire.plain(value)])
        if isinstance(value, RemoteObject):
            return wire.tag("$callable" if callable(value) else "$object", value._number)
        if isinstance(value, torch.dtype):
            return wire.tag("$dtype", wire.dtype_name(value))
        if isinstance(value, (list, tuple)):
            return type(value)(self._encode(item, pending, share, depth + 1) for item in value)
        if isinstance(value, dict):
            return wire.tag("$dict", [[self._encode(key, pending, share, depth + 1),
                                       self._encode(item, pending, share, depth + 1)]
                                      for key, item in value.items()])
        raise TypeError(f"cannot send a {type(value).__name__} to the target's process")

    def _decode(self, value):
        if isinstance(value, torch.Tensor):
            return value.clone()  # no two tensors of a reply share memory
        if isinstance(value, (list, tuple)):
            return type(value)(self._decode(item) for item in value)
        key, content = wire.untag(value)
        if key == "$dict":
            try:
                return {self._decode(k): self._decode(v) for k, v in content}
            except TypeError as error:  # an unhashable key
                raise ExecutorGone(f"the target's process sent a malformed reply: {error}"
                                   ) from None
        if key in ("$object", "$callable"):
            return (RemoteCallable if key == "$callable" else RemoteObject)(self, content)
        if key == "$shared":
            if content not in self.mirrors:
                raise ExecutorGone(f"the target's process sent a malformed reply: shared "
                                   f"tensor {content} was never sent")
            return self.mirrors[content]
        if key == "$dtype":
            return wire.dtype_of(content)
        if key is not None:
            raise ExecutorGone(f"the target's process sent a malformed reply: {key} from it")
        return value


def _reply_problem(reply, pending):
    """What is wrong with a reply's layout (``None`` when nothing is)."""
    extra = set(reply) - _REPLY_KEYS
    if extra:
        return f"unknown fields {sorted(extra)}"
    state = reply.get("state")
    if not (isinstance(state, list) and len(state) == 2 and isinstance(state[0], bool)
            and wire.untag(state[1])[0] == "$dtype"
            and wire.dtype_of(state[1]["$dtype"]) in _STATE_DTYPES):
        return f"torch state {state!r}"
    changed = reply.get("changed")
    if not (isinstance(changed, list) and all(
            isinstance(item, list) and len(item) == 2 and type(item[0]) is int
            and isinstance(item[1], torch.Tensor) for item in changed)):
        return "changed tensors not a list of [number, tensor]"
    shared = reply.get("shared", [])
    if not (isinstance(shared, list) and all(
            isinstance(item, list) and len(item) == 2 and item[0] in pending
            and type(item[1]) is int for item in shared)):
        return "shared numbers not a list of [sent number, number]"
    calls = reply.get("calls", [])
    if not (isinstance(calls, list) and len(calls) <= _CALLS_LIMIT and all(
            isinstance(item, list) and len(item) == 4 and type(item[2]) is int and item[2] > 0
            and all(isinstance(text, str) and len(text) <= _CALL_TEXT
                    for text in (item[0], item[1], item[3])) for item in calls)):
        return "calls not a list of [namespace, name, count, phase]"
    if not any(key in reply for key in ("value", "error", "missing")):
        return "neither a value nor an error"
    for key in ("error", "missing"):
        if key in reply and not isinstance(reply[key], str):
            return f"{key} is no text"
    return None


class RemoteObject:
    """An object of the target's in the executor: reading an attribute is a request
    (``getattr``); names starting with ``_`` are never asked for."""

    def __init__(self, channel, number):
        object.__setattr__(self, "_channel", channel)
        object.__setattr__(self, "_number", number)

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return self._channel.request("getattr", object=self._number, name=name)

    def __setattr__(self, name, value):
        raise AttributeError(f"the target's object #{self._number} is read through requests "
                             "only")

    def __repr__(self):
        return f"<the target's object #{self._number}>"


class RemoteCallable(RemoteObject):
    """A callable object of the target's (a bound method, a factory's product that is
    callable): calling it is a request (``call``); tensors passed are shared."""

    def __call__(self, *args, **kwargs):
        return self._channel.request("call", share=True, object=self._number, args=list(args),
                                     kwargs=kwargs)


def _expect(value, what, check):
    if not check(value):
        raise ProtocolError(f"the target's process returned {type(value).__name__} where "
                            f"{what} belongs")
    return value


def _is_tensor(value):
    return isinstance(value, torch.Tensor)


def _is_gradient(value):
    """dL/dx as a backward may return it: a tensor, or ``None`` (a container declared not to
    return it; the view's own check decides)."""
    return value is None or _is_tensor(value)


class RemoteModuleView(ModuleView):
    """The executor's ``ModuleView`` of a module: the same methods, each one request."""

    def __init__(self, channel, info):
        self.channel, self.number = channel, info["view"]._number
        self.module, self.name = info["module"], str(info["name"])
        self.twins = None  # the executor's view holds the target's (``forward_each``)
        self.per_sample, self.returns_grad = bool(info["per_sample"]), bool(info["returns_grad"])
        self.hooks = Hooks(per_sample=self.per_sample)
        self._rows = None

    def _call(self, method, *args, share=False):
        return self.channel.request("view", share=share, view=self.number, method=method,
                                    args=list(args))

    def forward(self, x):
        return _expect(self._call("forward", x), "the output", _is_tensor)

    def backward(self, grad_output):
        return _expect(self._call("backward", grad_output), "dL/dx", _is_gradient)

    def forward_each(self, tensor, values, x):
        return _expect(self._call("forward_each", tensor, values, x), "the outputs",
                       _is_tensor)

    def call_forward(self, x):
        return _expect(self._call("call_forward", x, share=True), "the output", _is_tensor)

    def call_backward(self, gradient):
        return _expect(self._call("call_backward", gradient, share=True), "dL/dx",
                       _is_gradient)

    def param(self):
        pairs = self._call("param")
        return _expect(pairs, "(value, gradient) pairs", lambda value: isinstance(value, list)
                       and all(isinstance(pair, (list, tuple)) and len(pair) == 2
                               and all(map(_is_tensor, pair)) for pair in value))

    def parameter_names(self):
        return _expect(self._call("parameter_names"), "parameter names",
                       lambda value: isinstance(value, list)
                       and all(isinstance(name, str) for name in value))

    def optimizer_argument(self):
        return self._call("optimizer_argument")

    def zero_grad(self):
        self._call("zero_grad")

    def mode(self, training):
        self._call("mode", bool(training))
        return self

    def _attribute(self, name):
        return self.channel.request("view_attribute", view=self.number, name=name)

    @property
    def notes(self):
        notes = self._attribute("notes")
        return [str(note) for note in notes] if isinstance(notes, list) else []

    @property
    def has_zero_grad(self):
        return bool(self._attribute("has_zero_grad"))

    @property
    def param_source(self):
        return str(self._attribute("param_source"))


class RemoteLossView(LossView):
    """The executor's ``LossView`` of a loss: ``forward`` and ``backward``, each one request;
    ``loss`` is the target's loss object (``RemoteObject``)."""

    def __init__(self, channel, info):
        self.channel, self.number = channel, info["view"]._number
        self.loss, self.name = info["loss"], str(info["name"])
        self.per_sample = bool(info["per_sample"])
        self.hooks, self.probe, self._last = Hooks(per_sample=self.per_sample), None, None

    def forward(self, prediction, target):
        return _expect(self.channel.request("view", view=self.number, method="forward",
                                            args=[prediction, target]), "the loss", _is_tensor)

    def backward(self):
        return _expect(self.channel.request("view", view=self.number, method="backward",
                                            args=[]), "dL/dprediction", _is_tensor)


class RemoteFactory:
    """One of the adapter's factories in the executor; calling it builds there (``factory``
    request; tensors passed are shared) and returns a ``RemoteObject``. Its signature is the
    factory's, as the executor read it."""

    def __init__(self, channel, name, parameters):
        self.channel, self.name = channel, name
        self.__signature__ = _signature(parameters)

    def __call__(self, *args, **kwargs):
        return self.channel.request("factory", share=True, name=self.name, args=list(args),
                                    kwargs=kwargs)


def _signature(parameters):
    """The ``inspect.Signature`` of ``[[name, kind], …]``; ``None`` when it is unknown or not
    a valid one (then the factory counts as taking any keyword)."""
    try:
        return inspect.Signature([inspect.Parameter(str(name), inspect._ParameterKind(kind))
                                  for name, kind in parameters])
    except (TypeError, ValueError):
        return None


class RemoteAdapter:
    """An adapter rebuilt from the facts the executor reported: the declared facts and
    declarations as attributes, and a ``RemoteFactory`` per factory the target has. Only names
    the adapter contract knows are taken (``Facts``' fields, the components, hooks, declared
    optimisers, losses and activations)."""

    def __init__(self, channel, facts):
        self.channel = channel
        declared = facts.get("facts") if isinstance(facts.get("facts"), dict) else {}
        for name in Facts.__dataclass_fields__:
            if name in declared:
                setattr(self, name, declared[name])
        for name in ("optimizers", "optimizer_settings", "extra_losses", "extra_activations"):
            setattr(self, name, facts.get(name) or {})
        self.__version__ = facts.get("version") if isinstance(facts.get("version"), str) else None
        known = {*COMPONENTS, *HOOKS, *_names(self.optimizers, values=True),
                 *_names(self.extra_losses), *_names(self.extra_activations)}
        factories = facts.get("factories") if isinstance(facts.get("factories"), dict) else {}
        for name, parameters in factories.items():
            if name in known:
                setattr(self, name, RemoteFactory(channel, name, parameters or ()))


def _names(declared, values=False):
    if not isinstance(declared, dict):
        return []
    return [name for name in (declared.values() if values else declared)
            if isinstance(name, str) and name.isidentifier()]


class RemoteTarget(Target):
    """A ``Target`` whose objects live in the executor (module docstring): ``component``,
    ``loss`` and the factories behind ``build`` are requests; everything else (facts, checks
    of the declarations, description) is ``Target``'s, computed here."""

    @property
    def channel(self):
        return self.adapter.channel

    def component(self, layer, seed, name=None, dtype=None):
        info = self.channel.request("component", layer=layer_to_data(layer), seed=seed,
                                    name=name, dtype=dtype)
        leaves = info["leaves"] if isinstance(info.get("leaves"), list) else None
        return Component(RemoteModuleView(self.channel, info), layer, leaves,
                         self.facts.weight_layout)

    def loss(self, component, name=None, dtype=None):
        info = self.channel.request("loss", component=component, name=name or component,
                                    dtype=dtype)
        return RemoteLossView(self.channel, info)

    def reset(self, case=""):
        """Start a new case named ``case`` (``Channel.reset``)."""
        self.channel.reset(case)

    def forbidden_calls(self):
        """The calls into a course's forbidden namespaces the executor counted
        (``Target.forbidden_calls``), each filed under the case it was first made in."""
        return self.channel.calls

    def close(self):
        """End the executor; its exit status."""
        return self.channel.close()


def connect(started, spec):
    """The ``RemoteTarget`` of ``spec`` from its executor, ``started`` (``launch.start``),
    checked here as ``Target.from_adapter`` checks any adapter.

    Raises:
        TargetError: the target cannot be loaded (the executor's message), or the executor
            ended or broke the protocol before it said it had.
    """
    channel = Channel(started.process, started.requests, started.replies, started.bwrap)
    try:
        facts = channel.hello()
        if not isinstance(facts, dict):
            raise TargetError("the target's process sent facts that are no dict")
        name = facts.get("name") if isinstance(facts.get("name"), str) else None
        # the source is the judge's own spec, never what the executor says it loaded: the
        # course's source rules read the files it names
        return RemoteTarget.from_adapter(RemoteAdapter(channel, facts), name=name,
                                         source=spec)
    except (TargetError, ExecutorGone) as error:
        channel.close()
        message = str(error)
        for inside, outside in started.renamed:  # the names the grader gave, not the sandbox's
            message = message.replace(inside, outside)
        raise TargetError(message) from None
