"""Stage `report`: every model's results in one table, the study's plots and its answer.

Reads the models declared in params.yaml, their metrics/<name>.json, their DVCLive
training logs and the confusion records of the best model (chosen on validation
accuracy, never on the test set). Writes one folder:

  report.md                the generated conclusion, the summary table and the figures
  summary.csv              the summary table
  *.png                    the figures (sweeps, cost, epochs, confusion of the best model)
  plots/*.json             the same data for `dvc plots show` (top-level plots in dvc.yaml)
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from stages.architectures import check_spec
from stages.common import StageError, atomic_path, load_params, read_json, run
from stages.figures import pyplot
from stages.study import FEATURES, Run, Sweep, find_sweeps, frontier, make_run, mean_accuracy, seed_groups, seed_spread

log = logging.getLogger("report")

COLUMNS = [
    "model", "family", "recipe", "seed", "weight_layers", "width", "depth", "params", "macs_per_image",
    "train_loss", "train_accuracy", "val_loss", "val_accuracy", "test_loss", "test_accuracy", "training_seconds",
]

# What the report reads of each metrics/<name>.json.
METRIC_KEYS = {
    "test": {"accuracy", "loss"}, "train": {"accuracy", "loss"}, "val": {"accuracy", "loss"},
    "cost": {"params", "macs_per_image", "training_seconds"},
}


def load_runs(models: dict[str, Any], input_shape: tuple[int, int, int], metrics_dir: Path) -> list[Run]:
    """Every declared model with its metrics; a StageError names a missing file or key."""
    runs = []
    for name, declared in models.items():
        path = metrics_dir / f"{name}.json"
        metrics = read_json(path)
        for section, keys in METRIC_KEYS.items():
            if not isinstance(metrics.get(section), dict) or not keys <= set(metrics[section]):
                raise StageError(f"{path}: '{section}' must hold {', '.join(sorted(keys))}; rerun its evaluate stage")
        if "weight_layers" not in metrics:
            raise StageError(f"{path}: 'weight_layers' is missing; rerun its evaluate stage")
        runs.append(make_run(name, declared, check_spec(name, declared, input_shape), metrics))
    return runs


def read_tsv(path: Path) -> dict[int, float]:
    """A DVCLive metric log: step -> value."""
    try:
        with open(path, newline="") as file:
            return {int(row["step"]): float(row[path.stem]) for row in csv.DictReader(file, delimiter="\t")}
    except (OSError, KeyError, ValueError) as err:
        raise StageError(f"cannot read the training log {path}: {err}") from err


def epoch_records(runs: list[Run], live_dir: Path) -> list[dict[str, Any]]:
    """Train and validation accuracy after each epoch, one record per model and epoch."""
    records = []
    for run in runs:
        logs = {f"{split}_accuracy": read_tsv(live_dir / run.name / "plots" / "metrics" / split / "accuracy.tsv") for split in ("train", "val")}
        for step in sorted(logs["val_accuracy"]):
            records.append({"model": run.name, "epoch": step + 1, **{k: round(v[step], 4) for k, v in logs.items()}})
    return records


def summary_row(run: Run) -> dict[str, Any]:
    m = run.metrics
    return {
        "model": run.name, "family": run.family, "recipe": run.recipe, "seed": run.declaration["seed"],
        "weight_layers": m["weight_layers"], "width": run.feature("width"), "depth": run.feature("depth"),
        "params": m["cost"]["params"], "macs_per_image": m["cost"]["macs_per_image"],
        **{f"{split}_{k}": m[split][k] for split in ("train", "val", "test") for k in ("loss", "accuracy")},
        "training_seconds": m["cost"]["training_seconds"],
    }


def sweep_records(sweeps: list[Sweep]) -> list[dict[str, Any]]:
    """One record per sweep point: mean test accuracy, its range over seeds, the models."""
    return [
        {
            "feature": f"{sweep.feature.name}: {sweep.feature.label}", "sweep": sweep.title, "value": point.value,
            "test_accuracy": round(point.mean, 4), "low": point.low, "high": point.high,
            "runs": len(point.runs), "models": " ".join(run.name for run in point.runs),
        }
        for sweep in sweeps
        for point in sweep.points
    ]


def conclusion(runs: list[Run], sweeps: list[Sweep], best: Run, test_images: int) -> list[str]:
    """The study's answer in a few sentences, every number computed from the runs."""
    lines = [f"Test accuracy on {test_images:,} test images; the best model is chosen on validation accuracy."]
    spread = {}  # per family and recipe: training noise depends on both
    for family, recipe in dict.fromkeys((run.family, run.recipe) for run in runs):
        sigma, repeats = seed_spread([run for run in runs if (run.family, run.recipe) == (family, recipe)])
        spread[family, recipe] = sigma
        if sigma is not None:
            groups = ", ".join("/".join(r.name for r in group) for group in repeats)
            lines.append(f"- {family}, {recipe} recipe: the seed-to-seed spread, the pooled standard deviation of test "
                         f"accuracy over {groups}, is {sigma:.4f}; a gain is called larger than the spread when it "
                         f"exceeds twice that, {2 * sigma:.4f}.")
        elif any((s.family, s.recipe) == (family, recipe) for s in sweeps):
            lines.append(f"- {family}, {recipe} recipe: no model was trained with more than one seed, so the seed-to-seed "
                         "spread is unknown and no gain can be called larger than it (declare a model again with another `seed:`).")
    lines.append("")
    for sweep in sweeps:
        gain, sigma = sweep.gain(), spread[sweep.family, sweep.recipe]
        values = " → ".join(str(p.value) for p in sweep.points)
        steps = ", ".join(f"{b.mean - a.mean:+.4f}" for a, b in zip(sweep.points, sweep.points[1:]))
        verdict = "" if sigma is None else (", larger than the seed spread" if abs(gain) > 2 * sigma else ", within the seed spread")
        lines.append(f"- {sweep.title}: {gain:+.4f} test accuracy per {sweep.feature.step}{verdict} "
                     f"({sweep.feature.label} {values}, step by step {steps}; {', '.join(sweep.models)}).")
    if not sweeps:
        lines.append("- No sweep: no two models of one family and recipe differ in width, depth or branches alone.")
    on_frontier = frontier(seed_groups(runs), lambda r: r.metrics["cost"]["params"])
    counts = {family: sum(g[0].family == family for g in on_frontier) for family in FEATURES}
    leader = max(counts, key=lambda f: (counts[f], max((mean_accuracy(g) for g in on_frontier if g[0].family == f), default=0)))
    lines += [
        "",
        "Accuracy per parameter: the models no smaller model beats on test accuracy (the mean over seeds) are "
        + ", ".join(f"{g[0].name} ({g[0].metrics['cost']['params']:,} parameters, {mean_accuracy(g):.4f}"
                    f"{f', {len(g)} seeds' if len(g) > 1 else ''})" for g in on_frontier)
        + f"; the {leader} family holds {counts[leader]} of these {len(on_frontier)} points, so it gives the best "
        "accuracy per parameter in this study.",
        "",
        f"Best model by validation accuracy: {best.name} (validation {best.metrics['val']['accuracy']:.4f}, "
        f"test {best.test_accuracy:.4f}, {best.metrics['cost']['params']:,} parameters).",
    ]
    return lines


