"""Benchmarks run with torch's default thread count, as users run refnet."""

import pytest
import torch


@pytest.fixture(autouse=True)
def torch_default_threads(request):
    torch.set_num_threads(request.config.torch_default_threads)
    yield
    torch.set_num_threads(1)
