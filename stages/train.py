"""Stage `train`: train one model declared under `models.<name>` into a self-contained .keras file.

The model reads raw uint8 images: normalization (and, during training, augmentation)
are layers inside it. Per-epoch metrics go to DVCLive. After each epoch a checkpoint is
written to `checkpoints/<name>/`; if the run is killed, the next run with the same params
and data continues from it and ends with the same weights as an uninterrupted run.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from stages.architectures import check_spec
from stages.common import StageError, atomic_path, load_params, read_json, run

log = logging.getLogger("train")

CHECKPOINTS = Path("checkpoints")

RECIPE_KEYS = {
    "epochs": int,
    "batch_size": int,
    "optimizer": str,  # sgd (momentum, Nesterov if > 0) or adamw
    "learning_rate": float,
    "momentum": float,
    "weight_decay": float,
    "warmup_epochs": int,
    "schedule": str,  # constant or cosine (after the warm-up)
    "label_smoothing": float,
    "inputs": str,  # unit: x / 255; standardize: (x - mean) / std of the training part
    "flip": bool,  # random horizontal flips
    "translate": float,  # random shifts, as a fraction of the image size
}
CHOICES = {"optimizer": ("sgd", "adamw"), "schedule": ("constant", "cosine"), "inputs": ("unit", "standardize")}
KIND_NAMES = {int: "a non-negative integer", float: "a non-negative number", bool: "true or false", str: "a string"}


def _is_kind(value: Any, kind: type) -> bool:
    if kind in (bool, str) or isinstance(value, bool):  # YAML's true is no number
        return isinstance(value, kind)
    return isinstance(value, (int, float) if kind is float else int) and value >= 0


def check_recipe(name: str, recipe: Any) -> None:
    """A training recipe from `recipes.<name>`: every key present, of its kind and in range."""
    if not isinstance(recipe, dict):
        raise StageError(f"params.yaml: recipes.{name} is missing or not a mapping")
    for key in sorted(set(recipe) ^ set(RECIPE_KEYS)):
        what = "is not a recipe key" if key in recipe else "is missing"
        raise StageError(f"params.yaml: recipes.{name}.{key} {what}; keys: {', '.join(RECIPE_KEYS)}")
    for key, kind in RECIPE_KEYS.items():
        value = recipe[key]
        if not _is_kind(value, kind):
            raise StageError(f"params.yaml: recipes.{name}.{key} must be {KIND_NAMES[kind]}, not {value!r}")
        if key in CHOICES and value not in CHOICES[key]:
            raise StageError(f"params.yaml: recipes.{name}.{key} must be one of {', '.join(CHOICES[key])}, not {value!r}")
    for key in ("epochs", "batch_size"):
        if recipe[key] < 1:
            raise StageError(f"params.yaml: recipes.{name}.{key} must be at least 1")


def check_declarations(params: dict[str, Any], input_shape: tuple[int, int, int]) -> None:
    """Check every declared model and recipe, so a bad one stops the run before any training."""
    models, recipes = params.get("models"), params.get("recipes")
    if not isinstance(models, dict) or not models:
        raise StageError("params.yaml: models must map model names to their declarations")
    if not isinstance(recipes, dict):
        raise StageError("params.yaml: recipes must map recipe names to training recipes")
    for name, spec in models.items():
        check_spec(name, spec, input_shape)
        if spec.get("recipe") not in recipes:
            raise StageError(f"params.yaml: models.{name}.recipe is {spec.get('recipe')!r}; expected one of {', '.join(recipes)}")
        seed = spec.get("seed", 0)
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise StageError(f"params.yaml: models.{name}.seed must be a non-negative integer, not {seed!r}")
    for name, recipe in recipes.items():
        check_recipe(name, recipe)


def preprocessing(recipe: dict[str, Any], info: dict[str, Any], seed: int) -> list:
    """The layers between the raw uint8 image and the network."""
    import keras

    if recipe["inputs"] == "unit":
        layers = [keras.layers.Rescaling(1 / 255, name="to_unit")]
    else:
        std = np.array(info["std"])
        layers = [keras.layers.Normalization(mean=info["mean"], variance=std**2, name="standardize")]
    if recipe["flip"]:
        layers.append(keras.layers.RandomFlip("horizontal", seed=seed, name="random_flip"))
    if recipe["translate"]:
        t = recipe["translate"]
        layers.append(keras.layers.RandomTranslation(t, t, fill_mode="reflect", seed=seed + 1, name="random_translation"))
    return layers


def optimizer(recipe: dict[str, Any], steps_per_epoch: int):
    import keras

    learning_rate = recipe["learning_rate"]
    if recipe["schedule"] == "cosine" or recipe["warmup_epochs"]:
        warmup = recipe["warmup_epochs"] * steps_per_epoch
        # "constant" after a warm-up: a cosine too long to bend.
        decay = recipe["epochs"] * steps_per_epoch - warmup if recipe["schedule"] == "cosine" else 10**12
        learning_rate = keras.optimizers.schedules.CosineDecay(
            0.0 if warmup else learning_rate, max(decay, 1), warmup_target=learning_rate if warmup else None, warmup_steps=warmup
        )
    weight_decay = recipe["weight_decay"]
    if recipe["optimizer"] == "adamw":
        return keras.optimizers.AdamW(learning_rate, weight_decay=weight_decay)
    momentum = recipe["momentum"]
    return keras.optimizers.SGD(learning_rate, momentum=momentum, nesterov=momentum > 0, weight_decay=weight_decay or None)


def fingerprint(*parts: Any) -> str:
    """What a checkpoint must match to be resumed: model, recipe, data and backend."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def seed_states(model) -> list:
    """The random layers' generator states (augmentation, dropout): `load_model` resets them,
    so checkpoints carry them to keep a resumed run identical to an uninterrupted one."""
    return [v for v in model.variables if "seed_generator_state" in v.path]


