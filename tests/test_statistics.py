"""Every statistic of the report against scipy.stats or statsmodels on fixed inputs, and the primary
family's calibration by simulation through the analysis itself."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import yaml
from scipy import stats
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint

from tests.conftest import ROOT
from widthdepth.questions import Question
from widthdepth.statistics import (
    Estimate,
    difference,
    holm,
    mean_estimate,
    paired,
    sampling_interval,
    slope,
    t_quantile,
)
from widthdepth.study import simulated_calls

SEEDS_A, SEEDS_B = [0.70, 0.72, 0.74], [0.60, 0.61, 0.62]


def test_t_quantiles_are_exact_at_fractional_degrees_of_freedom() -> None:
    degrees = (1, 2, 2.7, 30, 1000)  # exact at a fractional df too, not the table entry below it
    assert [t_quantile(df) for df in degrees] == pytest.approx([stats.t.ppf(0.975, df) for df in degrees], rel=1e-12)
    assert (round(t_quantile(1), 3), round(t_quantile(2), 3), round(t_quantile(1000), 2)) == (12.706, 4.303, 1.96)
    assert t_quantile(4, 0.99) == pytest.approx(stats.t.ppf(0.995, 4))


def test_a_mean_over_seeds_is_scipy_s_t_interval() -> None:
    e = mean_estimate(SEEDS_A)
    low, high = stats.t.interval(0.95, 2, loc=np.mean(SEEDS_A), scale=stats.sem(SEEDS_A))
    assert e.interval() == pytest.approx((low, high), rel=1e-12)
    assert mean_estimate([0.5]).half_width() is None


def test_a_difference_is_welch_s_test_as_scipy_gives_it() -> None:
    d = difference(SEEDS_A, SEEDS_B)
    welch = stats.ttest_ind(SEEDS_A, SEEDS_B, equal_var=False)
    ci = welch.confidence_interval(0.95)
    assert d.value == pytest.approx(0.11) and d.df == pytest.approx(welch.df, rel=1e-12)
    assert d.interval() == pytest.approx((ci.low, ci.high), rel=1e-12)
    assert d.p_value == pytest.approx(welch.pvalue, rel=1e-12)
    unequal = difference([0.70, 0.75, 0.71, 0.80], [0.60, 0.61])
    welch = stats.ttest_ind([0.70, 0.75, 0.71, 0.80], [0.60, 0.61], equal_var=False)
    assert (unequal.df, unequal.p_value) == pytest.approx((welch.df, welch.pvalue), rel=1e-12)


def test_a_slope_is_scipy_s_linear_regression() -> None:
    x, y = [1, 2, 3, 4, 5], [0.50, 0.58, 0.61, 0.70, 0.71]
    fit, e = stats.linregress(x, y), slope(x, y)
    assert (e.value, e.se, e.df) == pytest.approx((fit.slope, fit.stderr, 3), rel=1e-12)


def test_holm_adjusts_as_statsmodels_does() -> None:
    for p in ([0.01, 0.04, 0.03, 0.2], [0.001, 0.5, 0.012, 0.012, 0.04], [0.3], [0.02, 0.02]):
        assert holm(p) == pytest.approx(list(multipletests(p, method="holm")[1]), rel=1e-12)


def test_the_test_set_s_own_error_is_a_wilson_interval() -> None:
    assert sampling_interval(0.8, 10_000) == pytest.approx(proportion_confint(8000, 10_000, method="wilson"), rel=1e-9)
    low, high = sampling_interval(0.8, 10_000)
    assert 0.007 < (high - low) / 2 < 0.009  # the "about 0.004" is one standard error: 0.8 x 0.2 / 10,000


def test_paired_per_image_outcomes_are_mcnemar_s_exact_test() -> None:
    rng = np.random.default_rng(0)
    first = rng.random(500) < 0.8
    second = np.where(rng.random(500) < 0.1, ~first, first)
    pair = paired(first, second)
    table = [[int((first & second).sum()), pair.only_first], [pair.only_second, int((~first & ~second).sum())]]
    assert pair.p_value == pytest.approx(mcnemar(table, exact=True).pvalue, rel=1e-12)
    assert pair.difference == pytest.approx(first.mean() - second.mean())
    # the paired difference's variance: var(first - second) per image, over the images
    per_image = first.astype(float) - second.astype(float)
    assert pair.half_width == pytest.approx(1.959964 * per_image.std(ddof=0) / math.sqrt(500), rel=1e-5)


def test_verdicts_say_what_the_interval_shows() -> None:
    margin = 0.01
    assert difference(SEEDS_A, SEEDS_B).verdict(margin) == "higher"
    assert difference(SEEDS_B, SEEDS_A).verdict(margin) == "lower"
    assert Estimate(0.001, 0.001, 10).verdict(margin) == "equal (within ±0.01)"
    assert Estimate(0.001, 0.01, 10).verdict(margin) == "inconclusive"  # 0 inside, wider than the margin
    # [0.0039, 0.0061]: a real difference, smaller than the margin
    assert Estimate(0.005, 0.0011 / t_quantile(10), 10).verdict(margin) == "higher, by less than the margin (±0.01)"
    assert Estimate(0.05).verdict(margin) == "no interval (one seed)"
    # degenerate input is flagged, never a certain verdict or a silent "inconclusive"
    same = difference([0.6, 0.6, 0.6], [0.5, 0.5, 0.5])
    assert same.verdict(margin) == "degenerate: the seeds do not vary, no interval" and same.p_value is None
    assert same.text() == "0.1000 (no spread over seeds: no interval)"
    assert Estimate(math.nan, 0.01, 2).verdict(margin) == "not computed: a non-finite metric"
    assert mean_estimate([0.5, math.nan]).text() == "non-finite"


def study_design() -> tuple[dict, dict]:
    """params.yaml's models and primary questions."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    return params["models"], params["report"]["primary"]


