"""The ledger's batched training runs (``RUNS``): the baseline with one factor changed.

Seed s draws from one generator, in this order, the weights, the training set, the test set
and one batch order per epoch (the order of ``refnet train --seed s``), so runs on the same
seeds are paired. R seeds train as one batched refnet run (``replicas=R``).
"""

from dataclasses import dataclass

import numpy as np
import torch

import refnet
from refnet.network import ACTIVATIONS
from verification.many_seeds.claims.config import (
    ACTIVATION,
    ADAM_LR,
    BATCH_SIZE,
    CENTER,
    DROPOUT_P,
    DROPOUT_SEED,
    HIDDEN_WIDTH,
    LR,
    REPORT_HIDDEN_LAYERS,
)
from verification.many_seeds.seed_draws import draw_seeds
from verification.many_seeds.torch_training import predict_torch, torch_network, train_torch
from verification.many_seeds.workers import Workers

__all__ = ["RunSpec", "RUNS", "train_run", "train_runs", "initial_gradient_norms"]


@dataclass(frozen=True)
class _Run:
    """One batched run's outcome, per seed (R seeds; N test points).

    Attributes:
        seeds: the R seeds.
        epoch_losses: float array epochs × R of summed epoch losses.
        train_errors: float array of R training error rates.
        test_errors: float array of R test error rates.
        test_points: R × N × 2 CPU tensor of the (raw) test points.
        test_wrong: R × N CPU bool tensor, True where a test point is misclassified.
    """

    seeds: list
    epoch_losses: np.ndarray
    train_errors: np.ndarray
    test_errors: np.ndarray
    test_points: torch.Tensor
    test_wrong: torch.Tensor


def _draw(seeds, config, device, *, init="xavier", hidden_layers=REPORT_HIDDEN_LAYERS,
          train_samples=None, dtype=None):
    """Network, training set and test set of each seed, in the single-run order, in
    ``dtype`` (the config's when ``None``)."""
    dtype = getattr(torch, config.dtype) if dtype is None else dtype
    return draw_seeds(seeds, activation=ACTIVATION, center=CENTER,
                      train_samples=train_samples or config.samples,
                      held_out_samples=config.samples, init=init,
                      sizes=(2, *(HIDDEN_WIDTH,) * hidden_layers, 2), dtype=dtype,
                      device=device)


def _outcome(seeds, epoch_losses, predict, draws):
    """A ``_Run`` from the epoch losses and a ``predict(x) -> labels`` of the trained nets."""
    rates = [(predict(x) != labels).double().mean(dim=-1).cpu().numpy()
             for x, labels in (draws.train_set, draws.held_out_set)]
    x_test, labels_test = draws.held_out_set
    losses = np.asarray(epoch_losses, dtype=np.float64).reshape(len(epoch_losses), len(seeds))
    return _Run(list(seeds), losses, *rates, x_test.cpu(), (predict(x_test) != labels_test).cpu())


def _with_dropout(model, p):
    """The same layers with ``Dropout(p)`` after every hidden activation (one mask generator)."""
    generator = torch.Generator().manual_seed(DROPOUT_SEED)
    modules = []
    for module in model.modules:
        modules.append(module)
        if isinstance(module, ACTIVATIONS[ACTIVATION]):
            modules.append(refnet.Dropout(p, generator=generator))
    return refnet.Sequential(*modules)


def _standardiser(x):
    """``points ↦ (points − mean) / std`` with the per-seed, per-feature statistics of ``x``."""
    mean, std = x.mean(dim=-2, keepdim=True), x.std(dim=-2, keepdim=True)
    return lambda points: (points - mean) / std


_REFNET_OPTIMIZERS = {"sgd": lambda params: refnet.SGD(params, LR),
                      "adam": lambda params: refnet.Adam(params, lr=ADAM_LR)}
_TORCH_OPTIMIZERS = {"sgd": lambda params: torch.optim.SGD(params, lr=LR),
                     "adam": lambda params: torch.optim.Adam(params, lr=ADAM_LR)}


def _train_refnet(draws, seeds, *, epochs, optimizer="sgd", dropout=0.0, standardise=False):
    """Train the drawn networks with refnet; optionally with Dropout or standardised inputs."""
    model = _with_dropout(draws.model, dropout) if dropout else draws.model
    x, labels = draws.train_set
    scale = _standardiser(x) if standardise else (lambda points: points)
    losses = refnet.train(model, scale(x), refnet.one_hot(labels, dtype=x.dtype),
                          batch_size=BATCH_SIZE, epochs=epochs,
                          optimizer=_REFNET_OPTIMIZERS[optimizer](model.param()),
                          generator=draws.generators)
    return _outcome(seeds, losses, lambda points: refnet.predict(model, scale(points)), draws)


def _train_torch(draws, seeds, *, epochs, optimizer):
    """Train the drawn networks with torch.autograd and torch.optim on refnet's batch orders."""
    network = torch_network(draws.model)
    x, labels = draws.train_set
    epoch_losses = train_torch(network, x, refnet.one_hot(labels, dtype=x.dtype),
                               draws.generators,
                               optimizer=_TORCH_OPTIMIZERS[optimizer](network.parameters()),
                               batch_size=BATCH_SIZE, epochs=epochs)
    return _outcome(seeds, epoch_losses, lambda points: predict_torch(network, points), draws)


