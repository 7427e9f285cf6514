"""A failing component's figure drawn for its report: the submission's curves beside torch's,
its failing points marked, as an inline ``<svg>`` (``html.figure_to_svg``).

The data is a record's ``figure`` (``verification/checks/figures.py``, validated by the
parent as it arrived); matplotlib is imported only when a figure is drawn, so a report without
one (every passing target) costs no import.
"""

import textwrap

from verification.report.html import figure_to_svg

__all__ = ["figure_svg"]

_YOURS, _TORCH, _FAILING = "tab:blue", "black", "red"
_LISTED = 6
"""Failing points outside a panel's window named under it; the rest counted."""


def figure_svg(figure):
    """The figure (``checks/figures.py``'s data) as an inline ``<svg>`` element: one panel per
    axes side by side, torch's curve dashed black, the submission's solid, its failing points
    as red dots (a cross on torch's curve where the submission's value is not finite)."""
    from matplotlib.figure import Figure  # 0.4 s, only where a failing component has a figure

    panels = figure["panels"]
    drawing = Figure(figsize=(4.2 * len(panels), 3.2))
    for axes, panel in zip(drawing.subplots(1, len(panels), squeeze=False)[0], panels,
                           strict=True):
        _draw_panel(axes, panel)
    drawing.tight_layout()
    return figure_to_svg(drawing)


def _draw_panel(axes, panel):
    x, yours, torch_curve = panel["x"], panel["submission"], panel["torch"]
    low, high = panel["x_window"] or (min(x), max(x))
    shown = [index for index, value in enumerate(x) if low <= value <= high]
    failing = [index for index in panel["failing"] if low <= x[index] <= high]
    beyond = [x[index] for index in panel["failing"] if not low <= x[index] <= high]
    marker = "." if len(shown) <= 40 else None
    axes.plot([x[i] for i in shown], _nan([torch_curve[i] for i in shown]), color=_TORCH,
              linestyle="--", linewidth=1.2, label="torch", zorder=3)
    axes.plot([x[i] for i in shown], _nan([yours[i] for i in shown]), color=_YOURS,
              linewidth=1.4, marker=marker, label="yours", zorder=2)
    finite = [index for index in failing if yours[index] is not None]
    missing = [index for index in failing
               if yours[index] is None and torch_curve[index] is not None]
    if finite:
        axes.scatter([x[i] for i in finite], [yours[i] for i in finite], s=10,
                     color=_FAILING, zorder=4, label=f"failing ({len(finite)})")
    if missing:
        axes.scatter([x[i] for i in missing], [torch_curve[i] for i in missing], s=40,
                     marker="x", color=_FAILING, zorder=4,
                     label=f"not finite in yours ({len(missing)})")
    if beyond:
        listed = ", ".join(f"{value:g}" for value in beyond[:_LISTED])
        more = f" and {len(beyond) - _LISTED} more" if len(beyond) > _LISTED else ""
        note = textwrap.fill(f"also failing beyond the axis at x = {listed}{more}", 48)
        axes.set_xlabel(f"{panel['x_label']}\n{note}")
    axes.set_title(panel["title"], fontsize=10)
    if not beyond:
        axes.set_xlabel(panel["x_label"])
    axes.set_ylabel(panel["y_label"])
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7)


def _nan(values):
    """``None`` (not finite) as NaN: a gap in the line."""
    return [float("nan") if value is None else value for value in values]
