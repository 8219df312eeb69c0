"""What the study's results say, computed once (`analyse`): the primary questions, sweeps,
equal-cost comparisons, scaling fits, budget and learning-rate controls, the frontier and the
failed runs.

The primary questions are declared in params.yaml (`report.primary`) before the run: each is a
difference between two models' mean test accuracy, and their "higher" and "lower" verdicts are
Holm-controlled at 5% family-wise. Everything else is exploratory: each comparison at 95% alone.

A sweep is found, not declared: models of one family and recipe whose declarations are
equal except for the knobs behind one feature (width, depth or branches) and whose
other features are equal too. Models declared alike except for `seed` are the seeds of
one point. A failed seed counts in no mean and no verdict, but every point says how many of
its seeds count ("2 of 3 seeds"), and a point whose seeds all failed is a gap. Every
selection (the best model, the frontier, a learning rate, whether a fit is cited) is made
on validation accuracy, never on the test set.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from widthdepth.architectures import FAMILIES, Feature, Model
from widthdepth.params import Recipe
from widthdepth.questions import Question
from widthdepth.stage import StageError
from widthdepth.statistics import Estimate, Paired, difference, holm, mean_estimate, paired, slope

# The family-wise error rate of the primary questions' "higher" and "lower" verdicts (Holm).
FAMILY_WISE_ALPHA = 0.05


# A run collapsed when its saved model (inference mode: batch-norm statistics, no dropout)
# scores under half its training-mode accuracy on the training split, or when its last
# validation accuracy is this far below its best epoch's, and by more than three standard
# errors of an accuracy measured on the validation images (so that few images cannot fake it).
COLLAPSE_RATIO = 0.5
COLLAPSE_DROP = 0.15


def finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@dataclass
class Run:
    """One trained model: its declaration and its metrics."""

    name: str
    declaration: dict[str, Any]  # as in params.yaml, with the family's defaults filled in
    spec: dict[str, Any]  # checked and expanded (architectures.check_spec)
    metrics: dict[str, Any]  # metrics/<name>/seed_<k>.json
    # per-epoch train_accuracy, val_accuracy, ... (runs/<name>/seed_<k>.json, copied from the training log)
    curves: dict[str, list[float]] = field(default_factory=dict)
    val_images: int = 0  # how many images its validation accuracy is measured on
    machine: str = ""  # the machine it trained on, as its training log recorded it

    @property
    def family(self) -> str:
        return self.declaration["family"]

    @property
    def recipe(self) -> str:
        return self.declaration["recipe"]

    @property
    def test_accuracy(self) -> float:
        return self.metrics["test"]["accuracy"]

    @property
    def val_accuracy(self) -> float:
        return self.metrics["val"]["accuracy"]

    @property
    def failure(self) -> str | None:
        """Why this run counts in no mean and no verdict, or None: it diverged, a metric is not a
        finite number, or it collapsed in inference mode."""
        if self.metrics["diverged"]:
            return f"diverged in epoch {self.metrics['diverged_epoch']}"
        bad = [split for split in ("train", "val", "test") if not finite(self.metrics[split]["accuracy"])]
        if bad:
            return f"non-finite metric: {', '.join(bad)} accuracy is {self.metrics[bad[0]]['accuracy']!r}"
        train_mode = [a for a in self.curves.get("train_accuracy", []) if finite(a)]
        inference = self.metrics["train"]["accuracy"]
        if train_mode and inference < COLLAPSE_RATIO * train_mode[-1]:
            return (
                f"collapsed in inference mode: the saved model scores {inference:.4f} on its training split, "
                f"against {train_mode[-1]:.4f} in training mode in its last epoch"
            )
        val = [a for a in self.curves.get("val_accuracy", []) if finite(a)]
        noise = 3 * math.sqrt(max(val) * (1 - max(val)) / self.val_images) if val and self.val_images else 0.0
        if val and val[-1] < max(val) - max(COLLAPSE_DROP, noise):
            return f"collapsed: validation accuracy {val[-1]:.4f} after its last epoch, {max(val):.4f} at its best"
        return None

    def feature(self, name: str) -> int | None:
        return next((f.value(self.spec) for f in FAMILIES[self.family].features if f.name == name), None)

    @property
    def seed(self) -> int:
        return self.declaration["seed"]

    @property
    def label(self) -> str:
        """The model's name, and its seed when it declares several: unique per run."""
        return self.name if self.declaration.get("seeds", 1) == 1 else f"{self.name}/seed_{self.seed}"

    def key(self, without: frozenset[str] = frozenset()) -> str:
        """The declaration minus its seeds and the given knobs, as a comparable string."""
        return json.dumps(
            {k: v for k, v in self.declaration.items() if k not in ("seed", "seeds") and k not in without},
            sort_keys=True,
        )


