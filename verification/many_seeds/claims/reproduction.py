"""Claim 1, the 2.5 % / 1.9 % errors: the verdict of the many-seed reproduction
(``verification.many_seeds.reproduction``), which the ledger does not rerun.

"consistent" becomes "supported", "inconsistent" "not supported"; without the reproduction's
results the claim is "inconclusive" (``missing_reproduction_claim``).
"""

from verification.many_seeds.claims.records import (
    borderline_texts,
    configuration,
    headline_config,
    new_figure,
    record,
)

__all__ = ["reproduction_claim", "missing_reproduction_claim", "reproduction_figure"]


def reproduction_claim(reproduction_results):
    """Claim 1 from the contract's ``reproduction`` object: the headline's verdict.

    Args:
        reproduction_results: ``{"seeds", "configs": [{"name", "headline", "train_error",
            "test_error", "reported", "verdict", …}], …}`` with exactly one headline.

    Returns:
        The claim record; "consistent" becomes "supported", "inconsistent" "not supported".
        ``seeds`` lists the test seeds when ``seed_ranges["test"]`` gives them, else it is
        empty and ``values["seed_count"]`` holds their number.
    """
    headline = headline_config(reproduction_results)
    verdict = {"consistent": "supported", "inconsistent": "not supported"}[headline["verdict"]]
    near = headline.get("borderline")
    borderline = None if near is None else borderline_texts(
        near, f"the Holm-adjusted p-value of the {near['error']} error", "{:.3f}".format)
    train, test = headline["train_error"], headline["test_error"]
    reported = headline.get("reported", {"train": 0.025, "test": 0.019})
    seed_range = reproduction_results.get("seed_ranges", {}).get("test")
    values = {"seed_count": int(reproduction_results["seeds"]),
              "reported_train": reported["train"], "reported_test": reported["test"],
              **{f"{name}_{key}": float(summary[key]) for name, summary in
                 (("train", train), ("test", test)) for key in ("median", "p2_5", "p97_5")}}
    measured = (f"headline {headline['name']} over {values['seed_count']} seeds: train error "
                f"median {train['median']:.2%} (95% of seeds {train['p2_5']:.2%}–"
                f"{train['p97_5']:.2%}), test {test['median']:.2%} ({test['p2_5']:.2%}–"
                f"{test['p97_5']:.2%}); the reproduction judged the report's pair "
                f"{headline['verdict']}")
    return record(
        "headline_errors", verdict=verdict, values=values, measured=measured,
        method="verification.many_seeds.reproduction: the headline configuration trained on "
               "many seeds; its verdict asks whether the report's single run is a plausible draw",
        threshold=reproduction_results.get("verdict_rule", "the reproduction's verdict rule"),
        seeds=range(*seed_range) if seed_range else [],
        borderline=borderline, preliminary=bool(headline.get("preliminary", False)),
        configuration={key: headline[key] for key in
                       ("name", "center", "activation", "lr", "batch_size", "epochs")
                       if key in headline})


def missing_reproduction_claim(config, device):
    return record(
        "headline_errors", verdict="inconclusive", values={}, seeds=[],
        measured="not measured here: run_claims was given no reproduction results",
        method="verification.many_seeds.reproduction decides this claim; pass its results to "
               "run_claims(reproduction=...) or call reproduction_claim",
        threshold="the reproduction's verdict rule", configuration=configuration(config, device))


def reproduction_figure(reproduction_results):
    headline = headline_config(reproduction_results)
    figure, axes = new_figure(f"Claim 1: {headline['name']}", "", "error (%)")
    for position, key in enumerate(("train", "test")):
        summary = headline[f"{key}_error"]
        axes.errorbar([position], [100 * summary["median"]], fmt="o", capsize=4,
                      yerr=[[100 * (summary["median"] - summary["p2_5"])],
                            [100 * (summary["p97_5"] - summary["median"])]],
                      label="median, 2.5–97.5 % of seeds" if position == 0 else None)
        axes.plot([position], [100 * headline["reported"][key]], "rx",
                  label="report" if position == 0 else None)
    axes.set_xticks([0, 1], ["train", "test"])
    axes.legend(fontsize=7)
    figure.tight_layout()
    return figure
