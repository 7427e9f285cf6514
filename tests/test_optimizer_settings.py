"""Optimiser settings: the adapter's declaration, the cases built from it, the tolerance's
detection power (a relative error planted in one update, in float64 and float32)."""

import importlib
import math
import sys
from functools import partial
from pathlib import Path

import pytest
import torch

from verification import Target, TargetError, load_target
from verification.checks.optimizer import DETECTED, check_optimizer
from verification.suite.conformance import planned_cases, run_cases
from verification.targets.state import torch_state_kept
from verification.vocabulary.optimizer_settings import setting_cases, settings_label

FRAMEWORKS = Path(__file__).parent / "frameworks"
SGD_SETTINGS = ("momentum", "dampening", "nesterov", "weight_decay")
OPTIMISERS = [  # (torch.optim class, the settings an implementation takes, η of its case)
    (torch.optim.SGD, SGD_SETTINGS, 0.1),
    (torch.optim.Adam, ("betas", "eps", "weight_decay", "amsgrad"), 0.01),
    (torch.optim.AdamW, ("betas", "eps", "weight_decay"), 0.01),
    (torch.optim.RMSprop, ("alpha", "eps", "weight_decay", "momentum", "centered"), 0.05),
    (torch.optim.Adagrad, ("lr_decay", "initial_accumulator_value", "eps", "weight_decay"),
     0.05),
]


def _momentum():
    """The ``momentum`` fixture's adapter module (its framework is ``.fw``)."""
    sys.path.insert(0, str(FRAMEWORKS))
    try:
        with torch_state_kept():
            return importlib.import_module("momentum_adapter")
    finally:
        sys.path.remove(str(FRAMEWORKS))


def _failures(results):
    return [result for result in results if not result.passed]


# --- the cases built from a declaration ----------------------------------------------------------


def test_each_setting_alone_with_what_it_requires_then_all_at_once():
    labels = [settings_label("sgd", torch.optim.SGD, settings)
              for settings in setting_cases(torch.optim.SGD, SGD_SETTINGS)]
    assert labels == ["sgd", "sgd[momentum=0.9]", "sgd[momentum=0.9,dampening=0.1]",
                      "sgd[momentum=0.9,nesterov=True]", "sgd[weight_decay=0.01]",
                      "sgd[momentum=0.9,nesterov=True,weight_decay=0.01]"], labels
    assert all(set(settings) == set(SGD_SETTINGS)
               for settings in setting_cases(torch.optim.SGD, SGD_SETTINGS)), (
        "every declared setting is given in every case, its default included")


def test_a_value_equal_to_the_class_default_is_replaced_by_the_next_candidate():
    [_, decayed] = setting_cases(torch.optim.AdamW, ("weight_decay",))
    assert decayed == {"weight_decay": 0.1}, "AdamW's default weight decay is 0.01 already"


def test_refnet_is_checked_at_other_betas_and_eps_and_its_sgd_at_the_defaults_only():
    cases, _ = planned_cases(load_target("refnet"), dtypes=(torch.float64,))
    names = [case.name for case in cases if case.component in ("sgd", "adam")]
    assert names == ["sgd", "adam", "adam[betas=(0.8,0.99)]", "adam[eps=0.001]",
                     "adam[betas=(0.8,0.99),eps=0.001]"], names


def test_ids_name_the_settings_and_a_target_that_follows_torch_passes_them_all():
    target = load_target(str(FRAMEWORKS / "momentum_adapter.py"))
    cases = [case for case in planned_cases(target)[0] if case.component == "sgd"]
    results = run_cases(cases)
    assert not _failures(results), [r.detail for r in _failures(results)]
    assert "trajectory/sgd[momentum=0.9,nesterov=True]/param[0]" in {r.id for r in results}
    nesterov = next(r for r in results if "nesterov=True]" in r.id)
    assert "SGD(momentum=0.9, dampening=0.0, nesterov=True, weight_decay=0)" in (
        nesterov.detail), nesterov.detail


# --- defaults that differ from torch's -----------------------------------------------------------


class _Recording(_momentum().Adapter):
    """The correct momentum adapter, recording the keywords each SGD is built with."""

    built = []

    def sgd(self, params, lr, **settings):
        self.built.append(settings)
        return super().sgd(params, lr, **settings)


def test_declared_settings_are_passed_at_torchs_defaults_everywhere_training_included():
    _Recording.built.clear()
    target = Target.from_adapter(_Recording)
    cases = [case for case in planned_cases(target)[0] if case.name in ("sgd", "training")]
    assert not _failures(run_cases(cases))
    defaults = {"momentum": 0, "dampening": 0, "nesterov": False, "weight_decay": 0}
    assert _Recording.built and all(built == defaults for built in _Recording.built), (
        _Recording.built)