def make_run(model: Model, metrics: dict[str, Any], seed: int | None = None) -> Run:
    """One run of `model`: its seed `seed` (default: its first)."""
    declaration = {**model.declaration, "seed": model.seeds[0] if seed is None else seed}
    return Run(model.name, declaration, model.spec, metrics)


@dataclass
class Group:
    """One model's runs, every declared seed: the failed ones count in no mean and no verdict."""

    runs: list[Run]

    @property
    def name(self) -> str:
        return self.runs[0].name

    @property
    def names(self) -> str:
        """Its runs' model names: one, or one per seed where each seed is declared as a model."""
        return ", ".join(dict.fromkeys(run.name for run in self.runs))

    @property
    def good(self) -> list[Run]:
        return [run for run in self.runs if not run.failure]

    @property
    def seeds(self) -> str:
        """`3 seeds`, or `2 of 3 seeds` when some failed: how many runs the numbers rest on."""
        n, total = len(self.good), len(self.runs)
        return f"{total} seed{'s' * (total > 1)}" if n == total else f"{n} of {total} seeds"

    @property
    def estimate(self) -> Estimate:
        """Mean test accuracy over the seeds that did not fail, with its 95% interval."""
        return mean_estimate([run.test_accuracy for run in self.good])

    @property
    def val_estimate(self) -> Estimate:
        return mean_estimate([run.val_accuracy for run in self.good])

    @property
    def as_scored(self) -> Estimate | None:
        """Where seeds failed: the mean test accuracy over every seed as its saved model scored (its finite
        values), which excluding failed runs by their outcome would raise; None when none failed."""
        if len(self.good) == len(self.runs):
            return None
        return mean_estimate([run.test_accuracy for run in self.runs if finite(run.test_accuracy)])

    def cost(self, cost: str) -> float:
        return float(np.mean([run.metrics["cost"][cost] for run in self.runs]))


def seed_groups(runs: list[Run]) -> list[Group]:
    """Runs grouped by declaration: each group is one model trained with one or more seeds."""
    groups: dict[str, list[Run]] = defaultdict(list)
    for run in runs:
        groups[run.key()].append(run)
    return [Group(members) for members in groups.values()]


@dataclass
class Point(Group):
    """One value of a sweep's feature: a model and all its seeds."""

    value: int = 0


@dataclass
class Sweep:
    feature: Feature
    family: str
    recipe: str
    fixed: str  # the other features' values, in words
    points: list[Point] = field(default_factory=list)

    @property
    def title(self) -> str:
        return f"{self.family} {self.feature.name} ({self.recipe} recipe{', ' + self.fixed if self.fixed else ''})"

    @property
    def models(self) -> list[str]:
        return [point.names for point in self.points]

    @property
    def measured(self) -> list[Point]:
        """The points with at least one seed that did not fail."""
        return [point for point in self.points if point.good]

    def steps(self) -> list[Estimate | None]:
        """Each point's mean test accuracy minus the previous point's (Welch); None across a gap."""
        return [
            difference([r.test_accuracy for r in b.good], [r.test_accuracy for r in a.good])
            if a.good and b.good
            else None
            for a, b in zip(self.points, self.points[1:])
        ]

    def span(self) -> tuple[Point, Point, Estimate] | None:
        """The last measured point's mean test accuracy minus the first's: the sweep's whole gain, a
        difference between two points (never a slope)."""
        if len(self.measured) < 2:
            return None
        first, last = self.measured[0], self.measured[-1]
        return first, last, difference([r.test_accuracy for r in last.good], [r.test_accuracy for r in first.good])


