"""The finite-difference harness on an independent framework written to the EE-559 API."""

import pytest
import torch
from ee559_framework import BuggyTanh, Linear, LossMSE, Module, ReLU, Sequential, Tanh

from verification.checks.finite_difference import assert_backward_matches, check_backward
from verification.checks.result import CheckFailure

F64 = torch.float64


def _generator(seed=0):
    return torch.Generator().manual_seed(seed)


def _input(*shape, seed=1):
    return 4 * torch.rand(shape, generator=_generator(seed), dtype=F64) - 2


class _AgainstTarget(Module):
    """Glue: the course's two-input loss as a one-input module, ``x ↦ LossMSE(x, target)``."""

    def __init__(self, loss, target):
        self.loss, self.target = loss, target

    def forward(self, *input):
        return self.loss.forward(input[0], self.target)

    def backward(self, *gradwrtoutput):
        return gradwrtoutput[0] * self.loss.backward()


def _network(activation=Tanh):
    g = _generator()
    return Sequential(Linear(2, 6, g), activation(), Linear(6, 6, g), activation(),
                      Linear(6, 2, g))


CORRECT = {
    "Linear": (lambda: Linear(3, 4, _generator()), (5, 3)),
    "Linear, batch 1": (lambda: Linear(4, 1, _generator()), (1, 4)),
    "Tanh": (Tanh, (5, 3)),
    "ReLU": (ReLU, (5, 3)),
    "Sequential, tanh": (_network, (7, 2)),
    "Sequential, relu": (lambda: _network(ReLU), (7, 2)),
}


@pytest.mark.parametrize(("build", "shape"), CORRECT.values(), ids=CORRECT.keys())
def test_correct_modules_pass(build, shape):
    module = build()
    results = assert_backward_matches(module, _input(*shape))
    assert len(results) == 1 + len(module.param()), [r.id for r in results]


def test_loss_passes_with_samples_coupled():
    loss = _AgainstTarget(LossMSE(), _input(4, 2, seed=2))
    [result] = assert_backward_matches(loss, _input(4, 2), row_wise=False)
    assert "one element at a time" in result.detail, result.detail


def test_loss_checked_as_row_wise_is_told_to_pass_row_wise_false():
    loss = _AgainstTarget(LossMSE(), _input(4, 2, seed=2))
    [result] = check_backward(loss, _input(4, 2))
    assert not result.passed and "row_wise=False" in result.detail, result.detail


def test_exactly_the_buggy_module_is_flagged():
    modules = [Linear(3, 3, _generator()), Tanh(), BuggyTanh(), ReLU()]
    flagged = [type(m).__name__ for m in modules
               if not all(r.passed for r in check_backward(m, _input(5, 3)))]
    assert flagged == ["BuggyTanh"], flagged
    with pytest.raises(CheckFailure) as failure:
        assert_backward_matches(BuggyTanh(), _input(5, 3))
    message = str(failure.value)
    assert message.startswith("check_backward failed for BuggyTanh"), message
    assert "dL/d input" in message and "worst element [" in message, message


def test_buggy_tanh_fails_the_network_below_it():
    results = check_backward(_network(BuggyTanh), _input(7, 2))
    failed = [r.id.rsplit("/", 1)[-1] for r in results if not r.passed]
    assert "param[0] (members[0].w)" in failed and "input" in failed, failed
    assert "param[5] (members[4].b)" not in failed, "the last layer sits above every Tanh"


def test_reused_activation_fails_the_whole_network():
    g, tanh = _generator(), Tanh()
    net = Sequential(Linear(2, 5, g), tanh, Linear(5, 5, g), tanh, Linear(5, 2, g))
    for member, width in zip(net.members, (2, 5, 5, 5, 5), strict=True):
        assert_backward_matches(member, _input(4, width))
    with pytest.raises(CheckFailure, match=r"param\[0\] \(members\[0\]\.w\)"):
        assert_backward_matches(net, _input(4, 2))
