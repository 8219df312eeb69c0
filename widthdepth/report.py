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
from widthdepth.figures.charts import plot_confusion, plot_cost, plot_epochs, plot_scaling, plot_sweeps
from widthdepth.figures.grids import save_image_grid
from widthdepth.stage import StageError, check_name, read_json, read_yaml
from widthdepth.study import (
    COSTS, FEATURES, BudgetControl, Run, Sweep, budget_controls, find_sweeps, frontier, make_run, matched_cost, mean_accuracy,
    scaling_fits, seed_groups, seed_spread,
)

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
    if not models:
        raise StageError("params.yaml: models declares no model, so there is nothing to report")
    runs = []
    for name, declared in models.items():
        path = metrics_dir / f"{check_name('models', name)}.json"
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
    """Train and validation accuracy and loss after each epoch, one record per model and epoch: the training
    logs stay in the DVC cache, so these curves are what git keeps of them."""
    records = []
    for run in runs:
        logs = {f"{split}_{metric}": read_tsv(live_dir / run.name / "plots" / "metrics" / split / f"{metric}.tsv")
                for split in ("train", "val") for metric in ("accuracy", "loss")}
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


def spreads(runs: list[Run]) -> dict[tuple[str, str], tuple[float | None, list[list[Run]]]]:
    """Seed-to-seed spread per family and recipe (training noise depends on both), and the repeats it comes from."""
    pairs = dict.fromkeys((run.family, run.recipe) for run in runs)
    return {(f, r): seed_spread([run for run in runs if (run.family, run.recipe) == (f, r)]) for f, r in pairs}


def verdict(change: float, sigma: float | None) -> str:
    """Whether a change in accuracy is more than twice the seed spread."""
    if sigma is None:
        return "the seed spread is unknown"
    return f"{'larger than' if abs(change) > 2 * sigma else 'within'} the seed spread (2σ = {2 * sigma:.4f})"


def conclusion(runs: list[Run], sweeps: list[Sweep], best: Run, test_images: int) -> list[str]:
    """The study's answer in a few sentences, every number computed from the runs."""
    lines = [f"Test accuracy on {test_images:,} test images; the best model is chosen on validation accuracy."]
    spread = spreads(runs)
    for (family, recipe), (sigma, repeats) in spread.items():
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
        gain, sigma = sweep.gain(), spread[sweep.family, sweep.recipe][0]
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


def regime(info: dict[str, Any], data: dict[str, Any], recipes: dict[str, dict[str, Any]], runs: list[Run], machines: list[str]) -> list[str]:
    """What the numbers are about: data, recipes with their epochs, seeds, machine."""
    counts = {split: info["splits"][split]["count"] for split in ("train", "val", "test")}
    source = f" from {Path(data['source']).name}" if data.get("source") else ""
    lines = [f"- Data: {data['dataset']}{source}, {counts['train']:,} training, {counts['val']:,} validation and "
             f"{counts['test']:,} test images of {'x'.join(map(str, info['image_shape']))}."]
    for name in dict.fromkeys(run.recipe for run in runs):
        r = recipes[name]
        members = [run for run in runs if run.recipe == name]
        seeds = sorted({run.declaration["seed"] for run in members})
        augment = ", ".join(a for a, on in (("flips", r["flip"]), (f"shifts of {r['translate']:g}", r["translate"])) if on) or "no augmentation"
        warmup = f" after {r['warmup_epochs']} warm-up epochs" if r["warmup_epochs"] else ""
        lines.append(f"- Recipe `{name}` ({len(members)} model{'s' if len(members) > 1 else ''}, seeds {', '.join(map(str, seeds))}): {r['epochs']} epochs at batch "
                     f"{r['batch_size']}, {r['optimizer']} at {r['learning_rate']:g} (momentum {r['momentum']:g}, weight decay "
                     f"{r['weight_decay']:g}), {r['schedule']} schedule{warmup}, label smoothing {r['label_smoothing']:g}, {augment}.")
    lines.append(f"- Machine (from the training logs): {'; '.join(sorted(set(machines))) or 'not recorded'}.")
    return lines


