"""Stage `train`: train the model declared under `models.<name>` into a self-contained .keras file.

The model takes raw uint8 images: normalization and augmentation are layers inside it.
Each epoch goes to the DVCLive folder and to a checkpoint in `checkpoints/<name>/`; a run
killed and started again with the same params, data, runtime and code resumes from it and
ends with the same weights as an uninterrupted run. A run whose loss diverges is stopped
and marked so in its training log (`diverged_epoch`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import shutil
from pathlib import Path

import numpy as np

from widthdepth import provenance, runtime
from widthdepth.stage import StageError, atomic_path, load_params, read_json, run

log = logging.getLogger("train")

CHECKPOINTS = Path("checkpoints")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("name", help="the model's key under `models` in params.yaml")
    parser.add_argument("data", type=Path, help="folder written by the prepare stage")
    parser.add_argument("model", type=Path, help="where to save the trained .keras model")
    parser.add_argument("live", type=Path, help="DVCLive folder for the training log")
    args = parser.parse_args()
    models, recipes = load_params("models"), load_params("recipes")
    settings = runtime.configure(load_params("train").get("backend"))
    info = read_json(args.data / "dataset.json")

    import keras
    from dvclive import Live

    from widthdepth.training.loop import RunState, fit, load_checkpoint
    from widthdepth.training.recipes import check_declarations, compiled_model

    check_declarations(models, recipes, tuple(info["image_shape"]))
    if args.name not in models:
        raise StageError(f"params.yaml: models.{args.name} is not declared")
    declaration = models[args.name]
    recipe, seed = recipes[declaration["recipe"]], declaration.get("seed", 0)
    n_classes = len(info["classes"])
    x_train, y_train = np.load(args.data / "x_train.npy"), np.load(args.data / "y_train.npy")
    x_val, y_val = np.load(args.data / "x_val.npy"), np.load(args.data / "y_val.npy")

    # A checkpoint is resumed only by the very same run: params, data, runtime and code.
    key = [declaration, recipe, info["sha256"], settings, keras.__version__, provenance.source_digest("stages.train")]
    fingerprint = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()
    checkpoint = CHECKPOINTS / args.name
    resumed = load_checkpoint(checkpoint, fingerprint)
    if resumed:
        model, state = resumed
        log.info("%s: resuming after epoch %d from %s", args.name, state.epoch, checkpoint)
    else:
        model = compiled_model(args.name, declaration, recipe, info, math.ceil(len(x_train) / recipe["batch_size"]))
        state = RunState(fingerprint)

    onehot = lambda y: keras.utils.to_categorical(y, n_classes)  # label smoothing needs one-hot targets
    with Live(str(args.live), dvcyaml=False, save_dvc_exp=False) as live:
        live.log_params({"model": declaration, "recipe": recipe, "runtime": settings, "machine": runtime.machine()})
        state = fit(model, state, recipe, seed, (x_train, onehot(y_train)), (x_val, onehot(y_val)), checkpoint, live)
        trained_images = state.epoch * len(x_train)
        live.summary.update({
            "params": model.count_params(),
            "epochs": state.epoch,
            "diverged_epoch": state.diverged_epoch,
            "training_seconds": round(state.train_seconds, 2),
            "images_per_second": round(trained_images / state.train_seconds, 1) if state.train_seconds else 0.0,
        })

    with atomic_path(args.model) as tmp:
        model.save(tmp)
    shutil.rmtree(checkpoint, ignore_errors=True)


if __name__ == "__main__":
    run(main)
