"""The settings of ``torch.optim``'s optimisers, as adapters declare them and the optimiser
check runs them: the values a setting is tried at, what it needs to act, which declarations are
wrong, and the cases and labels built from them.

Shared by the adapter contract (``verification/targets/adapter.py``: an adapter's
``optimizer_settings`` are refused here, before any case) and the checks
(``verification/checks/optimizer.py``, ``verification/suite/conformance.py``), below both.
"""

import inspect

__all__ = ["SETTING_VALUES", "REQUIRES", "torch_defaults", "settings_problems",
           "setting_cases", "settings_label"]

SETTING_VALUES = {
    "momentum": (0.9,), "dampening": (0.1,), "nesterov": (True,), "weight_decay": (0.01, 0.1),
    "betas": ((0.8, 0.99),), "eps": (1e-3, 1e-2), "lr_decay": (0.01,),
    "initial_accumulator_value": (0.1,), "alpha": (0.9,), "centered": (True,),
    "amsgrad": (True,), "maximize": (True,), "rho": (0.8,), "momentum_decay": (0.01,),
    "decoupled_weight_decay": (True,),
}
"""Candidate non-default values per ``torch.optim`` keyword; a case uses the first that
differs from the class's default (AdamW's weight decay is 0.01 by default: it gets 0.1). ε is
1e-3, not 1e-6: against √v̂ ≈ 1 an ε of 1e-6 moves a float32 update by less than its
rounding, so an ignored or misplaced ε would pass."""
REQUIRES = {"dampening": {"momentum": 0.9}, "nesterov": {"momentum": 0.9, "dampening": 0.0},
            "decoupled_weight_decay": {"weight_decay": 0.01}}
"""Settings a setting needs to act at all (dampening without momentum changes nothing) or to
be valid (torch refuses Nesterov momentum with dampening); applied after the others."""
_NOT_SETTINGS = ("params", "lr")


def torch_defaults(torch_class, keywords):
    """``{keyword: torch_class's default}`` for each of ``keywords``."""
    parameters = inspect.signature(torch_class).parameters
    return {keyword: parameters[keyword].default for keyword in keywords}


def _non_default(torch_class, keyword):
    default = torch_defaults(torch_class, (keyword,))[keyword]
    return next(value for value in SETTING_VALUES[keyword] if value != default)


def settings_problems(torch_class, keywords):
    """What is wrong with declaring ``keywords`` as the settings of an implementation of
    ``torch_class``, one sentence each (empty when nothing): a keyword the class does not
    take, one the harness has no value for (``foreach``, ``fused``: not part of the update
    rule) or one that needs another that is not declared (Nesterov needs momentum)."""
    parameters = inspect.signature(torch_class).parameters
    name = torch_class.__name__
    problems = []
    for keyword in keywords:
        if keyword in _NOT_SETTINGS or keyword not in parameters:
            takes = [k for k in parameters if k in SETTING_VALUES]
            problems.append(f"{keyword!r} is not a setting of torch.optim.{name} (its "
                            f"settings: {takes})")
        elif keyword not in SETTING_VALUES:
            problems.append(f"{keyword!r} of torch.optim.{name} does not change the update "
                            f"rule; the settings checked are {sorted(SETTING_VALUES)}")
        else:
            defaults = torch_defaults(torch_class, [k for k in REQUIRES.get(keyword, {})
                                                    if k in parameters])
            missing = [k for k, value in REQUIRES.get(keyword, {}).items()
                       if k in defaults and value != defaults[k] and k not in keywords]
            if missing:
                problems.append(f"{keyword!r} acts only with {missing} declared too")
    return problems


def setting_cases(torch_class, keywords):
    """The settings an optimiser with ``keywords`` is checked at, each a full
    ``{keyword: value}`` (every keyword given): torch's defaults first, then each keyword at
    its non-default value with what it ``REQUIRES``, then every keyword at once (when that
    differs from the cases before).

    Args:
        torch_class: the ``torch.optim`` class, e.g. ``torch.optim.SGD``.
        keywords: its keywords the implementation takes (``settings_problems`` is empty).
    """
    defaults = torch_defaults(torch_class, keywords)
    cases = [dict(defaults)]
    for keyword in keywords:
        cases.append(_with_requirements(torch_class, defaults, (keyword,)))
    cases.append(_with_requirements(torch_class, defaults, keywords))
    return [case for index, case in enumerate(cases) if case not in cases[:index]]


def _with_requirements(torch_class, defaults, changed):
    settings = dict(defaults) | {k: _non_default(torch_class, k) for k in changed}
    for keyword in changed:
        settings |= {k: v for k, v in REQUIRES.get(keyword, {}).items() if k in settings}
    return settings


def settings_label(name, torch_class, settings):
    """``name`` followed by the settings away from torch's defaults, e.g.
    ``sgd[momentum=0.9,nesterov=True]``; ``name`` alone at the defaults."""
    defaults = torch_defaults(torch_class, settings)
    changed = [f"{k}={v}".replace(" ", "") for k, v in settings.items() if v != defaults[k]]
    return f"{name}[{','.join(changed)}]" if changed else name