def find_sweeps(runs: list[Run]) -> list[Sweep]:
    """Every set of two or more values of one feature, all else equal.

    A set where one value holds models that differ in more than their seed is not a
    clean sweep (some other knob varies too) and is left out.
    """
    sweeps = []
    for family, features in ((f.name, f.features) for f in FAMILIES.values()):
        for feature in features:
            others = [f for f in features if f is not feature]
            groups: dict[tuple, list[Run]] = defaultdict(list)
            for run in (r for r in runs if r.family == family):
                others_values = tuple(run.feature(f.name) for f in others)
                groups[(run.recipe, run.key(feature.knobs), others_values)].append(run)
            for (recipe, _, others_values), members in groups.items():
                by_value: dict[int, list[Run]] = defaultdict(list)
                for run in members:
                    by_value[run.feature(feature.name)].append(run)
                clean = all(len({run.key() for run in point}) == 1 for point in by_value.values())
                if len(by_value) < 2 or not clean:
                    continue
                fixed = ", ".join(f"{v} {f.label}" for f, v in zip(others, others_values))
                sweep = Sweep(feature, family, recipe, fixed)
                sweep.points = [Point(by_value[value], value) for value in sorted(by_value)]
                sweeps.append(sweep)
    return sweeps


def frontier(groups: list[Group], cost: Callable[[Group], float]) -> list[Group]:
    """The models (over their seeds) that no cheaper model beats on mean validation accuracy, cheapest
    first: chosen on validation, so that their test accuracy is an honest estimate."""
    best, kept = -1.0, []
    for group in sorted((g for g in groups if g.good), key=lambda g: (cost(g), -g.val_estimate.value)):
        if group.val_estimate.value > best:
            kept.append(group)
            best = group.val_estimate.value
    return kept


def accuracy_difference(first: Group, second: Group) -> Estimate:
    """first's mean test accuracy minus second's, over the seeds of each that did not fail (Welch)."""
    return difference([r.test_accuracy for r in first.good], [r.test_accuracy for r in second.good])


@dataclass
class BudgetControl:
    """One model trained at its recipe's epochs and again at more: what the training budget leaves on the table."""

    base: Group
    longer: Group  # the same declaration under a recipe that differs only in `epochs`
    base_epochs: int
    longer_epochs: int

    @property
    def gain(self) -> Estimate:
        return accuracy_difference(self.longer, self.base)


def recipe_variants(runs: list[Run], recipes: dict[str, Recipe], key: str) -> list[dict[Any, Group]]:
    """Seed groups declared alike but for recipes that differ in `key` only, as {value of `key`: group};
    each set of two or more once."""

    def without(recipe: str) -> str:
        return json.dumps({k: v for k, v in recipes[recipe].model_dump().items() if k != key}, sort_keys=True)

    sets: dict[tuple[str, str], dict[Any, Group]] = defaultdict(dict)
    for group in seed_groups(runs):
        run = group.runs[0]
        sets[(run.key(frozenset({"recipe"})), without(run.recipe))][getattr(recipes[run.recipe], key)] = group
    return [dict(sorted(variants.items())) for variants in sets.values() if len(variants) > 1]


def budget_controls(runs: list[Run], recipes: dict[str, Recipe]) -> list[BudgetControl]:
    """Every pair of models declared alike but for a recipe that differs from the other only in epochs (more)."""
    controls = []
    for variants in recipe_variants(runs, recipes, "epochs"):
        epochs = list(variants)  # ascending
        controls += [
            BudgetControl(variants[short], variants[long], short, long)
            for i, short in enumerate(epochs)
            for long in epochs[i + 1 :]
            if variants[short].good and variants[long].good
        ]
    return controls


