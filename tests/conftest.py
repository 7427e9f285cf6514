"""Test settings: one torch thread, and the hypothesis profiles "ci" (default, quick) and
"thorough" (HYPOTHESIS_PROFILE=thorough)."""

import os

import torch
from hypothesis import HealthCheck, settings

pytest_plugins = ("pytester",)  # runs `pytest --conform` in a scratch folder (test_conform.py)


def pytest_configure(config):
    """The tests multiply matrices of a few hundred elements, where OpenMP's hand-off between
    threads costs more than the work (ten times more on a loaded 2-core machine): one thread.
    The benchmarks restore torch's default (tests/benchmarks/conftest.py)."""
    config.torch_default_threads = torch.get_num_threads()
    torch.set_num_threads(1)


settings.register_profile("ci", max_examples=25, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=500, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
