"""Does a batch-norm switch change a model's results? Two trainings of one model's seeds, side by side.

Train and evaluate the same model (several seeds) once per setting, each into its own
folders, for example with the fused kernel on (`recipes.notebook.fused_batch_norm: true` in
params.yaml) and then off (false; or WIDTHDEPTH_FUSED_BATCH_NORM=0, which turns it off for
every recipe):

    python -m stages.train --model seed_base data/prepared models_1 dvclive_1
    python -m stages.evaluate --model seed_base data/prepared models_1 dvclive_1 metrics_1 runs_1 plots_1
    (switch it, then the same into models_0, dvclive_0, ...)
    python benchmarks/batchnorm_switch.py seed_base --first metrics_1 dvclive_1 --second metrics_0 dvclive_0 \
        --margin 0.01

Prints per seed the saved model's validation and test accuracy, whether the run failed
(the report's rule: diverged, or collapsed in inference mode) and the validation accuracy
with its batch-norm statistics recomputed; then the difference of the mean validation
accuracy (second minus first, Welch's 95% interval) against a margin declared before the run.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from widthdepth import layout, params
from widthdepth.architectures import parse_models
from widthdepth.stage import read_json
from widthdepth.statistics import difference, mean_estimate
from widthdepth.study import Run, make_run
from widthdepth.training.log import run_record


def runs_of(name: str, metrics: Path, live: Path) -> list[Run]:
    info = layout.read_info(Path("data/prepared"))
    recipes = params.parse_recipes(params.load_section("recipes"))
    model = parse_models(params.load_section("models"), recipes, tuple(info["image_shape"]))[name]
    runs = []
    for seed in model.seeds:
        run = make_run(model, read_json(layout.seed_json(metrics / name, seed)), seed)
        record = run_record(layout.seed_log(live / name, seed))
        run.curves = {
            key: [float("nan") if v is None else v for v in values] for key, values in record["curves"].items()
        }
        run.val_images = info["splits"]["val"]["count"]
        runs.append(run)
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model")
    parser.add_argument("--first", nargs=2, type=Path, required=True, metavar=("METRICS", "LIVE"))
    parser.add_argument("--second", nargs=2, type=Path, required=True, metavar=("METRICS", "LIVE"))
    parser.add_argument("--margin", type=float, required=True, help="declared before the run")
    args = parser.parse_args()
    groups = {"first": runs_of(args.model, *args.first), "second": runs_of(args.model, *args.second)}
    print("| setting | seed | val accuracy | test accuracy | failed | val, statistics recomputed |")
    print("|---|---|---|---|---|---|")
    for setting, runs in groups.items():
        for run in runs:
            recomputed = (run.metrics.get("recomputed_batch_norm") or {}).get("val", {}).get("accuracy")
            failure = (run.failure or "no").split(":")[0]
            val, test = run.metrics["val"]["accuracy"], run.test_accuracy
            print(f"| {setting} | {run.seed} | {val:.4f} | {test:.4f} | {failure} | {recomputed} |")
    for setting, runs in groups.items():
        val = mean_estimate([run.metrics["val"]["accuracy"] for run in runs])
        failed = sum(run.failure is not None for run in runs)
        print(f"{setting}: mean validation accuracy {val.text()} over {len(runs)} seeds, {failed} of them failed")
    gap = difference(*([r.metrics["val"]["accuracy"] for r in groups[s]] for s in ("second", "first")))
    print(f"second - first, validation: {gap.text(signed=True)} (df {gap.df:.1f}): {gap.verdict(args.margin)}")
    test_gap = difference(*([r.test_accuracy for r in groups[s]] for s in ("second", "first")))
    print(f"second - first, test (reported, selects nothing): {test_gap.text(signed=True)}")


if __name__ == "__main__":
    main()
