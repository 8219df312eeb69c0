"""The evaluate stage: test metrics, confusion records, cost."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from tests import builders
from tests.conftest import ROOT, run_stage
from tests.test_train import write_params
from widthdepth import metrics as metrics_module


def flat_keys(tree: dict, prefix: str = "") -> set[str]:
    keys = set()
    for key, value in tree.items():
        keys |= flat_keys(value, f"{prefix}{key}.") if isinstance(value, dict) else {prefix + key}
    return keys


def readme_metric_keys(classes: list[str]) -> set[str]:
    """The keys docs/metrics.md's metrics table documents, with <class> spelled out."""
    readme = (ROOT / "docs" / "metrics.md").read_text()
    table = readme.split("<!-- metrics-keys -->")[1].split("<!-- /metrics-keys -->")[0]
    keys = {key for row in table.splitlines()[3:] for key in re.findall(r"`([^`]+)`", row.split("|")[1])}
    return {key.replace("<class>", name) for key in keys for name in classes}


def test_macs_match_a_hand_count() -> None:
    import keras

    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same")(inputs)  # 8*8 outputs x 4 filters x 3*3*3
    x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Conv2D(6, 2, padding="valid")(x)  # 3*3 outputs x 6 filters x 2*2*4
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(10)(x)  # 54 x 10
    model = keras.Model(inputs, outputs)
    assert metrics_module.macs_per_image(model) == 8 * 8 * 4 * 27 + 3 * 3 * 6 * 16 + 54 * 10


def test_metrics_confusion_and_grid(workdir: Path) -> None:
    builders.write_prepared(workdir / "data", shape=(16, 16, 3), n_train=60, n_val=30)
    write_params()
    run_stage("train", "--model", "tiny_alex", "data", "models", "dvclive")
    run_stage("evaluate", "--model", "tiny_alex", "data", "models", "dvclive", "metrics", "runs", "plots")
    metrics = json.loads(Path("metrics/tiny_alex/seed_0.json").read_text())
    assert flat_keys(metrics) == readme_metric_keys(["class0", "class1", "class2"])
    records = json.loads(Path("plots/confusion/tiny_alex.json").read_text())
    y_test = np.load("data/y_test.npy")
    assert len(records) == len(y_test) == 30
    accuracy = np.mean([r["actual"] == r["predicted"] for r in records])
    assert metrics["test"]["accuracy"] == round(float(accuracy), 4)
    per_class = metrics["per_class_accuracy"]
    assert list(per_class) == ["class0", "class1", "class2"]
    assert np.isclose(np.mean(list(per_class.values())), accuracy, atol=1e-3)  # balanced test set
    training = json.loads(Path("dvclive/tiny_alex/seed_0/metrics.json").read_text())
    assert metrics["cost"]["params"] == training["params"] and metrics["epochs"] == training["epochs"] == 2
    assert Path("plots/misclassified/tiny_alex.png").read_bytes()[:4] == b"\x89PNG"


def test_every_split_is_scored_by_one_function(workdir: Path) -> None:
    """The validation split, made equal to the test split, scores exactly as the test split."""
    builders.write_prepared(workdir / "data", shape=(16, 16, 3), n_train=60, n_val=30)
    for kind in "xy":
        Path(f"data/{kind}_val.npy").write_bytes(Path(f"data/{kind}_test.npy").read_bytes())
    write_params()
    run_stage("train", "--model", "tiny_alex", "data", "models", "dvclive")
    run_stage("evaluate", "--model", "tiny_alex", "data", "models", "dvclive", "metrics", "runs", "plots")
    metrics = json.loads(Path("metrics/tiny_alex/seed_0.json").read_text())
    assert metrics["val"] == metrics["test"] and metrics["diverged"] is False


def test_split_metrics_is_plain_cross_entropy_and_accuracy() -> None:
    probabilities = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.5, 0.5, 0.0]])
    labels = np.array([0, 1, 2])
    scores = metrics_module.split_metrics(probabilities, labels)
    assert scores["accuracy"] == round(1 / 3, 4)
    assert scores["loss"] == round(-(np.log(0.7) + np.log(0.3) + np.log(1e-7)) / 3, 4)
    assert metrics_module.split_metrics(np.full((3, 3), np.nan), labels) == {"loss": None, "accuracy": None}
