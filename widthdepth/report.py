"""The study's report: the analysis (widthdepth.study.Analysis) written as tables, figures and plot data.

The answer leads with the primary questions declared in params.yaml (`report.primary`), each a
difference of two models' means with its 95% interval (Welch, at its real degrees of freedom) and
a Holm-adjusted verdict at 5% family-wise; every other verdict is labelled exploratory, with its
count. "Equal" only within the margin declared before the run (`report.equivalence_margin`), and
only for differences. A failed run (diverged, non-finite, collapsed in inference mode) counts in no
mean and no verdict, and every point says how many of its seeds count. Every selection is made on
validation accuracy, never on the test set.
"""

from __future__ import annotations

import csv
import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from widthdepth.figures.charts import plot_confusion, plot_cost, plot_epochs, plot_scaling, plot_sweeps
from widthdepth.figures.grids import save_image_grid
from widthdepth.params import Data, Recipe
from widthdepth.questions import ReportParams
from widthdepth.results import CURVES
from widthdepth.stage import read_json
from widthdepth.statistics import mean_estimate, sampling_interval
from widthdepth.study import (
    COLLAPSE_RATIO,
    COSTS,
    FAMILY_WISE_ALPHA,
    MATCHED_COST_RATIO,
    POWER_STEP,
    POWER_STUDIES,
    Analysis,
    Group,
    Run,
    Sweep,
    recalibration_parts,
    seed_groups,
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
    """One record per measured sweep point: mean test accuracy over the seeds that did not fail, its 95%
    interval (or the value alone when one seed), how many seeds count; a point whose seeds all failed
    has no record (a gap)."""
    records = []
    for sweep in sweeps:
        for point in sweep.measured:
            estimate = point.estimate
            low, high = estimate.interval() or (estimate.value, estimate.value)
            records.append(
                {
                    "feature": f"{sweep.feature.name}: {sweep.feature.label}",
                    "sweep": sweep.title,
                    "value": point.value,
                    "test_accuracy": round(estimate.value, 4),
                    "low": round(low, 4),
                    "high": round(high, 4),
                    "seeds": point.seeds,
                    "models": point.names,
                }
            )
    return records


def table(header: list[str], rows: list[list[Any]]) -> list[str]:
    def cell(value: Any) -> str:
        return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)

    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + [
        "| " + " | ".join(map(cell, row)) + " |" for row in rows
    ]


def p_text(p: float | None) -> str:
    return "-" if p is None else f"{p:.4f}" if p >= 0.0001 else "< 0.0001"


def primary_section(a: Analysis) -> list[str]:
    """The declared questions: each difference with its interval, Welch and Holm p-values, verdict, and
    the first seeds' paired per-image difference."""
    if not a.primary:
        return [
            "No primary question is declared (`report.primary` in params.yaml): every verdict below is exploratory."
        ]
    family = len(a.primary)
    rows = []
    for answer, power in zip(a.primary, a.power):
        first, second = answer.first, answer.second
        pair = answer.paired
        per_image = (
            f"{pair.difference:+.4f} ± {pair.half_width:.4f} (McNemar p {p_text(pair.p_value)})"
            if pair
            else f"not paired: {answer.unpaired}"
        )
        rows.append(
            [
                answer.question.question,
                f"{first.names} ({first.seeds}) - {second.names} ({second.seeds})",
                answer.estimate.text(signed=True),
                p_text(answer.estimate.p_value),
                p_text(answer.holm_p),
                answer.verdict(a.margin, family),
                per_image,
                "-" if power is None else f"{power:.0%}",
            ]
        )
    return [
        f"The question{'s' * (family > 1)} this study exists to answer, declared in params.yaml (`report.primary`). "
        "Each is the difference in mean test accuracy between two models over their seeds, with its 95% "
        f"interval (Welch); its verdict is Holm-controlled at {FAMILY_WISE_ALPHA:.0%} family-wise across these "
        f"{family}: higher or lower only when its Holm-adjusted p-value is under {FAMILY_WISE_ALPHA:g}; equal only "
        f"when its interval at the family-wise level (Bonferroni, {1 - FAMILY_WISE_ALPHA / family:.1%}) lies within "
        f"±{a.margin:g}. The last column compares the two models' "
        "first seeds image by image on the same test images (the test set's own sampling error of the difference).",
        "",
        *table(
            [
                "question",
                "first - second",
                "difference (95%)",
                "p (Welch)",
                "p (Holm)",
                "verdict",
                "first seeds, per image (95%)",
                f"power at {POWER_STEP:+g}",
            ],
            rows,
        ),
        "",
        f"Power: the chance that the family calls a question higher when its first model is truly {POWER_STEP:g} "
        f"better and every other model's mean is unchanged, at the seed-to-seed spread its models show, in "
        f"{POWER_STUDIES:,} made-up studies of this design answered by the same code "
        "(`widthdepth.study.primary_power`); `-` where a model has fewer than two seeds that count or seeds that do "
        "not vary.",
    ]


