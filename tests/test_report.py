"""The study's analysis (sweeps, seed spread, gains, frontier) and the report stage, on made-up results."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from widthdepth import report
from widthdepth.architectures import check_spec
from widthdepth.stage import StageError
from widthdepth.study import budget_controls, find_sweeps, frontier, make_run, matched_cost, scaling_fits, seed_groups, seed_spread
from tests import builders
from tests.conftest import ROOT, run_stage

SHAPE = (32, 32, 3)
CLASSES = ["ant", "bee"]


def fake_metrics(test_accuracy: float, params: int, val_accuracy: float | None = None, diverged_epoch: int = 0) -> dict:
    val = test_accuracy if val_accuracy is None else val_accuracy
    return {
        "diverged": bool(diverged_epoch), "diverged_epoch": diverged_epoch, "epochs": 3,
        "test": {"accuracy": test_accuracy, "loss": 1.0}, "train": {"accuracy": 0.9, "loss": 0.5},
        "val": {"accuracy": val, "loss": 1.0}, "per_class_accuracy": {c: test_accuracy for c in CLASSES},
        "weight_layers": 3,
        "cost": {"params": params, "macs_per_image": 10 * params, "training_seconds": 1.0,
                 "training_images_per_second": 100.0, "inference_images_per_second": 1000.0, "latency_ms": 1.0},
    }


def runs_of(models: dict, accuracy: dict[str, float]) -> list:
    return [make_run(n, d, check_spec(n, d, SHAPE), fake_metrics(accuracy.get(n, 0.5), 1000 + i)) for i, (n, d) in enumerate(models.items())]


def test_sweeps_of_the_default_study() -> None:
    models = yaml.safe_load((ROOT / "params.yaml").read_text())["models"]
    sweeps = {(s.family, s.feature.name, s.recipe): s for s in find_sweeps(runs_of(models, {}))}
    points = {key: [(p.value, [r.name for r in p.runs]) for p in s.points] for key, s in sweeps.items()}
    alex_w16 = ["alex_w16", "alex_w16_seed1", "alex_w16_seed2"]
    inc_base = ["inc_base", "inc_base_seed1", "inc_base_seed2"]
    assert points[("alexnet", "width", "modern")] == [(2, ["alex_w2"]), (4, ["alex_w4"]), (8, ["alex_w8"]), (16, alex_w16), (32, ["alex_w32"])]
    assert points[("alexnet", "depth", "modern")] == [(3, ["alex_c1"]), (6, alex_w16), (9, ["alex_c3"]), (12, ["alex_c4"])]
    assert points[("alexnet", "width", "notebook")] == [(32, ["seed_base"]), (64, ["seed_wide"])]
    assert points[("alexnet", "depth", "notebook")] == [(3, ["seed_base"]), (5, ["seed_deep"])]
    assert points[("inception", "width", "modern")] == [(2, ["inc_filters2"]), (4, inc_base), (8, ["inc_filters8"])]
    assert points[("inception", "depth", "modern")] == [(3, inc_base), (6, ["inc_blocks2"]), (9, ["inc_blocks3"])]
    assert points[("inception", "branches", "modern")] == [(2, inc_base), (3, ["inc_branches3"]), (4, ["inc_branches4"])]
    assert len(sweeps) == 7  # nothing else: alex_w16_2x and the mlps stand alone in their recipes


def test_gain_per_doubling_and_per_step_with_seed_repeats() -> None:
    alex = {"family": "alexnet", "recipe": "modern"}
    models = {
        "w8": {**alex, "filters": 8}, "w16": {**alex, "filters": 16}, "w16_seed1": {**alex, "filters": 16, "seed": 1},
        "w32": {**alex, "filters": 32}, "b2": {**alex, "filters": 16, "blocks": 2, "kernels": [5, 3]},
    }
    accuracy = {"w8": 0.50, "w16": 0.58, "w16_seed1": 0.62, "w32": 0.70, "b2": 0.55}
    runs = runs_of(models, accuracy)
    width, depth = sorted(find_sweeps(runs), key=lambda s: s.feature.name, reverse=True)
    assert [p.value for p in width.points] == [8, 16, 32] and width.points[1].mean == pytest.approx(0.60)
    assert width.gain() == pytest.approx(0.10)  # +0.10 per doubling, on the means
    assert depth.gain() == pytest.approx(0.60 - 0.55)  # 2 -> 3 layers: +0.05 per added layer
    sigma, repeats = seed_spread(runs)
    assert [[r.name for r in g] for g in repeats] == [["w16", "w16_seed1"]]
    assert sigma == pytest.approx(math.sqrt(((0.58 - 0.6) ** 2 + (0.62 - 0.6) ** 2) / 1))


def test_a_value_with_two_different_models_is_not_a_clean_sweep() -> None:
    alex = {"family": "alexnet", "recipe": "modern"}
    models = {"w8": {**alex, "filters": 8}, "w16": {**alex, "filters": 16},
              "w16_k7": {**alex, "filters": 16, "kernels": [7, 3, 3]}}
    widths = [s for s in find_sweeps(runs_of(models, {})) if s.feature.name == "width"]
    assert [[p.value for p in s.points] for s in widths] == [[8, 16]]  # w16_k7 differs in kernels: alone


def test_frontier_keeps_models_no_cheaper_model_beats() -> None:
    mlp = {"family": "mlp", "recipe": "modern"}
    models = {"a": {**mlp, "widths": [8]}, "b": {**mlp, "widths": [16]}, "c": {**mlp, "widths": [32]}}
    models["c_seed1"] = {**models["c"], "seed": 1}
    runs = runs_of(models, {"a": 0.4, "b": 0.3, "c": 0.6, "c_seed1": 0.3})  # params 1000, 1001, 1002, 1003
    kept = frontier(seed_groups(runs), lambda r: r.metrics["cost"]["params"])
    assert [[r.name for r in group] for group in kept] == [["a"], ["c", "c_seed1"]]  # c's mean, 0.45, beats a's 0.4
    runs[-1].metrics["test"]["accuracy"] = 0.2
    kept = frontier(seed_groups(runs), lambda r: r.metrics["cost"]["params"])
    assert [[r.name for r in group] for group in kept] == [["a"]]  # now 0.4: a lucky seed alone does not count


def write_results(folder: Path, models: dict, accuracy: dict[str, float], val: dict[str, float], diverged: dict[str, int] = {},
                  recipe_changes: dict[str, dict] = {}, notebook: dict[str, float] = {}) -> None:
    """metrics/, dvclive/ and plots/confusion/ as evaluate and train write them, and params.yaml; `diverged`: model -> epoch."""
    for i, name in enumerate(models):
        (folder / "metrics").mkdir(parents=True, exist_ok=True)
        metrics = fake_metrics(accuracy[name], 100 * (i + 1), val[name], diverged.get(name, 0))
        (folder / "metrics" / f"{name}.json").write_text(json.dumps(metrics))
        for split in ("train", "val"):
            logs = folder / "dvclive" / name / "plots" / "metrics" / split
            logs.mkdir(parents=True)
            (logs / "accuracy.tsv").write_text("step\taccuracy\n0\t0.3\n1\t0.4\n2\t0.45\n" if name not in diverged else "step\taccuracy\n0\t0.3\n1\tnan\n")
            (logs / "loss.tsv").write_text("step\tloss\n0\t2.1\n1\t1.5\n2\t1.2\n" if name not in diverged else "step\tloss\n0\t2.1\n1\tnan\n")
        (folder / "dvclive" / name / "params.yaml").write_text("machine: Test CPU, AVX2, 2 cores\n")
        records = [{"actual": CLASSES[i % 2], "predicted": CLASSES[(i // 3) % 2]} for i in range(6)]
        (folder / "plots" / "confusion").mkdir(parents=True, exist_ok=True)
        (folder / "plots" / "confusion" / f"{name}.json").write_text(json.dumps(records))
    splits = {"train": {"count": 40}, "val": {"count": 10}, "test": {"count": 6}}
    (folder / "data").mkdir()
    (folder / "data" / "dataset.json").write_text(json.dumps({"classes": CLASSES, "image_shape": list(SHAPE), "splits": splits}))
    np.save(folder / "data" / "x_train.npy", builders.random_images(30, SHAPE, seed=0))
    np.save(folder / "data" / "y_train.npy", builders.balanced_labels(30, len(CLASSES), seed=0))
    recipe = {"epochs": 3, "batch_size": 8, "optimizer": "sgd", "learning_rate": 0.1, "momentum": 0.9, "weight_decay": 0.0,
              "warmup_epochs": 0, "schedule": "cosine", "label_smoothing": 0.1, "inputs": "standardize", "flip": True, "translate": 0.1}
    params = {"data": {"dataset": "imagefolder", "source": "/somewhere/insects.zip"}, "models": models,
              "recipes": {name: {**recipe, **recipe_changes.get(name, {})} for name in {d["recipe"] for d in models.values()}},
              "report": {"notebook": notebook}}
    (folder / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


REPORT_ARGS = ("data", "metrics", "dvclive", "plots/confusion", "report")


def test_report_writes_table_plots_and_conclusion(workdir: Path) -> None:
    alex = {"family": "alexnet", "recipe": "modern"}
    models = {"w8": {**alex, "filters": 8}, "w16": {**alex, "filters": 16}, "w16_seed1": {**alex, "filters": 16, "seed": 1},
              "mlp": {"family": "mlp", "recipe": "modern"}}
    accuracy = {"w8": 0.5, "w16": 0.6, "w16_seed1": 0.62, "mlp": 0.4}
    write_results(workdir, models, accuracy, val={**accuracy, "w16": 0.7})
    run_stage("report", *REPORT_ARGS)

    with open("report/summary.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert [r["model"] for r in rows] == list(models) and list(rows[0]) == report.COLUMNS
    assert [float(r["test_accuracy"]) for r in rows] == list(accuracy.values())
    text = Path("report/report.md").read_text()
    assert "alexnet width (modern recipe, 3 convolution layers): +0.1100 test accuracy per doubling of width, larger than the seed spread" in text
    assert "alexnet, modern recipe: the seed-to-seed spread, the pooled standard deviation of test accuracy over w16/w16_seed1, is 0.0141" in text
    assert "Best model by validation accuracy: w16 (validation 0.7000, test 0.6000" in text
    assert "the alexnet family holds" in text
    for figure in ("samples", "sweeps", "cost", "scaling", "epochs", "confusion_best"):
        assert Path(f"report/{figure}.png").read_bytes()[:4] == b"\x89PNG" and f"]({figure}.png)" in text
    sweeps = json.loads(Path("report/plots/sweeps.json").read_text())
    assert [(s["value"], s["test_accuracy"], s["low"], s["high"], s["runs"]) for s in sweeps] == [(8, 0.5, 0.5, 0.5, 1), (16, 0.61, 0.6, 0.62, 2)]
    epochs = json.loads(Path("report/plots/epochs.json").read_text())
    assert len(epochs) == 3 * len(models) and epochs[0] == {"model": "w8", "epoch": 1, "train_accuracy": 0.3, "train_loss": 2.1, "val_accuracy": 0.3, "val_loss": 2.1}
    confusion = json.loads(Path("report/plots/confusion_best.json").read_text())
    assert confusion == json.loads(Path("plots/confusion/w16.json").read_text())


def test_a_diverged_run_is_listed_apart_and_counts_nowhere(workdir: Path) -> None:
    alex = {"family": "alexnet", "recipe": "modern"}
    models = {"w8": {**alex, "filters": 8}, "w16": {**alex, "filters": 16}, "w32": {**alex, "filters": 32}}
    accuracy = {"w8": 0.5, "w16": 0.6, "w32": 0.9}  # w32's numbers would win everything, were it counted
    write_results(workdir, models, accuracy, val=accuracy, diverged={"w32": 2})
    run_stage("report", *REPORT_ARGS)
    text = Path("report/report.md").read_text()
    conclusion, failed = text.split("## Failed runs")[0], text.split("## Failed runs")[1].split("## Summary")[0]
    assert "- w32 (alexnet, modern recipe): diverged in epoch 2" in failed
    assert "w32" not in conclusion and "Best model by validation accuracy: w16" in conclusion
    assert "+0.1000 test accuracy per doubling of width" in conclusion  # the sweep w8 -> w16 only
    assert "w32" not in Path("report/plots/sweeps.json").read_text() + Path("report/plots/cost.json").read_text()
    epochs = [r for r in json.loads(Path("report/plots/epochs.json").read_text()) if r["model"] == "w32"]
    assert epochs[1]["val_accuracy"] is None  # NaN in the log, null in the plot data
    with open("report/summary.csv", newline="") as file:
        assert {r["model"]: r["diverged_epoch"] for r in csv.DictReader(file)} == {"w8": "", "w16": "", "w32": "2"}


def test_report_without_seed_repeats_says_the_spread_is_unknown(workdir: Path) -> None:
    models = {"a": {"family": "mlp", "recipe": "modern", "widths": [8]}, "b": {"family": "mlp", "recipe": "modern", "widths": [16]}}
    write_results(workdir, models, {"a": 0.4, "b": 0.5}, {"a": 0.4, "b": 0.5})
    run_stage("report", *REPORT_ARGS)
    text = Path("report/report.md").read_text()
    assert "seed-to-seed spread is unknown" in text and "+0.1000 test accuracy per doubling of width" in text


def test_missing_or_incomplete_metrics_stop_the_report_and_write_nothing(workdir: Path) -> None:
    models = {"a": {"family": "mlp", "recipe": "modern"}}
    write_results(workdir, models, {"a": 0.4}, {"a": 0.4})
    params = yaml.safe_load(Path("params.yaml").read_text())
    params["models"]["b"] = {"family": "mlp", "recipe": "modern", "widths": [4]}
    Path("params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    with pytest.raises(StageError, match="metrics/b.json"):
        run_stage("report", *REPORT_ARGS)
    metrics = json.loads(Path("metrics/a.json").read_text())
    del metrics["cost"]["macs_per_image"]
    Path("metrics/b.json").write_text(json.dumps(metrics))
    with pytest.raises(StageError, match=r"metrics/b.json: 'cost' must hold macs_per_image"):
        run_stage("report", *REPORT_ARGS)
    assert not Path("report").exists()


def run_at(name: str, declaration: dict, accuracy: float, params: int):
    return make_run(name, declaration, check_spec(name, declaration, SHAPE), fake_metrics(accuracy, params))


ALEX = {"family": "alexnet", "recipe": "sweep"}


def test_width_and_depth_are_compared_at_matched_cost() -> None:
    runs = [run_at("w8", {**ALEX, "filters": 8}, 0.5, 100), run_at("w16", {**ALEX, "filters": 16}, 0.6, 1000),
            run_at("w32", {**ALEX, "filters": 32}, 0.7, 10000), run_at("deep", {**ALEX, "filters": 16, "convs": 2}, 0.64, 100000)]
    [comparison] = matched_cost(find_sweeps(runs), "params")
    assert [p.value for p in comparison.width.points] == [8, 16, 32] and comparison.depth.models == ["w16", "deep"]
    # the costs both sweeps cover, 1,000 to 10,000: depth at 10,000 lies halfway (in log cost) from 0.60 to 0.64
    assert [value for point in comparison.points for value in point] == pytest.approx([1000, 0.6, 0.6, 10000, 0.7, 0.62])
    assert comparison.difference == pytest.approx(0.04)


def test_power_law_fit_of_a_width_sweep_and_its_held_out_check() -> None:
    costs = [100, 1000, 10000, 100000]
    runs = [run_at(f"w{f}", {**ALEX, "filters": f}, 1 - 2 * n**-0.3, n) for f, n in zip((4, 8, 16, 32), costs)]
    [fit] = scaling_fits(find_sweeps(runs), "params")
    assert fit.alpha == pytest.approx(0.3, abs=1e-3) and fit.half_width == pytest.approx(0, abs=1e-3)
    predicted, measured = fit.held_out
    assert predicted == pytest.approx(measured, rel=1e-3)


def test_budget_control_pairs_recipes_that_differ_only_in_epochs() -> None:
    recipe = {"epochs": 4, "learning_rate": 0.1}
    recipes = {"sweep": recipe, "sweep_2x": {**recipe, "epochs": 8}, "other": {**recipe, "epochs": 8, "learning_rate": 0.2}}
    runs = [run_at("c", {**ALEX, "filters": 16}, 0.60, 10), run_at("c_seed1", {**ALEX, "filters": 16, "seed": 1}, 0.62, 10),
            run_at("c_2x", {**ALEX, "recipe": "sweep_2x", "filters": 16}, 0.66, 10),
            run_at("c_other", {**ALEX, "recipe": "other", "filters": 16}, 0.70, 10)]
    [control] = budget_controls(runs, recipes)
    assert [r.name for r in control.base] == ["c", "c_seed1"] and [r.name for r in control.longer] == ["c_2x"]
    assert (control.base_epochs, control.longer_epochs) == (4, 8) and control.gain == pytest.approx(0.05)


def test_report_sections_name_the_regime_budget_and_the_notebook(workdir: Path) -> None:
    models = {"w8": {**ALEX, "filters": 8}, "w16": {**ALEX, "filters": 16}, "w16_seed1": {**ALEX, "filters": 16, "seed": 1},
              "w32": {**ALEX, "filters": 32}, "w16_2x": {**ALEX, "recipe": "sweep_2x", "filters": 16},
              "seed_dense": {"family": "mlp", "recipe": "notebook"}}
    accuracy = {"w8": 0.5, "w16": 0.6, "w16_seed1": 0.62, "w32": 0.7, "w16_2x": 0.71, "seed_dense": 0.45}
    write_results(workdir, models, accuracy, accuracy, recipe_changes={"sweep_2x": {"epochs": 6}, "notebook": {"flip": False, "translate": 0}},
                  notebook={"seed_dense": 0.469})
    run_stage("report", *REPORT_ARGS)
    text = Path("report/report.md").read_text()
    assert "- Data: imagefolder from insects.zip, 40 training, 10 validation and 6 test images of 32x32x3." in text
    assert "- Recipe `sweep` (4 models, seeds 0, 1): 3 epochs at batch 8" in text and "no augmentation." in text
    assert "- Machine (from the training logs): Test CPU, AVX2, 2 cores." in text
    assert "- w16, w16_seed1 (3 epochs, test 0.6100) against w16_2x (6 epochs, 0.7100): +0.1000 from 2x the epochs, larger than the seed spread" in text
    assert "alexnet width (sweep recipe, 3 convolution layers), error against parameters: error ≈" in text
    assert "| seed_dense | 0.469 | 0.4500 | 0.4500 (epoch 3) | 0.4500 | 1 |" in text
    assert Path("report/scaling.png").read_bytes()[:4] == b"\x89PNG"


def test_the_notebook_models_are_compared_as_means_over_their_seeds(workdir: Path) -> None:
    dense = {"family": "mlp", "recipe": "notebook"}
    models = {"seed_dense": dense, "seed_dense_seed1": {**dense, "seed": 1}}
    accuracy = {"seed_dense": 0.45, "seed_dense_seed1": 0.47}
    write_results(workdir, models, accuracy, accuracy, notebook={"seed_dense": 0.469})
    run_stage("report", *REPORT_ARGS)
    text = Path("report/report.md").read_text()
    assert "| seed_dense | 0.469 | 0.4500 | 0.4500 (epoch 3, 3) | 0.4600 (0.4500-0.4700) | 2 |" in text
    assert "Each value is the mean over the model's seeds" in text and "With one seed per model" not in text
