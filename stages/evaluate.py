"""Stage `evaluate`: one trained model on every split, and what it costs.

Writes metrics/<name>.json (loss and accuracy of the train, validation and test splits,
all computed by one function on the saved model; per-class test accuracy; whether training
diverged; parameters, multiply-accumulates per image, training and inference speed), the
confusion records that DVC's `confusion` template reads, and a grid of misclassified
test images.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np

from widthdepth import runtime
from widthdepth.figures.grids import save_image_grid
from widthdepth.stage import StageError, atomic_path, load_params, read_json, run

log = logging.getLogger("evaluate")

SPLITS = ("train", "val", "test")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("name")
    parser.add_argument("data", type=Path, help="folder written by the prepare stage")
    parser.add_argument("model", type=Path, help="the trained .keras model")
    parser.add_argument("training_log", type=Path, help="DVCLive's metrics.json of the training run")
    parser.add_argument("metrics", type=Path, help="metrics JSON to write")
    parser.add_argument("confusion", type=Path, help="actual/predicted records to write")
    parser.add_argument("misclassified", type=Path, help="PNG grid to write")
    args = parser.parse_args()
    runtime.configure(load_params("train").get("backend"))
    training_log = read_json(args.training_log)
    classes = read_json(args.data / "dataset.json")["classes"]

    import keras

    from widthdepth.metrics import model_metrics

    try:
        model = keras.saving.load_model(args.model)
    except (OSError, ValueError) as err:
        raise StageError(f"cannot load the trained model {args.model}: {err}") from err
    splits = {split: (np.load(args.data / f"x_{split}.npy"), np.load(args.data / f"y_{split}.npy")) for split in SPLITS}
    metrics, predicted = model_metrics(model, splits, classes, training_log)

    x_test, actual = splits["test"]
    records = [{"actual": classes[a], "predicted": classes[p]} for a, p in zip(actual, predicted)]
    with atomic_path(args.metrics) as metrics_tmp, atomic_path(args.confusion) as confusion_tmp, atomic_path(args.misclassified) as grid_tmp:
        metrics_tmp.write_text(json.dumps(metrics, indent=2) + "\n")
        confusion_tmp.write_text(json.dumps(records) + "\n")
        wrong = np.flatnonzero(actual != predicted)[:25]
        titles = [f"{classes[actual[i]]}\n-> {classes[predicted[i]]}" for i in wrong]
        save_image_grid(x_test[wrong], titles, f"Misclassified test images (true -> predicted), first {len(wrong)}", grid_tmp)
    if metrics["diverged"]:
        log.warning("%s: training diverged in epoch %d; its metrics are kept out of the report's conclusions",
                    args.name, metrics["diverged_epoch"])
    log.info("%s: test accuracy %s, %s parameters, %s MACs per image",
             args.name, metrics["test"]["accuracy"], f"{metrics['cost']['params']:,}", f"{metrics['cost']['macs_per_image']:,}")


if __name__ == "__main__":
    run(main)
