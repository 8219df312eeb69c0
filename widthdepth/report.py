"""The study's report: the analysis (widthdepth.study.Analysis) written as tables, figures and plot data.

Every verdict is a difference of means with its 95% interval (Student's t at the real
degrees of freedom; Welch for two points); "equal" only within the margin declared in
params.yaml before the run (`report.equivalence_margin`), otherwise "inconclusive". A run
that diverged or collapsed in inference mode is listed apart and counts nowhere. The best
model is chosen on validation accuracy, never on the test set.
"""

from __future__ import annotations

import csv
import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from widthdepth import layout
from widthdepth.architectures import Model
from widthdepth.figures.charts import plot_confusion, plot_cost, plot_epochs, plot_scaling, plot_sweeps
from widthdepth.figures.grids import save_image_grid
from widthdepth.params import Data, Recipe, Report
from widthdepth.stage import StageError, read_json
from widthdepth.study import (
    COLLAPSE_RATIO,
    COSTS,
    Analysis,
    Run,
    Sweep,
    make_run,
    mean_estimate,
    point_cost,
    seed_groups,
    test_estimate,
)

# summary.csv: every model, every number of its metrics the report uses.
COLUMNS = [
    "model",
    "family",
    "recipe",
    "seed",
    "weight_layers",
    "width",
    "depth",
    "params",
    "macs_per_image",
    "train_loss",
    "train_accuracy",
    "val_loss",
    "val_accuracy",
    "test_loss",
    "test_accuracy",
    "training_seconds",
    "diverged_epoch",
    "failure",
]
# The short table in report.md.
SHORT_COLUMNS = [
    "model",
    "recipe",
    "seed",
    "params",
    "macs_per_image",
    "val_accuracy",
    "test_accuracy",
    "training_seconds",
    "failure",
]

# What the report reads of each metrics/<name>.json.
METRIC_KEYS = {
    "test": {"accuracy", "loss"},
    "train": {"accuracy", "loss"},
    "val": {"accuracy", "loss"},
    "cost": {"params", "macs_per_image", "training_seconds"},
}
CURVES = [f"{split}_{metric}" for split in ("train", "val") for metric in ("accuracy", "loss")]


def load_runs(models: dict[str, Model], metrics_dir: Path, runs_dir: Path, val_images: int = 0) -> list[Run]:
    """Every declared model's seeds with their metrics and run records (machine, per-epoch curves),
    both written by `evaluate` and kept in git; a StageError names a missing file or key."""
    if not models:
        raise StageError("params.yaml: models declares no model, so there is nothing to report")
    runs = []
    for name, model in models.items():
        for seed in model.seeds:
            path = layout.seed_json(metrics_dir / name, seed)
            metrics = read_json(path)
            for section, keys in METRIC_KEYS.items():
                if not isinstance(metrics.get(section), dict) or not keys <= set(metrics[section]):
                    raise StageError(
                        f"{path}: '{section}' must hold {', '.join(sorted(keys))}; rerun its evaluate stage"
                    )
            for key in ("weight_layers", "diverged", "diverged_epoch"):
                if key not in metrics:
                    raise StageError(f"{path}: '{key}' is missing; rerun its evaluate stage")
            run = make_run(model, metrics, seed)
            record_path = layout.seed_json(runs_dir / name, seed)
            record = read_json(record_path)
            try:
                curves = {curve: record["curves"][curve] for curve in CURVES}
                run.machine = record["machine"] or ""
            except (KeyError, TypeError) as err:
                raise StageError(f"{record_path}: {err} is missing; rerun its evaluate stage") from err
            run.curves = {curve: [math.nan if v is None else v for v in values] for curve, values in curves.items()}
            run.val_images = val_images
            runs.append(run)
    return runs