def markdown_table(rows: list[dict[str, Any]]) -> list[str]:
    def cell(value: Any) -> str:
        return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)

    return ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)] + [
        "| " + " | ".join(cell(row[c]) for c in COLUMNS) + " |" for row in rows
    ]


def plot_sweeps(sweeps: list[Sweep], path: Path) -> None:
    plt = pyplot()

    names = list(dict.fromkeys(s.feature.name for s in sweeps))
    fig, axes = plt.subplots(1, max(len(names), 1), figsize=(5.5 * max(len(names), 1), 4.5), squeeze=False)
    for ax, name in zip(axes[0], names):
        for sweep in (s for s in sweeps if s.feature.name == name):
            x = [p.value for p in sweep.points]
            y = [p.mean for p in sweep.points]
            spread = [[p.mean - p.low for p in sweep.points], [p.high - p.mean for p in sweep.points]]
            ax.errorbar(x, y, yerr=spread, marker="o", capsize=4, label=sweep.title)
            if sweep.feature.doubling:
                ax.set_xscale("log", base=2)
        values = sorted({p.value for s in sweeps if s.feature.name == name for p in s.points})
        ax.set_xticks(values, [str(v) for v in values])
        ax.minorticks_off()
        ax.set_xlabel(f"{name} (" + "; ".join(dict.fromkeys(s.feature.label for s in sweeps if s.feature.name == name)) + ")")
        ax.set_ylabel("test accuracy (bars: range over seeds)")
        ax.set_title(f"Test accuracy against {name}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    if not names:
        axes[0][0].text(0.5, 0.5, "no sweep in this study", ha="center", va="center")
        axes[0][0].axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_cost(runs: list[Run], path: Path) -> None:
    import matplotlib.ticker

    plt = pyplot()

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
    for ax, (key, label) in zip(axes, (("params", "parameters"), ("macs_per_image", "multiply-accumulates per image"))):
        for family in FEATURES:
            members = [r for r in runs if r.family == family]
            if members:
                ax.scatter([r.metrics["cost"][key] for r in members], [r.test_accuracy for r in members], label=family)
        for group in seed_groups(runs):  # one label per model, however many seeds
            first = group[0]
            ax.annotate(first.name, (first.metrics["cost"][key], first.test_accuracy), fontsize=6, xytext=(3, 3), textcoords="offset points")
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

    styles = dict(zip(FEATURES, ("-", "--", ":")))  # line style by family, colour by model
    colors = plt.get_cmap("tab20").colors
    fig, ax = plt.subplots(figsize=(10, 5.5))
    for i, run in enumerate(runs):
        mine = [r for r in records if r["model"] == run.name]
        ax.plot([r["epoch"] for r in mine], [r["val_accuracy"] for r in mine], styles[run.family],
                marker=".", color=colors[i % len(colors)], label=f"{run.name} ({run.family})")
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
        ax.text(j, i, str(count), ha="center", va="center", fontsize=7, color="white" if count > counts.max() / 2 else "black")
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", type=Path, help="dataset.json written by the prepare stage")
    parser.add_argument("metrics", type=Path, help="folder of metrics/<name>.json")
    parser.add_argument("training_logs", type=Path, help="folder of DVCLive logs, one per model")
    parser.add_argument("confusion", type=Path, help="folder of confusion records, one per model")
    parser.add_argument("out", type=Path, help="report folder to write")
    args = parser.parse_args()
    info = read_json(args.dataset)
    runs = load_runs(load_params("models"), tuple(info["image_shape"]), args.metrics)
    sweeps = find_sweeps(runs)
    best = max(runs, key=lambda r: r.metrics["val"]["accuracy"])
    confusion = read_json(args.confusion / f"{best.name}.json")
    epochs = epoch_records(runs, args.training_logs)
    rows = [summary_row(run) for run in runs]
    cost = [{k: row[k] for k in ("model", "family", "params", "macs_per_image", "test_accuracy")} for row in rows]
    figures = {
        "sweeps.png": "Test accuracy along each sweep",
        "cost.png": "Test accuracy against parameters and multiply-accumulates",
        "epochs.png": "Validation accuracy per epoch",
        "confusion_best.png": f"Confusion matrix of {best.name} (best by validation accuracy), test set",
    }
    text = ["# Report (generated by the `report` stage)", "", "## Conclusion", "",
            *conclusion(runs, sweeps, best, info["splits"]["test"]["count"]), "", "## Summary", "", *markdown_table(rows), ""]
    text += [line for name, title in figures.items() for line in (f"## {title}", "", f"![{title}]({name})", "")]

    with atomic_path(args.out, directory=True) as folder:
        (folder / "report.md").write_text("\n".join(text))
        with open(folder / "summary.csv", "w", newline="") as file:
            writer = csv.DictWriter(file, COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
        (folder / "plots").mkdir()
        for name, records in (("epochs", epochs), ("sweeps", sweep_records(sweeps)), ("cost", cost), ("confusion_best", confusion)):
            (folder / "plots" / f"{name}.json").write_text(json.dumps(records) + "\n")  # compact: 10,000 confusion records
        plot_sweeps(sweeps, folder / "sweeps.png")
        plot_cost(runs, folder / "cost.png")
        plot_epochs(epochs, runs, folder / "epochs.png")
        plot_confusion(confusion, info["classes"], figures["confusion_best.png"], folder / "confusion_best.png")
    log.info("%d models, %d sweeps; best by validation accuracy: %s", len(runs), len(sweeps), best.name)


if __name__ == "__main__":
    run(main)
