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
    _import_what_torch_optim_imports_on_first_use()


def _import_what_torch_optim_imports_on_first_use():
    """A first ``torch.optim`` step imports torch._dynamo and ~800 modules with it, one of
    which registers a TORCH_LIBRARY namespace. The ``pytester`` fixture restores
    ``sys.modules`` after its test, so if that first step happened inside such a test, the
    next step imported the module again and torch refused the second registration ("Only a
    single TORCH_LIBRARY can be used to register the namespace _inductor_test"): a check
    failed or not depending on which tests ran before it. Stepping once here, before any
    test, keeps those modules imported for the whole session."""
    parameter = torch.zeros(1, requires_grad=True)
    parameter.grad = torch.zeros(1)
    torch.optim.SGD([parameter], lr=0.1).step()


settings.register_profile("ci", max_examples=25, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=500, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
