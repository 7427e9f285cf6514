"""Calling a target's module or loss through the protocol, whatever variant it implements.

This is the only layer that calls a target's modules and losses. ``ModuleView`` and ``LossView``
are what every check calls. They never hand the target a tensor the harness keeps: inputs and
incoming gradients are cloned before the call and outputs cloned after it, so a target that
writes into a tensor it did not create cannot move the point of a check
(``checks/side_effects.py`` reports such writes as failures of their own). They accept the
variants met in frameworks written to the course protocol, each declared by the adapter as a
fact or a hook (``Hooks``, read by ``verification/targets/adapter.py``):

- parameters in any structure (``read_pairs``): ``param()`` as a method or a property, nested
  per layer, a dict, parameter objects with ``.data`` and ``.grad``; or the adapter's
  ``params(module)`` hook for anything else (``parameters()``, a separate ``grad()``,
  ``(w, b, dw, db)`` tuples, a bias folded into the weight matrix, returned as views). They
  are read afresh at every use, so a framework that rebinds its gradient tensors is fine, and
  one that creates them in its first backward gets a backward of zeros first (``param``);
- no ``zero_grad``: the gradients are zeroed in place instead (a note says so; the
  ``zero_grad`` check is then not run);
- one sample at a time (``per_sample``): a batch ``[B, in]`` is fed row by row and stacked; for
  ``backward`` each row's forward is rerun just before its backward, so that the module's cached
  state is that row's;
- samples as columns (``column_vectors``): ``[in, B]`` batches, ``[in, 1]`` single samples;
- a ``forward`` that keeps its output in an attribute (the ``output(module, returned)`` hook);
- a training mode set otherwise than by ``train()``/``eval()`` (``set_training``);
- a container whose ``backward`` returns ``None`` (``returns_grad=False``): dL/dx is then
  ``None`` and the input-gradient checks say "not available" instead of failing;
- losses that return a tuple, an object or a vector (``loss_value``), take 1-D predictions
  (``loss_flat``: all losses, or those named), or drive the model themselves
  (``loss_takes_model``: the loss is built on a ``GradientProbe``, whose ``backward`` receives
  dL/dprediction);
- modules and losses called otherwise than ``forward(x)``, ``backward(g)``, ``forward(p, t)``
  and ``backward()``: the hooks ``module_forward(module, x)``, ``module_backward(module, g)``,
  ``loss_forward(loss, p, t)`` and ``loss_backward(loss)`` make the call (a container whose
  forward takes ``(x, target)``, a backward fed columns where the forward takes 1-D samples,
  a container whose backward takes a loss object: ``GradientAsLoss(g)``, loss methods of other
  names or taking a tuple).

Anything else the target does wrong (it raises, returns a non-tensor, returns ``None`` where dL/dx
is due) raises ``ProtocolError`` with a message that names the object and the call, which the
checks turn into a failed result.

A view may also hold a framework's fast path for finite differences, its ``twins``: a maker of
replicated twins, ``twins(module, tensor, x)``, whose ``Twin`` computes the module's output for
many values of one parameter tensor in one call (refnet's, for a tree of refnet's own classes:
``verification/targets/replicas.py``). The checks ask the view (``twin``, ``forward_each``) and
never learn whose fast path it is.
"""

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch

__all__ = ["ProtocolError", "NoTwin", "Hooks", "ModuleView", "LossView", "GradientProbe",
           "GradientAsLoss", "param_pairs", "read_pairs", "call", "one_line_label"]

_DEPTH = 8
"""The deepest nesting of a parameter structure that is read (deeper is a protocol error)."""
_AGREEMENT = 8
"""Unit roundoffs (of the output's largest magnitude) by which a twin's unperturbed replica
may differ from the module's own forward: the replicated product sums in another order."""


class ProtocolError(RuntimeError):
    """The target raised or broke the protocol; the message names the object and the call."""


class NoTwin(Exception):
    """Why a view has no replicated twin for a tensor (its caller then runs one forward per
    value)."""


