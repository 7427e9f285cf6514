"""Course profiles: what a course demands of every submission, as data (``--course``).

A profile names the components the course requires, the torch namespaces its rules forbid
(and the modules under them it allows), the grad mode the submissions run in, the dtypes they
are checked in and which optional components are checked where a submission offers them. The
built-in ``ee559`` is the course of the seed report ("using only PyTorch tensor operations and
standard math library, therefore without using autograd or other neural network modules"); a
TOML file with the same keys defines another::

    name = "ee559"
    description = "EPFL EE-559 mini-project 2: a framework from tensor operations alone"
    required = ["linear", "relu", "tanh", "sequential", "mse_loss"]
    forbidden = ["torch.autograd", "torch.nn", "torch.optim"]
    allowed = ["torch.autograd.grad_mode"]   # torch.no_grad, set_grad_enabled, …
    grad_mode = "off"                        # "off": autograd off in the submission's process
    dtypes = []                              # [] : each submission's own (float64 and float32)
    optional = "offered"                     # or a list of the optional components to check
    instance_reuse = false                   # report the instance-reuse facts

Every key but ``name`` may be left out (its default is refnet conform's behaviour without a
course). An unknown key, a component name the adapter contract does not have, a namespace
that is not a dotted name or a grad mode other than ``"off"``/``"any"`` is a ``CourseError``
before any target runs.
"""

import json
import re
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["Course", "CourseError", "load_course", "BUILTIN", "COURSE_COMPONENTS"]

COURSE_COMPONENTS = ("linear", "relu", "tanh", "sigmoid", "sequential", "mse_loss",
                     "cross_entropy_loss", "bce_loss", "dropout", "sgd", "adam")
"""The components a profile may name: the adapter contract's factories
(``verification/targets/adapter.py``'s ``COMPONENTS``; ``tests/test_course.py`` holds them
equal), written out so that this module imports no torch."""

GRAD_MODES = ("off", "any")
_DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
_DTYPES = ("float64", "float32")


class CourseError(ValueError):
    """A profile that cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class Course:
    """A course's demands (module docstring).

    Attributes:
        name: the profile's name, shown on every report.
        description: one sentence for the reports.
        required: components every submission must provide (a missing one fails the target).
        forbidden: torch namespaces (``torch.nn``) the submission may not import or call.
        allowed: modules under a forbidden namespace that stay allowed
            (``torch.autograd.grad_mode``: ``torch.no_grad`` and ``set_grad_enabled``).
        grad_mode: ``"off"``: every call into the submission runs with autograd switched
            off, as the course demands; ``"any"``: as the harness's own state.
        dtypes: names of the dtypes to check in; empty: each target's own.
        optional: the optional components checked where the adapter offers them; ``None``:
            every one offered. Cases of a component outside ``required`` and ``optional`` are
            not planned, and none is listed as skipped.
        instance_reuse: whether the instance-reuse facts are reported.
    """

    name: str
    description: str = ""
    required: tuple = ()
    forbidden: tuple = ()
    allowed: tuple = ()
    grad_mode: str = "any"
    dtypes: tuple = ()
    optional: tuple | None = None
    instance_reuse: bool = True
    source: str = field(default="", compare=False)

    def as_json(self):
        """The profile as one line of JSON (``from_json`` reads it back): how it reaches the
        judge and the executor."""
        data = asdict(self)
        data["optional"] = "offered" if self.optional is None else data["optional"]
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text):
        """The ``Course`` of ``as_json``'s text (validated again: it crossed a process)."""
        data = json.loads(text)
        source = data.pop("source", "")
        return _course(data, source or "the judge's arguments")

    def plans(self, component):
        """Whether cases of ``component`` are planned where the adapter offers it."""
        return (component in self.required or self.optional is None
                or component in self.optional)

    def summary(self):
        """One line for reports: the name and what it demands."""
        parts = [f"requires {', '.join(self.required)}" if self.required else "",
                 f"forbids {', '.join(self.forbidden)}" if self.forbidden else "",
                 "autograd off" if self.grad_mode == "off" else ""]
        return f"{self.name}: " + "; ".join(part for part in parts if part)