def epoch_records(runs: list[Run]) -> list[dict[str, Any]]:
    """Train and validation accuracy and loss after each epoch, one record per model and epoch: the training
    logs stay in the DVC cache, so these curves are what git keeps of them."""
    return [
        {
            "model": run.label,
            "epoch": epoch + 1,
            **{
                curve: round(run.curves[curve][epoch], 4)
                if math.isfinite(run.curves[curve][epoch])
                else None  # JSON has no NaN
                for curve in CURVES
            },
        }
        for run in runs
        for epoch in range(len(run.curves["val_accuracy"]))
    ]


def summary_row(run: Run) -> dict[str, Any]:
    m = run.metrics
    return {
        "model": run.name,
        "family": run.family,
        "recipe": run.recipe,
        "seed": run.seed,
        "weight_layers": m["weight_layers"],
        "width": run.feature("width"),
        "depth": run.feature("depth"),
        "params": m["cost"]["params"],
        "macs_per_image": m["cost"]["macs_per_image"],
        **{f"{split}_{k}": m[split][k] for split in ("train", "val", "test") for k in ("loss", "accuracy")},
        "training_seconds": m["cost"]["training_seconds"],
        "diverged_epoch": m["diverged_epoch"] if m["diverged"] else "",
        "failure": (run.failure or "").split(":")[0],
    }


def sweep_records(sweeps: list[Sweep]) -> list[dict[str, Any]]:
    """One record per sweep point: mean test accuracy, its 95% interval (or the value when one seed), the models."""
    records = []
    for sweep in sweeps:
        for point in sweep.points:
            estimate = point.estimate
            records.append(
                {
                    "feature": f"{sweep.feature.name}: {sweep.feature.label}",
                    "sweep": sweep.title,
                    "value": point.value,
                    "test_accuracy": round(estimate.value, 4),
                    "low": round(estimate.low if estimate.low is not None else estimate.value, 4),
                    "high": round(estimate.high if estimate.high is not None else estimate.value, 4),
                    "runs": len(point.runs),
                    "models": " ".join(dict.fromkeys(run.name for run in point.runs)),
                }
            )
    return records


def table(header: list[str], rows: list[list[Any]]) -> list[str]:
    def cell(value: Any) -> str:
        return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)

    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + [
        "| " + " | ".join(map(cell, row)) + " |" for row in rows
    ]


def answer_section(a: Analysis, test_images: int) -> list[str]:
    """The study's answer: one line per sweep, its gain per step with a 95% interval and a verdict."""
    lines = [
        f"Test accuracy on {test_images:,} test images; each point is the mean over its seeds with a 95% interval "
        f"(Student's t at n - 1 degrees of freedom); each gain is a slope fitted to every seed's accuracy, with its "
        f'interval; "equal" means the whole interval lies within ±{a.margin:g} (`report.equivalence_margin`, '
        'declared before the run), otherwise a difference whose interval holds 0 is "inconclusive".',
        "",
    ]
    for sweep in a.sweeps:
        gain = sweep.gain()
        lines.append(
            f"- {sweep.title}: {gain.text(signed=True)} test accuracy per {sweep.feature.step} "
            f"({sweep.feature.label} {' → '.join(str(p.value) for p in sweep.points)}): {gain.verdict(a.margin)}."
        )
    if not a.sweeps:
        lines.append("- No sweep: no two models of one family and recipe differ in width, depth or branches alone.")
    lines += [
        "",
        f"This report tests {a.comparisons} differences at 95% (steps, slopes, matched costs, budgets): about one in "
        "twenty of them would be flagged by chance alone, so read a single verdict among them with that in mind.",
        "",
        f"Best model by validation accuracy: {a.best[0].name} (validation "
        f"{mean_estimate([r.metrics['val']['accuracy'] for r in a.best]).text()}, test "
        f"{test_estimate(a.best).text()}, {len(a.best)} seed{'s' * (len(a.best) > 1)}, "
        f"{a.best[0].metrics['cost']['params']:,} parameters).",
    ]
    return lines


