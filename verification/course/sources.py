"""A course's rules read from a submission's source: every use of a forbidden namespace.

The files read are the submission's own: the adapter's file and, transitively, every module it
imports that lies in the adapter's folder (for an importable name, in the import-path entry it
is found under; for ``refnet``, refnet's package). Nothing under the interpreter's own
libraries (the standard library, site-packages) is read, and nothing is imported or run: each
file is parsed (``ast``), so a hostile file can cost only its parse, and files over
``MAX_BYTES`` are named, not read.

What counts as a use, for a forbidden namespace such as ``torch.nn`` (each with its file, line
and source line): an import of it or of anything under it, in any spelling (``import
torch.nn as nn``, ``from torch import nn, autograd``, ``from torch.nn.functional import
relu``); an attribute path that resolves into it through the file's imports
(``torch.nn.functional.relu(x)``, ``F.relu`` after ``import torch.nn.functional as F``);
``getattr(torch, "nn")``, ``__import__("torch.nn")`` and ``importlib.import_module("torch.nn")``
with literal names; and, for ``torch.autograd``, switching a tensor's gradient on
(``requires_grad=True`` as an argument, ``x.requires_grad = True``, ``x.requires_grad_()``)
or reading ``grad_fn``. A name under a forbidden namespace is allowed where it, or the module
that defines the object it names (``torch.autograd.no_grad`` is defined in
``torch.autograd.grad_mode``), is under an allowed one.
"""

import ast
import importlib
import importlib.util
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Finding", "Scan", "scan", "forbidden_namespace", "MAX_BYTES", "MAX_FILES"]

MAX_BYTES = 2 * 2**20
"""A source file larger than this is named as unread, not parsed."""
MAX_FILES = 500
"""At most this many files of one submission are read."""
_LINE = 160
"""Characters of a source line quoted in a finding."""
_GRADIENT_SWITCHES = ("requires_grad_",)
_GRADIENT_READS = ("grad_fn",)


@dataclass(frozen=True)
class Finding:
    """One use of a forbidden namespace in a source file.

    Attributes:
        namespace: the forbidden namespace used (``torch.nn``).
        name: what was used (``torch.nn.functional.relu``, ``requires_grad=True``).
        path: the file, relative to the submission's folder.
        line: the line number (1-based).
        source: that line of the file, stripped and cut to a readable length.
    """

    namespace: str
    name: str
    path: str
    line: int
    source: str

    def text(self):
        return f"{self.path}:{self.line}: {self.name} — {self.source}"


@dataclass(frozen=True)
class Scan:
    """What ``scan`` read and found.

    Attributes:
        root: the submission's folder (paths are relative to it), or ``None`` when none was
            found.
        files: the files parsed, relative to ``root``.
        findings: every ``Finding``, in file and line order.
        unread: files named but not parsed, each with why (``"big.py: 3000000 bytes"``).
    """

    root: Path | None
    files: tuple
    findings: tuple
    unread: tuple


def scan(spec, forbidden, allowed=()):
    """The uses of the ``forbidden`` namespaces (less the ``allowed``) in ``spec``'s source
    files (module docstring); ``spec`` is ``load_target``'s (a file path, an importable name,
    ``refnet``, each with an optional ``:Name``)."""
    root, start = _submission(spec.partition(":")[0])
    if root is None:
        return Scan(None, (), (), ())
    files, findings, unread = [], [], []
    queue, seen = list(start), set(start)
    while queue and len(files) < MAX_FILES:
        path = queue.pop(0)
        relative = path.relative_to(root).as_posix()
        tree, text = _parse(path, relative, unread)
        if tree is None:
            continue
        files.append(relative)
        findings += _Reader(forbidden, allowed, relative, text.splitlines()).read(tree)
        for found in _imported_files(tree, path, root):
            if found not in seen:
                seen.add(found)
                queue.append(found)
    unread += [f"{path.relative_to(root).as_posix()}: more than {MAX_FILES} files"
               for path in queue]
    return Scan(root, tuple(files), tuple(sorted(findings, key=lambda f: (f.path, f.line))),
                tuple(unread))


def forbidden_namespace(name, forbidden, allowed=()):
    """The forbidden namespace ``name`` (a dotted name) falls under, or ``None``: none, or an
    allowed one covers it or the module defining the object it names (module docstring)."""
    namespace = next((space for space in forbidden if _under(name, space)), None)
    if namespace is None or any(_under(name, space) for space in allowed):
        return None
    defined_in = _defining_module(name)
    if defined_in is not None and any(_under(defined_in, space) for space in allowed):
        return None
    return namespace


def _under(name, namespace):
    return name == namespace or name.startswith(namespace + ".")


def _defining_module(name):
    """The module that defines the object ``name`` names (``torch.autograd.no_grad`` →
    ``torch.autograd.grad_mode``), looked up among the modules already imported here (never
    importing one), else ``None``."""
    parts = name.split(".")
    for split in range(len(parts), 0, -1):
        module = sys.modules.get(".".join(parts[:split]))
        if module is None:
            continue
        value = module
        for part in parts[split:]:
            value = getattr(value, part, None)
        return getattr(value, "__module__", None) if split < len(parts) else module.__name__
    return None


def _submission(location):
    """``(root, [first files])`` of a spec's location; ``(None, [])`` where none is found
    outside the interpreter's own libraries."""
    if location == "refnet":
        found = importlib.util.find_spec("refnet")
        package = Path(found.origin).parent if found and found.origin else None
        return (package, sorted(package.rglob("*.py"))) if package else (None, [])
    path = Path(location)
    if path.suffix == ".py" or path.is_file():
        path = path.resolve()
        return (path.parent, [path]) if path.is_file() else (None, [])
    parts = location.split(".")
    for entry in _search_path():
        found = _module_file(entry, parts)
        if found is not None:
            return entry, [found]
    return None, []