BUILTIN = {
    "ee559": Course(
        name="ee559",
        description="EPFL EE-559 mini-project 2: a framework built with PyTorch tensor "
                    "operations only, without autograd or torch.nn",
        required=("linear", "relu", "tanh", "sequential", "mse_loss"),
        forbidden=("torch.autograd", "torch.nn", "torch.optim"),
        allowed=("torch.autograd.grad_mode",),
        grad_mode="off",
        instance_reuse=False,
        source="built-in",
    ),
}
"""The built-in profiles by name."""


def load_course(name_or_path):
    """The ``Course`` named ``name_or_path`` (``BUILTIN``) or read from that TOML file.

    Raises:
        CourseError: no such profile or file, a file that is not TOML, or a bad key
            (module docstring).
    """
    if name_or_path in BUILTIN:
        return BUILTIN[name_or_path]
    path = Path(name_or_path)
    if not path.is_file():
        raise CourseError(f"course {name_or_path!r}: no built-in profile of that name "
                          f"({', '.join(BUILTIN)}) and no such file")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise CourseError(f"course file {path}: {error}") from None
    return _course(data, str(path))


_KEYS = {"name": str, "description": str, "required": list, "forbidden": list,
         "allowed": list, "grad_mode": str, "dtypes": list, "optional": (list, str),
         "instance_reuse": bool}


def _course(data, source):
    """A validated ``Course`` from a profile's keys (``source`` names it in errors)."""
    where = f"course {source}"
    unknown = sorted(set(data) - set(_KEYS))
    if unknown:
        raise CourseError(f"{where}: unknown key(s) {unknown}; the keys are {sorted(_KEYS)}")
    if not isinstance(data.get("name"), str) or not data["name"]:
        raise CourseError(f"{where}: 'name' (a non-empty string) is required")
    for key, kind in _KEYS.items():
        if key in data and not isinstance(data[key], kind):
            raise CourseError(f"{where}: {key!r} must be {_kind_name(kind)}, got "
                              f"{data[key]!r}")
    for key in ("required", "forbidden", "allowed", "dtypes"):
        if not all(isinstance(item, str) for item in data.get(key, [])):
            raise CourseError(f"{where}: {key!r} must be a list of strings")
    optional = data.get("optional", "offered")
    if isinstance(optional, str) and optional != "offered":
        raise CourseError(f"{where}: 'optional' must be \"offered\" or a list of components, "
                          f"got {optional!r}")
    components = [*data.get("required", []), *(optional if isinstance(optional, list) else [])]
    wrong = [name for name in components if name not in COURSE_COMPONENTS]
    if wrong:
        raise CourseError(f"{where}: unknown component(s) {wrong}; the components are "
                          f"{list(COURSE_COMPONENTS)}")
    namespaces = [*data.get("forbidden", []), *data.get("allowed", [])]
    wrong = [name for name in namespaces if not _DOTTED.fullmatch(name)]
    if wrong:
        raise CourseError(f"{where}: {wrong} are not dotted module names (torch.nn)")
    if data.get("grad_mode", "any") not in GRAD_MODES:
        raise CourseError(f"{where}: 'grad_mode' must be one of {list(GRAD_MODES)}, got "
                          f"{data['grad_mode']!r}")
    wrong = [name for name in data.get("dtypes", []) if name not in _DTYPES]
    if wrong or len(set(data.get("dtypes", []))) < len(data.get("dtypes", [])):
        raise CourseError(f"{where}: 'dtypes' must name each of {list(_DTYPES)} at most once, "
                          f"got {data['dtypes']!r}")
    return Course(name=data["name"], description=data.get("description", ""),
                  required=tuple(data.get("required", ())),
                  forbidden=tuple(data.get("forbidden", ())),
                  allowed=tuple(data.get("allowed", ())),
                  grad_mode=data.get("grad_mode", "any"), dtypes=tuple(data.get("dtypes", ())),
                  optional=tuple(optional) if isinstance(optional, list) else None,
                  instance_reuse=data.get("instance_reuse", True), source=source)


def _kind_name(kind):
    names = {str: "a string", list: "a list", bool: "true or false"}
    return " or ".join(names[k] for k in kind) if isinstance(kind, tuple) else names[kind]
