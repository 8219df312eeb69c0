"""Stage `evaluate`: one trained model on every split, and what it costs.

Writes metrics/<name>.json (loss and accuracy of the train, validation and test splits,
all computed by one function on the saved model; per-class test accuracy; whether training
diverged; parameters, multiply-accumulates per image, training and inference speed), the
confusion records that DVC's `confusion` template reads, and a grid of misclassified
test images. The model's name comes from DVC_STAGE (`evaluate@<name>`) or --model.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np

from widthdepth import runtime
from widthdepth.figures.grids import save_image_grid
from widthdepth.stage import StageError, atomic_path, load_params, read_json, run, stage_item
from widthdepth.training.log import read_summary

log = logging.getLogger("evaluate")

SPLITS = ("train", "val", "test")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", help="the model's key under `models` in params.yaml (default: from DVC_STAGE)")
    parser.add_argument("data", type=Path, help="folder written by the prepare stage")
    parser.add_argument("models", type=Path, help="folder of the trained models: reads <models>/<name>.keras")
    parser.add_argument("live", type=Path, help="folder of the training logs: reads <live>/<name>/metrics.json")
    parser.add_argument("metrics", type=Path, help="writes <metrics>/<name>.json")
    parser.add_argument("plots", type=Path, help="writes <plots>/confusion/<name>.json and <plots>/misclassified/<name>.png")
    args = parser.parse_args()
    name = stage_item(args.model)
    model_path = args.models / f"{name}.keras"
    runtime.configure(load_params("train").get("backend"))
    training_log = read_summary(args.live / name)
    classes = read_json(args.data / "dataset.json")["classes"]

    import keras

    from widthdepth.metrics import model_metrics

    if not model_path.is_file():
        raise StageError(f"{model_path} is missing: run `dvc repro train@{name}` (or `dvc checkout {model_path}`)")
    try:
        model = keras.saving.load_model(model_path)
    except Exception as err:  # Keras raises many kinds on a damaged .keras file
        raise StageError(f"{model_path} cannot be loaded, it is damaged or not a .keras model "
                         f"({type(err).__name__}); rerun `dvc repro train@{name}` or `dvc checkout {model_path}`") from err
    splits = {split: (np.load(args.data / f"x_{split}.npy"), np.load(args.data / f"y_{split}.npy")) for split in SPLITS}
    metrics, predicted = model_metrics(model, splits, classes, training_log)

    x_test, actual = splits["test"]
    records = [{"actual": classes[a], "predicted": classes[p]} for a, p in zip(actual, predicted)]
    outputs = args.metrics / f"{name}.json", args.plots / "confusion" / f"{name}.json", args.plots / "misclassified" / f"{name}.png"
    with atomic_path(outputs[0]) as metrics_tmp, atomic_path(outputs[1]) as confusion_tmp, atomic_path(outputs[2]) as grid_tmp:
        metrics_tmp.write_text(json.dumps(metrics, indent=2) + "\n")
        confusion_tmp.write_text(json.dumps(records) + "\n")
        wrong = np.flatnonzero(actual != predicted)[:25]
        titles = [f"{classes[actual[i]]}\n-> {classes[predicted[i]]}" for i in wrong]
        save_image_grid(x_test[wrong], titles, f"Misclassified test images (true -> predicted), first {len(wrong)}", grid_tmp)
    if metrics["diverged"]:
        log.warning("%s: training diverged in epoch %d; its metrics are kept out of the report's conclusions",
                    name, metrics["diverged_epoch"])
    log.info("%s: test accuracy %s, %s parameters, %s MACs per image",
             name, metrics["test"]["accuracy"], f"{metrics['cost']['params']:,}", f"{metrics['cost']['macs_per_image']:,}")


if __name__ == "__main__":
    run(main)
