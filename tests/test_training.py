"""train() and error() (report sections 2.5 and 2.6)."""

import torch

import refnet

F64 = torch.float64


def _setup(replicas=None, samples=200, seed=0):
    generator = (refnet.generators(range(seed, seed + replicas)) if replicas
                 else torch.Generator().manual_seed(seed))
    model = refnet.report_network("relu", generator=generator, replicas=replicas, dtype=F64)
    x, labels = refnet.disk_dataset(samples, replicas=replicas, generator=generator, dtype=F64)
    return model, x, labels, generator


def test_training_lowers_the_loss_and_the_error():
    model, x, labels, generator = _setup()
    before = refnet.error(model, x, labels)
    losses = refnet.train(model, x, refnet.one_hot(labels, dtype=F64), lr=0.02, batch_size=10,
                          epochs=30, generator=generator)
    assert len(losses) == 30 and all(isinstance(loss, float) for loss in losses)
    assert losses[-1] < 0.5 * losses[0], f"loss should fall: {losses[0]:.2f} → {losses[-1]:.2f}"
    after = refnet.error(model, x, labels)
    assert isinstance(after, int) and after < before, f"error {before} → {after}"


def test_epoch_loss_is_the_sum_of_batch_losses():
    """With lr tiny the weights barely move, so each epoch's loss is the full-data sum loss."""
    model, x, labels, generator = _setup(samples=25)
    targets = refnet.one_hot(labels, dtype=F64)
    full_loss = refnet.MSELoss("sum").forward(model.forward(x), targets).item()
    (epoch_loss,) = refnet.train(model, x, targets, lr=1e-12, batch_size=10, epochs=1,
                                 generator=generator)
    assert abs(epoch_loss - full_loss) < 1e-9 * full_loss, "25 samples: batches of 10, 10 and 5"


def test_zero_epochs_changes_nothing():
    model, x, labels, _ = _setup(samples=10)
    before = [value.clone() for value, _ in model.param()]
    assert refnet.train(model, x, refnet.one_hot(labels, dtype=F64), lr=1.0, batch_size=5,
                        epochs=0) == []
    assert all(torch.equal(a, value) for a, (value, _) in zip(before, model.param(), strict=True))


def test_replicated_training_returns_one_loss_per_replica_per_epoch():
    model, x, labels, generator = _setup(replicas=3, samples=30)
    losses = refnet.train(model, x, refnet.one_hot(labels, dtype=F64), lr=0.01, batch_size=10,
                          epochs=2, generator=generator)
    assert len(losses) == 2 and all(len(epoch) == 3 for epoch in losses)
    errors = refnet.error(model, x, labels)
    assert errors.shape == (3,) and errors.dtype == torch.int64


def test_error_counts_argmax_mistakes_in_eval_mode():
    layer = refnet.Linear(2, 2, dtype=F64)
    layer.weight.copy_(torch.eye(2, dtype=F64))
    model = refnet.Sequential(refnet.Dropout(0.9), layer).train()
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 1.0]], dtype=F64)
    assert refnet.error(model, x, torch.tensor([0, 0, 0])) == 1, "only the second point is wrong"
    assert model.training, "error() restores the previous mode"
    assert refnet.predict(model, x).tolist() == [0, 1, 0]


def test_adam_through_train():
    model, x, labels, generator = _setup(samples=100)
    losses = refnet.train(model, x, refnet.one_hot(labels, dtype=F64), batch_size=10, epochs=10,
                          optimizer=refnet.Adam(model.param(), lr=0.01), generator=generator)
    assert losses[-1] < losses[0], "Adam should lower the loss"