@dataclass
class RateCheck:
    """The ends of a sweep, each trained at several learning rates, all else equal: does the sweep's
    gain survive when each end gets the rate chosen for it on validation?"""

    sweep: Sweep
    ends: list[dict[float, Group]]  # per end (first and last point): learning rate -> seed group
    rate: float  # the sweep's own rate

    @property
    def chosen(self) -> list[float]:
        """Each end's rate of the highest mean validation accuracy (never test)."""
        return [
            max((lr for lr in rates if rates[lr].good), key=lambda lr: rates[lr].val_estimate.value)
            for rates in self.ends
        ]

    @property
    def gain_at_sweep_rate(self) -> Estimate:
        first, last = (rates[self.rate] for rates in self.ends)
        return accuracy_difference(last, first)

    @property
    def gain_at_chosen_rates(self) -> Estimate:
        first, last = (rates[lr] for rates, lr in zip(self.ends, self.chosen))
        return accuracy_difference(last, first)


def rate_checks(sweeps: list[Sweep], runs: list[Run], recipes: dict[str, Recipe]) -> list[RateCheck]:
    """Every sweep whose first and last points were also trained at other learning rates; where
    several sweeps share those ends (the same sweep at each rate), the one with the most points."""
    variants = recipe_variants(runs, recipes, "learning_rate")
    checks, seen = [], []
    for sweep in sorted(sweeps, key=lambda s: -len(s.points)):
        rate = recipes[sweep.recipe].learning_rate
        ends = [
            next(
                (rates for rates in variants if rate in rates and rates[rate].runs[0].key() == point.runs[0].key()),
                None,
            )
            for point in (sweep.points[0], sweep.points[-1])
        ]
        measured = all(ends) and all(group.good for rates in ends for group in rates.values())
        if measured and ends not in seen:
            checks.append(RateCheck(sweep, ends, rate))
            seen.append(ends)
    return checks


@dataclass
class Recalibration:
    """One run evaluated again after its batch-norm statistics were recomputed (evaluate's
    `recomputed_batch_norm`), collapsed runs included: they are what it exists to explain."""

    run: Run
    change: float  # validation accuracy, recomputed - as trained


def recalibrations(runs: list[Run]) -> list[Recalibration]:
    return [
        Recalibration(run, recomputed["val"]["accuracy"] - run.val_accuracy)
        for run in runs
        if (recomputed := run.metrics.get("recomputed_batch_norm"))
        and finite(recomputed["val"]["accuracy"])
        and finite(run.val_accuracy)
    ]


def recalibration_parts(recalibrations: list[Recalibration]) -> list[tuple[str, str, list[float]]]:
    """Per recipe: (recipe, which runs, their changes) over every run and, where some collapsed, apart
    for the collapsed runs and the others: each part is one verdict of the report."""
    parts = []
    for recipe in dict.fromkeys(r.run.recipe for r in recalibrations):
        members = [r for r in recalibrations if r.run.recipe == recipe]
        collapsed = [r.change for r in members if r.run.failure]
        parts.append((recipe, "every run", [r.change for r in members]))
        if collapsed and len(collapsed) < len(members):
            parts.append((recipe, "collapsed runs", collapsed))
            parts.append((recipe, "the other runs", [r.change for r in members if not r.run.failure]))
    return parts


COSTS = {"params": "parameters", "macs_per_image": "multiply-accumulates per image"}
# Two models count as of equal cost when one costs at most this many times the other; each row shows both.
MATCHED_COST_RATIO = 1.5


@dataclass
class MatchedPair:
    """A wider, shallower model against a narrower, deeper one of the same family and recipe, both
    measured, their costs within MATCHED_COST_RATIO: no interpolation."""

    wider: Group
    deeper: Group
    cost: str  # a key of COSTS

    @property
    def gap(self) -> Estimate:
        return accuracy_difference(self.wider, self.deeper)


