"""What the study's results say: its sweeps, the seed-to-seed spread, gains, the cost frontier.

A sweep is found, not declared: models of one family and recipe whose declarations are
equal except for the knobs behind one feature (width, depth or branches) and whose
other features are equal too. Models declared alike except for `seed` are repeats of
one point, and their spread is the study's measure of noise.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from widthdepth.architectures import DEFAULTS


@dataclass(frozen=True)
class Feature:
    name: str  # width, depth or branches
    label: str  # what its value counts
    step: str  # the unit a gain is given per
    knobs: frozenset[str]  # the declaration's knobs that set it
    value: Callable[[dict[str, Any]], int]  # its value, from the checked declaration
    doubling: bool  # gains per doubling (log2 of the value) rather than per unit


FEATURES: dict[str, list[Feature]] = {
    "alexnet": [
        Feature("width", "filters of the first convolution", "doubling of width", frozenset({"filters"}),
                lambda spec: spec["filters"][0][0], True),
        Feature("depth", "convolution layers", "added convolution layer",
                frozenset({"blocks", "convs", "kernels", "padding", "filters"}), lambda spec: sum(spec["convs"]), False),
    ],
    "inception": [
        Feature("width", "filters per branch", "doubling of width", frozenset({"filters", "downsample_filters"}),
                lambda spec: spec["filters"][0][0], True),
        Feature("depth", "inception blocks", "added block", frozenset({"blocks"}), lambda spec: sum(spec["blocks"]), False),
        Feature("branches", "parallel branches", "added branch", frozenset({"branches"}), lambda spec: spec["branches"], False),
    ],
    "mlp": [
        Feature("width", "units of the widest hidden layer", "doubling of width", frozenset({"widths"}),
                lambda spec: max(spec["widths"]), True),
        Feature("depth", "hidden layers", "added hidden layer", frozenset({"widths"}), lambda spec: len(spec["widths"]), False),
    ],
}


@dataclass
class Run:
    """One trained model: its declaration and its metrics."""

    name: str
    declaration: dict[str, Any]  # as in params.yaml, with the family's defaults filled in
    spec: dict[str, Any]  # checked and expanded (architectures.check_spec)
    metrics: dict[str, Any]  # metrics/<name>.json

    @property
    def family(self) -> str:
        return self.declaration["family"]

    @property
    def recipe(self) -> str:
        return self.declaration["recipe"]

    @property
    def diverged(self) -> bool:
        return self.metrics["diverged"]

    @property
    def test_accuracy(self) -> float:
        return self.metrics["test"]["accuracy"]

    def feature(self, name: str) -> int | None:
        return next((f.value(self.spec) for f in FEATURES[self.family] if f.name == name), None)

    def key(self, without: frozenset[str] = frozenset()) -> str:
        """The declaration minus its seed and the given knobs, as a comparable string."""
        return json.dumps({k: v for k, v in self.declaration.items() if k != "seed" and k not in without}, sort_keys=True)


def make_run(name: str, declared: dict[str, Any], spec: dict[str, Any], metrics: dict[str, Any]) -> Run:
    declaration = {**DEFAULTS[declared["family"]], "seed": 0, **declared}
    return Run(name, declaration, spec, metrics)


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
    def low(self) -> float:
        return min(self.accuracies)

    @property
    def high(self) -> float:
        return max(self.accuracies)


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
        return [run.name for point in self.points for run in point.runs]

    def gain(self) -> float:
        """Least-squares slope of mean test accuracy per step (per doubling, for width)."""
        x = np.array([p.value for p in self.points], dtype=float)
        if self.feature.doubling:
            x = np.log2(x)
        return float(np.polyfit(x, [p.mean for p in self.points], 1)[0])


def find_sweeps(runs: list[Run]) -> list[Sweep]:
    """Every set of two or more values of one feature, all else equal.

    A set where one value holds models that differ in more than their seed is not a
    clean sweep (some other knob varies too) and is left out.
    """
    sweeps = []
    for family, features in FEATURES.items():
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


def seed_spread(runs: list[Run]) -> tuple[float | None, list[list[Run]]]:
    """Pooled standard deviation of test accuracy over groups of models declared alike but for the seed."""
    repeats = [group for group in seed_groups(runs) if len(group) > 1]
    if not repeats:
        return None, []
    squares = sum(float(np.sum((np.array([r.test_accuracy for r in g]) - np.mean([r.test_accuracy for r in g])) ** 2)) for g in repeats)
    degrees = sum(len(group) - 1 for group in repeats)
    return math.sqrt(squares / degrees), repeats


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
    def gain(self) -> float:
        return mean_accuracy(self.longer) - mean_accuracy(self.base)


def budget_controls(runs: list[Run], recipes: dict[str, dict[str, Any]]) -> list[BudgetControl]:
    """Every pair of models declared alike but for a recipe that differs from the other only in epochs (more)."""
    without_epochs = lambda recipe: {k: v for k, v in recipes[recipe].items() if k != "epochs"}
    groups = seed_groups(runs)
    controls = []
    for base in groups:
        for longer in groups:
            a, b = base[0], longer[0]
            if (a.key(frozenset({"recipe"})) == b.key(frozenset({"recipe"})) and a.recipe != b.recipe
                    and without_epochs(a.recipe) == without_epochs(b.recipe)
                    and recipes[b.recipe]["epochs"] > recipes[a.recipe]["epochs"]):
                controls.append(BudgetControl(base, longer, recipes[a.recipe]["epochs"], recipes[b.recipe]["epochs"]))
    return controls


COSTS = {"params": "parameters", "macs_per_image": "multiply-accumulates per image"}


def point_cost(point: Point, cost: str) -> float:
    return float(np.mean([run.metrics["cost"][cost] for run in point.runs]))


@dataclass
class MatchedCost:
    """A width sweep and a depth sweep through the same model, compared at equal cost."""

    width: Sweep
    depth: Sweep
    cost: str  # a key of COSTS
    points: list[tuple[float, float, float]]  # (cost, width's accuracy, depth's accuracy), interpolated in log cost

    @property
    def difference(self) -> float:
        """Mean of width's minus depth's accuracy over the matched costs."""
        return float(np.mean([w - d for _, w, d in self.points]))


def matched_cost(sweeps: list[Sweep], cost: str) -> list[MatchedCost]:
    """For each width and depth sweep of one family and recipe that share a model: accuracy of each at
    the same costs, linearly interpolated in log cost, over the range both sweeps cover."""
    comparisons = []
    for width in (s for s in sweeps if s.feature.name == "width"):
        for depth in (s for s in sweeps if s.feature.name == "depth"):
            if (width.family, width.recipe) != (depth.family, depth.recipe) or not set(width.models) & set(depth.models):
                continue
            curves = []
            for sweep in (width, depth):
                points = sorted(sweep.points, key=lambda p: point_cost(p, cost))
                curves.append((np.log([point_cost(p, cost) for p in points]), [p.mean for p in points]))
            low, high = max(c[0][0] for c in curves), min(c[0][-1] for c in curves)
            if low >= high:
                continue
            xs = sorted({float(x) for c in curves for x in c[0] if low <= x <= high})
            points = [(math.exp(x), float(np.interp(x, *curves[0])), float(np.interp(x, *curves[1]))) for x in xs]
            comparisons.append(MatchedCost(width, depth, cost, points))
    return comparisons


# Two-sided 95% quantiles of Student's t by degrees of freedom.
T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228}


def log_log_fit(costs: list[float], errors: list[float]) -> tuple[float, float, float | None]:
    """Least squares of log(error) = log(a) - alpha log(cost): (alpha, log a, 95% half-width of alpha or None)."""
    x, y = np.log(costs), np.log(errors)
    slope, intercept = np.polyfit(x, y, 1)
    dof = len(x) - 2
    if dof < 1:
        return float(-slope), float(intercept), None
    residual = y - (slope * x + intercept)
    se = math.sqrt(float(residual @ residual) / dof / float(((x - x.mean()) ** 2).sum()))
    return float(-slope), float(intercept), T95.get(dof, 1.96) * se


@dataclass
class ScalingFit:
    """Test error against cost along a width sweep, as a power law error = a * cost^-alpha (a line in log-log)."""

    sweep: Sweep
    cost: str
    alpha: float
    log_a: float
    half_width: float | None  # of alpha's 95% interval
    held_out: tuple[float, float]  # (predicted, measured) error of the largest point, fitted without it

    def predict(self, cost: float) -> float:
        return math.exp(self.log_a) * cost ** -self.alpha


def scaling_fits(sweeps: list[Sweep], cost: str) -> list[ScalingFit]:
    """A fit per width sweep of three or more points, checked by predicting its largest point from the others."""
    fits = []
    for sweep in (s for s in sweeps if s.feature.name == "width" and len(s.points) >= 3):
        points = sorted(sweep.points, key=lambda p: point_cost(p, cost))
        costs, errors = [point_cost(p, cost) for p in points], [1 - p.mean for p in points]
        alpha, log_a, half = log_log_fit(costs, errors)
        held_alpha, held_log_a, _ = log_log_fit(costs[:-1], errors[:-1])
        predicted = math.exp(held_log_a) * costs[-1] ** -held_alpha
        fits.append(ScalingFit(sweep, cost, alpha, log_a, half, (predicted, errors[-1])))
    return fits
