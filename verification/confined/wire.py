"""The messages between a judge and the executor of a target (``remote.py``, ``executor.py``).

A message is one frame: its length in 8 bytes (big-endian), the length of its header in 8
more, the header, a JSON text of the message in which every tensor is replaced by
``{"$tensor": [dtype, shape, offset, bytes]}``, then the tensors' bytes one after the other.
Reading a frame parses JSON and copies bytes into new tensors: nothing in a frame is ever
executed or unpickled, so a frame can only hold numbers, text, lists and tensors. The reader
refuses a frame longer than ``FRAME_LIMIT`` and any frame that is not made of the values below.

A value on the wire is ``None``, a ``bool``, ``int``, ``float`` (``NaN`` and infinities
included), ``str``, a tensor (a dense CPU tensor of one of ``TENSOR_DTYPES``), a list of values,
or one of these tagged dicts (a dict always has exactly one key):

=================================  ==============================================================
``{"$tuple": [value, …]}``         a tuple
``{"$dict": [[key, value], …]}``   a dict
``{"$object": n}``                 the executor's object number ``n`` (a target's module,
                                   optimiser, attribute …); ``{"$callable": n}`` when it is
                                   callable
``{"$shared": n}``                 the executor's shared tensor number ``n`` (a parameter value
                                   or gradient, kept in step on both sides: ``remote.py``)
``{"$new": [k, tensor]}``          (judge to executor) a tensor of the judge's to be shared from
                                   now on; the reply says its number (``"shared"``)
``{"$dtype": "float32"}``          a torch dtype
=================================  ==============================================================
"""

import json
import math
import struct

import torch

__all__ = ["WireError", "FRAME_LIMIT", "TENSOR_DTYPES", "send", "receive", "check", "tag",
           "untag", "plain", "changes", "dtype_name", "dtype_of"]

FRAME_LIMIT = 256 * 2**20
"""The longest frame read, bytes: every tensor a check sends or gets back is a few MB at most."""

TENSOR_DTYPES = (torch.float64, torch.float32, torch.float16, torch.bfloat16, torch.int64,
                 torch.int32, torch.bool, torch.uint8)
"""The dtypes a tensor on the wire may have."""

_DTYPES = {str(dtype).removeprefix("torch."): dtype for dtype in TENSOR_DTYPES}
_TAGS = ("$tuple", "$dict", "$object", "$callable", "$shared", "$new", "$dtype")
_DEPTH = 32
"""The deepest nesting of containers read."""


class WireError(RuntimeError):
    """A frame that cannot be read: cut short, too long, or not made of wire values."""


def send(stream, message):
    """Write ``message`` (a dict of wire values) as one frame and flush."""
    tensors = []
    header = json.dumps(_lower(message, tensors)).encode("utf-8")
    body = b"".join(tensors)
    stream.write(struct.pack(">QQ", 8 + len(header) + len(body), len(header)) + header + body)
    stream.flush()


def _lower(value, tensors, offset=None):
    """``value`` with tuples and tensors as JSON can hold them; each tensor's bytes appended
    to ``tensors``."""
    if isinstance(value, torch.Tensor):
        data = value.detach().reshape(-1).contiguous().view(torch.uint8).numpy().tobytes() if (
            value.numel()) else b""
        start = sum(map(len, tensors))
        tensors.append(data)
        return {"$tensor": [dtype_name(value.dtype), list(value.shape), start, len(data)]}
    if isinstance(value, tuple):
        return {"$tuple": [_lower(item, tensors) for item in value]}
    if isinstance(value, list):
        return [_lower(item, tensors) for item in value]
    if isinstance(value, dict):
        return {key: _lower(item, tensors) for key, item in value.items()}
    return value


def receive(stream):
    """The next frame's dict, checked (``check``); ``EOFError`` at the end of the stream.

    Raises:
        WireError: a frame cut short, longer than ``FRAME_LIMIT``, or not a dict of wire values.
    """
    lengths = stream.read(16)
    if not lengths:
        raise EOFError("the other side closed the channel")
    if len(lengths) < 16:
        raise WireError("a frame cut short in its length")
    length, header_length = struct.unpack(">QQ", lengths)
    if length > FRAME_LIMIT or header_length > length - 8:
        raise WireError(f"a frame of {length} bytes, header {header_length} (the limit is "
                        f"{FRAME_LIMIT})")
    data = stream.read(length - 8)
    if len(data) < length - 8:
        raise WireError(f"a frame cut short: {len(data)} of {length - 8} bytes")
    try:
        message = json.loads(data[:header_length])
    except (ValueError, RecursionError) as error:
        raise WireError(f"a frame whose header is no JSON: {error}") from error
    if not isinstance(message, dict):
        raise WireError(f"a frame holding {type(message).__name__}, not a dict")
    message = _raise(message, memoryview(data)[header_length:], 0)
    for value in message.values():
        check(value)
    return message