def matched_pairs(runs: list[Run], cost: str) -> list[MatchedPair]:
    groups = [g for g in seed_groups(runs) if g.good and g.runs[0].feature("width") and g.runs[0].feature("depth")]
    pairs = []
    for wider in groups:
        for deeper in groups:
            a, b = wider.runs[0], deeper.runs[0]
            if (a.family, a.recipe) != (b.family, b.recipe):
                continue
            ratio = max(wider.cost(cost), deeper.cost(cost)) / min(wider.cost(cost), deeper.cost(cost))
            if a.feature("width") > b.feature("width") and a.feature("depth") < b.feature("depth"):
                if ratio <= MATCHED_COST_RATIO:
                    pairs.append(MatchedPair(wider, deeper, cost))
    return sorted(pairs, key=lambda p: (p.wider.runs[0].family, p.wider.cost(cost)))


@dataclass
class ScalingFit:
    """Error against cost along a width sweep as a power law, error = a * cost^-alpha: a line in log-log,
    fitted to every seed's error. Whether it is cited is decided on validation: fitted to validation
    error without the largest point, it must predict that point's mean validation error within the 95%
    prediction interval (from the fit's residuals at its own degrees of freedom). The cited exponent is
    the test-error fit's, whose own check is reported beside it."""

    sweep: Sweep
    cost: str
    alpha: Estimate  # the test-error exponent, with its interval from the seed-level fit
    log_a: float
    predicted: float  # the largest point's test error, predicted by the test-error fit without it
    measured: float  # its mean test error, measured
    check: bool | None  # the validation check passed (decides whether alpha is cited); None: too few points
    test_check: bool | None  # the same check on test error, reported only

    def predict(self, cost: float) -> float:
        return math.exp(self.log_a) * cost**-self.alpha.value


def held_out_check(xs: list[float], ys: list[float], held: int, x0: float, y0: float) -> tuple[float, bool | None]:
    """Fit y on x without the last `held` values; the prediction at x0, and whether y0 lies in its
    95% prediction interval for a mean of `held` values (None: too few points to tell)."""
    hx, hy = np.array(xs[:-held]), np.array(ys[:-held])
    if len(set(hx)) < 2:
        return math.nan, None
    b, a = np.polyfit(hx, hy, 1)
    predicted, df = float(a + b * x0), len(hx) - 2
    if df < 1:
        return predicted, None
    residual = hy - (a + b * hx)
    s2 = float(residual @ residual) / df
    se = math.sqrt(s2 * (1 / held + 1 / len(hx) + (x0 - hx.mean()) ** 2 / float(((hx - hx.mean()) ** 2).sum())))
    return predicted, abs(y0 - predicted) <= Estimate(0.0, se, df).half_width() + 1e-9 if se > 0 else None


def scaling_fits(sweeps: list[Sweep], cost: str) -> list[ScalingFit]:
    """A fit per width sweep of three or more measured points, checked on its largest point."""
    fits = []
    for sweep in (s for s in sweeps if s.feature.name == "width" and len(s.measured) >= 3):
        points = sorted(sweep.measured, key=lambda p: p.cost(cost))
        x = [math.log(p.cost(cost)) for p in points for _ in p.good]
        held, x0 = len(points[-1].good), math.log(points[-1].cost(cost))

        def log_error(accuracies: list[float]) -> list[float]:
            return [math.log(max(1 - a, 1e-6)) for a in accuracies]

        val = log_error([r.val_accuracy for p in points for r in p.good])
        test = log_error([r.test_accuracy for p in points for r in p.good])
        _, check = held_out_check(x, val, held, x0, log_error([points[-1].val_estimate.value])[0])
        measured = 1 - points[-1].estimate.value
        predicted, test_check = held_out_check(x, test, held, x0, log_error([points[-1].estimate.value])[0])
        fitted = slope(x, test)
        log_a = float(np.mean(test) - fitted.value * np.mean(x))
        alpha = Estimate(-fitted.value, fitted.se, fitted.df)
        fits.append(ScalingFit(sweep, cost, alpha, log_a, math.exp(predicted), measured, check, test_check))
    return fits


