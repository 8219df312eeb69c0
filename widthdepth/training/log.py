"""The training log's layout: what `train` writes through DVCLive, and what `evaluate` and
`report` read back. Keras-free, so that the readers need no backend.

    <live>/<name>/metrics.json                    summary: params, epochs, diverged_epoch, speed
    <live>/<name>/params.yaml                     the model, recipe, runtime and machine of the run
    <live>/<name>/plots/metrics/<metric>.tsv      one row per epoch (DVCLive's step = epoch - 1)
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from widthdepth.stage import StageError, read_json, read_yaml

# Keras' epoch logs -> the training log's metric names.
EPOCH_METRICS = {
    "loss": "train/loss",
    "accuracy": "train/accuracy",
    "val_loss": "val/loss",
    "val_accuracy": "val/accuracy",
    "epoch_seconds": "epoch_seconds",
}
SUMMARY_FILE = "metrics.json"
PARAMS_FILE = "params.yaml"


def read_summary(folder: Path) -> dict[str, Any]:
    return read_json(folder / SUMMARY_FILE)


def read_logged_params(folder: Path) -> Any:
    """What the run recorded of itself, or None for a log that predates it."""
    path = folder / PARAMS_FILE
    return read_yaml(path) if path.exists() else None


def read_curve(folder: Path, metric: str) -> dict[int, float]:
    """One metric of the log (`val/accuracy`), epoch index -> value; NaN of a diverged run stays NaN."""
    path = folder / "plots" / "metrics" / f"{metric}.tsv"
    try:
        with open(path, newline="") as file:
            return {int(row["step"]): float(row[path.stem]) for row in csv.DictReader(file, delimiter="\t")}
    except (OSError, KeyError, ValueError) as err:
        raise StageError(f"cannot read the training log {path}: {err}") from err
