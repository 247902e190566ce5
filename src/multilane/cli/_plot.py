"""``multilane showdown --plot FILE``: the figures as a grouped bar chart (matplotlib)."""

from __future__ import annotations

from typing import Any

from ._experiments import CONTENDERS


def plot(figures: dict[str, Any], path: str) -> None:
    """Writes a chart of each contender's speedup over sequential code, grouped by
    experiment, to ``path`` (its format from its suffix: .png, .svg, .pdf...)."""
    import matplotlib

    matplotlib.use("Agg")  # a file, never a window
    import matplotlib.pyplot as plt

    experiments = list(figures["experiments"].values())
    width = 0.8 / len(CONTENDERS)
    fig, ax = plt.subplots(figsize=(2.4 * len(experiments) + 2, 4.8))
    try:
        for k, name in enumerate(CONTENDERS):
            xs, ys, labels = [], [], []
            for i, experiment in enumerate(experiments):
                row = experiment["rows"][name]
                if "speedup" in row:
                    xs.append(i + (k - (len(CONTENDERS) - 1) / 2) * width)
                    ys.append(row["speedup"])
                    labels.append(f"{'~' if row['estimated'] else ''}{row['speedup']:.1f}x")
            bars = ax.bar(xs, ys, width, label=name)
            ax.bar_label(bars, labels, fontsize=7, padding=2)
        ax.set_yscale("log")
        ax.axhline(1.0, color="grey", linewidth=0.8)
        ax.set_xticks(range(len(experiments)),
                      [e["title"].replace(" ", "\n", 1) for e in experiments])
        ax.set_ylabel("speedup over sequential (log scale; higher is faster)")
        m = figures["machine"]
        ax.set_title(f"multilane showdown: {m['cpus']} CPUs, Python {m['python']}")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(path, dpi=120)
    finally:
        plt.close(fig)