def sweep_tables(a: Analysis) -> list[str]:
    """Per sweep: each point, its cost, mean test accuracy with its interval, seeds, the step to the
    next point and its verdict."""
    lines = []
    for sweep in a.sweeps:
        steps = sweep.steps() + [None]
        rows = []
        for point, step in zip(sweep.points, steps):
            rows.append(
                [
                    point.value,
                    f"{point_cost(point, 'params'):,.0f}",
                    f"{point_cost(point, 'macs_per_image'):,.0f}",
                    point.estimate.text(),
                    len(point.runs),
                    "" if step is None else step.text(signed=True),
                    "" if step is None else step.verdict(a.margin),
                ]
            )
        lines += [
            f"### {sweep.title}",
            "",
            *table(
                [
                    sweep.feature.label,
                    "parameters",
                    "MACs per image",
                    "test accuracy (95%)",
                    "seeds",
                    "step to next (95%)",
                    "verdict",
                ],
                rows,
            ),
            "",
            f"Models: {', '.join(sweep.models)}.",
            "",
        ]
    return lines or ["No sweep: no two models of one family and recipe differ in width, depth or branches alone."]


def matched_cost_section(a: Analysis) -> list[str]:
    """Wider against deeper at equal cost, each matched cost a row (no average that could hide a crossover)."""
    lines = []
    for m in a.matched:
        rows = [
            [f"{cost:,.0f}", w.text(), d.text(), gap.text(signed=True), gap.verdict(a.margin)]
            for cost, w, d, gap in m.points
        ]
        lines += [
            f"### {m.width.family}, {m.width.recipe} recipe, at equal {COSTS[m.cost]}",
            "",
            *table(
                [COSTS[m.cost], "wider (width sweep)", "deeper (depth sweep)", "wider - deeper (95%)", "verdict"], rows
            ),
            "",
            "Each sweep's accuracy between two of its points is interpolated linearly in log cost; the shared "
            "model of both sweeps is left out, its difference being zero by construction.",
            "",
        ]
    return lines or ["No width and depth sweep of one family and recipe cover a common cost range."]


def scaling_section(a: Analysis) -> list[str]:
    """Power laws of test error along each width sweep, cited only when their held-out check passes."""
    rows = []
    for f in a.fits:
        check = {True: "passed", False: "failed", None: "too few points to check"}[f.check]
        exponent = f.alpha.text() if f.check else "not cited"
        rows.append([f.sweep.title, COSTS[f.cost], exponent, f"{f.predicted:.4f}", f"{f.measured:.4f}", check])
    if not rows:
        return ["No width sweep has three or more points."]
    return [
        *table(["sweep", "against", "alpha (95%)", "held out: predicted error", "measured", "check"], rows),
        "",
        "error ≈ a N^-alpha, fitted in log-log to every seed's error. The check refits without the largest "
        "point and asks whether that point's mean error lies in the fit's 95% prediction interval; "
        "an exponent whose check fails or cannot "
        "be made is not cited. The fits have no floor, so alpha describes this range of sizes, not the limit.",
    ]


def budget_section(a: Analysis) -> list[str]:
    if not a.controls:
        return ["No model was trained at two budgets (declare one again with a recipe that differs only in `epochs`)."]
    rows = [
        [
            ", ".join(dict.fromkeys(r.name for r in c.base)),
            c.base_epochs,
            test_estimate(c.base).text(),
            ", ".join(dict.fromkeys(r.name for r in c.longer)),
            c.longer_epochs,
            test_estimate(c.longer).text(),
            c.gain.text(signed=True),
            c.gain.verdict(a.margin),
        ]
        for c in a.controls
    ]
    return [
        *table(
            ["model", "epochs", "test accuracy", "longer", "epochs", "test accuracy", "gain (95%)", "verdict"], rows
        ),
        "",
        "A gain whose interval lies above 0 means this budget leaves accuracy on the table: read the sweeps as "
        "comparisons at this budget, not at convergence.",
    ]