@dataclass(frozen=True)
class RunSpec:
    """One batched training run of the ledger: the baseline with one factor changed.

    Attributes:
        label: what the progress display calls it.
        framework: ``"refnet"`` or ``"torch"`` (torch.nn + autograd + torch.optim).
        paired_only: train only the first ``paired_seeds`` seeds instead of all ``seeds``.
        init: ``"xavier"`` or ``"normal"`` (std 10⁻⁶).
        deep: ``deep_hidden_layers`` hidden layers instead of the report's 3.
        small: ``small_samples`` training points for ``small_epochs`` epochs.
        optimizer: ``"sgd"`` or ``"adam"``.
        dropout: Dropout probability after every hidden activation (0: none).
        standardise: standardise the inputs with each training set's mean and std.
    """

    label: str
    framework: str = "refnet"
    paired_only: bool = False
    init: str = "xavier"
    deep: bool = False
    small: bool = False
    optimizer: str = "sgd"
    dropout: float = 0.0
    standardise: bool = False


RUNS = {
    "baseline": RunSpec("baseline"),
    "refnet_adam": RunSpec("claim 4: refnet Adam", paired_only=True, optimizer="adam"),
    "torch_sgd": RunSpec("claim 4: torch SGD", framework="torch", paired_only=True),
    "torch_adam": RunSpec("claim 4: torch Adam", framework="torch", paired_only=True,
                          optimizer="adam"),
    "normal": RunSpec("claim 5: normal init", init="normal"),
    "deep_xavier": RunSpec("claim 5: deep xavier", paired_only=True, deep=True),
    "deep_normal": RunSpec("claim 5: deep normal", paired_only=True, deep=True, init="normal"),
    "dropout": RunSpec("claim 6: Dropout", dropout=DROPOUT_P),
    "small": RunSpec("claim 6: small training set", small=True),
    "small_dropout": RunSpec("claim 6: small training set, Dropout", small=True,
                             dropout=DROPOUT_P),
    "standardised": RunSpec("claim 7: standardised inputs", standardise=True),
}
"""Every training run of ``run_claims``, by name; all start from the same seeds' draws."""


def train_run(spec, config, device="cpu"):
    """Draw the seeds of ``spec`` and train them as one batched run; a ``_Run``.

    A module-level function of picklable arguments, so that a ``Workers`` pool can run it."""
    seeds = config.seed_list(config.paired_seeds if spec.paired_only else config.seeds)
    draws = _draw(seeds, config, device, init=spec.init,
                  hidden_layers=config.deep_hidden_layers if spec.deep else REPORT_HIDDEN_LAYERS,
                  train_samples=config.small_samples if spec.small else None)
    epochs = config.small_epochs if spec.small else config.epochs
    if spec.framework == "torch":
        return _train_torch(draws, seeds, epochs=epochs, optimizer=spec.optimizer)
    return _train_refnet(draws, seeds, epochs=epochs, optimizer=spec.optimizer,
                         dropout=spec.dropout, standardise=spec.standardise)


def train_runs(config, device="cpu", *, workers=None, progress=None):
    """Every run of ``RUNS``, side by side on ``workers`` (one after the other without).

    Args:
        config: a ``ClaimsConfig``.
        device: where the runs train.
        workers: a ``Workers`` pool, or ``None`` to train in this process.
        progress: optional ``progress(done, total, label)``, called before and after each
            run is collected (``done`` and ``total`` count runs).

    Returns:
        A dict run name → ``_Run``, the same whichever ``workers`` ran them.
    """
    workers = workers or Workers(1)
    progress = progress or (lambda done, total, label: None)
    futures = {name: workers.submit(train_run, spec, config, device)
               for name, spec in RUNS.items()}
    runs = {}
    for done, (name, future) in enumerate(futures.items()):
        progress(done, len(RUNS), RUNS[name].label)
        runs[name] = future.result()
    progress(len(RUNS), len(RUNS), "done")
    return runs


def initial_gradient_norms(seeds, config, device, *, init, hidden_layers):
    """Median over seeds of each layer's weight-gradient norm at initialisation (float64).

    The gradient is that of the summed MSE over the whole training set, before any step.

    Returns:
        A list of floats, one per Linear layer from input to output.
    """
    draws = _draw(seeds, config, device, init=init, hidden_layers=hidden_layers,
                  dtype=torch.float64)
    x, labels = draws.train_set
    loss = refnet.MSELoss(reduction="sum")
    model = draws.model.train()
    model.zero_grad()
    loss.forward(model.forward(x), refnet.one_hot(labels, dtype=x.dtype))
    model.backward(loss.backward())
    norms = [module.grad_weight.flatten(1).norm(dim=1) for module in model.modules
             if isinstance(module, refnet.Linear)]
    return [float(norm.median()) for norm in norms]