def _search_path():
    """The import path's folders that may hold a submission: not the standard library, not
    site-packages."""
    libraries = {Path(sysconfig.get_path(key)).resolve()
                 for key in ("stdlib", "platstdlib", "purelib", "platlib")}
    for entry in sys.path:
        folder = Path(entry or ".").resolve()
        if folder.is_dir() and folder not in libraries and "site-packages" not in folder.parts:
            yield folder


def _module_file(base, parts):
    """The file of module ``parts`` under ``base`` (``a/b.py`` or ``a/b/__init__.py``)."""
    for candidate in (base.joinpath(*parts).with_suffix(".py"),
                      base.joinpath(*parts, "__init__.py")):
        if candidate.is_file():
            return candidate.resolve()
    return None


def _parse(path, relative, unread):
    """``(tree, text)`` of a file, or ``(None, None)`` with the reason added to ``unread``."""
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            unread.append(f"{relative}: {size} bytes, more than {MAX_BYTES}")
            return None, None
        text = path.read_text(encoding="utf-8", errors="replace")
        return ast.parse(text, filename=relative), text
    except (OSError, SyntaxError, ValueError, RecursionError, MemoryError) as error:
        unread.append(f"{relative}: {type(error).__name__}: {error}")
        return None, None


def _imported_files(tree, path, root):
    """The files under ``root`` that the imports of ``tree`` (the file ``path``) name."""
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [(0, alias.name.split(".")) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = node.module.split(".") if node.module else []
            names += [(node.level, module)]
            names += [(node.level, [*module, alias.name]) for alias in node.names]
    found = []
    for level, parts in names:
        base = root if level == 0 else path.parents[level - 1]
        for count in range(1, len(parts) + 1):  # the packages on the way, then the module
            file = _module_file(base, parts[:count]) if parts else None
            if file is not None and file.is_relative_to(root.resolve()):
                found.append(file)
        if level and not parts:
            init = base / "__init__.py"
            if init.is_file():
                found.append(init.resolve())
    return found


class _Reader:
    """The findings of one file's tree (module docstring), its names resolved through the
    file's imports (one table for the whole file)."""

    def __init__(self, forbidden, allowed, path, lines):
        self.forbidden, self.allowed, self.path, self.lines = forbidden, allowed, path, lines
        self.aliases, self.findings = {}, []

    def read(self, tree):
        parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                self._import(node)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                self._import_from(node)
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and not isinstance(parents.get(node),
                                                                   ast.Attribute):
                self._use(node, self._dotted(node))
            if isinstance(node, ast.Call):
                self._call(node)
            if isinstance(node, ast.Attribute) and node.attr in _GRADIENT_READS:
                self._gradient(node, f".{node.attr}")
            if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                if any(isinstance(t, ast.Attribute) and t.attr == "requires_grad"
                       for t in targets) and not _false(node.value):
                    self._gradient(node, ".requires_grad = …")
        return self.findings

    def _import(self, node):
        for alias in node.names:
            self._use(node, alias.name)
            head = alias.name.split(".")[0]
            self.aliases[alias.asname or head] = alias.name if alias.asname else head

    def _import_from(self, node):
        for alias in node.names:
            name = f"{node.module}.{alias.name}"
            self._use(node, name if alias.name != "*" else node.module)
            self.aliases[alias.asname or alias.name] = name

    def _dotted(self, node):
        """The dotted name of an attribute path, its first name replaced by what the file
        imported under it; ``None`` when it does not start with an imported name."""
        parts = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        if not isinstance(node, ast.Name) or node.id not in self.aliases:
            return None
        return ".".join([self.aliases[node.id], *reversed(parts)])

    def _call(self, node):
        function = node.func
        literal = (node.args[1] if len(node.args) > 1 else None) if _is_name(
            function, "getattr") else (node.args[0] if node.args else None)
        literal = literal.value if isinstance(literal, ast.Constant) and isinstance(
            literal.value, str) else None
        if literal is not None and _is_name(function, "getattr") and node.args:
            base = self._dotted(node.args[0]) if isinstance(
                node.args[0], ast.Attribute) else self.aliases.get(getattr(node.args[0], "id",
                                                                           None))
            if base is not None:
                self._use(node, f"{base}.{literal}")
        elif literal is not None and (_is_name(function, "__import__") or (
                isinstance(function, ast.Attribute)
                and self._dotted(function) == "importlib.import_module")):
            self._use(node, literal)
        if any(k.arg == "requires_grad" and not _false(k.value) for k in node.keywords):
            self._gradient(node, "requires_grad=True")
        if isinstance(function, ast.Attribute) and function.attr in _GRADIENT_SWITCHES and not (
                node.args and _false(node.args[0])):
            self._gradient(node, f".{function.attr}()")

    def _gradient(self, node, what):
        if forbidden_namespace("torch.autograd", self.forbidden, self.allowed):
            self._add(node, "torch.autograd", f"{what} (autograd)")

    def _use(self, node, name):
        namespace = name and forbidden_namespace(name, self.forbidden, self.allowed)
        if namespace:
            self._add(node, namespace, name)

    def _add(self, node, namespace, name):
        line = node.lineno
        source = self.lines[line - 1].strip() if 0 < line <= len(self.lines) else ""
        finding = Finding(namespace, name, self.path, line, source[:_LINE])
        if finding not in self.findings:
            self.findings.append(finding)


def _is_name(node, name):
    return isinstance(node, ast.Name) and node.id == name


def _false(node):
    return isinstance(node, ast.Constant) and node.value is False
