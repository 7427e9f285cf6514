"""disk_dataset and one_hot (report sections 1 and 2.3)."""

import math

import pytest
import torch

import refnet


@pytest.mark.parametrize("center, inside_fraction", [((0.0, 0.0), 1 / 8), ((0.5, 0.5), 1 / 2)])
def test_disk_labels_and_class_balance(center, inside_fraction):
    generator = torch.Generator().manual_seed(0)
    x, labels = refnet.disk_dataset(20000, center=center, generator=generator, dtype=torch.float64)
    assert x.shape == (20000, 2) and labels.shape == (20000,) and labels.dtype == torch.int64
    assert x.min() >= 0 and x.max() < 1, "points lie in [0, 1)²"
    distance = (x - torch.tensor(center, dtype=torch.float64)).norm(dim=1)
    assert torch.equal(labels, (distance <= refnet.DISK_RADIUS).long()), "label 1 inside the disk"
    # The disk has area π r² = 1/2; a binomial fraction of 20,000 has standard error ≤ 0.0036.
    assert abs(labels.double().mean().item() - inside_fraction) < 0.015


def test_radius_is_one_over_root_two_pi():
    assert math.isclose(math.pi * refnet.DISK_RADIUS**2, 0.5)


def test_replicated_dataset_shapes_and_independence():
    x, labels = refnet.disk_dataset(10, replicas=3, generator=refnet.generators([0, 1, 2]))
    assert x.shape == (3, 10, 2) and labels.shape == (3, 10)
    single, _ = refnet.disk_dataset(10, generator=torch.Generator().manual_seed(1))
    assert torch.equal(x[1], single), "replica 1 equals a single draw with seed 1"


def test_same_seed_same_data_different_seed_different_data():
    def draw(seed):
        return refnet.disk_dataset(50, generator=torch.Generator().manual_seed(seed))[0]
    assert torch.equal(draw(5), draw(5)) and not torch.equal(draw(5), draw(6))


def test_one_hot():
    encoded = refnet.one_hot(torch.tensor([[0, 1], [1, 1]]))
    assert encoded.tolist() == [[[1.0, 0.0], [0.0, 1.0]], [[0.0, 1.0], [0.0, 1.0]]]
    assert refnet.one_hot(torch.tensor([2]), num_classes=3).tolist() == [[0.0, 0.0, 1.0]]
