"""A transfer run's own figure, ``curves.png``: both phases' accuracy and loss, the boundary marked.

The report does not draw it again: its Question 3 section shows each run's file.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from components.core import storage


def plot_transfer_curves(history: Mapping[str, Mapping[str, list[float]]], path: Path, title: str = "") -> None:
    """Accuracy and loss per epoch over both phases, training beside validation, the boundary marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    frozen = history.get("frozen", {})
    fine = history.get("fine_tune", {})
    boundary = len(frozen.get("loss", []))
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, metric in zip(axes, ("accuracy", "loss")):
        for name, style in ((metric, "-o"), (f"val_{metric}", "--s")):
            values = list(frozen.get(name, [])) + list(fine.get(name, []))
            if values:
                label = ("training" if name == metric else "validation") + f" {metric}"
                ax.plot(range(1, len(values) + 1), values, style, markersize=3, label=label)
        if fine.get("loss"):
            ax.axvline(boundary + 0.5, color="grey", linestyle=":", linewidth=1.5)
            ax.text(boundary + 0.5, 0.02, " fine-tuning starts", transform=ax.get_xaxis_transform(),
                    color="grey", fontsize=8, va="bottom")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # whole epochs: no 1.5 on the axis
        ax.set_title(metric)
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    with storage.atomic_local_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
