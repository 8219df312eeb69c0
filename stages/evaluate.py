"""Stage `evaluate`: one trained model on every split, and what it costs.

Writes metrics/<name>/seed_<k>.json for each seed the model trained (loss and accuracy of
the train, validation and test splits, all computed by one function on the saved model;
per-class test accuracy; whether training diverged; parameters, multiply-accumulates per
image, training and inference speed), and for its first seed the confusion records that
DVC's `confusion` template reads and a grid of misclassified test images. The model's
name comes from DVC_STAGE (`evaluate@<name>`) or --model.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np

from widthdepth import runtime
from widthdepth.figures.grids import save_image_grid
from widthdepth.metrics import model_metrics
from widthdepth.stage import StageError, atomic_path, load_params, read_json, run, stage_item
from widthdepth.training.log import read_summary

log = logging.getLogger("evaluate")

SPLITS = ("train", "val", "test")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", help="the model's key under `models` in params.yaml (default: from DVC_STAGE)")
    parser.add_argument("data", type=Path, help="folder written by the prepare stage")
    parser.add_argument("models", type=Path, help="folder of the trained models: reads <models>/<name>/seed_<k>.keras")
    parser.add_argument(
        "live", type=Path, help="folder of the training logs: reads <live>/<name>/seed_<k>/metrics.json"
    )
    parser.add_argument("metrics", type=Path, help="writes <metrics>/<name>/seed_<k>.json")
    parser.add_argument(
        "plots",
        type=Path,
        help="writes <plots>/confusion/<name>.json and <plots>/misclassified/<name>.png (first seed)",
    )
    args = parser.parse_args()
    name = stage_item(args.model)
    runtime.configure(load_params("train").get("backend"))
    classes = read_json(args.data / "dataset.json")["classes"]
    seeds = sorted((args.models / name).glob("seed_*.keras"), key=lambda path: int(path.stem.split("_")[1]))
    if not seeds:
        raise StageError(
            f"{args.models / name} holds no seed_<k>.keras: run `dvc repro train@{name}` (or `dvc checkout`)"
        )
    splits = {split: (np.load(args.data / f"x_{split}.npy"), np.load(args.data / f"y_{split}.npy")) for split in SPLITS}

    with atomic_path(args.metrics / name, directory=True) as metrics_tmp:
        for path in seeds:
            metrics, predicted = model_metrics(
                load_model(path, name), splits, classes, read_summary(args.live / name / path.stem)
            )
            (metrics_tmp / f"{path.stem}.json").write_text(json.dumps(metrics, indent=2) + "\n")
            if path == seeds[0]:
                first = predicted
            if metrics["diverged"]:
                log.warning(
                    "%s %s: training diverged in epoch %d; its metrics are kept out of the report's conclusions",
                    name,
                    path.stem,
                    metrics["diverged_epoch"],
                )
            log.info(
                "%s %s: test accuracy %s, %s parameters, %s MACs per image",
                name,
                path.stem,
                metrics["test"]["accuracy"],
                f"{metrics['cost']['params']:,}",
                f"{metrics['cost']['macs_per_image']:,}",
            )
        x_test, actual = splits["test"]
        records = [{"actual": classes[a], "predicted": classes[p]} for a, p in zip(actual, first)]
        with (
            atomic_path(args.plots / "confusion" / f"{name}.json") as confusion_tmp,
            atomic_path(args.plots / "misclassified" / f"{name}.png") as grid_tmp,
        ):
            confusion_tmp.write_text(json.dumps(records) + "\n")
            wrong = np.flatnonzero(actual != first)[:25]
            titles = [f"{classes[actual[i]]}\n-> {classes[first[i]]}" for i in wrong]
            save_image_grid(
                x_test[wrong],
                titles,
                f"Misclassified test images (true -> predicted), first {len(wrong)}, {seeds[0].stem}",
                grid_tmp,
            )


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
