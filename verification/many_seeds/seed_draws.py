"""What each seed draws before training, shared by the reproduction and the claims ledger."""

from dataclasses import dataclass

import refnet
from refnet.network import LAYER_SIZES

__all__ = ["SeedDraws", "draw_seeds"]


@dataclass(frozen=True)
class SeedDraws:
    """One replica per seed: the network, the training set and the held-out set, drawn in
    the single-run order; ``generators`` then stand where ``refnet.train`` starts drawing.

    Attributes:
        model: the report's network with ``replicas=len(seeds)``.
        train_set: ``(x, labels)``, shaped [R, N, 2] and [R, N].
        held_out_set: ``(x, labels)``, a validation or test set, same layout.
        generators: the R seeded generators.
    """

    model: refnet.Sequential
    train_set: tuple
    held_out_set: tuple
    generators: list


def draw_seeds(seeds, *, activation, center, train_samples, held_out_samples, init="xavier",
               sizes=LAYER_SIZES, dtype=None, device="cpu"):
    """Draw, for every seed from its own generator, the network and then the two data sets.

    Replica r holds what a single run seeded with ``seeds[r]`` would draw (CONTRACT.md).
    """
    generators = refnet.generators(seeds)
    replicas = len(seeds)
    model = refnet.report_network(activation, init=init, generator=generators, sizes=sizes,
                                  replicas=replicas, dtype=dtype, device=device)
    train_set, held_out_set = (
        refnet.disk_dataset(samples, center=center, replicas=replicas, generator=generators,
                            dtype=dtype, device=device)
        for samples in (train_samples, held_out_samples))
    return SeedDraws(model, train_set, held_out_set, generators)
