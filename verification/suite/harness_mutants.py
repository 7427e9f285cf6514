"""The mutants of the harness's own judging code: weakened (or stricter) copies of its source.

Each operator is one way a judge can go wrong without any test noticing, applied wherever it
fits in a source file's syntax tree, in source order (no randomness):

==============  ===================================================================
operator        what it does
==============  ===================================================================
``×10``         a tolerance constant times 10: a module-level numeric constant
                (``SAFETY = 4``) or a number in a tolerance's formula (the value of a
                name or keyword containing ``tol``, or what a function named
                ``*tolerance*`` or ``*rounding*`` returns: ``rtol=4 * u``)
``÷10``         the same constant divided by 10 (a stricter harness: a false alarm on
                a correct framework is a defect too)
``flip``        an ordering comparison reversed: ``<`` ↔ ``>``, ``<=`` ↔ ``>=``
``and↔or``      a boolean operator swapped
``drop abs``    ``abs(x)``, ``x.abs()`` or ``torch.abs(x)`` replaced by ``x``
``max↔min``     ``max`` ↔ ``min`` (also ``amax``/``amin``, ``maximum``/``minimum``)
``pass``        a status forced to a pass: ``passed=…``, ``passed = …`` and a
                ``CheckResult``'s fourth positional argument become ``True``
``drop``        a candidate or a case dropped: one element of a module-level tuple
                of numbers (points, shapes, kink candidates), or one ``Case(…)`` of
                a list or of an ``add``/``append`` statement
==============  ===================================================================

A mutant is a text splice (``Mutant.apply``): the original fragment's span replaced by the
new fragment, so the rest of the file keeps its lines. Its ``key`` is what the ledger of
equivalent mutants (``harness_equivalents.py``) names it by, chosen to survive edits
elsewhere: the module, the enclosing function's qualified name, the operator, the original
fragment (whitespace collapsed) and its occurrence among identical ones in that function.
"""

import ast
import re
from dataclasses import dataclass

__all__ = ["Mutant", "mutants_of", "OPERATORS"]

OPERATORS = ("×10", "÷10", "flip", "and↔or", "drop abs", "max↔min", "pass", "drop")
_CONSTANT = re.compile(r"_*[A-Z][A-Z0-9_]*")
_TOLERANCE_NAME = re.compile(r"tol", re.IGNORECASE)
_TOLERANCE_FUNCTION = re.compile(r"tolerance|rounding", re.IGNORECASE)
_FLIPPED = {ast.Lt: ast.Gt, ast.Gt: ast.Lt, ast.LtE: ast.GtE, ast.GtE: ast.LtE}
_SWAPPED = {"max": "min", "min": "max", "amax": "amin", "amin": "amax",
            "maximum": "minimum", "minimum": "maximum"}
_FRAGMENT_LENGTH = 80


@dataclass(frozen=True)
class Mutant:
    """One edit of one source file.

    Attributes:
        path: the file, relative to the project root (``"verification/checks/compare.py"``).
        operator: one of ``OPERATORS``.
        function: the enclosing function's qualified name, ``"<module>"`` at top level.
        fragment: the original source of the edited node, whitespace collapsed, at most 80
            characters.
        occurrence: 0 for the first mutant of this path, operator, function and fragment in
            source order, 1 for the next, …
        span: ``(line, column, end line, end column)`` of the edited node (lines from 1).
        replacement: the source written in its place.
        names: the module-level constant it edits, if any (the tests that read it are
            found from the lines that use the name).
    """

    path: str
    operator: str
    function: str
    fragment: str
    occurrence: int
    span: tuple
    replacement: str
    names: tuple = ()

    @property
    def module(self):
        """``verification.checks.compare`` for ``verification/checks/compare.py``."""
        return self.path.removesuffix(".py").replace("/", ".")

    @property
    def key(self):
        """The ledger's name for it: module, function, operator, fragment, occurrence."""
        return f"{self.module}:{self.function}:{self.operator}:{self.fragment}#{self.occurrence}"

    @property
    def lines(self):
        """The lines it edits, first to last."""
        return range(self.span[0], self.span[2] + 1)

    def apply(self, source):
        """``source`` with the span replaced by ``replacement``."""
        lines = source.splitlines(keepends=True)
        line, column, end_line, end_column = self.span
        start = sum(map(len, lines[:line - 1])) + _offset(lines[line - 1], column)
        end = sum(map(len, lines[:end_line - 1])) + _offset(lines[end_line - 1], end_column)
        return source[:start] + self.replacement + source[end:]


