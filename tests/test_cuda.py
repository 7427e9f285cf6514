"""refnet on a CUDA device gives the CPU's numbers (skipped where torch sees no CUDA device)."""

import pytest
import torch

import refnet

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
F64 = torch.float64


def _replicated_run(device):
    generators = refnet.generators([0, 1, 2, 3])
    model = refnet.report_network("relu", generator=generators, replicas=4, dtype=F64,
                                  device=device)
    x, labels = refnet.disk_dataset(200, replicas=4, generator=generators, dtype=F64,
                                    device=device)
    losses = refnet.train(model, x, refnet.one_hot(labels, dtype=F64).to(device), lr=0.01,
                          batch_size=10, epochs=3, generator=generators)
    return model, losses, refnet.error(model, x, labels)


def test_everything_refnet_creates_lives_on_the_requested_device():
    model, _, errors = _replicated_run("cuda")
    assert all(tensor.is_cuda for pair in model.param() for tensor in pair)
    assert errors.is_cuda


def test_cuda_run_equals_cpu_run_in_float64():
    """Same generators (drawing on the CPU), same arithmetic up to reassociation on the GPU."""
    cpu_model, cpu_losses, cpu_errors = _replicated_run("cpu")
    gpu_model, gpu_losses, gpu_errors = _replicated_run("cuda")
    torch.testing.assert_close(torch.tensor(gpu_losses), torch.tensor(cpu_losses),
                               rtol=1e-9, atol=1e-12)
    for (cpu_value, _), (gpu_value, _) in zip(cpu_model.param(), gpu_model.param(), strict=True):
        torch.testing.assert_close(gpu_value.cpu(), cpu_value, rtol=1e-9, atol=1e-12)
    assert torch.equal(gpu_errors.cpu(), cpu_errors)


def test_adam_and_dropout_on_cuda():
    generator = torch.Generator(device="cuda").manual_seed(0)
    model = refnet.Sequential(refnet.Linear(2, 8, device="cuda"),
                              refnet.Dropout(0.2, generator=generator), refnet.Tanh(),
                              refnet.Linear(8, 2, device="cuda"))
    x, labels = refnet.disk_dataset(50, device="cuda")
    losses = refnet.train(model, x, refnet.one_hot(labels).cuda(), batch_size=10, epochs=3,
                          optimizer=refnet.Adam(model.param(), lr=0.01))
    assert len(losses) == 3 and all(loss == loss for loss in losses)
