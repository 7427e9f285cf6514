"""The process that runs a target's code and nothing else: ``python -m
verification.confined.executor SPEC --requests FD --replies FD --memory B --file-size B
--cpu-seconds S``.

It sets its resource limits and turns on ``faulthandler`` before the target is imported, loads
the target, says so (``{"ready": facts}`` or ``{"error": message}``, then exit status
``IMPORT_FAILED``), and then answers the judge's requests (``remote.py``) one at a time, on two
pipes it inherits, in ``wire`` frames. It never judges: it builds what the judge asks for
through the adapter (``verification/targets/adapter.py``) and the protocol views
(``protocol.py``), calls it on the judge's inputs, and returns what came out. Whatever the
target does to this process (patch torch, patch the harness's modules, write on the pipes), the
judge only ever sees replies, and holds each to its own references.

A request is ``{"op", "state", "writes", …}``: ``state`` is the judge's torch state (grad mode,
default dtype), set before the operation, and ``writes`` the shared tensors the judge changed
since the last reply (``[[number, tensor], …]``). A reply is ``{"value"}``, ``{"error":
message}`` (the target raised or broke the protocol) or ``{"missing": message}`` (no such
attribute), with ``state`` after the operation, ``changed`` (the shared tensors the operation
changed, or shared for the first time) and ``shared`` (``{k: number}`` for the judge's ``$new``
tensors). Operations:

======================  ========================================================================
``reset``               forget every object and shared tensor (a new case)
``component``           ``spec.build`` of ``layer`` (``spec.layer_from_data``) with a generator
                        seeded ``seed``: its view, module and leaves
``loss``                ``Target.loss(component, name)``: its view and the loss object
``view``                a method of a view (``MODULE_METHODS``, ``LOSS_METHODS``); ``param``'s
                        tensors are shared, every other tensor is sent by value
``view_attribute``      ``notes``, ``has_zero_grad``, ``param_source`` of a module view
``factory``             an adapter factory on arguments (an optimiser on shared pairs or a module)
``getattr``, ``call``   an attribute of an object, a call of a callable object
======================  ========================================================================

When the target runs this process out of memory, it replies ``{"memory": true}`` and exits
with ``MEMORY_EXHAUSTED``.

Under a course (``--course``, a profile's JSON: ``verification/course/``), its forbidden
namespaces are watched from before the target is imported (``course/watch.py``) and every
reply carries ``calls``, those counted since the last one (``[[namespace, name, count,
phase]]``; ``phase`` ``"import"`` for calls made while the target was imported); with
``grad_mode = "off"`` every call runs with autograd off, and the grad mode replied is the
judge's unless the target switched autograd on.
"""

import argparse
import faulthandler
import inspect
import itertools
import os
import resource
import sys

import torch

from verification.confined import wire
from verification.confined.launch import IMPORT_FAILED, MEMORY_EXHAUSTED, leave
from verification.course.profile import Course
from verification.course.watch import Watch
from verification.targets import spec as layers
from verification.targets.adapter import COMPONENTS, HOOKS, TargetError, load_target
from verification.targets.protocol import ModuleView, ProtocolError

__all__ = ["main", "MODULE_METHODS", "LOSS_METHODS", "MODULE_ATTRIBUTES"]

MODULE_METHODS = ("forward", "backward", "forward_each", "param", "parameter_names",
                  "optimizer_argument", "zero_grad", "mode", "call_forward", "call_backward")
LOSS_METHODS = ("forward", "backward")
MODULE_ATTRIBUTES = ("notes", "has_zero_grad", "param_source")


_SHARING = ("param", "optimizer_argument", "call_forward", "call_backward")
"""View methods whose tensors are shared, not sent by value: parameters, and what a
side-effect check hands the target (``call_forward``'s input, ``call_backward``'s gradient) or
gets back from it (the output), so a write into any of them in a later call still reaches the
judge."""

_DEPTH = 16
"""Containers nested deeper than this in a target's result are sent as objects."""


