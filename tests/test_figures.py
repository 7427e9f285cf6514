"""A failing component's picture (verification/checks/figures.py, verification/report/figures.py):
planted bugs through the fixture frameworks give a figure whose curves differ where it marks
them, a passing component gives none, the parent refuses a malformed one, and a conform run
draws it as inline SVG."""

import json
import math

import pytest
import torch

from verification import load_target
from verification.checks.figures import MAX_POINTS, figure_problem, panel, with_figure
from verification.checks.result import CheckResult
from verification.confined.isolation import _valid_check
from verification.conform import ConformOptions, run_conform
from verification.report.figures import figure_svg
from verification.suite.conformance import QUICK_STEPS, run_cases, target_cases

HANDOUT = "tests/frameworks/handout_adapter.py"


def _figured(spec, component):
    """The results of ``component``'s float64 cases of ``spec`` that carry a figure."""
    cases = [case for case in target_cases(load_target(spec), quick=True,
                                           dtypes=(torch.float64,))
             if case.component == component]
    results = run_cases(cases)
    return results, [result for result in results if result.figure is not None]


def _differs_where_marked(data):
    """Whether every failing point of the panel ``data`` is one where the curves differ."""
    return all(data["submission"][index] != data["torch"][index] for index in data["failing"])


def test_a_wrong_tanh_derivative_is_drawn_beside_torchs_with_the_failing_points_marked():
    results, figured = _figured(f"{HANDOUT}:WrongTanhDerivative", "tanh")
    first_failing = next(result for result in results if not result.passed)
    assert figured and figured[0] is first_failing, [r.id for r in figured]
    figure = first_failing.figure
    assert figure_problem(figure) is None and figure["kind"] == "activation", figure["caption"]
    forward, derivative = figure["panels"]
    assert forward["failing"] == [], "the forward of WrongTanhDerivative is right"
    assert len(derivative["failing"]) > len(derivative["x"]) // 2, derivative["failing"]
    assert _differs_where_marked(derivative), "a marked point must be one where they differ"
    x = torch.tensor(derivative["x"], dtype=torch.float64)
    expected = 1 - torch.tanh(x) ** 2
    assert torch.allclose(torch.tensor(derivative["torch"], dtype=torch.float64), expected), (
        "torch's is 1 − y²")
    assert derivative["x_window"] == [-6.0, 6.0] and max(derivative["x"]) == 800.0
    assert len(derivative["x"]) <= MAX_POINTS and "tanh (float64)" in figure["caption"]


def test_a_passing_component_has_no_figure_and_costs_no_request():
    _, figured = _figured(HANDOUT, "tanh")
    assert figured == [], [result.id for result in figured]
    calls = []
    assert with_figure([CheckResult("a", "m", "autograd", True, 0, 0, 1, 0)],
                       lambda: calls.append(1)) and calls == [], "drawn for passing checks"


def test_a_wrong_loss_gradient_is_drawn_along_a_slice():
    _, figured = _figured("tests/frameworks/driven_adapter.py:BCEMissingOneOverN", "bce_loss")
    figure = figured[0].figure
    assert figure["kind"] == "loss" and figure_problem(figure) is None, figure["caption"]
    value, slope = figure["panels"]
    assert value["failing"] == [], "BCEMissingOneOverN's forward is right"
    assert slope["failing"] and _differs_where_marked(slope), slope["failing"]
    ratios = [got / want for got, want in zip(slope["submission"], slope["torch"], strict=True)
              if abs(want) > 1e-3]
    assert all(math.isclose(ratio, 18.0, rel_tol=1e-6) for ratio in ratios), (
        "the gradient of a 6×3 BCE without its 1/N is N = 18 times torch's", ratios[:3])


def test_failing_training_shows_the_loss_per_step_beside_the_twins():
    _, figured = _figured(f"{HANDOUT}:WrongTanhDerivative", "training")
    figure = figured[0].figure
    assert figure["kind"] == "training" and figure_problem(figure) is None, figure["caption"]
    free, same_point = figure["panels"]
    assert free["x"] == list(range(1, QUICK_STEPS + 1)) == same_point["x"], free["x"]
    assert free["submission"] == same_point["submission"], "both panels show your losses"
    assert free["submission"][0] == pytest.approx(free["torch"][0], rel=1e-9), (
        "from the same weights, the first step's losses agree")


