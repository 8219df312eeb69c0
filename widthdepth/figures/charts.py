"""The report's charts: accuracy along the sweeps, against cost, per epoch, and a confusion matrix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from widthdepth.figures.grids import pyplot
from widthdepth.study import COSTS, Run, ScalingFit, Sweep, seed_groups

# Each family's line style (per-epoch chart) and marker (cost charts); a family not listed gets DEFAULT_STYLE.
STYLES = {"alexnet": ("-", "o"), "inception": ("--", "s"), "airbench": ("-.", "D"), "mlp": (":", "^")}
DEFAULT_STYLE = ("-.", "v")


def style(family: str) -> tuple[str, str]:
    return STYLES.get(family, DEFAULT_STYLE)


def plot_sweeps(sweeps: list[Sweep], path: Path) -> None:
    plt = pyplot()

    names = list(dict.fromkeys(s.feature.name for s in sweeps))
    fig, axes = plt.subplots(1, max(len(names), 1), figsize=(5.5 * max(len(names), 1), 4.5), squeeze=False)
    for ax, name in zip(axes[0], names):
        for sweep in (s for s in sweeps if s.feature.name == name):
            x = [p.value for p in sweep.points]
            # a point whose seeds all failed is NaN: a gap in the line, not a bridge
            y = [p.estimate.value if p.good else np.nan for p in sweep.points]
            bars = [(p.estimate.half_width() or 0.0) if p.good else 0.0 for p in sweep.points]  # 0: no interval
            line = ax.errorbar(x, y, yerr=bars, marker="o", capsize=4, label=sweep.title)
            for p in sweep.points:  # say how many seeds count wherever some failed
                if p.good and len(p.good) < len(p.runs):
                    ax.annotate(p.seeds, (p.value, p.estimate.value), fontsize=7, xytext=(4, -10),
                                textcoords="offset points", color=line.lines[0].get_color())  # fmt: skip
            if sweep.feature.doubling:
                ax.set_xscale("log", base=2)
        values = sorted({p.value for s in sweeps if s.feature.name == name for p in s.points})
        ax.set_xticks(values, [str(v) for v in values])
        ax.minorticks_off()
        ax.set_xlabel(
            f"{name} (" + "; ".join(dict.fromkeys(s.feature.label for s in sweeps if s.feature.name == name)) + ")"
        )
        ax.set_ylabel("test accuracy (bars: 95% interval over seeds)")
        ax.set_title(f"Test accuracy against {name}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.15))  # below the axes: no point hidden
    if not names:
        axes[0][0].text(0.5, 0.5, "no sweep in this study", ha="center", va="center")
        axes[0][0].axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(fig)


def plot_cost(runs: list[Run], path: Path) -> None:
    import matplotlib.ticker

    plt = pyplot()

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
    for ax, (key, label) in zip(axes, (("params", "parameters"), ("macs_per_image", "multiply-accumulates per image"))):
        for family in dict.fromkeys(r.family for r in runs):
            members = [r for r in runs if r.family == family]
            ax.scatter(
                [r.metrics["cost"][key] for r in members],
                [r.test_accuracy for r in members],
                marker=style(family)[1],
                label=family,
            )
        for group in seed_groups(runs):  # one label per model, however many seeds
            first = group.runs[0]
            ax.annotate(
                first.name,
                (first.metrics["cost"][key], first.test_accuracy),
                fontsize=6,
                xytext=(3, 3),
                textcoords="offset points",
            )
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel(f"{label} (log scale)")
        ax.set_ylabel("test accuracy")
        ax.set_title(f"Test accuracy against {label}")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_epochs(records: list[dict[str, Any]], runs: list[Run], path: Path) -> None:
    import matplotlib.ticker

    plt = pyplot()

    colors = plt.get_cmap("tab20").colors
    fig, ax = plt.subplots(figsize=(10, 5.5))
    for i, run in enumerate(runs):
        mine = [r for r in records if r["model"] == run.label]
        ax.plot(
            [r["epoch"] for r in mine],
            [r["val_accuracy"] for r in mine],
            style(run.family)[0],  # colour by model
            marker=".",
            color=colors[i % len(colors)],
            label=f"{run.label} ({run.family})",
        )
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation accuracy")
    ax.set_title("Validation accuracy after each epoch, every model")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1, 0.5))
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_confusion(records: list[dict[str, str]], classes: list[str], title: str, path: Path) -> None:
    plt = pyplot()

    index = {name: i for i, name in enumerate(classes)}
    counts = np.zeros((len(classes), len(classes)), dtype=int)
    for record in records:
        counts[index[record["actual"]], index[record["predicted"]]] += 1
    fig, ax = plt.subplots(figsize=(1.5 + 0.6 * len(classes), 1 + 0.6 * len(classes)))
    ax.imshow(counts, cmap="Blues")
    for (i, j), count in np.ndenumerate(counts):
        ax.text(
            j,
            i,
            str(count),
            ha="center",
            va="center",
            fontsize=7,
            color="white" if count > counts.max() / 2 else "black",
        )
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_scaling(fits: list[ScalingFit], path: Path) -> None:
    """Test error against cost along each width sweep, log-log, with the fitted power law."""
    plt = pyplot()

    costs = list(dict.fromkeys(f.cost for f in fits)) or ["params"]
    fig, axes = plt.subplots(1, len(costs), figsize=(6 * len(costs), 4.5), squeeze=False)
    for ax, cost in zip(axes[0], costs):
        for fit in (f for f in fits if f.cost == cost):
            points = fit.sweep.measured
            x = [p.cost(cost) for p in points]
            label = (
                f"alpha {fit.alpha.value:.3f}"
                if fit.check
                else "fit not cited: its held-out check on validation "
                + ("failed" if fit.check is False else "is impossible")
            )
            line = ax.plot(x, [1 - p.estimate.value for p in points], "o", label=f"{fit.sweep.title}: {label}")[0]
            grid = np.geomspace(min(x), max(x), 50)
            ax.plot(grid, [fit.predict(c) for c in grid], "-" if fit.check else ":", color=line.get_color(), alpha=0.6)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(f"{COSTS[cost]} (log scale)")
        ax.set_ylabel("test error, 1 - accuracy (log scale)")
        ax.set_title(f"Test error against {COSTS[cost]}")
        ax.grid(alpha=0.3, which="both")
        if fits:
            ax.legend(fontsize=7)
    if not fits:
        axes[0][0].text(
            0.5, 0.5, "no width sweep of three or more points", ha="center", va="center", transform=axes[0][0].transAxes
        )
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