@dataclass(frozen=True)
class Hooks:
    """How a target is called where it differs from the protocol (all optional).

    Attributes:
        params: ``params(module)``, the parameter structure in place of ``param()``.
        set_training: ``set_training(module, training)`` in place of ``train()``/``eval()``.
        output: ``output(module, returned)``: what ``forward`` produced.
        loss_value: ``loss_value(returned)``: the loss, from what the loss's forward returned.
        per_sample: modules and losses take one sample.
        column_vectors: samples are columns (``[in, B]``; one sample ``[in, 1]``).
        optimizer_takes_module: optimisers are built on a module, not on its pairs.
        loss_takes_model: losses are built on a model, whose backward they drive.
        loss_flat: losses take 1-D predictions and targets.
        module_forward: ``module_forward(module, x)`` in place of ``module.forward(x)``.
        module_backward: ``module_backward(module, gradient)`` in place of
            ``module.backward(gradient)``.
        loss_forward: ``loss_forward(loss, prediction, target)`` in place of
            ``loss.forward(prediction, target)``.
        loss_backward: ``loss_backward(loss)`` in place of ``loss.backward()``.
    """

    params: Callable | None = None
    set_training: Callable | None = None
    output: Callable | None = None
    loss_value: Callable | None = None
    module_forward: Callable | None = None
    module_backward: Callable | None = None
    loss_forward: Callable | None = None
    loss_backward: Callable | None = None
    per_sample: bool = False
    column_vectors: bool = False
    optimizer_takes_module: bool = False
    loss_takes_model: bool = False
    loss_flat: bool = False


class GradientAsLoss:
    """What a container whose ``backward`` takes a loss object receives: ``backward()``
    returns dL/dprediction, the gradient the harness sends (for ``module_backward``:
    ``module.backward(GradientAsLoss(gradient))``)."""

    def __init__(self, gradient):
        self.gradient = gradient

    def backward(self, *_):
        return self.gradient


def _bound(hook, target, method):
    """``hook`` bound to ``target`` when the adapter has it, else ``target``'s ``method``."""
    if hook is None:
        return getattr(target, method)
    return lambda *args: hook(target, *args)


def call(name, stage, function, *args):
    """``function(*args)``; any exception, ``SystemExit`` included (a target's ``sys.exit``
    must not end the harness), becomes a ``ProtocolError`` naming ``name.stage``."""
    try:
        return function(*args)
    except ProtocolError:
        raise
    except (Exception, SystemExit) as error:
        raise ProtocolError(f"{name}.{stage} raised {type(error).__name__}: {error}") from error


def _tensor(name, stage, value):
    if not isinstance(value, torch.Tensor):
        raise ProtocolError(f"{name}.{stage} returned {type(value).__name__}, not a tensor")
    return value


def _is_pair(item):
    return (isinstance(item, (list, tuple)) and len(item) == 2
            and all(isinstance(t, torch.Tensor) for t in item))


def _parameter_object(item):
    """``(item.data, item.grad)`` for a parameter object holding both as tensors, else None."""
    if isinstance(item, torch.Tensor):
        return None
    try:
        value, gradient = getattr(item, "data", None), getattr(item, "grad", None)
    except Exception:  # a property that raises is not a parameter object
        return None
    if isinstance(value, torch.Tensor) and isinstance(gradient, torch.Tensor):
        return value, gradient
    return None


def read_pairs(structure, name, stage="param()"):
    """Any parameter structure as a flat list of ``(value, gradient)`` tensors, in order.

    Pairs (two tensors) are taken as they are; parameter objects give ``(.data, .grad)``;
    dicts give their values in order; other iterables are flattened (module docstring).

    Raises:
        ProtocolError: an element is none of these (a lone tensor: values without gradients),
            the nesting is deeper than ``_DEPTH``, or a tensor is no parameter the harness can
            write in place (on the meta device, not floating-point, requiring grad).
    """
    pairs = []

    def visit(item, path, depth):
        parameter = tuple(item) if _is_pair(item) else _parameter_object(item)
        if parameter is not None:
            pairs.append(parameter)
        elif depth < _DEPTH and isinstance(item, dict):
            for key, value in list(item.items()):
                visit(value, f"{path}[{key!r}]", depth + 1)
        elif (depth < _DEPTH and isinstance(item, Iterable)
              and not isinstance(item, (torch.Tensor, str, bytes))):
            for index, value in enumerate(list(item)):
                visit(value, f"{path}[{index}]", depth + 1)
        else:
            what = ("a tensor alone (values without gradients: give the adapter a params hook)"
                    if isinstance(item, torch.Tensor) else type(item).__name__)
            raise ProtocolError(f"{name}.{stage}{path} is {what}, not a (value, gradient) pair "
                                "of tensors")

    try:
        visit(structure, "", 0)
    except ProtocolError:
        raise
    except Exception as error:  # iterating a foreign object may raise anything
        raise ProtocolError(f"{name}.{stage} could not be read: {type(error).__name__}: "
                            f"{error}") from error
    for index, (value, gradient) in enumerate(pairs):
        if value.shape != gradient.shape:
            raise ProtocolError(f"{name}.{stage}[{index}]: value shape {list(value.shape)} "
                                f"but gradient shape {list(gradient.shape)}")
        for role, tensor in (("value", value), ("gradient", gradient)):
            problem = _parameter_problem(tensor)
            if problem:
                raise ProtocolError(f"{name}.{stage}[{index}]: the {role} {problem}")
    return pairs