def test_an_undeclared_default_momentum_of_09_fails_the_default_case():
    fw = _momentum().fw

    class Undeclared(_momentum().Adapter):
        optimizer_settings = {}

        def sgd(self, params, lr):
            return fw.SGD(params, lr)  # its momentum: 0.9 unless told otherwise

    target = Target.from_adapter(Undeclared)
    cases = [case for case in planned_cases(target, dtypes=(torch.float64,))[0]
             if case.component == "sgd"]
    assert [case.name for case in cases] == ["sgd"], "nothing declared: the defaults only"
    failed = _failures(run_cases(cases))
    assert [r.id for r in failed] == ["trajectory/sgd/param[0]", "trajectory/sgd/param[1]"], (
        [r.id for r in failed])


# --- malformed declarations are clear errors at load -------------------------------------------


def _declaring(settings, **factories):
    return type("Declaring", (_momentum().Adapter,),
                {"optimizer_settings": settings, **factories})


@pytest.mark.parametrize(("settings", "message"), [
    ({"sgd": ("momentun",)}, r"optimizer_settings\['sgd'\] = \('momentun',\): 'momentun' is "
                             r"not a setting of torch.optim.SGD \(its settings: \['momentum'"),
    ({"sgd": ("lr",)}, r"'lr' is not a setting of torch.optim.SGD"),
    ({"adam": ("betas",)}, r"optimizer_settings\['adam'\].*\['betas'\] are passed by position"),
    ({"sgd": ("foreach",)}, r"'foreach' of torch.optim.SGD does not change the update rule"),
    ({"sgd": ("nesterov",)}, r"'nesterov' acts only with \['momentum'\] declared too"),
    ({"sgd": ("dampening",)}, r"'dampening' acts only with \['momentum'\] declared too"),
    ({"adagrad": ("eps",)}, r"optimizer_settings\['adagrad'\]: no such optimiser factory; the "
                            r"adapter's optimisers are \['sgd', 'adam', 'rmsprop'\]"),
    ({"linear": ("momentum",)}, r"optimizer_settings\['linear'\]: no such optimiser factory"),
    ({"sgd": "momentum"}, r"expected a tuple of torch.optim keyword names"),
    (("sgd",), r"expected a dict"),
])
def test_a_malformed_declaration_names_itself_and_what_was_expected(settings, message):
    with pytest.raises(TargetError, match=message):
        Target.from_adapter(_declaring(settings))


def test_settings_of_an_optimiser_the_adapter_lacks_are_refused():
    adapter = _declaring({"adam": ("eps",)}, adam=None)
    with pytest.raises(TargetError, match=r"optimizer_settings\['adam'\]: no such optimiser "
                                          r"factory; the adapter's optimisers are \['sgd', "
                                          r"'rmsprop'\]"):
        Target.from_adapter(adapter)


def test_a_factory_that_cannot_receive_a_declared_keyword_is_refused():
    adapter = _declaring({"sgd": ("momentum",)}, sgd=lambda self, params, lr: None)
    with pytest.raises(TargetError, match=r"the factory sgd\(\) has no parameter 'momentum'"):
        Target.from_adapter(adapter)


def test_a_factory_taking_any_keyword_may_declare_any_setting():
    adapter = _declaring({"sgd": ("momentum",)}, sgd=lambda self, params, lr, **settings: None)
    assert Target.from_adapter(adapter).optimizer_settings["sgd"] == ("momentum",)


# --- detection power: a relative error planted in one update -----------------------------------


class _TorchBacked:
    """``torch_class`` stepping the pairs' own values (float64 or float32), with the update of
    step ``planted`` scaled by 1 + r."""

    def __init__(self, pairs, torch_class, settings, lr, planted=None, r=0.0):
        self.pairs = pairs
        self.parameters = [torch.nn.Parameter(value) for value, _ in pairs]
        self.optimizer = torch_class(self.parameters, lr=lr, **settings)
        self.planted, self.r, self.steps = planted, r, 0

    def step(self):
        self.steps += 1
        before = [value.clone() for value, _ in self.pairs]
        for parameter, (_, gradient) in zip(self.parameters, self.pairs, strict=True):
            parameter.grad = gradient.clone()
        self.optimizer.step()
        if self.steps == self.planted:
            for (value, _), previous in zip(self.pairs, before, strict=True):
                value += self.r * (value - previous)