def budget_section(controls: list[BudgetControl], spread: dict) -> list[str]:
    """How much accuracy the training budget leaves on the table."""
    if not controls:
        return ["No model was trained at two budgets (declare one again with a recipe that differs only in `epochs`)."]
    lines = []
    for c in controls:
        sigma = spread[c.base[0].family, c.base[0].recipe][0]
        lines.append(f"- {', '.join(r.name for r in c.base)} ({c.base_epochs} epochs, test {mean_accuracy(c.base):.4f}) against "
                     f"{', '.join(r.name for r in c.longer)} ({c.longer_epochs} epochs, {mean_accuracy(c.longer):.4f}): "
                     f"{c.gain:+.4f} from {c.longer_epochs / c.base_epochs:g}x the epochs, {verdict(c.gain, sigma)}. "
                     + ("So this budget leaves accuracy on the table: read the sweeps as comparisons at this budget, "
                        "not at convergence." if sigma is not None and c.gain > 2 * sigma else
                        "So the models of this recipe are near their plateau at this budget." if sigma is not None else ""))
    return lines


def matched_cost_section(sweeps: list[Sweep], spread: dict) -> list[str]:
    """Width or depth, at the same multiply-accumulates and at the same parameters."""
    lines = []
    for cost, label in COSTS.items():
        for m in matched_cost(sweeps, cost):
            sigma = spread[m.width.family, m.width.recipe][0]
            better = "width" if m.difference > 0 else "depth"
            table = "; ".join(f"{c:,.0f}: {w:.4f} vs {d:.4f}" for c, w, d in m.points)
            lines.append(f"- {m.width.family}, {m.width.recipe} recipe, at equal {label}: going wider gives "
                         f"{m.difference:+.4f} test accuracy over going deeper, on average over {len(m.points)} matched costs "
                         f"({better} buys more; {verdict(m.difference, sigma)}). Width vs depth sweep, interpolated in "
                         f"log {label}: {table}.")
    return lines or ["No width and depth sweep of one family and recipe share a model and a cost range."]


def scaling_section(sweeps: list[Sweep]) -> list[str]:
    """Power-law fits of test error along each width sweep, checked on the largest point."""
    lines = []
    for cost, label in COSTS.items():
        for f in scaling_fits(sweeps, cost):
            interval = f" ± {f.half_width:.3f} (95%)" if f.half_width is not None else " (too few points for an interval)"
            predicted, measured = f.held_out
            lines.append(f"- {f.sweep.title}, error against {label}: error ≈ {math.exp(f.log_a):.3g} × N^-{f.alpha:.3f}{interval}, "
                         f"fitted in log-log on {len(f.sweep.points)} points. Fitted without its largest point, it predicts "
                         f"that point's error as {predicted:.4f}; measured {measured:.4f} ({predicted - measured:+.4f}).")
    if lines:
        lines.append("- The fits have no floor (error = a N^-alpha + c): a handful of points cannot pin down three parameters, "
                     "so alpha here describes this range of sizes, not the limit.")
    return lines or ["No width sweep has three or more points."]


def notebook_section(runs: list[Run], epochs: list[dict[str, Any]], reference: dict[str, float]) -> list[str]:
    """The notebook's models next to the notebook's numbers: validation accuracy at the last and at the best
    epoch, and test accuracy, each a mean over the model's seeds."""
    lines = ["| model | notebook (test, last epoch, official pixels) | validation, last epoch | validation, best epoch | test | seeds |",
             "|---|---|---|---|---|---|"]
    seeds = []
    for name, number in reference.items():
        group = next((g for g in seed_groups(runs) if g[0].name == name), None)
        if group is None:
            continue
        curves = [[(r["epoch"], r["val_accuracy"]) for r in epochs if r["model"] == run.name and r["val_accuracy"] is not None]
                  for run in group]
        best = [max(curve, key=lambda e: e[1]) for curve in curves]
        last = float(np.mean([curve[-1][1] for curve in curves]))
        best_epochs = ", ".join(str(epoch) for epoch, _ in best)
        tests = [run.test_accuracy for run in group]
        test = f"{mean_accuracy(group):.4f}" + (f" ({min(tests):.4f}-{max(tests):.4f})" if len(group) > 1 else "")
        lines.append(f"| {name} | {number:.3f} | {last:.4f} | {np.mean([v for _, v in best]):.4f} (epoch {best_epochs}) | {test} | {len(group)} |")
        seeds.append(len(group))
    if not seeds:
        return [f"None of the notebook's models ({', '.join(reference)}) is declared in `models`."]
    if max(seeds) == 1:
        lines += ["", "With one seed per model, a difference between two of them is not known to exceed the seed-to-seed spread, "
                  "and the gap between the last and the best epoch shows how much one run moves from epoch to epoch: "
                  "their order says nothing on its own. See the README for the command that trains more seeds."]
    else:
        lines += ["", "Each value is the mean over the model's seeds: the test column gives their range, the best-epoch column "
                  "each seed's best epoch. The notebook recipe's seed-to-seed spread, and whether its width and depth steps "
                  "exceed it, are in the Conclusion."]
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
    "samples.png": "The first 25 training images",
    "sweeps.png": "Test accuracy along each sweep",
    "cost.png": "Test accuracy against parameters and multiply-accumulates",
    "scaling.png": "Test error against cost along each width sweep, with the fitted power laws",
    "epochs.png": "Validation accuracy per epoch",
    "confusion_best.png": "Confusion matrix of the best model by validation accuracy, test set",
}


