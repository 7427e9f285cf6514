"""The conformance registry covers every public refnet module, and its checks all pass."""

import pytest
import torch

import refnet
from verification.suite.registry import (
    cases,
    covered_classes,
    public_module_classes,
    random_architecture,
    run_cases,
)

REQUIRED_KINDS = {"finite_difference", "autograd"}


def test_every_public_module_loss_and_optimizer_is_registered():
    coverage = covered_classes()
    for cls in public_module_classes():
        kinds = coverage.get(cls, set())
        needed = {"trajectory"} if hasattr(cls, "step") else REQUIRED_KINDS
        assert needed <= kinds, f"{cls.__name__} lacks {sorted(needed - kinds)} checks"


def test_a_new_public_module_without_checks_is_flagged(monkeypatch):
    class Softplus(refnet.Module):
        def forward(self, x):
            return x

        def backward(self, grad_output):
            return grad_output

    monkeypatch.setattr(refnet, "Softplus", Softplus, raising=False)
    monkeypatch.setattr(refnet, "__all__", [*refnet.__all__, "Softplus"])
    assert Softplus in public_module_classes()
    assert Softplus not in covered_classes(), "the registry must not cover unknown classes"


def test_case_names_are_unique():
    names = [case.name for case in cases()]
    assert len(names) == len(set(names)), names


@pytest.mark.parametrize("case", cases(), ids=lambda case: case.name)
def test_registered_case_passes_and_produces_its_kinds(case):
    results = run_cases([case])
    failures = [result.detail for result in results if not result.passed]
    assert not failures, "\n".join(failures)
    assert {result.kind for result in results} <= set(case.kinds), case.name


def test_a_raising_case_becomes_a_failed_result():
    broken = cases()[0].__class__("broken", (), ("autograd",), lambda: 1 / 0)
    (result,) = run_cases([broken])
    assert not result.passed and "ZeroDivisionError" in result.detail


def test_random_architectures_are_seeded():
    first = random_architecture(torch.Generator().manual_seed(3))
    second = random_architecture(torch.Generator().manual_seed(3))
    assert repr(first[0]) == repr(second[0]) and torch.equal(first[1], second[1])
