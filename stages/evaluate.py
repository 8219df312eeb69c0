"""Stage `evaluate`: one trained model on the test split, and what it costs.

Writes metrics/<name>.json (test loss and accuracy, per-class accuracy, end-of-training
train and validation figures from the training log, parameters, multiply-accumulates per
image, training and inference speed), the confusion records that DVC's `confusion`
template reads, and a grid of misclassified test images.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from stages.common import StageError, atomic_path, read_json, run
from stages.figures import save_image_grid

log = logging.getLogger("evaluate")

INFERENCE_BATCH = 1024
LATENCY_CALLS = 30


def weight_layers(model) -> int:
    """Convolution and dense layers: the layers counted in a network's depth."""
    import keras

    return sum(isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)) for layer in model.layers)


def macs_per_image(model) -> int:
    """Multiply-accumulates of one forward pass, from the layer shapes (convolutions and dense layers)."""
    import keras

    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            kernel_h, kernel_w, in_channels, out_channels = layer.kernel.shape
            _, out_h, out_w, _ = layer.output.shape
            total += out_h * out_w * out_channels * kernel_h * kernel_w * in_channels
        elif isinstance(layer, keras.layers.Dense):
            in_features, out_features = layer.kernel.shape
            total += in_features * out_features
    return int(total)


def speed(model, images: np.ndarray) -> dict[str, float]:
    """Inference throughput at a large batch, and the median latency of one image."""
    model.predict(images[:INFERENCE_BATCH], batch_size=INFERENCE_BATCH, verbose=0)  # warm-up
    start = time.perf_counter()
    model.predict(images, batch_size=INFERENCE_BATCH, verbose=0)
    throughput = len(images) / (time.perf_counter() - start)
    one = images[:1]
    model(one, training=False)
    latencies = []
    for _ in range(LATENCY_CALLS):
        start = time.perf_counter()
        np.asarray(model(one, training=False))
        latencies.append(time.perf_counter() - start)
    return {"inference_images_per_second": round(throughput, 1), "latency_ms": round(1000 * float(np.median(latencies)), 3)}


def evaluate(
    model, x_test: np.ndarray, y_test: np.ndarray, classes: list[str], training_log: dict[str, Any]
) -> tuple[dict[str, Any], np.ndarray]:
    """The metrics, and the predicted class of each test image."""
    import keras

    probabilities = model.predict(x_test, batch_size=INFERENCE_BATCH, verbose=0)
    predicted = probabilities.argmax(axis=1)
    loss = float(keras.losses.CategoricalCrossentropy()(keras.utils.to_categorical(y_test, len(classes)), probabilities))
    per_class = {name: round(float(np.mean(predicted[y_test == i] == i)), 4) for i, name in enumerate(classes)}
    metrics = {
        "test": {"accuracy": round(float(np.mean(predicted == y_test)), 4), "loss": round(loss, 4)},
        "train": {k: round(v, 4) for k, v in training_log["train"].items()},
        "val": {k: round(v, 4) for k, v in training_log["val"].items()},
        "per_class_accuracy": per_class,
        "weight_layers": weight_layers(model),
        "cost": {
            "params": model.count_params(),
            "macs_per_image": macs_per_image(model),
            "training_seconds": training_log["training_seconds"],
            "training_images_per_second": training_log["images_per_second"],
            **speed(model, x_test),
        },
    }
    return metrics, predicted


def main() -> None:
    import keras

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("name")
    parser.add_argument("data", type=Path, help="folder written by the prepare stage")
    parser.add_argument("model", type=Path, help="the trained .keras model")
    parser.add_argument("training_log", type=Path, help="DVCLive's metrics.json of the training run")
    parser.add_argument("metrics", type=Path, help="metrics JSON to write")
    parser.add_argument("confusion", type=Path, help="actual/predicted records to write")
    parser.add_argument("misclassified", type=Path, help="PNG grid to write")
    args = parser.parse_args()
    training_log = read_json(args.training_log)
    classes = read_json(args.data / "dataset.json")["classes"]
    try:
        model = keras.saving.load_model(args.model)
    except (OSError, ValueError) as err:
        raise StageError(f"cannot load the trained model {args.model}: {err}") from err

    x_test, actual = np.load(args.data / "x_test.npy"), np.load(args.data / "y_test.npy")
    metrics, predicted = evaluate(model, x_test, actual, classes, training_log)
    records = [{"actual": classes[a], "predicted": classes[p]} for a, p in zip(actual, predicted)]
    with atomic_path(args.metrics) as metrics_tmp, atomic_path(args.confusion) as confusion_tmp, atomic_path(args.misclassified) as grid_tmp:
        metrics_tmp.write_text(json.dumps(metrics, indent=2) + "\n")
        confusion_tmp.write_text(json.dumps(records) + "\n")
        wrong = np.flatnonzero(actual != predicted)[:25]
        titles = [f"{classes[actual[i]]}\n-> {classes[predicted[i]]}" for i in wrong]
        save_image_grid(x_test[wrong], titles, f"Misclassified test images (true -> predicted), first {len(wrong)}", grid_tmp)
    log.info("%s: test accuracy %.4f, %s parameters, %s MACs per image",
             args.name, metrics["test"]["accuracy"], f"{metrics['cost']['params']:,}", f"{metrics['cost']['macs_per_image']:,}")


if __name__ == "__main__":
    run(main)
