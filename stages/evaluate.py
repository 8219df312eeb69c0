"""Stage `evaluate`: one trained model on every split, and what it costs.

Writes metrics/<name>/seed_<k>.json for each seed the model trained (loss and accuracy of
the train, validation and test splits, all computed by one function on the saved model;
per-class test accuracy; whether training diverged; parameters, multiply-accumulates per
image, training and inference speed); runs/<name>/seed_<k>.json, what the report needs of
the training log (machine, runtime, fingerprint, per-epoch curves), which only DVC's cache
keeps; and for its first seed the confusion records that DVC's `confusion` template reads
and a grid of misclassified test images. The model's name comes from DVC_STAGE
(`evaluate@<name>`) or --model.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from widthdepth import layout, params, runtime
from widthdepth.figures.grids import save_misclassified_grid
from widthdepth.metrics import confusion_records, model_metrics
from widthdepth.stage import StageError, atomic_path, run, stage_item
from widthdepth.training.log import run_record

log = logging.getLogger("evaluate")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", help="the model's key under `models` in params.yaml (default: from DVC_STAGE)")
    parser.add_argument("data", type=Path, help="folder written by the prepare stage")
    parser.add_argument("models", type=Path, help="folder of the trained models: reads <models>/<name>/seed_<k>.keras")
    parser.add_argument("live", type=Path, help="folder of the training logs: reads <live>/<name>/seed_<k>/")
    parser.add_argument("metrics", type=Path, help="writes <metrics>/<name>/seed_<k>.json")
    parser.add_argument("runs", type=Path, help="writes <runs>/<name>/seed_<k>.json: the run, from its training log")
    parser.add_argument(
        "plots", type=Path, help="writes <plots>/confusion/<name>.json, <plots>/misclassified/<name>.png"
    )
    args = parser.parse_args()
    name = stage_item(args.model)
    runtime.configure(params.load(params.Train, "train").backend)
    classes = layout.read_info(args.data)["classes"]
    seeds = layout.trained_seeds(args.models / name)
    if not seeds:
        raise StageError(
            f"{args.models / name} holds no seed_<k>.keras: run `dvc repro train@{name}` (or `dvc checkout`)"
        )
    splits = layout.load_splits(args.data)

    with (
        atomic_path(args.metrics / name, directory=True) as metrics_tmp,
        atomic_path(args.runs / name, directory=True) as runs_tmp,
    ):
        for seed in seeds:
            record = run_record(layout.seed_log(args.live / name, seed))
            model = load_model(layout.seed_model(args.models / name, seed), name)
            metrics, predicted = model_metrics(model, splits, classes, record)
            layout.seed_json(metrics_tmp, seed).write_text(json.dumps(metrics, indent=2) + "\n")
            layout.seed_json(runs_tmp, seed).write_text(json.dumps(record, indent=2) + "\n")
            if seed == seeds[0]:
                first = predicted
            if metrics["diverged"]:
                log.warning("%s seed %d: training diverged in epoch %d", name, seed, metrics["diverged_epoch"])
            log.info("%s seed %d: test accuracy %s", name, seed, metrics["test"]["accuracy"])
        with (
            atomic_path(args.plots / "confusion" / f"{name}.json") as confusion_tmp,
            atomic_path(args.plots / "misclassified" / f"{name}.png") as grid_tmp,
        ):
            x_test, actual = splits["test"]
            confusion_tmp.write_text(json.dumps(confusion_records(actual, first, classes)) + "\n")
            save_misclassified_grid(x_test, actual, first, classes, layout.seed_name(seeds[0]), grid_tmp)


def load_model(path: Path, name: str):
    import keras

    try:
        return keras.saving.load_model(path)
    except Exception as err:  # Keras raises many kinds on a damaged .keras file
        raise StageError(
            f"{path} cannot be loaded, it is damaged or not a .keras model "
            f"({type(err).__name__}); rerun `dvc repro train@{name}` or `dvc checkout {path.parent}`"
        ) from err


if __name__ == "__main__":
    run(main)