def _record(figure):
    result = CheckResult("autograd/x", "m", "autograd", False, 1.0, 1.0, 1e-9, 2.0,
                         component="tanh", case="tanh", dtype="float64", figure=figure)
    return json.loads(json.dumps(result.as_dict()))


GOOD = {"kind": "activation", "caption": "tanh",
        "panels": [panel("derivative", [0.0, 1.0], [1.0, None], [1.0, 0.42], [1])]}


@pytest.mark.parametrize("change, problem", [
    (lambda f: {**f, "kind": "svg"}, "figure kind 'svg'"),
    (lambda f: {**f, "extra": 1}, "dict of kind"),
    (lambda f: {**f, "panels": []}, "1 to 2 panels"),
    (lambda f: {**f, "caption": "x" * 5000}, "caption"),
    (lambda f: {**f, "panels": [{**f["panels"][0], "x": [0.0, math.nan]}]}, "finite"),
    (lambda f: {**f, "panels": [{**f["panels"][0], "x": [0.0, True]}]}, "finite"),
    (lambda f: {**f, "panels": [{**f["panels"][0], "x": [0.0] * (MAX_POINTS + 1),
                                 "submission": [0.0] * (MAX_POINTS + 1),
                                 "torch": [0.0] * (MAX_POINTS + 1)}]}, f"1 to {MAX_POINTS}"),
    (lambda f: {**f, "panels": [{**f["panels"][0], "torch": [1.0]}]}, "as long as x"),
    (lambda f: {**f, "panels": [{**f["panels"][0], "submission": ["1", 0.0]}]}, "null"),
    (lambda f: {**f, "panels": [{**f["panels"][0], "failing": [2]}]}, "indices into x"),
    (lambda f: {**f, "panels": [{**f["panels"][0], "x_window": [1.0, -1.0]}]}, "x_window"),
    (lambda f: {**f, "panels": [{**f["panels"][0], "script": "<svg>"}]}, "exactly the keys"),
    (lambda f: None, "a figure is a dict"),
])
def test_the_parent_refuses_a_malformed_figure(change, problem):
    assert _valid_check(_record(GOOD), "spec") == _record(GOOD), "a good figure is accepted"
    record = {**_record(GOOD), "figure": change(GOOD)}
    refused = _valid_check(json.loads(json.dumps(record)), "spec")
    assert refused["id"] == "target/malformed-record", refused
    assert "malformed figure" in refused["detail"] and problem in refused["detail"], (
        refused["detail"])


def test_a_figure_is_an_inline_svg_naming_the_failing_points_beyond_its_window():
    data = panel("forward", [-800.0, 0.0, 1.0, 800.0], [None, 0.0, 0.5, None],
                 [-1.0, 0.0, 0.76, 1.0], [0, 2, 3], y_label="y", x_window=(-6, 6))
    svg = figure_svg({"kind": "activation", "caption": "c", "panels": [data]})
    assert svg.startswith("<svg") and "also failing beyond the axis" in svg, svg[:200]


def test_a_conform_run_draws_the_failing_tanh_in_its_report(tmp_path):
    status = run_conform(ConformOptions(targets=(f"{HANDOUT}:WrongTanhDerivative",),
                                        out=tmp_path, quick=True, dtype="float64",
                                        show_progress=False))
    assert status == 1
    html = (tmp_path / "index.html").read_text()
    assert "<figcaption>tanh (float64): your forward and derivative" in html, html[:300]
    start = html.index("<figure")
    assert "<svg" in html[start:html.index("</figure>", start)], "the figure is inline SVG"
    checks = json.loads((tmp_path / "results.json").read_text())["checks"]
    figured = [check for check in checks if "figure" in check]
    assert {check["component"] for check in figured} == {"tanh", "training"}, figured
    assert all(figure_problem(check["figure"]) is None for check in figured)