@dataclass
class Answer:
    """A primary question's answer: the difference of two models' mean test accuracy over their seeds,
    with its Holm-adjusted p-value, and the same two models' first seeds compared image by image."""

    name: str
    question: Question
    first: Group
    second: Group
    estimate: Estimate
    holm_p: float | None  # None: no interval (a single seed or no spread), so no test
    paired: Paired | None  # the first seeds' per-image outcomes; None with `unpaired` saying why
    unpaired: str = ""

    def verdict(self, margin: float, family: int) -> str:
        """Higher or lower when the Holm-adjusted p-value is under FAMILY_WISE_ALPHA; equal when the
        interval at the family-wise level (Bonferroni: 1 - alpha / family) lies within ±margin."""
        if self.holm_p is None:
            return self.estimate.verdict(margin)
        level = 1 - FAMILY_WISE_ALPHA / family
        if self.holm_p < FAMILY_WISE_ALPHA:
            return (
                self.estimate.verdict(margin, 0.95).replace("higher", "higher (Holm)").replace("lower", "lower (Holm)")
            )
        low, high = self.estimate.interval(level)
        if -margin < low and high < margin:
            return f"equal (within ±{margin:g}, {level:.1%} interval)"
        return "inconclusive" if self.estimate.p_value >= 0.05 else "not shown after Holm's correction (inconclusive)"


def primary_answers(
    questions: dict[str, Question], runs: list[Run], outcomes: dict[str, tuple[list[str], np.ndarray]]
) -> list[Answer]:
    """Each declared question answered, the family's p-values adjusted together (Holm). `outcomes` holds,
    per model, the actual class of each test image and whether its first seed got it right."""
    by_name = {run.name: group for group in seed_groups(runs) for run in group.runs}
    answers = []
    for name, question in questions.items():
        first, second = (by_name[model] for model in question.models)
        estimate = accuracy_difference(first, second)
        pair, unpaired = None, ""
        heads = [group.runs[0] for group in (first, second)]
        if any(run.failure for run in heads):
            unpaired = "a first seed failed"
        elif any(model not in outcomes for model in question.models):
            unpaired = "no per-image record of a first seed"
        elif outcomes[question.models[0]][0] != outcomes[question.models[1]][0]:
            unpaired = "the two records list different test images"
        else:
            pair = paired(outcomes[question.models[0]][1], outcomes[question.models[1]][1])
        answers.append(Answer(name, question, first, second, estimate, None, pair, unpaired))
    tested = [a for a in answers if a.estimate.has_interval]
    for answer, adjusted in zip(tested, holm([a.estimate.p_value for a in tested])):
        answer.holm_p = adjusted
    return answers


def simulated_calls(
    questions: dict[str, Question],
    means: dict[str, float],
    noise: dict[str, float],
    seeds: int,
    margin: float,
    studies: int,
    seed: int = 0,
) -> np.ndarray:
    """Made-up studies of one design, answered by `primary_answers` itself: each model's seeds drawn from
    a normal of its true mean and seed-to-seed spread (`noise`). Per study and question: +1 when called
    higher (Holm), -1 lower, 0 otherwise."""
    rng = np.random.default_rng(seed)
    models = list(dict.fromkeys(model for q in questions.values() for model in q.models))
    metrics = {"diverged": False, "train": {"accuracy": 0.5}, "val": {"accuracy": 0.5}}
    calls = np.zeros((studies, len(questions)), dtype=int)
    for study in range(studies):
        runs = [
            Run(model, {"model": model, "seed": k}, {}, {**metrics, "test": {"accuracy": accuracy}})
            for model in models
            for k, accuracy in enumerate(rng.normal(means[model], noise[model], seeds))
        ]
        for i, answer in enumerate(primary_answers(questions, runs, {})):
            verdict = answer.verdict(margin, len(questions))
            calls[study, i] = (
                1 if verdict.startswith("higher (Holm)") else -1 if verdict.startswith("lower (Holm)") else 0
            )
    return calls


