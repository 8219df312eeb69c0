"""The study's report: every model's results in one table, the figures and the generated answer.

A model whose training diverged is listed in its own section and kept out of every
conclusion: sweeps, gains, the seed spread, the frontier and the best-model pick.
The best model is chosen on validation accuracy, never on the test set.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from widthdepth.architectures import check_spec
from widthdepth.figures.charts import plot_confusion, plot_cost, plot_epochs, plot_sweeps
from widthdepth.stage import StageError, read_json
from widthdepth.study import FEATURES, Run, Sweep, find_sweeps, frontier, make_run, mean_accuracy, seed_groups, seed_spread

COLUMNS = [
    "model", "family", "recipe", "seed", "weight_layers", "width", "depth", "params", "macs_per_image",
    "train_loss", "train_accuracy", "val_loss", "val_accuracy", "test_loss", "test_accuracy", "training_seconds",
    "diverged_epoch",
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
        for key in ("weight_layers", "diverged", "diverged_epoch"):
            if key not in metrics:
                raise StageError(f"{path}: '{key}' is missing; rerun its evaluate stage")
        runs.append(make_run(name, declared, check_spec(name, declared, input_shape), metrics))
    return runs


def read_tsv(path: Path) -> dict[int, float]:
    """A DVCLive metric log: step -> value."""
    try:
        with open(path, newline="") as file:
            return {int(row["step"]): float(row[path.stem]) for row in csv.DictReader(file, delimiter="\t")}  # nan stays nan
    except (OSError, KeyError, ValueError) as err:
        raise StageError(f"cannot read the training log {path}: {err}") from err


def epoch_records(runs: list[Run], live_dir: Path) -> list[dict[str, Any]]:
    """Train and validation accuracy after each epoch, one record per model and epoch."""
    records = []
    for run in runs:
        logs = {f"{split}_accuracy": read_tsv(live_dir / run.name / "plots" / "metrics" / split / "accuracy.tsv") for split in ("train", "val")}
        for step in sorted(logs["val_accuracy"]):
            values = {k: round(v[step], 4) if math.isfinite(v[step]) else None for k, v in logs.items()}  # JSON has no NaN
            records.append({"model": run.name, "epoch": step + 1, **values})
    return records


def summary_row(run: Run) -> dict[str, Any]:
    m = run.metrics
    return {
        "model": run.name, "family": run.family, "recipe": run.recipe, "seed": run.declaration["seed"],
        "weight_layers": m["weight_layers"], "width": run.feature("width"), "depth": run.feature("depth"),
        "params": m["cost"]["params"], "macs_per_image": m["cost"]["macs_per_image"],
        **{f"{split}_{k}": m[split][k] for split in ("train", "val", "test") for k in ("loss", "accuracy")},
        "training_seconds": m["cost"]["training_seconds"],
        "diverged_epoch": m["diverged_epoch"] if m["diverged"] else "",
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


def failed_runs(runs: list[Run]) -> list[str]:
    """The section on diverged runs: which, when, and that they count nowhere."""
    failed = [run for run in runs if run.diverged]
    if not failed:
        return ["No run diverged: every model's training loss stayed finite and below "
                "3 x ln(classes) (`widthdepth/training/loop.py`, DIVERGED_LOSS_FACTOR)."]
    return ["These runs diverged (training loss non-finite or above 3 x ln(classes)); training stopped there, "
            "and they are left out of every sweep, gain, spread, frontier and the best-model pick:", ""] + [
        f"- {run.name} ({run.family}, {run.recipe} recipe): diverged in epoch {run.metrics['diverged_epoch']}" for run in failed
    ]


def markdown_table(rows: list[dict[str, Any]]) -> list[str]:
    def cell(value: Any) -> str:
        return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)

    return ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)] + [
        "| " + " | ".join(cell(row[c]) for c in COLUMNS) + " |" for row in rows
    ]


FIGURES = {
    "sweeps.png": "Test accuracy along each sweep",
    "cost.png": "Test accuracy against parameters and multiply-accumulates",
    "epochs.png": "Validation accuracy per epoch",
    "confusion_best.png": "Confusion matrix of the best model by validation accuracy, test set",
}


def write_report(folder: Path, info: dict[str, Any], runs: list[Run], live_dir: Path, confusion_dir: Path) -> Run:
    """report.md, summary.csv, the figures and plots/*.json into `folder`; returns the best model."""
    good = [run for run in runs if not run.diverged]
    if not good:
        raise StageError(f"every declared model diverged ({', '.join(r.name for r in runs)}): nothing to report")
    sweeps = find_sweeps(good)
    best = max(good, key=lambda r: r.metrics["val"]["accuracy"])
    confusion = read_json(confusion_dir / f"{best.name}.json")
    epochs = epoch_records(runs, live_dir)
    rows = [summary_row(run) for run in runs]
    cost = [{k: row[k] for k in ("model", "family", "params", "macs_per_image", "test_accuracy")} for row in rows if not row["diverged_epoch"]]
    text = ["# Report (generated by the `report` stage)", "", "## Conclusion", "",
            *conclusion(good, sweeps, best, info["splits"]["test"]["count"]), "", "## Failed runs", "", *failed_runs(runs),
            "", "## Summary", "", *markdown_table(rows), ""]
    text += [line for name, title in FIGURES.items() for line in (f"## {title}", "", f"![{title}]({name})", "")]

    (folder / "report.md").write_text("\n".join(text))
    with open(folder / "summary.csv", "w", newline="") as file:
        writer = csv.DictWriter(file, COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    (folder / "plots").mkdir()
    for name, records in (("epochs", epochs), ("sweeps", sweep_records(sweeps)), ("cost", cost), ("confusion_best", confusion)):
        (folder / "plots" / f"{name}.json").write_text(json.dumps(records) + "\n")  # compact: 10,000 confusion records
    plot_sweeps(sweeps, folder / "sweeps.png")
    plot_cost(good, folder / "cost.png")
    plot_epochs(epochs, runs, folder / "epochs.png")
    plot_confusion(confusion, info["classes"], f"Confusion matrix of {best.name} (best by validation accuracy), test set",
                   folder / "confusion_best.png")
    return best