def test_a_failure_is_diagnosed_from_the_first_step_it_shows_in():
    """An update off by half at step 3 fails every later step too; the diagnosis is the
    first failing step's, and says which step that is."""
    [result] = check_optimizer(
        lambda pairs: _TorchBacked(pairs, torch.optim.SGD, {}, 0.1, planted=3, r=0.5),
        torch.optim.SGD, lr=0.1, shapes=((4,),), dtype=torch.float64)
    assert not result.passed and result.diagnosis.startswith("from step 3: "), result.diagnosis


@pytest.mark.parametrize(("torch_class", "settings", "charged"), [
    (torch.optim.SGD, {"weight_decay": 0.1}, "F=1.01005 (weight-decay feedback)"),
    (torch.optim.AdamW, {"weight_decay": 0.1}, "F=1 (weight-decay feedback)"),
    (torch.optim.Adam, {"weight_decay": 0.1, "decoupled_weight_decay": True},
     "F=1 (weight-decay feedback)"),
], ids=["sgd-l2", "adamw", "adam-decoupled"])
def test_only_an_l2_weight_decay_feeds_errors_back(torch_class, settings, charged):
    """An L2 decay puts θ's error into the next gradient (F = exp(η·λ·M) = e^0.01 per step at
    η = 0.1, λ = 0.1); a decoupled one only shrinks θ, and is charged F = 1."""
    [result] = check_optimizer(lambda pairs: _TorchBacked(pairs, torch_class, settings, 0.1),
                               torch_class, lr=0.1, options=settings, shapes=((4,),))
    assert result.passed and charged in result.detail, result.detail


class _RoundingUp:
    """A correct float32 ``torch_class`` whose every step's result rounds toward +∞ (IEEE 754's
    directed mode, which rounds by up to 2u): the step is taken on float64 copies, its result
    rounded up into the float32 values. Its rounding errors at θ's scale all have one sign,
    so they add up over the steps, the worst case the tolerance's θ term is derived for."""

    def __init__(self, pairs, torch_class, settings, lr):
        self.pairs = pairs
        self.parameters = [torch.nn.Parameter(value.to(torch.float64)) for value, _ in pairs]
        self.optimizer = torch_class(self.parameters, lr=lr, **settings)

    def step(self):
        with torch.no_grad():
            for parameter, (value, gradient) in zip(self.parameters, self.pairs, strict=True):
                parameter.copy_(value)
                parameter.grad = gradient.to(torch.float64)
        self.optimizer.step()
        with torch.no_grad():
            for parameter, (value, _) in zip(self.parameters, self.pairs, strict=True):
                nearest = parameter.to(torch.float32)
                value.copy_(torch.where(nearest.to(torch.float64) < parameter,
                                        torch.nextafter(nearest, torch.tensor(math.inf)),
                                        nearest))


ROUNDING_UP_WORST = 0.18
"""The rounding-up optimisers' worst error/tolerance over every case (Adam[betas=(0.8,0.99)]);
it was 0.03 when the update's n roundings were also charged at θ's scale."""


def test_a_float32_optimiser_rounding_every_step_upward_passes_within_ten_times():
    """Pinned from both sides: every case passes (the θ term covers a directed rounding), and
    the worst comes within 10 times of its tolerance, so a tenth of it would be a false
    alarm."""
    worst = 0.0
    for torch_class, keywords, lr in OPTIMISERS:
        for settings in setting_cases(torch_class, keywords):
            build = partial(_RoundingUp, torch_class=torch_class, settings=settings, lr=lr)
            results = check_optimizer(build, torch_class, lr=lr, options=settings,
                                      dtype=torch.float32)
            assert not _failures(results), [r.detail for r in _failures(results)]
            worst = max(worst, *(result.error_ratio for result in results))
    assert 0.1 < worst <= 1 and ROUNDING_UP_WORST / 2 <= worst <= 2 * ROUNDING_UP_WORST, worst


def _settings():
    for torch_class, keywords, lr in OPTIMISERS:
        for settings in setting_cases(torch_class, keywords):
            yield pytest.param(torch_class, settings, lr,
                               id=settings_label(torch_class.__name__, torch_class, settings))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
@pytest.mark.parametrize(("torch_class", "settings", "lr"), list(_settings()))
def test_a_relative_error_of_the_stated_size_in_one_update_is_flagged(torch_class, settings,
                                                                       lr, dtype):
    def run(planted=None, r=0.0):
        return check_optimizer(
            lambda pairs: _TorchBacked(pairs, torch_class, settings, lr, planted, r),
            torch_class, lr=lr, options=settings, dtype=dtype)

    correct = run()
    assert not _failures(correct), [r.detail for r in _failures(correct)]
    for step in (1, 20):
        r = DETECTED[(dtype, step)]
        assert _failures(run(step, r)), (
            f"{settings}: a relative error {r} in update {step} ({dtype}) passed")