def spans_section(a: Analysis) -> list[str]:
    """Each sweep's whole gain: its last measured point against its first (exploratory)."""
    lines = []
    for sweep in a.sweeps:
        span = sweep.span()
        if span is None:
            lines.append(f"- {sweep.title}: fewer than two points with a seed that did not fail.")
            continue
        first, last, gain = span
        lines.append(
            f"- {sweep.title}: {last.value} against {first.value} {sweep.feature.label} ({last.names}, {last.seeds}, "
            f"against {first.names}, {first.seeds}): {gain.text(signed=True)} test accuracy: {gain.verdict(a.margin)}."
        )
    return lines or ["No sweep: no two models of one family and recipe differ in width, depth or branches alone."]


def answer_section(a: Analysis, test_images: int) -> list[str]:
    """The primary questions, how many exploratory verdicts the rest draws, and the best model."""
    best, test = a.best, a.best.estimate
    low, high = sampling_interval(test.value, test_images)
    return [
        *primary_section(a),
        "",
        f"Beside the primary family, this report draws {a.exploratory} exploratory verdicts (sweep steps and spans, "
        "equal-cost pairs, budget, learning-rate and batch-norm checks), each at 95% alone, unadjusted: about one "
        "in twenty of them would be flagged by chance alone.",
        "",
        f"Best model by validation accuracy: {best.name} (validation {best.val_estimate.text()}, test "
        f"{test.text()}, {best.seeds}, {best.runs[0].metrics['cost']['params']:,} parameters).",
        "",
        f"Every model is scored on the same {test_images:,} test images, whose own sampling error the seeds do "
        f"not see: an accuracy of {test.value:.4f} measured on them is known only to {low:.4f}-{high:.4f} "
        "(Wilson 95%) as an estimate of accuracy on fresh images. The intervals over seeds compare models on these "
        "images; the primary table's last column gives the test images' share of a difference.",
    ]


def point_cells(point: Group) -> tuple[str, str]:
    """A point's mean test accuracy over the seeds that count, and how many count; `-` for a gap."""
    if not point.good:
        return "- (gap: every seed failed)", point.seeds
    as_scored = point.as_scored
    scored = f"; over all {len(point.runs)} as scored: {as_scored.text()}" if as_scored is not None else ""
    return point.estimate.text() + scored, point.seeds


