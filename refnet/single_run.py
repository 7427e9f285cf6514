"""``refnet train``: the report's single run (section 2.5), its loss per epoch, its train and
test errors and its Figures 2 and 3. The command line that calls it is the harness's
(``verification/cli.py``)."""

import sys

import torch
from tqdm import tqdm

from refnet.data import DISK_RADIUS, disk_dataset, one_hot
from refnet.loss import MSELoss
from refnet.network import report_network
from refnet.optim import SGD
from refnet.training import error, predict, train

__all__ = ["single_run"]


def single_run(*, seed, activation, lr, batch_size, epochs, center, samples, reduction, device,
               out):
    """Train the report's network once, print the loss per epoch and the train and test
    errors, and write Figures 2 and 3 into ``out``; the exit status.

    The output folder, the model, the data and the optimiser come first: an argument they
    refuse (a ``ValueError``, such as an lr beyond float32's range) ends the run with
    status 2 before any training."""
    try:
        _create_folder(out)
        generator = torch.Generator().manual_seed(seed)
        model = report_network(activation, generator=generator, device=device)
        x_train, labels_train = disk_dataset(samples, center=center,
                                             generator=generator, device=device)
        x_test, labels_test = disk_dataset(samples, center=center,
                                           generator=generator, device=device)
        targets = one_hot(labels_train)
        optimizer = SGD(model.param(), lr)
    except ValueError as failure:
        print(f"refnet train: error: {failure}", file=sys.stderr)
        return 2
    print(f"refnet train: seed {seed}, {activation} hidden layers, lr {lr}, "
          f"batch size {batch_size}, {epochs} epochs, disk centre {center}, "
          f"{reduction} MSE")
    epoch_losses = []
    for epoch in tqdm(range(epochs), desc="epochs", unit="epoch"):
        (epoch_loss,) = train(model, x_train, targets, batch_size=batch_size, epochs=1,
                              loss=MSELoss(reduction), optimizer=optimizer,
                              generator=generator)
        epoch_losses.append(epoch_loss)
        tqdm.write(f"epoch {epoch + 1:3d}  loss {epoch_loss:.4f}")
    for name, x, labels in (("train", x_train, labels_train), ("test", x_test, labels_test)):
        wrong = error(model, x, labels)
        print(f"{name} error: {100 * wrong / len(labels):.1f}% ({wrong} of {len(labels)})")
    from refnet.plots import (  # matplotlib: 0.4 s that only this command needs
        classification_figure,
        loss_curve_figure,
        save_figure,
    )
    save_figure(loss_curve_figure(epoch_losses), out / "loss_curve.png")
    figure = classification_figure(x_test, labels_test, predict(model, x_test),
                                   center=center, radius=DISK_RADIUS)
    save_figure(figure, out / "test_classification.png")
    print(f"figures written to {out}/loss_curve.png and {out}/test_classification.png")
    return 0


def _create_folder(out):
    """Create the folder ``out`` (and its parents); ``ValueError`` saying why it cannot be."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is an existing file; expected a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as failure:
        raise ValueError(f"--out {out}: cannot create the folder: "
                         f"{failure.strerror or failure}") from None
