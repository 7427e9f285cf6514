"""What every claim shares: its record (``record``), borderline texts, number formats and
figures."""

import numpy as np
from matplotlib.figure import Figure

from verification.many_seeds.claims.config import (
    ACTIVATION,
    BATCH_SIZE,
    CENTER,
    CLAIMS,
    HIDDEN_WIDTH,
    LR,
    REPORT_HIDDEN_LAYERS,
)
from verification.many_seeds.claims.rules import interval_borderline
from verification.many_seeds.verdicts import BORDERLINE_SE, label

__all__ = [
    "configuration", "record", "paired_borderline", "first", "borderline_texts", "pp",
    "interval_text", "new_figure", "boxes", "headline_config",
]


def configuration(config, device, **changes):
    """The run's settings (``TRAIN_DEFAULTS`` and ``config``), with a claim's ``changes``."""
    return {"activation": ACTIVATION, "lr": LR, "batch_size": BATCH_SIZE,
            "epochs": config.epochs, "center": [float(c) for c in CENTER],
            "samples": config.samples, "hidden_layers": REPORT_HIDDEN_LAYERS,
            "hidden_width": HIDDEN_WIDTH, "init": "xavier", "optimizer": "SGD",
            "loss": "MSELoss(reduction='sum')", "dtype": config.dtype, "device": str(device),
            **changes}


def record(claim_id, *, method, threshold, values, measured, verdict, seeds, configuration,
            borderline=None, preliminary=False):
    """One ledger entry; ``sentence`` joins label, measurement and rule in one line.

    ``verdict`` is this run's outcome of the rule; ``label`` is what is printed, the same on
    every machine: "borderline" when ``borderline`` (a ``near_threshold`` detail with a
    ``what`` text) is given, prefixed "preliminary: " for a reduced run."""
    number, section, quote = CLAIMS[claim_id]
    shown = label(verdict, borderline=borderline is not None, preliminary=preliminary)
    note = ""
    if borderline is not None:
        note = (f" Borderline: {verdict} on this run, but {borderline['what']} "
                f"{borderline['closeness']}, so another machine may decide otherwise.")
        borderline = {key: value for key, value in borderline.items()
                      if key not in ("what", "closeness")}
    if preliminary:
        note += " Preliminary: a reduced run (fewer seeds and epochs); the full run decides."
    return {"id": claim_id, "number": number, "section": section, "quote": quote,
            "method": method, "configuration": configuration, "seeds": [int(s) for s in seeds],
            "threshold": threshold, "values": values, "measured": measured,
            "sentence": f"{shown.capitalize()}: {measured} (rule: {threshold}).{note}",
            "verdict": verdict, "label": shown, "borderline": borderline,
            "preliminary": preliminary}


def paired_borderline(difference, name, **bounds):
    """``interval_borderline`` of a ``paired_difference``'s interval, with the texts of
    ``borderline_texts``."""
    near = interval_borderline(difference["ci_low"], difference["ci_high"], **bounds)
    if near is None:
        return None
    return borderline_texts(near, f"the {name} interval's {near['end']}")


def first(*borderlines):
    return next((item for item in borderlines if item is not None), None)


def _percentage_points(fraction):
    return f"{100 * fraction:.3f} pp"


def borderline_texts(near, what, show=_percentage_points):
    """A ``near_threshold`` detail (or ``None``) with the texts ``record`` prints: ``what``
    is near, and how near, its numbers written by ``show``."""
    if near is None:
        return None
    return {**near, "what": what,
            "closeness": f"lies {show(near['distance'])} from its threshold, within "
                         f"{BORDERLINE_SE:g} standard errors (±{show(near['zone'])})"}


def pp(fraction):
    """A fraction as signed percentage points, e.g. ``+0.125 pp``."""
    return f"{100 * fraction + 0.0:+.3f} pp"  # + 0.0 turns -0.0 into 0.0


def interval_text(difference):
    return (f"mean {pp(difference['mean'])} (95% CI {pp(difference['ci_low'])} to "
            f"{pp(difference['ci_high'])})")


def new_figure(title, xlabel, ylabel):
    figure = Figure(figsize=(4, 3))
    axes = figure.subplots()
    axes.set_title(title, fontsize=8)
    axes.set_xlabel(xlabel, fontsize=8)
    axes.set_ylabel(ylabel, fontsize=8)
    axes.tick_params(labelsize=7)
    axes.grid(alpha=0.3)
    return figure, axes


def boxes(title, ylabel, samples):
    """Box plots of named per-seed samples, in percent."""
    figure, axes = new_figure(title, "", ylabel)
    axes.boxplot([100 * np.asarray(sample) for sample in samples.values()])
    axes.set_xticks(range(1, len(samples) + 1), list(samples), fontsize=7)
    figure.tight_layout()
    return figure


def headline_config(reproduction_results):
    """The reproduction's one headline configuration (claims 1 and 8)."""
    configs = [config for config in reproduction_results["configs"] if config.get("headline")]
    if len(configs) != 1:
        raise ValueError(f"reproduction_claim: expected one headline configuration, got "
                         f"{len(configs)}")
    return configs[0]