def sweep_tables(a: Analysis, test_images: int) -> list[str]:
    """Per sweep: each point, its cost, mean test accuracy with its interval, seeds, the step to the
    next point and its verdict (exploratory); first, the test set's own error at the sweeps' range."""
    means = [p.estimate.value for s in a.sweeps for p in s.measured]
    if not means:
        return ["No sweep: no two models of one family and recipe differ in width, depth or branches alone."]
    ends = " and ".join(
        f"{m:.4f} is {low:.4f}-{high:.4f}"
        for m in (min(means), max(means))
        for low, high in [sampling_interval(m, test_images)]
    )
    lines = [
        "Intervals are over seeds, on the same test images. Each accuracy also carries the test set's own "
        f"sampling error, which seeds do not see: {ends} (Wilson 95%, {test_images:,} images).",
        "",
    ]
    for sweep in a.sweeps:
        steps = sweep.steps() + [None]
        rows = []
        for point, step in zip(sweep.points, steps):
            accuracy, seeds = point_cells(point)
            rows.append(
                [
                    point.value,
                    f"{point.cost('params'):,.0f}",
                    f"{point.cost('macs_per_image'):,.0f}",
                    accuracy,
                    seeds,
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
    return lines


def matched_cost_section(a: Analysis) -> list[str]:
    """Wider against deeper at equal cost: measured models only, no interpolation (exploratory)."""
    if not a.matched:
        return [
            f"No wider, shallower model and narrower, deeper model of one family and recipe cost within "
            f"{MATCHED_COST_RATIO:g}x of each other."
        ]
    rows = [
        [
            COSTS[m.cost],
            f"{m.wider.names} ({m.wider.seeds})",
            f"{m.wider.cost(m.cost):,.0f}",
            f"{m.deeper.names} ({m.deeper.seeds})",
            f"{m.deeper.cost(m.cost):,.0f}",
            m.wider.estimate.text(),
            m.deeper.estimate.text(),
            m.gap.text(signed=True),
            m.gap.verdict(a.margin),
        ]
        for m in a.matched
    ]
    return [
        f"Every wider, shallower model against every narrower, deeper one of the same family and recipe whose "
        f"cost is within {MATCHED_COST_RATIO:g}x of it, both measured (no interpolation): each row says both costs.",
        "",
        *table(
            [
                "cost",
                "wider",
                "its cost",
                "deeper",
                "its cost",
                "wider: test",
                "deeper: test",
                "wider - deeper (95%)",
                "verdict",
            ],
            rows,
        ),  # fmt: skip
    ]


def scaling_section(a: Analysis) -> list[str]:
    """Power laws of test error along each width sweep, cited only when their held-out check on validation passes."""
    rows = []
    for f in a.fits:
        check = {True: "passed", False: "failed", None: "too few points to check"}
        exponent = f.alpha.text() if f.check else "not cited"
        rows.append(
            [
                f.sweep.title,
                COSTS[f.cost],
                exponent,
                check[f.check],
                check[f.test_check],
                f"{f.predicted:.4f}",
                f"{f.measured:.4f}",
            ]
        )
    if not rows:
        return ["No width sweep has three or more measured points."]
    return [
        *table(
            [
                "sweep",
                "against",
                "alpha, test error (95%)",
                "held-out check, validation (decides)",
                "held-out check, test",
                "held out: predicted test error",
                "measured",
            ],
            rows,
        ),
        "",
        "error ≈ a N^-alpha, fitted in log-log to every seed's error. The check refits without the largest "
        "point and asks whether that point's mean error lies in the fit's 95% prediction interval; it is made on "
        "validation error, which decides whether the exponent (of the test-error fit) is cited, and reported on "
        "test error. An exponent whose check fails or cannot be made is not cited. The fits have no floor, so "
        "alpha describes this range of sizes, not the limit; it is a rate, so no margin applies to it.",
    ]


def budget_section(a: Analysis) -> list[str]:
    if not a.controls:
        return ["No model was trained at two budgets (declare one again with a recipe that differs only in `epochs`)."]
    rows = [
        [
            c.base.names,
            c.base_epochs,
            f"{c.base.estimate.text()} ({c.base.seeds})",
            c.longer.names,
            c.longer_epochs,
            f"{c.longer.estimate.text()} ({c.longer.seeds})",
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
        "Exploratory. A gain whose interval lies above 0 means this budget leaves accuracy on the table: read the "
        "sweeps as comparisons at this budget, not at convergence.",
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
                group.names,
                group.val_estimate.text(),
                group.estimate.text(),
                group.seeds,
                "chosen" if lr == pick else "",
            ]
            for point, rates, pick in zip((sweep.points[0], sweep.points[-1]), check.ends, chosen)
            for lr, group in rates.items()
        ]
        at_sweep, at_chosen = check.gain_at_sweep_rate, check.gain_at_chosen_rates
        lines += [
            f"{sweep.family} {sweep.feature.name} sweep ({sweep.recipe} recipe), its ends at several learning rates; "
            "each end's rate is chosen on validation accuracy (exploratory):",
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
    """What recomputing the batch-norm statistics after training does (the recipe option
    `recalibrate_batch_norm`), collapsed runs included and shown apart."""
    if not a.recalibrations:
        return ["No model with batch norm was evaluated."]
    rows = []
    for recipe, label, changes in recalibration_parts(a.recalibrations):
        e = mean_estimate(changes)
        rows.append([recipe, label, e.text(signed=True), len(changes), e.verdict(a.margin)])
    images = max(r.run.metrics["recomputed_batch_norm"]["images"] for r in a.recalibrations)
    return [
        "Every model with batch norm is evaluated once more after its batch-norm statistics are recomputed on "
        f"{images:,} training images in inference mode (the recipe option `recalibrate_batch_norm`, "
        "widthdepth/training/batchnorm.py). The change in validation accuracy, paired per run, by recipe; runs "
        "that collapsed in inference mode are included and also shown apart (exploratory):",
        "",
        *table(["recipe", "runs of it", "validation accuracy, recomputed - as trained (95%)", "runs", "verdict"], rows),
    ]


def frontier_section(a: Analysis) -> list[str]:
    rows = [
        [g.names, f"{g.cost('params'):,.0f}", g.runs[0].family, g.val_estimate.text(), g.estimate.text(), g.seeds]
        for g in a.frontier
    ]
    return [
        "The models (means over their seeds) that no model with fewer parameters beats on validation accuracy "
        "(chosen on validation; their test accuracy reported):",
        "",
        *table(["model", "parameters", "family", "validation accuracy (95%)", "test accuracy (95%)", "seeds"], rows),
        "",
        "Families compare at equal cost only where their parameter ranges overlap: see the cost figure.",
    ]


def notebook_section(a: Analysis, reference: dict[str, float]) -> list[str]:
    """The notebook's models next to the notebook's numbers, over all their seeds as scored and over the
    seeds that did not collapse, with how many collapsed."""
    if not reference:
        return ["No notebook numbers are declared (`report.notebook`)."]
    groups = {g.name: g for g in seed_groups(a.runs)}
    rows = []
    for name, number in reference.items():
        if name not in groups:
            continue
        group = groups[name]
        scored = [run for run in group.runs if math.isfinite(run.curves["val_accuracy"][-1])]
        last = mean_estimate([run.curves["val_accuracy"][-1] for run in scored])
        best = mean_estimate([max(run.curves["val_accuracy"]) for run in scored])
        failed = len(group.runs) - len(group.good)
        rows.append(
            [
                name,
                f"{number:.3f}",
                last.text(),
                best.text(),
                (group.as_scored or group.estimate).text(),  # every seed as scored: the same when none failed
                group.estimate.text() if group.good else "-",
                f"{failed} of {len(group.runs)}",
            ]
        )
    if not rows:
        return [f"None of the notebook's models ({', '.join(reference)}) is declared in `models`."]
    return table(
        [
            "model",
            "notebook (test, last epoch, one run, official pixels)",
            "validation, last epoch",
            "validation, best epoch",
            "test, every seed as scored",
            "test, seeds that did not fail",
            "failed seeds",
        ],
        rows,
    ) + [
        "",
        "The notebook recipe's last-epoch accuracy swings between epochs and its runs can collapse in inference "
        "mode (see Failed runs): the notebook's single numbers are compared with the mean over every seed as its "
        "saved model scored, failed ones included, and with the mean over the seeds that did not fail. Each value "
        "is a mean over seeds with its 95% interval.",
    ]


def failed_section(a: Analysis) -> list[str]:
    if not a.failed:
        return [
            "No run failed: none diverged (training loss non-finite or above 3 x ln(classes), "
            "`widthdepth/training/loop.py`, DIVERGED_LOSS_FACTOR), none has a non-finite metric and none collapsed "
            "in inference mode."
        ]
    counts = [f"{g.name}: {g.seeds}" for g in seed_groups(a.runs) if len(g.good) < len(g.runs)]
    return [
        "These runs failed and count in no mean and no verdict (every point and table says how many of its seeds "
        f"count; a point whose seeds all failed is a gap). Models with failed seeds: {'; '.join(counts)}.",
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
        count = len(seed_groups(members))
        augment = ", ".join(a for a, on in (("flips", r.flip), (f"shifts of {r.translate:g}", r.translate)) if on)
        warmup = f" after {r.warmup_epochs} warm-up epochs" if r.warmup_epochs else ""
        batch_norm = "" if r.fused_batch_norm else ", Keras' batch-norm layer (not the fused kernel)"
        lines.append(
            f"- Recipe `{name}` ({count} model{'s' * (count > 1)}, {len(members)} runs, "
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
        if len({run.machine for run in group.runs}) > 1:
            lines.append(f"{group.name}'s seeds trained on different machines")
    return lines


def write_report(
    folder: Path,
    info: dict[str, Any],
    data: Data,
    report: ReportParams,
    a: Analysis,
    confusion_dir: Path,
    samples: tuple[np.ndarray, np.ndarray],
) -> None:
    """report.md, summary.csv, the figures and plots/*.json into `folder`, all from the analysis `a`
    (which holds the recipes); `report` gives the notebook's reference numbers, `samples` some
    training images and their labels, to show what the data looks like."""
    # evaluate's confusion records are of a model's first seed
    confusion = read_json(confusion_dir / f"{a.best.name}.json")
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
        "Along each sweep (exploratory)": spans_section(a),
        "Sweeps": sweep_tables(a, info["splits"]["test"]["count"]),
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
        f"Confusion matrix of {a.best.name} (best by validation accuracy; first seed), test set",
        folder / "confusion_best.png",
    )
