"""The training log's layout: what `train` writes through DVCLive for each seed, and what
`evaluate` reads back and copies into the run's record, which git keeps (the log stays in
DVC's cache, which another machine may not have). Keras-free, so that the readers need no backend.

    <live>/<name>/seed_<k>/metrics.json                 summary: params, epochs, diverged_epoch, speed
    <live>/<name>/seed_<k>/params.yaml                  the model, recipe, runtime, machine and fingerprint of the run
    <live>/<name>/seed_<k>/plots/metrics/<metric>.tsv   one row per epoch (DVCLive's step = epoch - 1)
"""

from __future__ import annotations

import csv
import math
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


def read_logged_params(folder: Path) -> dict[str, Any]:
    """What the run recorded of itself: its model, recipe, runtime, machine and fingerprint."""
    logged = read_yaml(folder / PARAMS_FILE)
    if not isinstance(logged, dict):
        raise StageError(f"{folder / PARAMS_FILE}: the training log's params are not a mapping")
    return logged


def read_curve(folder: Path, metric: str) -> dict[int, float]:
    """One metric of the log (`val/accuracy`), epoch index -> value; NaN of a diverged run stays NaN."""
    path = folder / "plots" / "metrics" / f"{metric}.tsv"
    try:
        with open(path, newline="") as file:
            return {int(row["step"]): float(row[path.stem]) for row in csv.DictReader(file, delimiter="\t")}
    except (OSError, KeyError, ValueError) as err:
        raise StageError(f"cannot read the training log {path}: {err}") from err


# The run record's per-epoch curves, and the training log's metric each copies.
CURVES = {
    "train_accuracy": "train/accuracy",
    "train_loss": "train/loss",
    "val_accuracy": "val/accuracy",
    "val_loss": "val/loss",
    "epoch_seconds": "epoch_seconds",
}


def run_record(folder: Path) -> dict[str, Any]:
    """What git keeps of one seed's training log: the machine, runtime and fingerprint of the run,
    its epochs, divergence and training time, and its per-epoch curves (a non-finite value as None)."""
    logged, summary = read_logged_params(folder), read_summary(folder)
    curves = {}
    for name, metric in CURVES.items():
        values = read_curve(folder, metric)
        curves[name] = [values[step] if math.isfinite(values[step]) else None for step in sorted(values)]
    return {
        "machine": logged.get("machine"),
        "runtime": logged.get("runtime"),
        "fingerprint": logged.get("fingerprint"),
        "epochs": summary["epochs"],
        "diverged_epoch": summary["diverged_epoch"],
        "training_seconds": summary["training_seconds"],
        "images_per_second": summary["images_per_second"],
        "curves": curves,
    }