def _parameter_problem(tensor):
    """Why the harness cannot read, write and zero ``tensor`` in place as a parameter value or
    gradient (``None`` when it can)."""
    if tensor.is_meta:
        return "is on the meta device (it holds no numbers); expected a tensor with values"
    if not tensor.is_floating_point():
        return f"has dtype {tensor.dtype}; expected a floating-point tensor"
    if tensor.requires_grad:
        return ("requires grad, so autograd forbids writing it in place (as the harness and "
                "an optimiser do); expected a plain tensor: hand out tensor.detach() (same "
                "storage) or, for a torch parameter, its .data")
    return None


def param_pairs(module, name, hooks=None):
    """The module's ``(value, gradient)`` pairs: the adapter's ``params`` hook, else
    ``module.param()`` (or the ``param`` property), read by ``read_pairs``.

    Raises:
        ProtocolError: ``param`` is missing or raises, or its result cannot be read.
    """
    if hooks is not None and hooks.params is not None:
        return read_pairs(call(name, "params", hooks.params, module), name, "params()")
    attribute = getattr(module, "param", None)
    if attribute is None:
        raise ProtocolError(f"{name} has no param() (an adapter hook params(module) can say "
                            "where its parameters are)")
    return read_pairs(call(name, "param", attribute) if callable(attribute) else attribute, name)


class GradientProbe:
    """The model a ``loss_takes_model`` loss is built on: its ``backward`` keeps dL/dprediction.

    ``forward`` is the identity, so a loss that runs the model on its input sees the
    prediction itself.
    """

    def __init__(self):
        self.gradient = None

    def forward(self, x, *_):
        return x

    def backward(self, gradient, *_):
        self.gradient = gradient
        return gradient

    def param(self):
        return []

    def zero_grad(self):
        pass

    def take(self, name):
        """The gradient the loss's backward passed on (and forget it)."""
        gradient, self.gradient = self.gradient, None
        if gradient is None:
            raise ProtocolError(f"{name}.backward did not call model.backward(gradient) "
                                "(declared loss_takes_model)")
        return _tensor(name, "backward", gradient)


def _columns(tensor, per_sample):
    """A harness tensor in the column layout: a sample ``[n] → [n, 1]``, a batch transposed."""
    return tensor.unsqueeze(-1) if per_sample or tensor.ndim == 1 else tensor.transpose(-1, -2)


def _rows(tensor, per_sample):
    """The inverse of ``_columns`` for what the target returned."""
    if per_sample:
        return tensor.squeeze(-1) if tensor.ndim >= 2 else tensor
    return tensor.transpose(-1, -2) if tensor.ndim >= 2 else tensor