def rate_section(a: Analysis) -> list[str]:
    if not a.rates:
        return [
            "No sweep's ends were trained at other learning rates (declare its first and last models again with "
            "recipes that differ only in `learning_rate`)."
        ]
    lines = []
    for check in a.rates:
        sweep, chosen = check.sweep, check.chosen
        rows = [
            [
                f"{point.value} {sweep.feature.label}",
                f"{lr:g}" + (" (the sweep's)" if lr == check.rate else ""),
                ", ".join(dict.fromkeys(r.name for r in group)),
                mean_estimate([r.metrics["val"]["accuracy"] for r in group]).text(),
                test_estimate(group).text(),
                len(group),
                "chosen" if lr == pick else "",
            ]
            for point, rates, pick in zip((sweep.points[0], sweep.points[-1]), check.ends, chosen)
            for lr, group in rates.items()
        ]
        at_sweep, at_chosen = check.gain_at_sweep_rate, check.gain_at_chosen_rates
        lines += [
            f"{sweep.family} {sweep.feature.name} sweep ({sweep.recipe} recipe), its ends at several learning rates; "
            "each end's rate is chosen on validation accuracy:",
            "",
            *table(["point", "learning rate", "model", "validation accuracy", "test accuracy", "seeds", ""], rows),
            "",
            f"- Gain from the first to the last point at the sweep's rate: {at_sweep.text(signed=True)} "
            f"({at_sweep.verdict(a.margin)}).",
            f"- At each end's chosen rate ({chosen[0]:g} and {chosen[-1]:g}): {at_chosen.text(signed=True)} "
            f"({at_chosen.verdict(a.margin)}).",
            "",
        ]
    return lines[:-1]


def batch_norm_section(a: Analysis) -> list[str]:
    """What recomputing the batch-norm statistics after training does (the recipe option `recalibrate_batch_norm`)."""
    if not a.batch_norm:
        return ["No model with batch norm was evaluated."]
    estimates = {recipe: mean_estimate(changes) for recipe, changes in a.batch_norm.items()}
    rows = [
        [recipe, e.text(signed=True), len(a.batch_norm[recipe]), e.verdict(a.margin)] for recipe, e in estimates.items()
    ]
    images = max(
        run.metrics["recomputed_batch_norm"]["images"] for run in a.good if run.metrics.get("recomputed_batch_norm")
    )
    return [
        "Every model with batch norm is evaluated once more after its batch-norm statistics are recomputed on "
        f"{images:,} training images in inference mode (the recipe option `recalibrate_batch_norm`, "
        "widthdepth/training/batchnorm.py). The change in validation accuracy, paired per run, by recipe:",
        "",
        *table(["recipe", "validation accuracy, recomputed - as trained (95%)", "runs", "verdict"], rows),
    ]


def frontier_section(a: Analysis) -> list[str]:
    rows = [
        [g[0].name, f"{g[0].metrics['cost']['params']:,}", g[0].family, test_estimate(g).text(), len(g)]
        for g in a.frontier
    ]
    return [
        "The models (means over their seeds) that no model with fewer parameters beats on test accuracy:",
        "",
        *table(["model", "parameters", "family", "test accuracy (95%)", "seeds"], rows),
        "",
        "Families compare at equal cost only where their parameter ranges overlap: see the cost figure.",
    ]