def _offset(line, utf8_column):
    """The string index of an AST column offset, which counts UTF-8 bytes."""
    return len(line.encode()[:utf8_column].decode())


def mutants_of(path, source):
    """Every mutant of one file, in source order.

    Args:
        path: the file's path relative to the project root, as the mutants will carry it.
        source: its text.

    Returns:
        A list of ``Mutant``; each one's ``apply(source)`` parses.
    """
    finder = _Finder(source)
    finder.visit(ast.parse(source))
    seen, mutants = {}, []
    for node, edited, operator, function, replacement, names in finder.found:
        fragment = _collapsed(ast.get_source_segment(source, node))
        occurrence = seen.get((operator, function, fragment), 0)
        seen[operator, function, fragment] = occurrence + 1
        span = (edited.lineno, edited.col_offset, edited.end_lineno, edited.end_col_offset)
        mutants.append(Mutant(path, operator, function, fragment, occurrence, span,
                              replacement, names))
    return mutants


def _collapsed(text):
    text = " ".join(text.split())
    return text if len(text) <= _FRAGMENT_LENGTH else text[:_FRAGMENT_LENGTH - 1] + "…"


def _numeric(node):
    """A number, or arithmetic of numbers only (``2.0 ** -26``, ``4 * 2**30``)."""
    if isinstance(node, ast.Constant):
        return isinstance(node.value, (int, float)) and not isinstance(node.value, bool)
    if isinstance(node, ast.UnaryOp):
        return _numeric(node.operand)
    return isinstance(node, ast.BinOp) and _numeric(node.left) and _numeric(node.right)


def _number_or_numbers(node):
    return _numeric(node) or (isinstance(node, ast.Tuple) and all(map(_numeric, node.elts)))


def _is_case(node):
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id == "Case")


def _called_name(call):
    func = call.func
    return func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)


