"""Replica r of a batched run equals a single run seeded with replica r's seed (CONTRACT.md)."""

import pytest
import torch
from torch.overrides import TorchFunctionMode

import refnet

SEEDS = [3, 1, 4, 15, 9]
F64 = torch.float64
# Both runs do the same arithmetic; only the order inside a batched matrix product may differ,
# so each value differs by a few ulps per operation. Over 2 epochs × 10 steps of a 4-layer
# network these grow to well under 1e-12 relative; 1e-10 leaves two orders of margin while
# a real mismatch (a replica seeing another replica's data or weights) is of order 1.
RTOL, ATOL = 1e-10, 1e-12


def _run(seeds, optimizer_name, replicas):
    """Build, train and evaluate the report's network; one run per generator in ``seeds``."""
    generator = (refnet.generators(seeds) if replicas else
                 torch.Generator().manual_seed(seeds[0]))
    model = refnet.report_network("tanh", generator=generator, replicas=replicas, dtype=F64)
    x, labels = refnet.disk_dataset(100, replicas=replicas, generator=generator, dtype=F64)
    x_test, labels_test = refnet.disk_dataset(100, replicas=replicas, generator=generator,
                                              dtype=F64)
    optimizer = (refnet.SGD(model.param(), lr=0.05) if optimizer_name == "sgd"
                 else refnet.Adam(model.param(), lr=0.01))
    losses = refnet.train(model, x, refnet.one_hot(labels, dtype=F64), batch_size=10, epochs=2,
                          optimizer=optimizer, generator=generator)
    return {"x": x, "losses": torch.tensor(losses), "weights": [p for p, _ in model.param()],
            "train_error": refnet.error(model, x, labels),
            "test_error": refnet.error(model, x_test, labels_test)}


@pytest.mark.parametrize("optimizer_name", ["sgd", "adam"])
def test_replica_r_equals_single_run_with_seed_r(optimizer_name):
    batched = _run(SEEDS, optimizer_name, replicas=len(SEEDS))
    for r, seed in enumerate(SEEDS):
        single = _run([seed], optimizer_name, replicas=None)
        assert torch.equal(batched["x"][r], single["x"]), f"replica {r}: data differ, seed {seed}"
        torch.testing.assert_close(batched["losses"][:, r], single["losses"], rtol=RTOL, atol=ATOL,
                                   msg=lambda m, r=r: f"replica {r} epoch losses: {m}")
        for index, (w_batched, w_single) in enumerate(zip(batched["weights"], single["weights"],
                                                          strict=True)):
            torch.testing.assert_close(w_batched[r], w_single, rtol=RTOL, atol=ATOL,
                                       msg=lambda m, r=r, i=index: f"replica {r} param {i}: {m}")
        assert int(batched["train_error"][r]) == single["train_error"], f"replica {r} train error"
        assert int(batched["test_error"][r]) == single["test_error"], f"replica {r} test error"


def test_replicas_differ_from_each_other():
    batched = _run(SEEDS, "sgd", replicas=len(SEEDS))
    first_layer = batched["weights"][0]
    assert not torch.equal(first_layer[0], first_layer[1]), "replicas 0 and 1 share weights"
    assert not torch.equal(batched["x"][0], batched["x"][1]), "replicas 0 and 1 share data"


def test_same_seeds_same_numbers():
    first, second = _run(SEEDS, "adam", len(SEEDS)), _run(SEEDS, "adam", len(SEEDS))
    assert torch.equal(first["losses"], second["losses"]), "same seeds gave different losses"


def test_single_generator_with_replicas_is_deterministic():
    def losses():
        generator = torch.Generator().manual_seed(7)
        model = refnet.report_network("relu", generator=generator, replicas=3)
        x, labels = refnet.disk_dataset(50, replicas=3, generator=generator)
        return refnet.train(model, x, refnet.one_hot(labels), lr=0.01, batch_size=10, epochs=2,
                            generator=generator)
    assert losses() == losses(), "one seeded generator must give the same batched run twice"


class _CallCounter(TorchFunctionMode):
    def __init__(self):
        super().__init__()
        self.calls = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.calls += 1
        return func(*args, **(kwargs or {}))


def _torch_calls_of_training(replicas):
    generator = torch.Generator().manual_seed(0)
    model = refnet.report_network("tanh", generator=generator, replicas=replicas)
    x, labels = refnet.disk_dataset(40, replicas=replicas, generator=generator)
    targets = refnet.one_hot(labels)
    with _CallCounter() as counter:
        refnet.train(model, x, targets, lr=0.01, batch_size=10, epochs=2, generator=generator)
    return counter.calls


def test_training_cost_in_torch_calls_does_not_grow_with_replicas():
    """No Python loop over replicas on the hot path: R = 2 and R = 64 make the same calls."""
    assert _torch_calls_of_training(2) == _torch_calls_of_training(64)


def test_linear_replica_forward_is_each_replica_alone():
    generator = torch.Generator().manual_seed(0)
    layer = refnet.Linear(3, 4, replicas=5, generator=generator, dtype=F64)
    x = torch.randn(5, 7, 3, generator=generator, dtype=F64)
    output = layer.forward(x)
    for r in range(5):
        expected = x[r] @ layer.weight[r].T + layer.bias[r]
        torch.testing.assert_close(output[r], expected, msg=lambda m, r=r: f"replica {r}: {m}")


def test_loss_has_one_value_per_replica():
    prediction = torch.zeros(3, 4, 2, dtype=F64)
    target = torch.ones(3, 4, 2, dtype=F64)
    target[1] = 0
    loss = refnet.MSELoss("sum").forward(prediction, target)
    assert loss.tolist() == [8.0, 0.0, 8.0], f"per-replica sums, got {loss.tolist()}"
