"""What `evaluate` wrote and git keeps, read back for the report: every declared model's seeds with their
metrics (metrics/<name>/seed_<k>.json), run records (runs/<name>/seed_<k>.json: machine, per-epoch
curves) and, for a model's first seed, its per-image test outcomes (plots/confusion/<name>.json)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from widthdepth import layout
from widthdepth.architectures import Model
from widthdepth.stage import StageError, read_json
from widthdepth.study import Run, make_run

# What the report reads of each metrics/<name>/seed_<k>.json.
METRIC_KEYS = {
    "test": {"accuracy", "loss"},
    "train": {"accuracy", "loss"},
    "val": {"accuracy", "loss"},
    "cost": {"params", "macs_per_image", "training_seconds"},
}
CURVES = [f"{split}_{metric}" for split in ("train", "val") for metric in ("accuracy", "loss")]


def load_runs(models: dict[str, Model], metrics_dir: Path, runs_dir: Path, val_images: int = 0) -> list[Run]:
    """Every declared model's seeds with their metrics and run records (machine, per-epoch curves),
    both written by `evaluate` and kept in git; a StageError names a missing file or key."""
    if not models:
        raise StageError("params.yaml: models declares no model, so there is nothing to report")
    runs = []
    for name, model in models.items():
        for seed in model.seeds:
            path = layout.seed_json(metrics_dir / name, seed)
            metrics = read_json(path)
            for section, keys in METRIC_KEYS.items():
                if not isinstance(metrics.get(section), dict) or not keys <= set(metrics[section]):
                    raise StageError(
                        f"{path}: '{section}' must hold {', '.join(sorted(keys))}; rerun its evaluate stage"
                    )
            for key in ("weight_layers", "diverged", "diverged_epoch"):
                if key not in metrics:
                    raise StageError(f"{path}: '{key}' is missing; rerun its evaluate stage")
            run = make_run(model, metrics, seed)
            record_path = layout.seed_json(runs_dir / name, seed)
            record = read_json(record_path)
            try:
                curves = {curve: record["curves"][curve] for curve in CURVES}
                run.machine = record["machine"] or ""
            except (KeyError, TypeError) as err:
                raise StageError(f"{record_path}: {err} is missing; rerun its evaluate stage") from err
            run.curves = {curve: [math.nan if v is None else v for v in values] for curve, values in curves.items()}
            run.val_images = val_images
            runs.append(run)
    return runs


def load_outcomes(names: list[str], confusion_dir: Path) -> dict[str, tuple[list[str], np.ndarray]]:
    """Per model, from its first seed's confusion records (one {actual, predicted} per test image, in the
    test split's order): each image's actual class and whether the model got it right."""
    outcomes = {}
    for name in dict.fromkeys(names):
        path = confusion_dir / f"{name}.json"
        records = read_json(path)
        if not isinstance(records, list) or not all(
            isinstance(r, dict) and {"actual", "predicted"} <= set(r) for r in records
        ):
            raise StageError(f"{path}: must be a list of {{actual, predicted}} records; rerun its evaluate stage")
        actual = [r["actual"] for r in records]
        outcomes[name] = (actual, np.array([r["predicted"] == r["actual"] for r in records], dtype=bool))
    return outcomes