class _Finder(ast.NodeVisitor):
    """Walks a module, recording ``(node, edited, operator, function, replacement, names)``:
    ``node`` is what the mutant changes, ``edited`` the span replaced (``node`` itself, or
    the display an element is dropped from)."""

    def __init__(self, source):
        self.source, self.scope, self.found = source, [], []

    def _add(self, node, operator, replacement, names=(), edited=None):
        function = ".".join(self.scope) or "<module>"
        self.found.append((node, edited or node, operator, function, replacement, names))

    def _scoped(self, node):
        self.scope.append(node.name)
        self.generic_visit(node)
        self.scope.pop()

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = _scoped

    def visit_JoinedStr(self, node):
        """An f-string's pieces are messages, not judgements: left alone."""

    def visit_Assign(self, node):
        targets = [target.id for target in node.targets if isinstance(target, ast.Name)]
        if not self.scope and targets and all(map(_CONSTANT.fullmatch, targets)):
            self._module_constant(node.value, tuple(targets))
        if "passed" in targets:
            self._add(node.value, "pass", "True")
        if any(map(_TOLERANCE_NAME.search, targets)):
            self._tolerance_numbers(node.value)
        self.generic_visit(node)

    def _module_constant(self, value, names):
        if _numeric(value):
            text = ast.get_source_segment(self.source, value)
            self._add(value, "×10", f"({text}) * 10", names)
            self._add(value, "÷10", f"({text}) / 10", names)
        elif isinstance(value, (ast.Tuple, ast.List)) and len(value.elts) > 1 and all(
                map(_number_or_numbers, value.elts)):
            for index, element in enumerate(value.elts):
                rest = [*value.elts[:index], *value.elts[index + 1:]]
                self._add(element, "drop", _unparsed(value, rest), names, edited=value)

    def _tolerance_numbers(self, value):
        """×10 and ÷10 of each number multiplying or dividing inside a tolerance's formula."""
        for node in ast.walk(value):
            if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Mult, ast.Div)):
                for operand in (node.left, node.right):
                    if isinstance(operand, ast.Constant) and _numeric(operand):
                        text = ast.get_source_segment(self.source, operand)
                        self._add(operand, "×10", f"({text} * 10)")
                        self._add(operand, "÷10", f"({text} / 10)")

    def visit_keyword(self, node):
        if node.arg == "passed" and not (isinstance(node.value, ast.Constant)
                                         and node.value.value is True):
            self._add(node.value, "pass", "True")
        if node.arg and _TOLERANCE_NAME.search(node.arg):
            self._tolerance_numbers(node.value)
        self.generic_visit(node)

    def visit_Return(self, node):
        if node.value is not None and self.scope and _TOLERANCE_FUNCTION.search(self.scope[-1]):
            self._tolerance_numbers(node.value)
        self.generic_visit(node)

    def visit_Compare(self, node):
        if all(type(op) in _FLIPPED for op in node.ops):
            flipped = ast.Compare(node.left, [_FLIPPED[type(op)]() for op in node.ops],
                                  node.comparators)
            self._add(node, "flip", f"({ast.unparse(flipped)})")
        self.generic_visit(node)

    def visit_BoolOp(self, node):
        other = ast.Or() if isinstance(node.op, ast.And) else ast.And()
        self._add(node, "and↔or", f"({ast.unparse(ast.BoolOp(other, node.values))})")
        self.generic_visit(node)

    def visit_Call(self, node):
        name = _called_name(node)
        if name == "abs":
            inner = node.func.value if not node.args and isinstance(node.func, ast.Attribute) \
                else (node.args[0] if len(node.args) == 1 else None)
            if inner is not None:
                self._add(node, "drop abs", f"({ast.get_source_segment(self.source, inner)})")
        if name in _SWAPPED:
            self._add(node, "max↔min", _renamed(self.source, node, _SWAPPED[name]))
        if name and name.endswith("CheckResult") and len(node.args) > 3 and not (
                isinstance(node.args[3], ast.Constant) and node.args[3].value is True):
            self._add(node.args[3], "pass", "True")
        self.generic_visit(node)

    def visit_Expr(self, node):
        call = node.value
        if isinstance(call, ast.Call) and _called_name(call) in ("add", "append") and any(
                map(_is_case, call.args)):
            self._add(node, "drop", "pass")
        self.generic_visit(node)

    def visit_List(self, node):
        cases = [index for index, element in enumerate(node.elts) if _is_case(element)]
        for index in cases:
            rest = [*node.elts[:index], *node.elts[index + 1:]]
            self._add(node.elts[index], "drop", _unparsed(node, rest), edited=node)
        self.generic_visit(node)


def _unparsed(display, elements):
    """A tuple or list display with only ``elements``, parenthesised."""
    kind = ast.Tuple if isinstance(display, ast.Tuple) else ast.List
    return f"({ast.unparse(kind(elements, ast.Load()))})"


def _renamed(source, call, name):
    """The call's source with the called name replaced (``x.max()`` → ``x.min()``)."""
    func = call.func
    text = ast.get_source_segment(source, call)
    head = ast.get_source_segment(source, func)
    renamed = (name if isinstance(func, ast.Name)
               else f"{ast.get_source_segment(source, func.value)}.{name}")
    return renamed + text[len(head):]
