"""The report's figures: the training loss per epoch (Figure 2) and the classified test set
(Figure 3). Each function returns a matplotlib ``Figure``; ``save_figure`` writes it.

Figures are built as ``matplotlib.figure.Figure`` objects, not through ``pyplot``: no global
figure registry (threads may draw side by side, nothing needs closing) and no GUI backend."""

import io
import math

from matplotlib.figure import Figure

from refnet._io import write_atomically

__all__ = ["loss_curve_figure", "classification_figure", "save_figure"]


def loss_curve_figure(epoch_losses):
    """Figure 2: the summed training loss of each epoch.

    Args:
        epoch_losses: one float per epoch, as returned by ``train``.
    """
    figure = Figure(figsize=(5, 3.5))
    axes = figure.subplots()
    axes.plot(range(1, len(epoch_losses) + 1), epoch_losses, marker=".")
    axes.set_xlabel("epoch")
    axes.set_ylabel("training loss (sum over batches)")
    axes.set_title("Training loss per epoch")
    axes.grid(alpha=0.3)
    figure.tight_layout()
    return figure


def classification_figure(points, labels, predicted, *, center, radius):
    """Figure 3: test points coloured by class, misclassified ones in red, the true circle.

    Args:
        points: ``[N, 2]`` tensor of test points.
        labels: ``[N]`` true classes.
        predicted: ``[N]`` predicted classes.
        center: the disk's centre.
        radius: the disk's radius.
    """
    points, labels, predicted = points.cpu(), labels.cpu(), predicted.cpu()
    wrong = predicted != labels
    figure = Figure(figsize=(4.5, 4.5))
    axes = figure.subplots()
    for label, colour in ((0, "tab:purple"), (1, "gold")):
        chosen = (labels == label) & ~wrong
        axes.scatter(points[chosen, 0], points[chosen, 1], s=6, color=colour,
                     label=f"class {label}, correct")
    axes.scatter(points[wrong, 0], points[wrong, 1], s=14, color="red",
                 label=f"misclassified ({int(wrong.sum())})")
    angles = [2 * math.pi * step / 200 for step in range(201)]
    axes.plot([center[0] + radius * math.cos(a) for a in angles],
              [center[1] + radius * math.sin(a) for a in angles], color="black", linewidth=0.8)
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1)
    axes.set_aspect("equal")
    axes.set_title("Test set after classification")
    axes.legend(loc="upper right", fontsize=7)
    figure.tight_layout()
    return figure


def save_figure(figure, path, fmt=None):
    """Write ``figure`` atomically to ``path`` (format from its suffix unless ``fmt``)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format=fmt or str(path).rsplit(".", 1)[-1])
    write_atomically(path, buffer.getvalue())