def notebook_section(a: Analysis, reference: dict[str, float]) -> list[str]:
    """The notebook's models next to the notebook's numbers: validation accuracy at the last and at the best
    epoch, and test accuracy, each a mean over the model's seeds with its interval."""
    if not reference:
        return ["No notebook numbers are declared (`report.notebook`)."]
    rows = []
    for name, number in reference.items():
        declared = next(
            (g for g in seed_groups(a.runs) if any(run.name == name for run in g)), []
        )  # its seeds, however declared
        group = [run for run in declared if not run.failure]
        failed = f"{len(declared) - len(group)} failed" if len(group) < len(declared) else ""
        if not group:
            if declared:
                rows.append([name, f"{number:.3f}", "-", "-", "-", 0, f"all {len(declared)} failed (see Failed runs)"])
            continue
        last = mean_estimate([run.curves["val_accuracy"][-1] for run in group])
        best = mean_estimate([max(run.curves["val_accuracy"]) for run in group])
        epochs = ", ".join(str(int(np.argmax(run.curves["val_accuracy"])) + 1) for run in group)
        rows.append(
            [
                name,
                f"{number:.3f}",
                last.text(),
                f"{best.text()} (epoch {epochs})",
                test_estimate(group).text(),
                len(group),
                failed,
            ]
        )
    if not rows:
        return [f"None of the notebook's models ({', '.join(reference)}) is declared in `models`."]
    lines = table(
        [
            "model",
            "notebook (test, last epoch, official pixels)",
            "validation, last epoch",
            "validation, best epoch",
            "test",
            "seeds",
            "failed seeds",
        ],
        rows,
    )
    if max(row[-2] for row in rows) == 1:
        return lines + [
            "",
            "With one seed per model there is no interval: a difference between two of them is not known to "
            "exceed the seed-to-seed noise. Declare more seeds to compare them.",
        ]
    return lines + [
        "",
        "Each value is the mean over the model's seeds with its 95% interval; its width and depth steps are "
        "in the sweep tables above (notebook recipe).",
    ]


def failed_section(a: Analysis) -> list[str]:
    if not a.failed:
        return [
            "No run failed: none diverged (training loss non-finite or above 3 x ln(classes), "
            "`widthdepth/training/loop.py`, DIVERGED_LOSS_FACTOR) and none collapsed in inference mode."
        ]
    return [
        "These runs failed and are left out of every sweep, gain, comparison, fit, frontier and the best-model pick:",
        "",
    ] + [f"- {run.label} ({run.family}, {run.recipe} recipe): {run.failure}{collapse_cause(run)}" for run in a.failed]


def collapse_cause(run: Run) -> str:
    """For a run that collapsed in inference mode: whether recomputing its batch-norm statistics restores it."""
    recomputed = run.metrics.get("recomputed_batch_norm")
    train_mode = run.curves.get("train_accuracy") or []
    if run.metrics["diverged"] or not recomputed or not train_mode or recomputed["train_sample"]["accuracy"] is None:
        return ""
    score = recomputed["train_sample"]["accuracy"]
    cause = (
        "so the weights are sound and the collapse is in the batch-norm statistics"
        if score >= COLLAPSE_RATIO * train_mode[-1]
        else "still a collapse: the batch-norm statistics alone do not explain it"
    )
    return (
        f". With its batch-norm statistics recomputed on {recomputed['images']:,} training images "
        f"it scores {score:.4f} on "
        f"them and {recomputed['val']['accuracy']:.4f} on validation: {cause}"
    )


FIGURES = {
    "samples.png": "The first 25 training images",
    "sweeps.png": "Test accuracy along each sweep",
    "cost.png": "Test accuracy against parameters and multiply-accumulates",
    "scaling.png": "Test error against cost along each width sweep, with the fitted power laws",
    "epochs.png": "Validation accuracy per epoch",
    "confusion_best.png": "Confusion matrix of the best model by validation accuracy, test set",
}


def regime(
    info: dict[str, Any], data: Data, recipes: dict[str, Recipe], runs: list[Run], machines: list[str]
) -> list[str]:
    """What the numbers are about: data, recipes with their epochs, seeds, machine."""
    counts = {split: info["splits"][split]["count"] for split in ("train", "val", "test")}
    identity = f" (images sha256 {data.sha256[:12]})" if data.sha256 else ""
    lines = [
        f"- Data: {data.dataset}{identity}, {counts['train']:,} training, {counts['val']:,} validation and "
        f"{counts['test']:,} test images of {'x'.join(map(str, info['image_shape']))}."
    ]
    for name in dict.fromkeys(run.recipe for run in runs):
        r = recipes[name]
        members = [run for run in runs if run.recipe == name]
        seeds = sorted({run.declaration["seed"] for run in members})
        augment = ", ".join(a for a, on in (("flips", r.flip), (f"shifts of {r.translate:g}", r.translate)) if on)
        warmup = f" after {r.warmup_epochs} warm-up epochs" if r.warmup_epochs else ""
        batch_norm = "" if r.fused_batch_norm else ", Keras' batch-norm layer (not the fused kernel)"
        lines.append(
            f"- Recipe `{name}` ({len(members)} model{'s' if len(members) > 1 else ''}, "
            f"seeds {', '.join(map(str, seeds))}): {r.epochs} epochs at batch "
            f"{r.batch_size}, {r.optimizer} at {r.learning_rate:g} (momentum {r.momentum:g}, weight decay "
            f"{r.weight_decay:g}), {r.schedule} schedule{warmup}, "
            f"label smoothing {r.label_smoothing:g}, {augment or 'no augmentation'}{batch_norm}."
        )
    lines.append(f"- Machines (from the training logs): {'; '.join(machines)}.")
    return lines


