"""What a trained model scores and costs, computed one way for every split and every model.

`split_metrics` is the one function behind every loss and accuracy of `metrics/<name>.json`:
plain cross-entropy and accuracy of the saved model's probabilities, in inference mode.
The training log keeps its own per-epoch curves (with label smoothing and augmentation);
they are not comparable with these numbers and are not mixed with them.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from widthdepth import runtime

INFERENCE_BATCH = 1024
LATENCY_CALLS = 30
PROBABILITY_FLOOR = 1e-7  # as Keras clips probabilities in its cross-entropy


def predict(model, images: np.ndarray) -> np.ndarray:
    """Class probabilities of the saved model (inference mode: no augmentation, no dropout)."""
    return np.asarray(model.predict(runtime.batches(images, None, INFERENCE_BATCH), verbose=0), dtype=np.float64)


def split_metrics(probabilities: np.ndarray, labels: np.ndarray) -> dict[str, float | None]:
    """Cross-entropy and accuracy of predicted probabilities; None where a diverged model gives non-finite ones."""
    picked = np.clip(probabilities[np.arange(len(labels)), labels], PROBABILITY_FLOOR, 1.0)
    loss = float(-np.mean(np.log(picked)))
    accuracy = float(np.mean(probabilities.argmax(axis=1) == labels))
    finite = bool(np.isfinite(probabilities).all())
    return {"loss": round(loss, 4) if finite else None, "accuracy": round(accuracy, 4) if finite else None}


def confusion_records(actual: np.ndarray, predicted: np.ndarray, classes: list[str]) -> list[dict[str, str]]:
    """One {actual, predicted} record per image, by class name: what DVC's `confusion` template reads."""
    return [{"actual": classes[a], "predicted": classes[p]} for a, p in zip(actual, predicted, strict=True)]


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


def latency_ms(model, images: np.ndarray) -> float:
    """The median time of one single-image call, in milliseconds."""
    one = images[:1]
    model(one, training=False)
    latencies = []
    for _ in range(LATENCY_CALLS):
        start = time.perf_counter()
        np.asarray(model(one, training=False))
        latencies.append(time.perf_counter() - start)
    return round(1000 * float(np.median(latencies)), 3)


def recomputed_batch_norm(
    model, train: tuple[np.ndarray, np.ndarray], val: tuple[np.ndarray, np.ndarray]
) -> dict[str, Any] | None:
    """What the model scores with its batch-norm statistics recomputed (widthdepth.training.batchnorm)
    on a fixed sample of training images: on that sample and on the validation split. Beside the
    saved model's scores this tells a collapse caused by the statistics from one in the weights.
    None for a model without batch norm. Changes the model's statistics: call it last."""
    from widthdepth.training.batchnorm import batch_norm_layers, recalibrate, sample

    if not batch_norm_layers(model):
        return None
    (x_train, y_train), picked = train, sample(np.arange(len(train[0])), seed=0)  # the same images for every model
    recalibrate(model, x_train[picked])
    return {
        "train_sample": split_metrics(predict(model, x_train[picked]), y_train[picked]),
        "val": split_metrics(predict(model, val[0]), val[1]),
        "images": len(picked),
    }


def model_metrics(
    model, splits: dict[str, tuple[np.ndarray, np.ndarray]], classes: list[str], training_log: dict[str, Any]
) -> tuple[dict[str, Any], np.ndarray]:
    """metrics/<name>.json of a model, given its `train`, `val` and `test` splits; and its test predictions."""
    start = time.perf_counter()
    scores, predicted, test_seconds = {}, None, 0.0
    for split, (images, labels) in splits.items():
        split_start = time.perf_counter()
        probabilities = predict(model, images)
        if split == "test":  # predicted after the others, so traced already: its time is the inference speed
            test_seconds = time.perf_counter() - split_start
            predicted = probabilities.argmax(axis=1)
        scores[split] = split_metrics(probabilities, labels)
    y_test = splits["test"][1]
    diverged = training_log.get("diverged_epoch")
    metrics = {
        "diverged": diverged is not None,
        "diverged_epoch": diverged or 0,  # 0: it did not
        "epochs": training_log["epochs"],
        **scores,
        "per_class_accuracy": {
            name: round(float(np.mean(predicted[y_test == i] == i)), 4) for i, name in enumerate(classes)
        },
        "weight_layers": weight_layers(model),
        "cost": {
            "params": model.count_params(),
            "macs_per_image": macs_per_image(model),
            "training_seconds": training_log["training_seconds"],
            "training_images_per_second": training_log["images_per_second"],
            "inference_images_per_second": round(len(y_test) / test_seconds, 1),
            "latency_ms": latency_ms(model, splits["test"][0]),
        },
    }
    metrics["recomputed_batch_norm"] = recomputed_batch_norm(
        model, splits["train"], splits["val"]
    )  # last: it changes the model
    metrics["cost"]["evaluation_seconds"] = round(time.perf_counter() - start, 2)
    return metrics, predicted