# A model whose results are not committed yet gets this seed-to-seed spread of test accuracy.
FALLBACK_NOISE = 0.01


def committed_noise(names: list[str]) -> dict[str, float]:
    """Each model's seed-to-seed standard deviation of test accuracy, from its committed metrics/."""
    noise = {}
    for name in names:
        accuracies = [
            json.loads(path.read_text())["test"]["accuracy"] for path in (ROOT / "metrics" / name).glob("seed_*.json")
        ]
        noise[name] = float(np.std(accuracies, ddof=1)) if len(accuracies) > 1 else FALLBACK_NOISE
    return noise


def test_the_primary_family_holds_its_family_wise_error_and_states_its_power(
    record_property: pytest.RecordProperty,
) -> None:
    models, primary = study_design()
    questions = {name: Question(**question) for name, question in primary.items()}
    names = list(dict.fromkeys(model for q in questions.values() for model in q.models))
    seeds = min(models[name].get("seeds", 1) for name in names)
    noise = committed_noise(names)
    studies = 1000

    # every true difference zero: how often does the family call anything?
    null = simulated_calls(questions, dict.fromkeys(names, 0.8), noise, seeds, 0.01, studies, seed=1)
    family_wise = float((null != 0).any(axis=1).mean())
    assert family_wise <= 0.05 + 2 * math.sqrt(0.05 * 0.95 / studies)  # within the simulation's own error

    # a true +0.02 step in every question (means solving first - second = 0.02 for each, if they can)
    index = {name: i for i, name in enumerate(names)}
    design = np.zeros((len(questions), len(names)))
    for row, question in enumerate(questions.values()):
        design[row, index[question.models[0]]], design[row, index[question.models[1]]] = 1, -1
    means, *_ = np.linalg.lstsq(design, np.full(len(questions), 0.02), rcond=None)
    assert design @ means == pytest.approx(0.02)  # the design's questions admit a step in every one
    stepped = simulated_calls(questions, dict(zip(names, 0.8 + means)), noise, seeds, 0.01, studies, seed=2)
    power = dict(zip(questions, (stepped == 1).mean(axis=0)))
    record_property("power at a true +0.02 step", power)
    print(f"family-wise error {family_wise:.3f}; power at +0.02: {power}")
    assert float((stepped == -1).any(axis=1).mean()) <= 0.05  # never the wrong direction beyond the error rate