def machines(runs: list[Run]) -> list[str]:
    """Each machine that trained runs, with how many; then each model whose seeds trained on different machines."""
    lines = [f"{machine or 'not recorded'} ({count} run{'s' * (count > 1)})" for machine, count in
             sorted(Counter(run.machine for run in runs).items())]  # fmt: skip
    for group in seed_groups(runs):
        if len({run.machine for run in group}) > 1:
            lines.append(f"{group[0].name}'s seeds trained on different machines")
    return lines


def write_report(
    folder: Path,
    info: dict[str, Any],
    data: Data,
    report: Report,
    a: Analysis,
    confusion_dir: Path,
    samples: tuple[np.ndarray, np.ndarray],
) -> None:
    """report.md, summary.csv, the figures and plots/*.json into `folder`, all from the analysis `a`
    (which holds the recipes); `report` gives the notebook's reference numbers, `samples` some
    training images and their labels, to show what the data looks like."""
    # evaluate's confusion records are of a model's first seed
    confusion = read_json(confusion_dir / f"{a.best[0].name}.json")
    epochs = epoch_records(a.runs)
    rows = [summary_row(run) for run in a.runs]
    cost = [
        {k: row[k] for k in ("model", "family", "params", "macs_per_image", "test_accuracy")}
        for row in rows
        if not row["failure"]
    ]
    sections = {
        "The answer": answer_section(a, info["splits"]["test"]["count"]),
        "Regime": regime(info, data, a.recipes, a.runs, machines(a.runs)),
        "Sweeps": sweep_tables(a),
        "Width or depth at equal cost": matched_cost_section(a),
        "Scaling with width": scaling_section(a),
        "Training budget": budget_section(a),
        "Learning rate at the ends of a sweep": rate_section(a),
        "Accuracy per parameter": frontier_section(a),
        "The notebook's models": notebook_section(a, report.notebook),
        "Failed runs": failed_section(a),
        "Batch-norm statistics recomputed": batch_norm_section(a),
        "Summary": [
            *table(SHORT_COLUMNS, [[row[c] for c in SHORT_COLUMNS] for row in rows]),
            "",
            "Every column of every model: [summary.csv](summary.csv).",
        ],
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
    for name, records in (
        ("epochs", epochs),
        ("sweeps", sweep_records(a.sweeps)),
        ("cost", cost),
        ("confusion_best", confusion),
    ):
        (folder / "plots" / f"{name}.json").write_text(json.dumps(records) + "\n")  # compact: 10,000 confusion records
    images, labels = samples
    save_image_grid(
        images, [info["classes"][label] for label in labels], FIGURES["samples.png"], folder / "samples.png"
    )
    plot_sweeps(a.sweeps, folder / "sweeps.png")
    plot_cost(a.good, folder / "cost.png")
    plot_scaling(a.fits, folder / "scaling.png")
    plot_epochs(epochs, a.runs, folder / "epochs.png")
    plot_confusion(
        confusion,
        info["classes"],
        f"Confusion matrix of {a.best[0].name} (best by validation accuracy; first seed), test set",
        folder / "confusion_best.png",
    )
