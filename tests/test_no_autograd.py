"""refnet computes every gradient by hand: no autograd, torch.nn or torch.optim inside it."""

import ast
from pathlib import Path

import torch
from torch.overrides import TorchFunctionMode

import refnet

PACKAGE = Path(refnet.__file__).parent
FORBIDDEN_MODULES = ("torch.autograd", "torch.nn", "torch.optim", "torch.func")


def _source_files():
    return sorted(PACKAGE.rglob("*.py"))


def _imported_names(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            yield node.module or ""
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def test_package_has_source_files():
    assert len(_source_files()) >= 8, f"expected refnet's modules under {PACKAGE}"


def test_no_forbidden_imports():
    for path in _source_files():
        for name in _imported_names(ast.parse(path.read_text())):
            assert not name.startswith(FORBIDDEN_MODULES), (
                f"{path.name} imports {name}; refnet must use tensor operations only")


def test_no_forbidden_attribute_uses():
    """No attribute path into torch.nn/autograd/optim/func and no ``requires_grad`` access.

    Attributes are read from the syntax tree, so docstrings may still name torch.nn.
    """
    for path in _source_files():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute):
                dotted = ast.unparse(node)
                assert not dotted.startswith(FORBIDDEN_MODULES), f"{path.name}: uses {dotted}"
                assert node.attr not in ("requires_grad", "requires_grad_", "grad_fn"), (
                    f"{path.name}: touches {dotted}")


class _RequiresGradSpy(TorchFunctionMode):
    """Records every torch call whose result requires grad."""

    def __init__(self):
        super().__init__()
        self.offenders = []
        self.calls = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        result = func(*args, **(kwargs or {}))
        self.calls += 1
        outputs = result if isinstance(result, (tuple, list)) else (result,)
        if any(isinstance(out, torch.Tensor) and out.requires_grad for out in outputs):
            self.offenders.append(getattr(func, "__name__", repr(func)))
        return result


def test_full_training_creates_no_tensor_that_requires_grad():
    generator = torch.Generator().manual_seed(0)
    with _RequiresGradSpy() as spy:
        model = refnet.report_network("tanh", generator=generator)
        x, labels = refnet.disk_dataset(100, generator=generator)
        for optimizer in (refnet.SGD(model.param(), lr=0.01), refnet.Adam(model.param())):
            refnet.train(model, x, refnet.one_hot(labels), batch_size=10, epochs=2,
                         optimizer=optimizer, generator=generator)
        refnet.error(model, x, labels)
    assert spy.calls > 100, f"the spy saw only {spy.calls} torch calls; is it active?"
    assert spy.offenders == [], f"torch calls returned tensors requiring grad: {spy.offenders}"
    assert all(not tensor.requires_grad for pair in model.param() for tensor in pair)