def machines(runs: list[Run], live_dir: Path) -> list[str]:
    """The machines the runs trained on, as their training logs recorded them."""
    found = []
    for run in runs:
        path = live_dir / run.name / "params.yaml"
        logged = read_yaml(path) if path.exists() else None  # older logs did not record it
        if isinstance(logged, dict) and isinstance(logged.get("machine"), str):
            found.append(logged["machine"])
    return found


def check_report_params(report: dict[str, Any]) -> dict[str, float]:
    """params.yaml `report.notebook`: the notebook's test accuracy per model name, each in [0, 1]."""
    notebook = report.get("notebook") or {}
    if not isinstance(notebook, dict):
        raise StageError(f"params.yaml: report.notebook must map model names to accuracies, not {notebook!r}")
    for name, number in notebook.items():
        if isinstance(number, bool) or not isinstance(number, (int, float)) or not 0 <= number <= 1:
            raise StageError(f"params.yaml: report.notebook.{name} must be an accuracy in [0, 1], not {number!r}")
    return notebook


def write_report(folder: Path, info: dict[str, Any], params: dict[str, Any], runs: list[Run], live_dir: Path, confusion_dir: Path,
                 samples: tuple[np.ndarray, np.ndarray]) -> Run:
    """report.md, summary.csv, the figures and plots/*.json into `folder`; returns the best model.

    `params` holds the params.yaml sections `data`, `recipes` and `report` (the notebook's reference numbers);
    `samples` some training images and their labels, to show what the data looks like."""
    good = [run for run in runs if not run.diverged]
    if not good:
        raise StageError(f"every declared model diverged ({', '.join(r.name for r in runs)}): nothing to report")
    sweeps = find_sweeps(good)
    best = max(good, key=lambda r: r.metrics["val"]["accuracy"])
    confusion = read_json(confusion_dir / f"{best.name}.json")
    epochs = epoch_records(runs, live_dir)
    rows = [summary_row(run) for run in runs]
    cost = [{k: row[k] for k in ("model", "family", "params", "macs_per_image", "test_accuracy")} for row in rows if not row["diverged_epoch"]]
    spread = spreads(good)
    sections = {
        "Regime": regime(info, params["data"], params["recipes"], runs, machines(runs, live_dir)),
        "Conclusion": conclusion(good, sweeps, best, info["splits"]["test"]["count"]),
        "Width or depth at equal cost": matched_cost_section(sweeps, spread),
        "Scaling with width": scaling_section(sweeps),
        "Training budget": budget_section(budget_controls(good, params["recipes"]), spread),
        "The notebook's models": notebook_section(good, epochs, params["report"]["notebook"]),
        "Failed runs": failed_runs(runs),
        "Summary": markdown_table(rows),
    }
    text = ["# Report (generated by the `report` stage)", ""]
    text += [line for title, lines in sections.items() for line in (f"## {title}", "", *lines, "")]
    text += [line for name, title in FIGURES.items() for line in (f"## {title}", "", f"![{title}]({name})", "")]

    (folder / "report.md").write_text("\n".join(text))
    with open(folder / "summary.csv", "w", newline="") as file:
        writer = csv.DictWriter(file, COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    (folder / "plots").mkdir()
    for name, records in (("epochs", epochs), ("sweeps", sweep_records(sweeps)), ("cost", cost), ("confusion_best", confusion)):
        (folder / "plots" / f"{name}.json").write_text(json.dumps(records) + "\n")  # compact: 10,000 confusion records
    images, labels = samples
    save_image_grid(images, [info["classes"][label] for label in labels], FIGURES["samples.png"], folder / "samples.png")
    plot_sweeps(sweeps, folder / "sweeps.png")
    plot_cost(good, folder / "cost.png")
    plot_scaling([fit for cost in COSTS for fit in scaling_fits(sweeps, cost)], folder / "scaling.png")
    plot_epochs(epochs, runs, folder / "epochs.png")
    plot_confusion(confusion, info["classes"], f"Confusion matrix of {best.name} (best by validation accuracy), test set",
                   folder / "confusion_best.png")
    return best
