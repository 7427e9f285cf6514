"""Test settings: one torch thread, the hypothesis profiles "ci" (default, quick) and
"thorough" (HYPOTHESIS_PROFILE=thorough), and the session's judged fixtures: one scoreboard of
the fixture frameworks through ``refnet conform`` and their results in one process, shared by
every test that only reads them."""

import functools
import json
import os
from pathlib import Path

import pytest
import torch
from check_helpers import JUDGED, fixture_spec
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


JUDGED_FIXTURES = {"judged", "in_process"}


def pytest_itemcollected(item):
    """Which tests share a pytest-xdist worker (pyproject's addopts: ``-n``, ``--dist
    loadgroup``): every test reading ``JUDGED_FIXTURES`` shares one, so that they are computed
    once a session, and the other tests of a file share one, so that its module fixtures are
    computed once. The groups run side by side. (Marked as each test is collected: pytest-xdist
    reads the marks in its ``pytest_collection_modifyitems``.)"""
    if item.get_closest_marker("xdist_group") is None:
        group = "judged" if JUDGED_FIXTURES & set(item.fixturenames) else item.path.name
        item.add_marker(pytest.mark.xdist_group(group))


settings.register_profile("ci", max_examples=25, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=500, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


HANG_GUARD = 300
"""The shared scoreboard's timeout, seconds: a hang guard only (no target here hangs). A
correct target takes 4-20 s idle in both dtypes (per_sample, whose finite differences run
every row alone, the longest), two to three times that on a loaded machine."""


class Scoreboard:
    """A finished ``refnet conform`` scoreboard: ``out`` (its folder), ``status`` (the exit
    status), ``board`` (its results.json) and each target's own results.json by spec."""

    def __init__(self, out, status):
        self.out, self.status = Path(out), status
        self.board = json.loads((self.out / "results.json").read_text())
        self.targets = {target["spec"]: target for target in self.board["targets"]}

    def results(self, spec):
        """The target's own results.json (``DIR/<folder>/results.json``)."""
        return json.loads((self.out / self.targets[spec]["folder"] / "results.json").read_text())


@pytest.fixture(scope="session")
def zygote():
    """One judge zygote (``isolation.judge_zygote``) for the tests that run targets one at a
    time: each run then forks its judge instead of starting an interpreter and torch."""
    from verification.confined.isolation import judge_zygote

    with judge_zygote() as shared:
        yield shared


@pytest.fixture(scope="session")
def judged(tmp_path_factory):
    """One scoreboard of ``check_helpers.JUDGED`` (refnet, every fixture framework, planted
    bugs of every check kind), both dtypes, ``--jobs 2``: read by the scoreboard tests of
    test_conform.py and compared id for id with ``in_process`` by test_judge.py."""
    from verification.conform import ConformOptions, run_conform

    out = tmp_path_factory.mktemp("judged")
    status = run_conform(ConformOptions(targets=tuple(map(fixture_spec, JUDGED)), out=out,
                                        jobs=2, timeout=HANG_GUARD, show_progress=False))
    return Scoreboard(out, status)


@pytest.fixture(scope="session")
def in_process():
    """``in_process(spec)``: ``check_target`` of the spec in this process (its own dtypes,
    full trajectories), computed once per session: test_targets.py asserts the correct
    fixtures pass, test_judge.py that the judge gives the same verdicts."""
    from verification import check_target, load_target

    @functools.cache
    def results(spec):
        return tuple(check_target(load_target(spec)))

    return results