def _raise(value, body, depth):
    """The inverse of ``_lower``: ``$tensor`` and ``$tuple`` tags made into tensors (copies of
    their bytes) and tuples."""
    if depth > _DEPTH:
        raise WireError(f"values nested deeper than {_DEPTH}")
    if isinstance(value, list):
        return [_raise(item, body, depth + 1) for item in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1 and "$tensor" in value:
        return _tensor(value["$tensor"], body)
    if len(value) == 1 and "$tuple" in value and isinstance(value["$tuple"], list):
        return tuple(_raise(item, body, depth + 1) for item in value["$tuple"])
    return {key: _raise(item, body, depth + 1) for key, item in value.items()}


def _tensor(description, body):
    """A new tensor from ``[dtype, shape, offset, bytes]`` of the frame's ``body``."""
    try:
        name, shape, offset, size = description
        dtype = _DTYPES[name]
        shape = [int(extent) for extent in shape]
        count = math.prod(shape)
    except (TypeError, ValueError, KeyError) as error:
        raise WireError(f"a tensor described as {str(description)[:200]}") from error
    item = torch.empty((), dtype=dtype).element_size()
    if (min(shape, default=0) < 0 or not isinstance(offset, int) or not isinstance(size, int)
            or size != count * item or offset < 0 or offset + size > len(body)):
        raise WireError(f"a tensor of shape {shape} and dtype {name} that its "
                        f"{size} bytes at offset {offset} do not hold")
    if count == 0:
        return torch.empty(shape, dtype=dtype)
    raw = torch.frombuffer(bytearray(body[offset:offset + size]), dtype=torch.uint8)
    return raw.view(dtype).reshape(shape)


def check(value, depth=0):
    """Raise ``WireError`` unless ``value`` is a wire value (module docstring) whose tensors are
    plain dense CPU tensors of ``TENSOR_DTYPES``, not requiring grad."""
    if depth > _DEPTH:
        raise WireError(f"values nested deeper than {_DEPTH}")
    if value is None or isinstance(value, (bool, int, float, str)):
        return
    if isinstance(value, torch.Tensor):
        if (type(value) is not torch.Tensor or value.layout is not torch.strided
                or value.device.type != "cpu" or value.dtype not in TENSOR_DTYPES
                or value.requires_grad):
            raise WireError(f"a tensor of type {type(value).__name__}, layout {value.layout}, "
                            f"device {value.device}, dtype {value.dtype}: expected a plain CPU "
                            f"tensor of one of {[str(d) for d in TENSOR_DTYPES]}")
        return
    if isinstance(value, (list, tuple)):
        for item in value:
            check(item, depth + 1)
        return
    if isinstance(value, dict) and len(value) == 1 and next(iter(value)) in _TAGS:
        (key, content), = value.items()
        if key == "$dict":
            if not isinstance(content, list) or not all(
                    isinstance(item, list) and len(item) == 2 for item in content):
                raise WireError("a $dict that is no list of [key, value] pairs")
            check(content, depth + 1)
        elif key == "$dtype":
            if content not in _DTYPES:
                raise WireError(f"an unknown dtype {content!r}")
        elif key == "$new":
            if not (isinstance(content, list) and len(content) == 2
                    and isinstance(content[0], int) and isinstance(content[1], torch.Tensor)):
                raise WireError("a $new that is no [number, tensor]")
            check(content[1], depth + 1)
        elif not (isinstance(content, int) and not isinstance(content, bool)):
            raise WireError(f"a {key} that is no number")
        return
    raise WireError(f"{type(value).__name__} where a wire value belongs")


def plain(tensor):
    """A copy of ``tensor`` as the wire carries it: detached, a plain ``torch.Tensor`` on the
    CPU, contiguous (a view would carry its whole storage)."""
    return tensor.detach().as_subclass(torch.Tensor).to("cpu", copy=True).contiguous()


def changes(tensors, seen, take=plain):
    """``[[number, value]]`` of the shared ``tensors`` (``{number: tensor}``) that differ from
    the values ``seen`` last crossed the wire with (in shape, dtype or any element) or that
    never crossed it; each ``take(tensor)`` (``plain``'s copy) sent becomes its ``seen`` value.
    Both sides of a target run keep their shared tensors in step with it: the judge's writes
    before a request, the executor's changes after it."""
    changed = []
    for number, tensor in tensors.items():
        before = seen.get(number)
        if (before is None or before.shape != tensor.shape or before.dtype != tensor.dtype
                or not torch.equal(before, tensor)):
            seen[number] = value = take(tensor)
            changed.append([number, value])
    return changed


def tag(key, content):
    """The tagged dict ``{key: content}``."""
    return {key: content}


def untag(value):
    """``(key, content)`` of a tagged dict, else ``(None, value)``."""
    if isinstance(value, dict) and len(value) == 1:
        (key, content), = value.items()
        if key in _TAGS:
            return key, content
    return None, value


def dtype_name(dtype):
    """``"float32"`` for ``torch.float32``."""
    return str(dtype).removeprefix("torch.")


def dtype_of(name):
    """The torch dtype named ``name`` (one of ``TENSOR_DTYPES``)."""
    return _DTYPES[name]