# The difference whose chance of being found the report states, and in how many made-up studies.
POWER_STEP, POWER_STUDIES = 0.02, 1000


def primary_power(answers: list[Answer], margin: float) -> list[float | None]:
    """Per primary question: the chance that the family calls it higher when its first model is truly
    POWER_STEP better and every other model's mean is unchanged, at the spread its models' seeds show
    (simulated). None where a model has fewer than two seeds that count, or seeds that do not vary."""
    if not answers:
        return []
    questions = {a.name: a.question for a in answers}
    groups = {name: group for a in answers for name, group in zip(a.question.models, (a.first, a.second))}
    noise = {
        name: float(np.std([r.test_accuracy for r in g.good], ddof=1)) if len(g.good) > 1 else None
        for name, g in groups.items()
    }
    noise = {name: sd or None for name, sd in noise.items()}  # seeds that do not vary: no spread to draw from
    seeds = min(len(g.runs) for g in groups.values())
    power = []
    for i, answer in enumerate(answers):
        if any(noise[model] is None for model in answer.question.models):
            power.append(None)
            continue
        means = {name: POWER_STEP if name == answer.question.models[0] else 0.0 for name in groups}
        spread = {name: noise[name] or 0.0 for name in groups}
        calls = simulated_calls(questions, means, spread, seeds, margin, POWER_STUDIES)
        power.append(float((calls[:, i] == 1).mean()))
    return power


@dataclass
class Analysis:
    """The study's results, computed once: every section, table and figure of the report is written from here."""

    runs: list[Run]
    good: list[Run]  # the runs every conclusion rests on
    failed: list[Run]  # diverged, non-finite or collapsed: listed, counted in no mean and no verdict
    primary: list[Answer]  # the declared questions, Holm-controlled
    power: list[float | None]  # per primary question: its chance of being found at POWER_STEP (simulated)
    sweeps: list[Sweep]
    matched: list[MatchedPair]
    fits: list[ScalingFit]
    controls: list[BudgetControl]
    rates: list[RateCheck]
    recalibrations: list[Recalibration]
    frontier: list[Group]  # seed groups no cheaper one beats on validation accuracy, by parameters
    best: Group  # the seed group of the best mean validation accuracy (never test)
    margin: float  # the equivalence margin declared in params.yaml (report.equivalence_margin)
    recipes: dict[str, Recipe]  # as trained

    @property
    def exploratory(self) -> int:
        """How many verdicts the report draws beside the primary family, each at 95% alone: at that
        rate about 1 in 20 is flagged by chance alone."""
        return (
            sum(len(s.points) for s in self.sweeps)  # each step and each sweep's span
            + len(self.matched)
            + len(self.controls)
            + 2 * len(self.rates)
            + len(recalibration_parts(self.recalibrations))
        )


def analyse(
    runs: list[Run],
    recipes: dict[str, Recipe],
    margin: float,
    questions: dict[str, Question] | None = None,
    outcomes: dict[str, tuple[list[str], np.ndarray]] | None = None,
) -> Analysis:
    failed = [run for run in runs if run.failure]
    good = [run for run in runs if not run.failure]
    if not good:
        raise StageError(f"every declared model failed ({', '.join(r.name for r in runs)}): nothing to report")
    sweeps = find_sweeps(runs)
    primary = primary_answers(questions or {}, runs, outcomes or {})
    return Analysis(
        runs=runs,
        good=good,
        failed=failed,
        primary=primary,
        power=primary_power(primary, margin),
        sweeps=sweeps,
        matched=[m for cost in COSTS for m in matched_pairs(runs, cost)],
        fits=[f for cost in COSTS for f in scaling_fits(sweeps, cost)],
        controls=budget_controls(runs, recipes),
        rates=rate_checks(sweeps, runs, recipes),
        recalibrations=recalibrations(runs),
        frontier=frontier(seed_groups(runs), lambda g: g.cost("params")),
        best=max((g for g in seed_groups(runs) if g.good), key=lambda g: g.val_estimate.value),
        margin=margin,
        recipes=recipes,
    )