def main(argv=None):
    """Load the target and answer requests until the judge closes the pipe; the exit status."""
    parser = argparse.ArgumentParser(prog="python -m verification.confined.executor")
    parser.add_argument("spec")
    parser.add_argument("--requests", type=int, required=True)
    parser.add_argument("--replies", type=int, required=True)
    parser.add_argument("--memory", type=int, required=True, help="RLIMIT_AS, bytes")
    parser.add_argument("--file-size", type=int, required=True, help="RLIMIT_FSIZE, bytes")
    parser.add_argument("--cpu-seconds", type=int, required=True, help="RLIMIT_CPU, seconds")
    parser.add_argument("--course", default=None, help="a course profile as JSON")
    parser.add_argument("--path", default=None,
                        help="a folder to put on sys.path (an importable name's)")
    args = parser.parse_args(argv)
    faulthandler.enable(file=sys.stderr, all_threads=True)
    _limit(resource.RLIMIT_AS, args.memory)
    _limit(resource.RLIMIT_FSIZE, args.file_size)
    _limit(resource.RLIMIT_CPU, args.cpu_seconds, extra=1)  # SIGXCPU first, SIGKILL 1 s later
    torch.set_num_threads(1)  # small tensors: one thread is faster, and targets run side by side
    course = Course.from_json(args.course) if args.course else None
    grad_off = course is not None and course.grad_mode == "off"
    torch.set_grad_enabled(not grad_off)
    watch = Watch(course.forbidden, course.allowed).install() if course else None
    with os.fdopen(args.requests, "rb") as requests, os.fdopen(args.replies, "wb") as replies:
        _out_of_sight(args.spec)
        if args.path is not None:
            sys.path.insert(0, args.path)
        try:
            target = load_target(args.spec)
        except TargetError as error:
            wire.send(replies, {"error": str(error)})
            return IMPORT_FAILED
        if watch is not None:
            watch.phase = ""  # calls from now on are the judge's current case's
        server = _Server(target, watch, grad_off)
        wire.send(replies, {"ready": server.encode(server.facts(), share=False)})
        while True:
            try:
                request = wire.receive(requests)
            except EOFError:
                return 0
            reply = server.answer(request)
            wire.send(replies, reply)
            if "memory" in reply:
                return MEMORY_EXHAUSTED


def _out_of_sight(spec):
    """Before a submission is imported, take the harness's folder off ``sys.path`` and its
    modules (``verification``, ``refnet``) out of ``sys.modules``: the objects this process
    uses stay alive through the references it holds, so nothing it runs needs them there, but
    the submission no longer finds them by name (its frames and ``gc`` still reach them: it
    can tell, if it looks; no verdict rests on it not knowing). ``refnet``, the harness's own
    target, is left as it is."""
    if spec == "refnet":
        return
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    sys.path[:] = [path for path in sys.path if os.path.abspath(path or os.curdir) != root]
    sys.path_importer_cache.pop(root, None)
    for name in [name for name in sys.modules
                 if name.partition(".")[0] in ("verification", "refnet")]:
        del sys.modules[name]
    for name, module in list(sys.modules.items()):  # an editable install's finder of the harness
        if name.startswith("__editable__") and "verification" in getattr(module, "MAPPING", {}):
            placeholder = getattr(module, "PATH_PLACEHOLDER", None)
            sys.path[:] = [path for path in sys.path if path != placeholder]
            sys.path_importer_cache.pop(placeholder, None)
            sys.meta_path[:] = [finder for finder in sys.meta_path
                                if getattr(finder, "__module__", None) != name]
            sys.path_hooks[:] = [hook for hook in sys.path_hooks
                                 if getattr(hook, "__module__", None) != name]
            del sys.modules[name]


def _limit(kind, value, extra=0):
    """Lower the limit ``kind`` to ``value`` (soft) and ``value + extra`` (hard), never above a
    hard limit already set."""
    _, hard = resource.getrlimit(kind)
    cap = (lambda v: v) if hard == resource.RLIM_INFINITY else (lambda v: min(v, hard))
    resource.setrlimit(kind, (cap(value), cap(value + extra)))


