"""What the study's results say, computed once (`analyse`): sweeps, intervals, gains, equal-cost
comparisons, scaling fits, budget controls, the frontier and the failed runs.

A sweep is found, not declared: models of one family and recipe whose declarations are
equal except for the knobs behind one feature (width, depth or branches) and whose
other features are equal too. Models declared alike except for `seed` are the seeds of
one point: its mean comes with a 95% interval at n - 1 degrees of freedom, and every
comparison is a difference of means with its own interval (Welch).
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
from widthdepth.stage import StageError


def t95(df: float) -> float:
    """Student's t for a two-sided 95% interval at `df` degrees of freedom, exact at any df
    (Welch's are fractional): 12.71 at 1, 4.30 at 2."""
    from scipy import stats

    return float(stats.t.ppf(0.975, df))


@dataclass(frozen=True)
class Estimate:
    """A mean (or a difference or slope) with its standard error and degrees of freedom."""

    value: float
    se: float | None = None  # None: a single run, no interval
    df: float = 0.0

    @property
    def half_width(self) -> float | None:
        return None if self.se is None or self.df < 1 else t95(self.df) * self.se

    @property
    def low(self) -> float | None:
        return None if self.half_width is None else self.value - self.half_width

    @property
    def high(self) -> float | None:
        return None if self.half_width is None else self.value + self.half_width

    def text(self, signed: bool = False) -> str:
        """`0.6100 ± 0.0254` (95%), `+0.0110 ± ...` when `signed`, or the value alone when there is no interval."""
        value = f"{self.value:{'+' if signed else ''}.4f}"
        return value if self.half_width is None else f"{value} ± {self.half_width:.4f}"

    def verdict(self, margin: float) -> str:
        """For a difference: higher or lower when the 95% interval excludes 0, equal when it lies
        within ±margin (declared before the run), otherwise inconclusive."""
        if self.half_width is None:
            return "no interval (one seed)"
        if self.low > 0:
            return "higher"
        if self.high < 0:
            return "lower"
        if -margin < self.low and self.high < margin:
            return f"equal (within ±{margin:g})"
        return "inconclusive"


def mean_estimate(values: list[float]) -> Estimate:
    """Mean with the standard error of n seeds, at n - 1 degrees of freedom."""
    values = np.asarray(values, dtype=float)
    if len(values) < 2:
        return Estimate(float(values.mean()))
    return Estimate(float(values.mean()), float(values.std(ddof=1) / math.sqrt(len(values))), len(values) - 1)


def test_estimate(runs: list[Run]) -> Estimate:
    """Mean test accuracy of runs (the seeds of one model) with its interval."""
    return mean_estimate([run.test_accuracy for run in runs])


def combined(terms: list[tuple[float, Estimate]]) -> Estimate:
    """sum(weight x estimate) of independent estimates: standard errors added in quadrature, the
    smallest df kept (conservative); no interval if any term has none."""
    value = sum(weight * e.value for weight, e in terms)
    if any(e.se is None for _, e in terms):
        return Estimate(value)
    return Estimate(value, math.sqrt(sum((weight * e.se) ** 2 for weight, e in terms)), min(e.df for _, e in terms))


def difference(after: list[float], before: list[float]) -> Estimate:
    """mean(after) - mean(before), Welch's standard error and Welch-Satterthwaite degrees of freedom."""
    a, b = np.asarray(after, dtype=float), np.asarray(before, dtype=float)
    value = float(a.mean() - b.mean())
    if len(a) < 2 or len(b) < 2:
        return Estimate(value)
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = math.sqrt(va + vb)
    if se == 0:
        return Estimate(value, 0.0, len(a) + len(b) - 2)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    return Estimate(value, se, df)


def slope(x: list[float], y: list[float]) -> Estimate:
    """Least-squares slope of y on x over seed-level data, with its standard error at n - 2 df."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    b, a = np.polyfit(x, y, 1)
    df = len(x) - 2
    if df < 1 or len(set(x)) < 2:
        return Estimate(float(b))
    residual = y - (a + b * x)
    return Estimate(float(b), math.sqrt(float(residual @ residual) / df / float(((x - x.mean()) ** 2).sum())), df)


# A run collapsed when its saved model (inference mode: batch-norm statistics, no dropout)
# scores under half its training-mode accuracy on the training split, or when its last
# validation accuracy is this far below its best epoch's, and by more than three standard
# errors of an accuracy measured on the validation images (so that few images cannot fake it).
COLLAPSE_RATIO = 0.5
COLLAPSE_DROP = 0.15


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
    def failure(self) -> str | None:
        """Why this run counts nowhere, or None: it diverged, or it collapsed in inference mode."""
        if self.metrics["diverged"]:
            return f"diverged in epoch {self.metrics['diverged_epoch']}"
        train_mode = [a for a in self.curves.get("train_accuracy", []) if a is not None and math.isfinite(a)]
        inference = self.metrics["train"]["accuracy"]
        if train_mode and inference is not None and inference < COLLAPSE_RATIO * train_mode[-1]:
            return (
                f"collapsed in inference mode: the saved model scores {inference:.4f} on its training split, "
                f"against {train_mode[-1]:.4f} in training mode in its last epoch"
            )
        val = [a for a in self.curves.get("val_accuracy", []) if a is not None and math.isfinite(a)]
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
class Point:
    value: int
    runs: list[Run]

    @property
    def accuracies(self) -> list[float]:
        return [run.test_accuracy for run in self.runs]

    @property
    def mean(self) -> float:
        return float(np.mean(self.accuracies))

    @property
    def estimate(self) -> Estimate:
        return test_estimate(self.runs)


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
        return list(dict.fromkeys(run.name for point in self.points for run in point.runs))

    def gain(self) -> Estimate:
        """Least-squares slope of test accuracy per step (per doubling, for width), fitted to every
        seed's accuracy, with its 95% interval."""
        x = [math.log2(p.value) if self.feature.doubling else p.value for p in self.points for _ in p.runs]
        return slope(x, [a for p in self.points for a in p.accuracies])

    def steps(self) -> list[Estimate]:
        """Each point's mean test accuracy minus the previous point's (Welch)."""
        return [difference(b.accuracies, a.accuracies) for a, b in zip(self.points, self.points[1:])]


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
                sweep.points = [Point(value, by_value[value]) for value in sorted(by_value)]
                sweeps.append(sweep)
    return sweeps


def seed_groups(runs: list[Run]) -> list[list[Run]]:
    """Runs grouped by declaration: each group is one model trained with one or more seeds."""
    groups: dict[str, list[Run]] = defaultdict(list)
    for run in runs:
        groups[run.key()].append(run)
    return list(groups.values())


def mean_accuracy(group: list[Run]) -> float:
    return float(np.mean([run.test_accuracy for run in group]))


def frontier(groups: list[list[Run]], cost: Callable[[Run], float]) -> list[list[Run]]:
    """The models (over their seeds) that no cheaper model beats on mean test accuracy, cheapest first."""
    best, kept = -1.0, []
    for group in sorted(groups, key=lambda g: (cost(g[0]), -mean_accuracy(g))):
        if mean_accuracy(group) > best:
            kept.append(group)
            best = mean_accuracy(group)
    return kept


@dataclass
class BudgetControl:
    """One model trained at its recipe's epochs and again at more: what the training budget leaves on the table."""

    base: list[Run]  # a seed group
    longer: list[Run]  # the same declaration under a recipe that differs only in `epochs`
    base_epochs: int
    longer_epochs: int

    @property
    def gain(self) -> Estimate:
        return difference([r.test_accuracy for r in self.longer], [r.test_accuracy for r in self.base])


def recipe_variants(runs: list[Run], recipes: dict[str, Recipe], key: str) -> list[dict[Any, list[Run]]]:
    """Seed groups declared alike but for recipes that differ in `key` only, as {value of `key`: group};
    each set of two or more once."""

    def without(recipe: str) -> str:
        return json.dumps({k: v for k, v in recipes[recipe].model_dump().items() if k != key}, sort_keys=True)

    sets: dict[tuple[str, str], dict[Any, list[Run]]] = defaultdict(dict)
    for group in seed_groups(runs):
        run = group[0]
        sets[(run.key(frozenset({"recipe"})), without(run.recipe))][getattr(recipes[run.recipe], key)] = group
    return [dict(sorted(variants.items())) for variants in sets.values() if len(variants) > 1]


def val_accuracy(group: list[Run]) -> float:
    return float(np.mean([run.metrics["val"]["accuracy"] for run in group]))


def budget_controls(runs: list[Run], recipes: dict[str, Recipe]) -> list[BudgetControl]:
    """Every pair of models declared alike but for a recipe that differs from the other only in epochs (more)."""
    controls = []
    for variants in recipe_variants(runs, recipes, "epochs"):
        epochs = list(variants)  # ascending
        controls += [
            BudgetControl(variants[short], variants[long], short, long)
            for i, short in enumerate(epochs)
            for long in epochs[i + 1 :]
        ]
    return controls


@dataclass
class RateCheck:
    """The ends of a sweep, each trained at several learning rates, all else equal: does the sweep's
    gain survive when each end gets the rate chosen for it on validation?"""

    sweep: Sweep
    ends: list[dict[float, list[Run]]]  # per end (first and last point): learning rate -> seed group
    rate: float  # the sweep's own rate

    @property
    def chosen(self) -> list[float]:
        """Each end's rate of the highest mean validation accuracy (never test)."""
        return [max(rates, key=lambda lr: val_accuracy(rates[lr])) for rates in self.ends]

    @property
    def gain_at_sweep_rate(self) -> Estimate:
        first, last = (rates[self.rate] for rates in self.ends)
        return difference([r.test_accuracy for r in last], [r.test_accuracy for r in first])

    @property
    def gain_at_chosen_rates(self) -> Estimate:
        first, last = (rates[lr] for rates, lr in zip(self.ends, self.chosen))
        return difference([r.test_accuracy for r in last], [r.test_accuracy for r in first])


def rate_checks(sweeps: list[Sweep], runs: list[Run], recipes: dict[str, Recipe]) -> list[RateCheck]:
    """Every sweep whose first and last points were also trained at other learning rates; where
    several sweeps share those ends (the same sweep at each rate), the one with the most points."""
    variants = recipe_variants(runs, recipes, "learning_rate")
    checks, seen = [], []
    for sweep in sorted(sweeps, key=lambda s: -len(s.points)):
        rate = recipes[sweep.recipe].learning_rate
        ends = [
            next((rates for rates in variants if rate in rates and rates[rate][0].key() == point.runs[0].key()), None)
            for point in (sweep.points[0], sweep.points[-1])
        ]
        if all(ends) and ends not in seen:
            checks.append(RateCheck(sweep, ends, rate))
            seen.append(ends)
    return checks


def recomputed_batch_norm_changes(runs: list[Run]) -> dict[str, list[float]]:
    """Per recipe, per run: the change in validation accuracy when the run's batch-norm statistics
    are recomputed after training (evaluate's `recomputed_batch_norm`)."""
    changes: dict[str, list[float]] = defaultdict(list)
    for run in runs:
        recomputed = run.metrics.get("recomputed_batch_norm")
        if recomputed and recomputed["val"]["accuracy"] is not None:
            changes[run.recipe].append(recomputed["val"]["accuracy"] - run.metrics["val"]["accuracy"])
    return dict(changes)


COSTS = {"params": "parameters", "macs_per_image": "multiply-accumulates per image"}


def point_cost(point: Point, cost: str) -> float:
    return float(np.mean([run.metrics["cost"][cost] for run in point.runs]))


@dataclass
class MatchedCost:
    """A width sweep and a depth sweep of one family and recipe, compared at equal cost."""

    width: Sweep
    depth: Sweep
    cost: str  # a key of COSTS
    points: list[
        tuple[float, Estimate, Estimate, Estimate]
    ]  # (cost, width's accuracy, depth's accuracy, width - depth)


def _interpolated(points: list[Point], cost: str, x: float) -> tuple[Estimate, tuple[str, ...]]:
    """Mean accuracy at log cost x, linear in log cost between the two points around it, and the
    models it comes from. Its standard error combines theirs; its df is the smaller one."""
    xs = [math.log(point_cost(p, cost)) for p in points]
    right = next(i for i, value in enumerate(xs) if value >= x - 1e-12)
    if abs(xs[right] - x) < 1e-12:
        return points[right].estimate, tuple(r.name for r in points[right].runs)
    a, b, w = points[right - 1], points[right], (x - xs[right - 1]) / (xs[right] - xs[right - 1])
    return combined([(1 - w, a.estimate), (w, b.estimate)]), tuple(r.name for r in a.runs + b.runs)


def matched_cost(sweeps: list[Sweep], cost: str) -> list[MatchedCost]:
    """For each width and depth sweep of one family and recipe: accuracy of each at the same costs
    (every point of either sweep inside the range both cover; the other interpolated in log cost),
    and their difference. A cost where both sweeps stand on the same model (the shared centre)
    is left out: its difference is zero by construction."""
    comparisons = []
    for width in (s for s in sweeps if s.feature.name == "width"):
        for depth in (s for s in sweeps if s.feature.name == "depth"):
            if (width.family, width.recipe) != (depth.family, depth.recipe):
                continue
            curves = [sorted(sweep.points, key=lambda p: point_cost(p, cost)) for sweep in (width, depth)]
            logs = [[math.log(point_cost(p, cost)) for p in curve] for curve in curves]
            low, high = max(x[0] for x in logs), min(x[-1] for x in logs)
            points = []
            for x in sorted({x for xs in logs for x in xs if low <= x <= high}):
                (w, w_models), (d, d_models) = (_interpolated(curve, cost, x) for curve in curves)
                if w_models == d_models:
                    continue
                points.append((math.exp(x), w, d, combined([(1, w), (-1, d)])))
            if points:
                comparisons.append(MatchedCost(width, depth, cost, points))
    return comparisons


@dataclass
class ScalingFit:
    """Test error against cost along a width sweep as a power law, error = a * cost^-alpha: a line
    in log-log, fitted to every seed's error. Cited only if it passes its held-out check: fitted
    without the largest point, it must predict that point's mean error within the 95% prediction
    interval (from the fit's residuals at its own degrees of freedom)."""

    sweep: Sweep
    cost: str
    alpha: Estimate  # the exponent, with its interval from the seed-level fit
    log_a: float
    predicted: float  # the largest point's error, predicted by the fit without it
    measured: float  # its mean error, measured
    check: bool | None  # the held-out check passed; None: too few points to check

    def predict(self, cost: float) -> float:
        return math.exp(self.log_a) * cost**-self.alpha.value


def scaling_fits(sweeps: list[Sweep], cost: str) -> list[ScalingFit]:
    """A fit per width sweep of three or more points, checked on its largest point."""
    fits = []
    for sweep in (s for s in sweeps if s.feature.name == "width" and len(s.points) >= 3):
        points = sorted(sweep.points, key=lambda p: point_cost(p, cost))
        x = [math.log(point_cost(p, cost)) for p in points for _ in p.runs]
        y = [math.log(max(1 - a, 1e-6)) for p in points for a in p.accuracies]
        fitted = slope(x, y)
        log_a = float(np.mean(y) - fitted.value * np.mean(x))
        held = len(points[-1].runs)
        hx, hy = np.array(x[:-held]), np.array(y[:-held])
        b, a = np.polyfit(hx, hy, 1)
        x0, measured = math.log(point_cost(points[-1], cost)), 1 - points[-1].mean
        predicted = float(a + b * x0)
        df = len(hx) - 2
        check = None
        if df >= 1 and len(set(hx)) >= 2:
            residual = hy - (a + b * hx)
            s2 = float(residual @ residual) / df
            se = math.sqrt(s2 * (1 / held + 1 / len(hx) + (x0 - hx.mean()) ** 2 / float(((hx - hx.mean()) ** 2).sum())))
            check = abs(math.log(max(measured, 1e-6)) - predicted) <= t95(df) * se + 1e-9
        alpha = Estimate(-fitted.value, fitted.se, fitted.df)
        fits.append(ScalingFit(sweep, cost, alpha, log_a, math.exp(predicted), measured, check))
    return fits


@dataclass
class Analysis:
    """The study's results, computed once: every section, table and figure of the report is written from here."""

    runs: list[Run]
    good: list[Run]  # the runs every conclusion rests on
    failed: list[Run]  # diverged or collapsed: listed, counted nowhere
    sweeps: list[Sweep]
    matched: list[MatchedCost]
    fits: list[ScalingFit]
    controls: list[BudgetControl]
    rates: list[RateCheck]
    batch_norm: dict[
        str, list[float]
    ]  # per recipe, per run: recomputing the batch-norm statistics, change in validation accuracy
    frontier: list[list[Run]]  # seed groups no cheaper one beats, by parameters
    best: list[Run]  # the seed group of the best mean validation accuracy (never test)
    margin: float  # the equivalence margin declared in params.yaml (report.equivalence_margin)
    recipes: dict[str, Recipe]  # as trained

    @property
    def comparisons(self) -> int:
        """How many differences the report tests at 95%: at that rate about 1 in 20 is flagged by chance alone."""
        return (
            sum(len(s.points) for s in self.sweeps)
            + sum(len(m.points) for m in self.matched)
            + len(self.controls)
            + 2 * len(self.rates)
            + len(self.batch_norm)
        )


def analyse(runs: list[Run], recipes: dict[str, Recipe], margin: float) -> Analysis:
    failed = [run for run in runs if run.failure]
    good = [run for run in runs if not run.failure]
    if not good:
        raise StageError(f"every declared model failed ({', '.join(r.name for r in runs)}): nothing to report")
    sweeps = find_sweeps(good)
    return Analysis(
        runs=runs,
        good=good,
        failed=failed,
        sweeps=sweeps,
        matched=[m for cost in COSTS for m in matched_cost(sweeps, cost)],
        fits=[f for cost in COSTS for f in scaling_fits(sweeps, cost)],
        controls=budget_controls(good, recipes),
        rates=rate_checks(sweeps, good, recipes),
        batch_norm=recomputed_batch_norm_changes(good),
        frontier=frontier(seed_groups(good), lambda r: r.metrics["cost"]["params"]),
        best=max(seed_groups(good), key=val_accuracy),
        margin=margin,
        recipes=recipes,
    )