def log_epoch(live, logged: dict[str, float]) -> None:
    for metric, value in logged.items():
        live.log_metric(metric, value)
    live.next_step()


def train(name: str, spec: dict, recipe: dict, info: dict, data: Path, model_path: Path, live_dir: Path) -> None:
    import keras
    from dvclive import Live

    from stages.architectures import build_model

    input_shape, n_classes = tuple(info["image_shape"]), len(info["classes"])
    arrays = {split: (np.load(data / f"x_{split}.npy"), np.load(data / f"y_{split}.npy")) for split in ("train", "val")}
    (x_train, y_train), (x_val, y_val) = arrays["train"], arrays["val"]
    onehot = lambda y: keras.utils.to_categorical(y, n_classes)  # for label smoothing
    seed = spec.get("seed", 0)
    steps_per_epoch = math.ceil(len(x_train) / recipe["batch_size"])

    checkpoint = CHECKPOINTS / name
    key = fingerprint(spec, recipe, info["sha256"], keras.backend.backend(), keras.__version__)
    state = {"fingerprint": key, "epoch": 0, "history": [], "train_seconds": 0.0}
    saved = json.loads((checkpoint / "state.json").read_text()) if (checkpoint / "state.json").exists() else {}
    if saved.get("fingerprint") == key:
        state = saved
        model = keras.saving.load_model(checkpoint / "model.keras")
        for variable, value in zip(seed_states(model), state["seed_states"]):
            variable.assign(np.array(value, dtype=variable.dtype))
        log.info("%s: resuming after epoch %d from %s", name, state["epoch"], checkpoint)
    else:
        keras.utils.set_random_seed(seed)
        model = build_model(check_spec(name, spec, input_shape), input_shape, n_classes, preprocessing(recipe, info, seed), name)
        model.compile(
            optimizer=optimizer(recipe, steps_per_epoch),
            loss=keras.losses.CategoricalCrossentropy(label_smoothing=recipe["label_smoothing"]),
            metrics=["accuracy"],
        )

    with Live(str(live_dir), dvcyaml=False, save_dvc_exp=False) as live:
        live.log_params({"model": spec, "recipe": recipe, "backend": keras.backend.backend()})
        for logged in state["history"]:  # a resumed run rewrites the whole log
            log_epoch(live, logged)
        y_val_onehot = onehot(y_val)
        for epoch in range(state["epoch"], recipe["epochs"]):
            # The epoch's order depends on (seed, epoch) alone, so a resumed run sees the same batches.
            order = np.random.default_rng([seed, epoch]).permutation(len(x_train))
            start = time.perf_counter()
            history = model.fit(
                x_train[order], onehot(y_train[order]), batch_size=recipe["batch_size"], epochs=epoch + 1,
                initial_epoch=epoch, shuffle=False, verbose=0,
            ).history
            seconds = time.perf_counter() - start
            val_loss, val_accuracy = model.evaluate(x_val, y_val_onehot, batch_size=max(256, recipe["batch_size"]), verbose=0)
            logged = {
                "train/loss": float(history["loss"][-1]), "train/accuracy": float(history["accuracy"][-1]),
                "val/loss": float(val_loss), "val/accuracy": float(val_accuracy), "epoch_seconds": seconds,
            }
            log_epoch(live, logged)
            state = {
                **state, "epoch": epoch + 1, "history": [*state["history"], logged],
                "train_seconds": state["train_seconds"] + seconds,
                "seed_states": [np.asarray(v).tolist() for v in seed_states(model)],
            }
            with atomic_path(checkpoint, directory=True) as folder:
                model.save(folder / "model.keras")
                (folder / "state.json").write_text(json.dumps(state))
            log.info(
                "%s epoch %d/%d: loss %.4f acc %.4f | val loss %.4f acc %.4f | %.0f s, %.0f img/s",
                name, epoch + 1, recipe["epochs"], logged["train/loss"], logged["train/accuracy"],
                val_loss, val_accuracy, seconds, len(x_train) / seconds,
            )
        live.summary.update({
            "params": model.count_params(),
            "training_seconds": round(state["train_seconds"], 2),
            "images_per_second": round(recipe["epochs"] * len(x_train) / state["train_seconds"], 1),
        })

    with atomic_path(model_path) as tmp:
        model.save(tmp)
    shutil.rmtree(checkpoint)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("name", help="the model's key under `models` in params.yaml")
    parser.add_argument("data", type=Path, help="folder written by the prepare stage")
    parser.add_argument("model", type=Path, help="where to save the trained .keras model")
    parser.add_argument("live", type=Path, help="DVCLive folder for the training log")
    args = parser.parse_args()
    params = {"models": load_params("models"), "recipes": load_params("recipes")}
    info = read_json(args.data / "dataset.json")
    check_declarations(params, tuple(info["image_shape"]))
    if args.name not in params["models"]:
        raise StageError(f"params.yaml: models.{args.name} is not declared")
    spec = params["models"][args.name]
    train(args.name, spec, params["recipes"][spec["recipe"]], info, args.data, args.model, args.live)


if __name__ == "__main__":
    run(main)