class _Server:
    """The objects and shared tensors of the current case, and the operations on them; under
    a course, what its ``watch`` counts, and autograd off in every call with ``grad_off``."""

    def __init__(self, target, watch=None, grad_off=False):
        self.target, self.watch, self.grad_off = target, watch, grad_off
        self.numbers = itertools.count()
        self.requested_grad = True
        self.reset()

    def reset(self):
        self.objects, self.shared, self.known, self.seen = {}, {}, {}, {}

    def facts(self):
        """What the judge needs to rebuild and check the ``Target`` on its side
        (``remote.RemoteAdapter``): the declared facts, declarations, and each factory's
        parameters."""
        target, adapter = self.target, self.target.adapter
        names = {*COMPONENTS, *HOOKS, *target.optimizers.values(), *target.extra_losses,
                 *target.activations}
        return {"name": target.name, "source": target.source,
                "version": target.description()["version"],
                "facts": {name: value for name, value in vars(target.facts).items()},
                "optimizers": dict(target.optimizers),
                "optimizer_settings": {factory: list(keywords) for factory, keywords
                                       in target.optimizer_settings.items() if keywords},
                "extra_losses": {component: [kind.name, dict(kind.options)]
                                 for component, kind in target.extra_losses.items()},
                "extra_activations": {component: [function.name, dict(function.options)]
                                      for component, function in target.activations.items()},
                "factories": {name: _signature(getattr(adapter, name)) for name in sorted(names)
                              if target.has(name)}}

    def answer(self, request):
        """The reply to one request (module docstring); never raises for the target's doing."""
        reply = {}
        try:
            self._apply(request.get("state"), request.get("writes") or [])
            reply["value"] = self._operation(request, reply)
        except AttributeError as error:
            reply = {"missing": str(error)}
        except MemoryError:
            return {"memory": True}
        except RuntimeError as error:
            if "can't allocate memory" in str(error):
                return {"memory": True}
            reply = {"error": _message(error)}
        except BaseException as error:  # the target's own exceptions, SystemExit included
            reply = {"error": _message(error)}
        reply["state"] = [self._grad_state(), wire.tag("$dtype", wire.dtype_name(
            torch.get_default_dtype()))]
        try:
            reply["changed"] = self._changed()
        except ProtocolError as error:  # a shared tensor the wire cannot carry any more
            reply = {"error": str(error), "state": reply["state"], "changed": []}
        if self.watch is not None:
            calls = self.watch.take()
            if calls:
                reply["calls"] = calls
        return reply

    def _apply(self, state, writes):
        if state is not None:
            self.requested_grad = bool(state[0])
            torch.set_grad_enabled(self.requested_grad and not self.grad_off)
            torch.set_default_dtype(self.decode(state[1]))
        for number, value in writes:
            self.shared[number].copy_(value)
            self.seen[number] = value

    def _operation(self, request, reply):
        op = request["op"]
        if op == "reset":
            self.reset()
            return None
        if op == "component":
            component = self.target.component(
                layers.layer_from_data(self.decode(request["layer"])), request["seed"],
                name=request["name"], dtype=self.decode(request["dtype"]))
            view = component.view
            return self.encode({"view": view, "module": view.module,
                                "leaves": list(component.leaves or []), "name": view.name,
                                "returns_grad": view.returns_grad,
                                "per_sample": view.per_sample,
                                "weight_layout": component.weight_layout}, share=False)
        if op == "loss":
            view = self.target.loss(request["component"], request["name"],
                                    dtype=self.decode(request["dtype"]))
            return self.encode({"view": view, "loss": view.loss,
                                "name": view.name, "per_sample": view.per_sample}, share=False)
        if op == "view":
            view, method = self.objects[request["view"]], request["method"]
            allowed = MODULE_METHODS if isinstance(view, ModuleView) else LOSS_METHODS
            if method not in allowed:
                raise ProtocolError(f"no view method {method!r}")
            arguments = self.decode(request["args"], reply)
            result = getattr(view, method)(*arguments)
            return self.encode(None if method == "mode" else result, share=method in _SHARING)
        if op == "view_attribute":
            view, name = self.objects[request["view"]], request["name"]
            if not isinstance(view, ModuleView) or name not in MODULE_ATTRIBUTES:
                raise ProtocolError(f"no view attribute {name!r}")
            return self.encode(getattr(view, name), share=False)
        if op == "factory":
            factory = getattr(self.target.adapter, request["name"])
            return self.encode(factory(*self.decode(request["args"], reply),
                                       **self.decode(request["kwargs"], reply)), share=False)
        if op == "getattr":
            name = request["name"]
            if name.startswith("__"):
                raise AttributeError(name)
            return self.encode(getattr(self.objects[request["object"]], name), share=False)
        if op == "call":
            return self.encode(self.objects[request["object"]](
                *self.decode(request["args"], reply), **self.decode(request["kwargs"], reply)),
                share=False)
        raise ProtocolError(f"no operation {op!r}")

    def _grad_state(self):
        """The grad mode to report: the mode now, or, with autograd held off, the judge's
        own unless the target switched it on (a change the judge then sees, as in one
        process)."""
        if not self.grad_off:
            return torch.is_grad_enabled()
        return self.requested_grad != torch.is_grad_enabled()

    def _share(self, tensor):
        number = self.known.get(id(tensor))
        if number is None or self.shared[number] is not tensor:
            number = next(self.numbers)
            self.shared[number], self.known[id(tensor)] = tensor, number
        return number

    def _changed(self):
        """``[[number, value]]`` of the shared tensors that differ from what the judge saw."""
        return wire.changes(self.shared, self.seen, _plain)

    def encode(self, value, *, share, depth=0):
        """``value`` as a wire value: tensors by value (or shared, with ``share``), other
        objects by number."""
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        if isinstance(value, torch.Tensor):
            if self.watch is not None and (value.requires_grad or value.grad_fn is not None):
                self.watch.note("torch.autograd", "a returned tensor that requires grad")
            return wire.tag("$shared", self._share(value)) if share else _plain(value)
        if isinstance(value, torch.dtype):
            return wire.tag("$dtype", wire.dtype_name(value))
        if depth < _DEPTH and isinstance(value, (list, tuple)):
            return type(value)(self.encode(item, share=share, depth=depth + 1) for item in value)
        if depth < _DEPTH and isinstance(value, dict):
            return wire.tag("$dict", [[self.encode(key, share=share, depth=depth + 1),
                                       self.encode(item, share=share, depth=depth + 1)]
                                      for key, item in value.items()])
        number = next(self.numbers)
        self.objects[number] = value
        return wire.tag("$callable" if callable(value) else "$object", number)

    def decode(self, value, reply=None):
        """A wire value from the judge as this side's objects (``$new`` tensors shared)."""
        if isinstance(value, (list, tuple)):
            return type(value)(self.decode(item, reply) for item in value)
        key, content = wire.untag(value)
        if key == "$dict":
            return {self.decode(k, reply): self.decode(v, reply) for k, v in content}
        if key in ("$object", "$callable"):
            return self.objects[content]
        if key == "$shared":
            return self.shared[content]
        if key == "$new":
            local, tensor = content
            reply.setdefault("shared", []).append([local, self._share(tensor)])
            return tensor
        if key == "$dtype":
            return wire.dtype_of(content)
        return value


def _plain(tensor):
    """``wire.plain(tensor)``; a tensor the wire cannot carry (its dtype, no values) is the
    target's error."""
    if tensor.dtype not in wire.TENSOR_DTYPES:
        raise ProtocolError(f"returned a tensor of dtype {tensor.dtype}")
    if tensor.is_meta or tensor.layout is not torch.strided:
        raise ProtocolError(f"returned a tensor without values (layout {tensor.layout}, device "
                            f"{tensor.device})")
    return wire.plain(tensor)


def _signature(factory):
    """``[[name, kind], …]`` of a factory's parameters (``inspect.Parameter.kind`` as an int),
    or ``None`` when it cannot be inspected."""
    try:
        parameters = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return None
    return [[parameter.name, int(parameter.kind)] for parameter in parameters]


def _message(error):
    """The error's text (its class's name before it unless it is a ``ProtocolError``), cut to
    4000 characters; a ``__str__`` of the target's that raises gives the class name alone."""
    try:
        text = str(error)
    except BaseException:  # the target's exception class may break str()
        text = "(its message could not be read)"
    text = text if isinstance(error, ProtocolError) else f"{type(error).__name__}: {text}"
    return text[:4000]


if __name__ == "__main__":
    leave(main())
