"""The statistics every verdict of the report rests on, each a textbook formula through scipy.

- a mean over seeds: Student's t at n - 1 degrees of freedom;
- a difference of two means: Welch's standard error and Welch-Satterthwaite degrees of freedom
  (fractional), its two-sided p-value as `scipy.stats.ttest_ind(equal_var=False)` gives it;
- a family of primary questions: Holm's step-down adjustment of their p-values;
- the one test set: a Wilson interval for an accuracy measured on its images, and for two models
  scored on the same images, the paired difference and McNemar's exact test.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats


def t_quantile(df: float, level: float = 0.95) -> float:
    """Student's t for a two-sided `level` interval at `df` degrees of freedom, exact at any df
    (Welch's are fractional): 12.71 at 1, 4.30 at 2 for 95%."""
    return float(stats.t.ppf(0.5 + level / 2, df))


@dataclass(frozen=True)
class Estimate:
    """A mean or a difference of means, with its standard error and degrees of freedom."""

    value: float
    se: float | None = None  # None: a single run, no interval
    df: float = 0.0

    @property
    def degenerate(self) -> bool:
        """A spread of exactly zero over two or more seeds (identical runs), or a non-finite value:
        no interval can be drawn from it."""
        return not math.isfinite(self.value) or (self.se is not None and (self.se == 0 or not math.isfinite(self.se)))

    @property
    def has_interval(self) -> bool:
        """A standard error at one degree of freedom or more, and no degenerate input."""
        return self.se is not None and self.df >= 1 and not self.degenerate

    def half_width(self, level: float = 0.95) -> float | None:
        return t_quantile(self.df, level) * self.se if self.has_interval else None

    def interval(self, level: float = 0.95) -> tuple[float, float] | None:
        half = self.half_width(level)
        return None if half is None else (self.value - half, self.value + half)

    @property
    def p_value(self) -> float | None:
        """Two-sided p-value of the value being 0 (Student's t at this df), or None without an interval."""
        return float(2 * stats.t.sf(abs(self.value) / self.se, self.df)) if self.has_interval else None

    def text(self, signed: bool = False) -> str:
        """`0.6100 ± 0.0254` (95%), `+0.0110 ± ...` when `signed`, the value alone for one seed, and a flag
        when the value is not finite or the seeds do not vary."""
        if not math.isfinite(self.value):
            return "non-finite"
        value = f"{self.value:{'+' if signed else ''}.4f}"
        if self.degenerate:
            return f"{value} (no spread over seeds: no interval)"
        half = self.half_width()
        return value if half is None else f"{value} ± {half:.4f}"

    def verdict(self, margin: float, level: float = 0.95) -> str:
        """For a difference: higher or lower when the `level` interval excludes 0 ("by less than the
        margin" when it also lies within ±margin); equal when it lies within ±margin (declared
        before the run) and holds 0; otherwise inconclusive."""
        if not math.isfinite(self.value):
            return "not computed: a non-finite metric"
        if self.se is None:
            return "no interval (one seed)"
        if self.degenerate:
            return "degenerate: the seeds do not vary, no interval"
        if self.df < 1:
            return "no interval (one seed)"
        low, high = self.interval(level)
        within = -margin < low and high < margin
        if low > 0 or high < 0:
            direction = "higher" if low > 0 else "lower"
            return f"{direction}, by less than the margin (±{margin:g})" if within else direction
        return f"equal (within ±{margin:g})" if within else "inconclusive"


def mean_estimate(values: Sequence[float]) -> Estimate:
    """Mean with the standard error of n seeds, at n - 1 degrees of freedom."""
    values = np.asarray(values, dtype=float)
    if len(values) < 2:
        return Estimate(float(values.mean()) if len(values) else math.nan)
    return Estimate(float(values.mean()), float(values.std(ddof=1) / math.sqrt(len(values))), len(values) - 1)


def difference(after: Sequence[float], before: Sequence[float]) -> Estimate:
    """mean(after) - mean(before), Welch's standard error and Welch-Satterthwaite degrees of freedom."""
    a, b = np.asarray(after, dtype=float), np.asarray(before, dtype=float)
    value = float(a.mean() - b.mean())
    if len(a) < 2 or len(b) < 2:
        return Estimate(value)
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = math.sqrt(va + vb)
    if se == 0:
        return Estimate(value, 0.0, len(a) + len(b) - 2)
    return Estimate(value, se, (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1)))


def slope(x: Sequence[float], y: Sequence[float]) -> Estimate:
    """Least-squares slope of y on x, with its standard error at n - 2 df (`scipy.stats.linregress`)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) < 3 or len(set(x)) < 2:
        return Estimate(float(np.polyfit(x, y, 1)[0]) if len(set(x)) > 1 else math.nan)
    fit = stats.linregress(x, y)
    return Estimate(float(fit.slope), float(fit.stderr), len(x) - 2)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the given order: reject the i-th hypothesis at
    family-wise level alpha when its adjusted p-value is below alpha."""
    order = np.argsort(p_values, kind="stable")
    m, adjusted, running = len(p_values), [0.0] * len(p_values), 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


def sampling_interval(accuracy: float, images: int, level: float = 0.95) -> tuple[float, float]:
    """The Wilson interval of an accuracy measured on `images` test images: the test set's own sampling
    error, which no number of seeds shrinks."""
    correct = round(accuracy * images)
    ci = stats.binomtest(correct, images).proportion_ci(confidence_level=level, method="wilson")
    return float(ci.low), float(ci.high)


@dataclass(frozen=True)
class Paired:
    """Two models scored on the same test images, image by image."""

    images: int
    only_first: int  # images the first model gets right and the second wrong
    only_second: int

    @property
    def difference(self) -> float:
        """The first model's accuracy minus the second's on these images."""
        return (self.only_first - self.only_second) / self.images

    @property
    def half_width(self) -> float:
        """95% half-width of the paired difference (normal approximation, the discordant images' variance)."""
        n, b, c = self.images, self.only_first, self.only_second
        return float(stats.norm.ppf(0.975)) * math.sqrt(max(b + c - (b - c) ** 2 / n, 0.0)) / n

    @property
    def p_value(self) -> float:
        """McNemar's exact test: are the discordant images split evenly?"""
        discordant = self.only_first + self.only_second
        return 1.0 if discordant == 0 else float(stats.binomtest(self.only_first, discordant).pvalue)


def paired(first_correct: Sequence[bool], second_correct: Sequence[bool]) -> Paired:
    first, second = np.asarray(first_correct, dtype=bool), np.asarray(second_correct, dtype=bool)
    return Paired(len(first), int((first & ~second).sum()), int((~first & second).sum()))