class ModuleView:
    """A target module as the harness calls it (see the module docstring).

    Attributes:
        module: the target's own object.
        name: its label in messages.
        hooks: the adapter's ``Hooks`` (``per_sample`` alone when none are given).
        per_sample: feed one row at a time.
        returns_grad: whether ``backward`` is due to return dL/dx.
        twins: the framework's maker of replicated twins (module docstring), or ``None``.
        zero_sample: a zero input of one sample ([1, in], the dtype the module was built in),
            where known; it lets ``param`` allocate gradients that a framework creates in its
            first backward.
        notes: the protocol variants met, one sentence each (for reports).
    """

    def __init__(self, module, name, *, per_sample=False, returns_grad=True, hooks=None,
                 twins=None, zero_sample=None):
        self.module, self.name, self.twins = module, name, twins
        self.hooks = hooks if hooks is not None else Hooks(per_sample=per_sample)
        self.per_sample, self.returns_grad = self.hooks.per_sample, returns_grad
        self.zero_sample = zero_sample
        self.notes = []
        self._rows = None
        self._backward_called = False

    def __repr__(self):
        return self.name

    def _note(self, text):
        if text not in self.notes:
            self.notes.append(text)

    def forward(self, x):
        """The output for ``x`` ([B, in]; any leading axes without ``per_sample``)."""
        if not self.per_sample:
            return self.call_forward(x.clone()).clone()
        self._rows = x.detach().clone()
        return torch.stack([self.call_forward(row.clone()).clone() for row in self._rows])

    def twin(self, tensor, x):
        """The module's ``Twin`` for ``tensor`` (one of the ``param()`` values) at input ``x``:
        ``twin.outputs(stack)`` is ``[replicas, *output]``, the module's output for ``x`` with
        ``tensor`` holding each row of ``stack`` (``[replicas, *tensor.shape]``), in one call;
        ``twin.per_replica`` the numbers one replica holds (to size the stacks).

        Raises:
            NoTwin: the view has none for this tensor, saying why.
        """
        if self.twins is None:
            raise NoTwin("it serves refnet's own classes only")
        return self.twins(self.module, tensor, x)

    def forward_each(self, tensor, values, x):
        """``[len(values), *output]``: the output for ``x`` with ``tensor`` (one of the
        ``param()`` values) holding each row of ``values`` in turn; ``tensor`` holds its own
        values again afterwards, whatever happens. Fed as given (no hooks), one call of the
        view's twin where it has one that agrees with the module (``_replicated``)."""
        if not (self.per_sample or self.hooks.column_vectors or self.hooks.output is not None):
            replicated = self._replicated(tensor, values, x)
            if replicated is not None:
                return replicated
        saved = tensor.detach().clone()
        try:
            outputs = []
            for row in values:
                tensor.copy_(row.view_as(tensor))
                outputs.append(self.forward(x))
            return torch.stack(outputs)
        finally:
            tensor.copy_(saved)

    def _replicated(self, tensor, values, x):
        """``forward_each``'s outputs from the twin, its replica 0 holding ``tensor``'s own
        values; ``None`` where there is no twin, or replica 0 disagrees with ``forward(x)``,
        the module's own forward, by more than ``_AGREEMENT`` roundoffs."""
        if x.ndim != 2 or len(values) == 0:
            return None
        try:
            twin = self.twin(tensor, x)
        except NoTwin:
            return None
        stack = torch.cat([tensor.detach().unsqueeze(0),
                           values.reshape(len(values), *tensor.shape).to(tensor.dtype)])
        outputs = twin.outputs(stack)
        own = self.forward(x)
        scale = float(own.abs().max()) if own.numel() else 0.0
        if outputs.shape[1:] != own.shape or not bool(
                ((outputs[0] - own).abs() <= _AGREEMENT * torch.finfo(own.dtype).eps * scale)
                .all()):
            return None
        return outputs[1:]

    def call_forward(self, x):
        """One call of the target's ``forward`` on ``x`` itself (no copy), in the target's
        layout; the output as the target produced it (the ``output`` hook's), as a view in
        the harness's layout."""
        given = _columns(x, self.per_sample) if self.hooks.column_vectors else x
        returned = call(self.name, "forward", _bound(self.hooks.module_forward, self.module,
                                                     "forward"), given)
        if self.hooks.output is not None:
            returned = call(self.name, "output", self.hooks.output, self.module, returned)
        output = _tensor(self.name, "forward", returned)
        return _rows(output, self.per_sample) if self.hooks.column_vectors else output

    def call_backward(self, gradient):
        """One call of the target's ``backward`` on ``gradient`` itself (no copy); dL/dx as
        returned (``None`` included), as a view in the harness's layout."""
        given = (_columns(gradient, self.per_sample) if self.hooks.column_vectors
                 else gradient)
        self._backward_called = True
        returned = call(self.name, "backward", _bound(self.hooks.module_backward, self.module,
                                                      "backward"), given)
        if returned is None or not self.hooks.column_vectors:
            return returned
        return _rows(_tensor(self.name, "backward", returned), self.per_sample)

    def backward(self, grad_output):
        """dL/dx for the last forward (``None`` for a container declared not to return it)."""
        if not self.per_sample:
            return self._checked_gradient(self.call_backward(grad_output.clone()))
        if self._rows is None:
            raise ProtocolError(f"{self.name}: backward before forward")
        rows = []
        for row, gradient in zip(self._rows, grad_output, strict=True):
            self.call_forward(row.clone())
            rows.append(self._checked_gradient(self.call_backward(gradient.clone())))
        return None if rows[0] is None else torch.stack(rows)

    def _checked_gradient(self, gradient):
        if gradient is None and not self.returns_grad:
            self._note("backward returns None (declared): dL/dx is not checked")
            return None
        if gradient is None:
            raise ProtocolError(f"{self.name}.backward returned None, not dL/dx (a container "
                                "that returns nothing: declare sequential_returns_grad = False)")
        return _tensor(self.name, "backward", gradient).clone()

    def param(self):
        """The ``(value, gradient)`` pairs, read afresh (``param_pairs``).

        A framework may create its gradients in its first backward, so that ``param()`` (or
        the ``grad()`` a ``params`` hook calls) raises before it. Where reading fails before
        any backward and the view has a ``zero_sample``, it runs one forward of that sample
        and one backward of a zero gradient, then reads again: every module of the protocol
        has a dL/dθ linear in the incoming gradient, so the pass accumulates dL/dθ = 0 and
        creates the gradients without moving them.
        """
        if self.hooks.params is None and not callable(getattr(self.module, "param", None)):
            self._note("param is an attribute, not a method")
        try:
            return param_pairs(self.module, self.name, self.hooks)
        except ProtocolError as error:
            if self._backward_called or self.zero_sample is None:
                raise
            self._allocate_gradients(error)
        return param_pairs(self.module, self.name, self.hooks)

    def _allocate_gradients(self, error):
        """One forward and backward of zeros, after ``error`` (reading the parameters failed
        before the first backward); a ``ProtocolError`` naming both when they fail."""
        try:
            output = self.forward(self.zero_sample.clone())
            self.backward(torch.zeros_like(output))
        except ProtocolError as failure:
            raise ProtocolError(f"{error}; a forward and backward of zeros, to create the "
                                f"gradients, failed too: {failure}") from failure
        self._note(f"reading the parameters before the first backward failed ({error}): the "
                   "harness ran one forward and backward of zeros first")

    def parameter_names(self):
        """The public attribute path that leads from the module to each ``param()`` value
        (``"modules[0].weight"``), in order; ``"unnamed"`` where none does (check ids and
        messages name parameters by it)."""
        names = {}
        try:
            for path, tensor in _tensor_attributes(self.module, "", set()):
                names.setdefault(id(tensor), path)
        except Exception:  # a foreign attribute that raises when read: no names
            names = {}
        return [names.get(id(value), "unnamed") for value, _ in self.param()]

    @property
    def param_source(self):
        """Where the pairs come from, for messages: ``"params()"`` (the hook) or ``"param()"``."""
        return "params()" if self.hooks.params is not None else "param()"

    def optimizer_argument(self):
        """What the target's optimiser factories take: the module itself when declared
        (``optimizer_takes_module``), else the ``param()`` list."""
        return self.module if self.hooks.optimizer_takes_module else self.param()

    @property
    def has_zero_grad(self):
        return callable(getattr(self.module, "zero_grad", None))

    def zero_grad(self):
        """The target's ``zero_grad``, or zeroing every ``param()`` gradient in place."""
        if self.has_zero_grad:
            call(self.name, "zero_grad", self.module.zero_grad)
            return
        self._note("no zero_grad(): the harness zeroes the param() gradients itself")
        for _, gradient in self.param():
            gradient.zero_()

    def mode(self, training):
        """Training or evaluation mode: the ``set_training`` hook, else ``train()`` or
        ``eval()``, else a boolean attribute ``training`` set directly; ``ProtocolError`` when
        the target has none of these."""
        if self.hooks.set_training is not None:
            call(self.name, "set_training", self.hooks.set_training, self.module, training)
            return self
        stage = "train" if training else "eval"
        method = getattr(self.module, stage, None)
        if not callable(method) and isinstance(getattr(self.module, "training", None), bool):
            self._note("no train()/eval(): the harness sets the boolean attribute training")
            self.module.training = training
            return self
        if not callable(method):
            raise ProtocolError(f"{self.name} has no {stage}() method and no boolean attribute "
                                "training (an adapter hook set_training(module, training) can "
                                "say how to switch it)")
        call(self.name, stage, method)
        return self


