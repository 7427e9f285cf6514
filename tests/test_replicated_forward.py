"""``ModuleView.forward_each`` of a view holding refnet's twins, on refnet's own classes: one
replicated forward, the same outputs as one forward per value; anything else (a class that only
claims to be refnet's, a twin that disagrees with the module) gets one forward per value
(``verification/targets/replicas.py``)."""

import pytest
import torch

import refnet
from verification.targets.protocol import ModuleView, NoTwin
from verification.targets.replicas import refnet_twin


def _network():
    generator = torch.Generator().manual_seed(0)
    return refnet.Sequential(refnet.Linear(3, 4, generator=generator, dtype=torch.float64),
                             refnet.Tanh(),
                             refnet.Linear(4, 2, generator=generator, dtype=torch.float64))


def _perturbed(tensor, count=5):
    generator = torch.Generator().manual_seed(1)
    return tensor.detach().reshape(1, -1) + 1e-3 * torch.randn(
        count, tensor.numel(), generator=generator, dtype=tensor.dtype)


def _one_at_a_time(view, tensor, values, x):
    outputs = []
    for row in values:
        saved = tensor.detach().clone()
        tensor.copy_(row.view_as(tensor))
        outputs.append(view.forward(x))
        tensor.copy_(saved)
    return torch.stack(outputs)


def test_refnet_modules_give_the_outputs_of_one_forward_per_value_in_one_call(monkeypatch):
    view = ModuleView(_network(), "net", twins=refnet_twin)
    x = torch.randn(6, 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    calls = []
    monkeypatch.setattr(view, "call_forward", lambda given, original=view.call_forward: (
        calls.append(1), original(given))[1])
    for tensor, _ in view.param():
        values = _perturbed(tensor)
        before = tensor.detach().clone()
        got = view.forward_each(tensor, values, x)
        assert len(calls) == 1, "the replicated path calls the module's forward once (the check)"
        calls.clear()
        expected = _one_at_a_time(view, tensor, values, x)
        calls.clear()
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-14)
        assert torch.equal(tensor, before), "the parameter keeps its own values"


def test_a_class_that_only_claims_to_be_refnets_gets_one_forward_per_value():
    class Linear:  # named like refnet's, from a module called refnet: still not refnet's
        __module__ = "refnet"

        def __init__(self):
            self.weight, self.bias = torch.ones(2, 3, dtype=torch.float64), torch.zeros(2)

        def forward(self, x):
            return x @ self.weight.T + self.bias

    module = Linear()
    x = torch.ones(4, 3, dtype=torch.float64)
    with pytest.raises(NoTwin, match="refnet's own classes only"):
        refnet_twin(module, module.weight, x)
    view = ModuleView(module, "claims", twins=refnet_twin)
    values = _perturbed(module.weight)
    torch.testing.assert_close(view.forward_each(module.weight, values, x),
                               _one_at_a_time(view, module.weight, values, x), rtol=0, atol=0)


def test_a_twin_that_disagrees_with_the_module_is_discarded(monkeypatch):
    network = _network()
    weight = network.modules[0].weight
    x = torch.ones(2, 3, dtype=torch.float64)
    view = ModuleView(network, "net", twins=refnet_twin)
    original = view.call_forward
    monkeypatch.setattr(view, "call_forward", lambda given: original(given) + 1.0)
    values = _perturbed(weight)
    torch.testing.assert_close(view.forward_each(weight, values, x),
                               _one_at_a_time(view, weight, values, x), rtol=0, atol=0)