def _tensor_attributes(node, prefix, seen):
    """``(path, tensor)`` for every tensor reachable from ``node`` by public attributes,
    through modules and lists or tuples of modules."""
    if id(node) in seen:
        return
    seen.add(id(node))
    for attribute, value in list(getattr(node, "__dict__", {}).items()):
        if attribute.startswith("_"):
            continue
        path = prefix + attribute
        if isinstance(value, torch.Tensor):
            yield path, value
        elif _is_module(value):
            yield from _tensor_attributes(value, path + ".", seen)
        elif isinstance(value, (list, tuple)):
            for position, item in enumerate(value):
                if _is_module(item):
                    yield from _tensor_attributes(item, f"{path}[{position}].", seen)


def _is_module(value):
    return callable(getattr(value, "forward", None)) and callable(getattr(value, "backward", None))


class LossView:
    """A target loss as the harness calls it: ``forward(prediction, target)``, ``backward()``.

    Predictions are [B, C] (or [R, B, C] with replicas) and the result a 0-d loss (one per
    replica) in the harness's layout, whatever the target's (module docstring). With
    ``per_sample`` the batch loss is the SUM of the per-row losses, and ``backward`` reruns each
    row's forward before its backward. ``probe`` is the ``GradientProbe`` a
    ``loss_takes_model`` loss was built on.
    """

    def __init__(self, loss, name, *, per_sample=False, hooks=None, probe=None):
        self.loss, self.name = loss, name
        self.hooks = hooks if hooks is not None else Hooks(per_sample=per_sample)
        self.per_sample, self.probe = self.hooks.per_sample, probe
        self._last = None

    def __repr__(self):
        return self.name

    def forward(self, prediction, target):
        """The loss, a 0-d tensor (a Python number is accepted and converted)."""
        self._last = (prediction.detach().clone(), target.detach().clone())
        if not self.per_sample:
            return self._value(*self._last)
        return torch.stack([self._value(p, t) for p, t in zip(*self._last, strict=True)]).sum()

    def _layout(self, tensor):
        """A prediction or target in the loss's layout (``loss_flat``, ``column_vectors``);
        int64 class indices are left as they are."""
        if tensor.dtype == torch.int64:
            return tensor.clone()
        if self.hooks.loss_flat:
            return tensor.reshape(-1).clone()
        if self.hooks.column_vectors:
            return _columns(tensor, self.per_sample).clone()
        return tensor.clone()

    def _value(self, prediction, target):
        value = call(self.name, "forward", _bound(self.hooks.loss_forward, self.loss, "forward"),
                     self._layout(prediction), self._layout(target))
        if self.hooks.loss_value is not None:
            value = call(self.name, "loss_value", self.hooks.loss_value, value)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = torch.tensor(float(value), dtype=prediction.dtype)
        value = _tensor(self.name, "forward", value)
        if prediction.ndim == 3 and tuple(value.shape) == prediction.shape[:1]:
            return value.clone()  # one loss per replica (refnet's replica axis)
        if value.numel() != 1:
            hint = ("; an adapter hook loss_value(returned) can say which number is the loss"
                    if self.hooks.loss_value is None else "")
            raise ProtocolError(f"{self.name}.forward returned shape {list(value.shape)}, not "
                                f"one number{hint}")
        return value.reshape(()).clone()

    def backward(self):
        """dL/dprediction for the last forward, shaped like the prediction."""
        if self._last is None:
            raise ProtocolError(f"{self.name}: backward before forward")
        if not self.per_sample:
            return self._gradient(self._last[0])
        rows = []
        for prediction, target in zip(*self._last, strict=True):
            self._value(prediction, target)
            rows.append(self._gradient(prediction))
        return torch.stack(rows)

    def _gradient(self, prediction):
        returned = call(self.name, "backward", _bound(self.hooks.loss_backward, self.loss,
                                                      "backward"))
        gradient = (self.probe.take(self.name) if self.probe is not None
                    else _tensor(self.name, "backward", returned))
        if self.hooks.loss_flat or self.hooks.column_vectors:
            if gradient.numel() != prediction.numel():
                raise ProtocolError(f"{self.name}.backward returned shape "
                                    f"{list(gradient.shape)} for a prediction of "
                                    f"{prediction.numel()} elements")
            if self.hooks.column_vectors and not self.hooks.loss_flat:
                gradient = _rows(gradient, self.per_sample)
            gradient = gradient.reshape(prediction.shape)
        return gradient.clone()


def one_line_label(module):
    """A one-line description of any object: its ``repr`` without line breaks, or its class
    name (when it has no ``repr`` of its own, or its ``repr`` raises)."""
    if type(module).__repr__ is object.__repr__:
        return type(module).__name__
    try:
        text = " ".join(repr(module).split())
    except Exception:  # a foreign __repr__ that raises must not break the harness
        return type(module).__name__
    return re.sub(r",? \)", ")", re.sub(r"\( ", "(", text))
