"""Training recipes (`recipes.<name>` in params.yaml): their checks, and the one place a model is built and compiled.

A recipe says how a model is trained: optimizer and schedule, batch size and epochs,
label smoothing, input scaling and augmentation. Normalization and augmentation are
layers inside the model, so a saved model takes raw uint8 images and needs nothing else.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from widthdepth.architectures import FAMILIES, build_model, check_spec, complexity
from widthdepth.stage import StageError, check_name

# The memory check's estimate of training memory, in float32 values: each parameter is held
# as weight, gradient, optimizer slot and update; each activation as its value (kept for the
# backward pass) and its gradient.
PARAMETER_COPIES, ACTIVATION_COPIES = 4, 2
# Share of the memory available when a run starts that one training may take; the
# environment variable MEMORY_LIMIT_VARIABLE (in GiB) overrides it.
MEMORY_FRACTION = 0.5
MEMORY_LIMIT_VARIABLE = "WIDTHDEPTH_MEMORY_GB"

# Each key: its type and the check of its value, with the range in words.
RECIPE_KEYS: dict[str, tuple[type, Any, str]] = {
    "epochs": (int, lambda v: v >= 1, "an integer of at least 1"),
    "batch_size": (int, lambda v: v >= 1, "an integer of at least 1"),
    "optimizer": (str, lambda v: v in ("sgd", "adamw"), "sgd (momentum, Nesterov if > 0) or adamw"),
    "learning_rate": (float, lambda v: v > 0, "a number above 0"),
    "momentum": (float, lambda v: 0 <= v < 1, "a number in [0, 1)"),
    "weight_decay": (float, lambda v: 0 <= v < 1, "a number in [0, 1)"),
    "warmup_epochs": (int, lambda v: v >= 0, "an integer of at least 0, at most epochs"),
    "schedule": (str, lambda v: v in ("constant", "cosine"), "constant or cosine (after the warm-up)"),
    "label_smoothing": (float, lambda v: 0 <= v < 1, "a number in [0, 1)"),
    "inputs": (
        str,
        lambda v: v in ("unit", "standardize"),
        "unit (x / 255) or standardize ((x - mean) / std of the training part)",
    ),
    "flip": (bool, lambda v: True, "true or false (random horizontal flips)"),
    "translate": (float, lambda v: 0 <= v <= 0.5, "a number in [0, 0.5] (random shifts, a fraction of the image size)"),
    "augment": (
        str,
        lambda v: v in ("data", "layers"),
        "data (flips and whole-pixel shifts of the uint8 batches, outside "
        "the gradient graph) or layers (Keras RandomFlip and RandomTranslation inside the model)",
    ),
    "recalibrate_batch_norm": (
        bool,
        lambda v: True,
        "true or false (after training, set the batch-norm statistics to those "
        "of 8,192 training images in inference mode: widthdepth.training.batchnorm)",
    ),
}
# Most seeds one model may declare: each is a training run.
MAX_SEEDS = 16


def _of_type(value: Any, kind: type) -> bool:
    if isinstance(value, bool) or kind is bool:  # YAML's true is no number, and 1 is no boolean
        return isinstance(value, bool) and kind is bool
    return isinstance(value, (int, float) if kind is float else kind)


def check_recipe(name: str, recipe: Any) -> None:
    """A recipe from `recipes.<name>`: every key present, of its type and in range."""
    if not isinstance(recipe, dict):
        raise StageError(f"params.yaml: recipes.{name} is missing or not a mapping")
    for key in sorted(set(recipe) ^ set(RECIPE_KEYS)):
        what = "is not a recipe key" if key in recipe else "is missing"
        raise StageError(f"params.yaml: recipes.{name}.{key} {what}; keys: {', '.join(RECIPE_KEYS)}")
    for key, (kind, valid, expected) in RECIPE_KEYS.items():
        value = recipe[key]
        if not _of_type(value, kind) or not valid(value):
            raise StageError(f"params.yaml: recipes.{name}.{key} must be {expected}, not {value!r}")
    if recipe["warmup_epochs"] > recipe["epochs"]:
        raise StageError(
            f"params.yaml: recipes.{name}.warmup_epochs must be at most its epochs ({recipe['epochs']}), "
            f"not {recipe['warmup_epochs']}"
        )


def check_declarations(models: Any, recipes: Any, input_shape: tuple[int, int, int]) -> None:
    """Every declared model and recipe, so that a bad one stops the run before any training."""
    if not isinstance(models, dict) or not models:
        raise StageError("params.yaml: models must map model names to their declarations (at least one)")
    if not isinstance(recipes, dict) or not recipes:
        raise StageError("params.yaml: recipes must map recipe names to training recipes")
    for name in recipes:
        check_name("recipes", name)
    for name in models:
        check_name("models", name)
    for name, recipe in recipes.items():
        check_recipe(name, recipe)
    for name, spec in models.items():
        check_spec(name, spec, input_shape)
        if not isinstance(spec.get("recipe"), str) or spec["recipe"] not in recipes:
            raise StageError(
                f"params.yaml: models.{name}.recipe is {spec.get('recipe')!r}; expected one of {', '.join(recipes)}"
            )
        seed, seeds = spec.get("seed", 0), spec.get("seeds", 1)
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise StageError(f"params.yaml: models.{name}.seed must be a non-negative integer, not {seed!r}")
        if isinstance(seeds, bool) or not isinstance(seeds, int) or not 1 <= seeds <= MAX_SEEDS:
            raise StageError(
                f"params.yaml: models.{name}.seeds must be a number of seeds from 1 to {MAX_SEEDS}, not {seeds!r}"
            )


def capped(recipe: dict[str, Any], max_epochs: Any) -> dict[str, Any]:
    """The recipe with at most `max_epochs` epochs (`train.max_epochs`, for a quick tour; None: as it is)."""
    if max_epochs is None:
        return recipe
    if isinstance(max_epochs, bool) or not isinstance(max_epochs, int) or max_epochs < 1:
        raise StageError(
            f"params.yaml: train.max_epochs must be a positive number of epochs or null, not {max_epochs!r}"
        )
    epochs = min(recipe["epochs"], max_epochs)
    return {**recipe, "epochs": epochs, "warmup_epochs": min(recipe["warmup_epochs"], epochs)}


def seeds_of(declaration: dict[str, Any]) -> list[int]:
    """The seeds a model trains with: `seeds` of them from `seed` on (defaults: 1 from 0)."""
    first = declaration.get("seed", 0)
    return list(range(first, first + declaration.get("seeds", 1)))


def memory_limit() -> int:
    """Bytes one training may take: MEMORY_FRACTION of the available memory, or the override."""
    override = os.environ.get(MEMORY_LIMIT_VARIABLE)
    if override:
        try:
            return int(float(override) * 2**30)
        except ValueError:
            raise StageError(f"{MEMORY_LIMIT_VARIABLE}={override!r} must be a number of GiB") from None
    import psutil

    return int(MEMORY_FRACTION * psutil.virtual_memory().available)


def check_memory(
    name: str, declaration: dict[str, Any], recipe: dict[str, Any], info: dict[str, Any], runs: int = 1
) -> int:
    """Refuse a model whose estimated training memory at its batch size, times the `runs` (seeds)
    that train at once, exceeds `memory_limit()`; return the estimate in bytes. Counted from the
    declaration, before anything is allocated."""
    spec = check_spec(name, declaration, tuple(info["image_shape"]))
    params, activations = complexity(spec, tuple(info["image_shape"]), len(info["classes"]))
    batch = recipe["batch_size"]
    needed = 4 * (PARAMETER_COPIES * params + ACTIVATION_COPIES * batch * activations) * runs
    limit = memory_limit()
    if needed > limit:
        raise StageError(
            f"params.yaml: models.{name}.{FAMILIES[spec['family']].width_knob} makes a model too large to train "
            f"here: an estimated {needed / 2**30:.1f} GiB ({params:,} parameters, {activations:,} activation values "
            f"per image at recipes.{declaration['recipe']}.batch_size {batch}"
            f"{f', {runs} seeds at once' if runs > 1 else ''}), over the limit of {limit / 2**30:.1f} GiB "
            f"({MEMORY_FRACTION:.0%} of the available memory; set {MEMORY_LIMIT_VARIABLE} to change it)"
        )
    return needed


def preprocessing(recipe: dict[str, Any], info: dict[str, Any], seed: int) -> list:
    """The layers between the raw uint8 image and the network."""
    import keras

    if recipe["inputs"] == "unit":
        layers = [keras.layers.Rescaling(1 / 255, name="to_unit")]
    else:
        std = np.array(info["std"])
        layers = [keras.layers.Normalization(mean=info["mean"], variance=std**2, name="standardize")]
    if recipe["augment"] == "data":
        return layers  # flips and shifts are done on the batches (widthdepth.training.augment)
    if recipe["flip"]:
        layers.append(keras.layers.RandomFlip("horizontal", seed=seed, name="random_flip"))
    if recipe["translate"]:
        t = recipe["translate"]
        layers.append(
            keras.layers.RandomTranslation(t, t, fill_mode="reflect", seed=seed + 1, name="random_translation")
        )
    return layers


def optimizer(recipe: dict[str, Any], steps_per_epoch: int):
    """SGD (Nesterov when momentum > 0) or AdamW, with the recipe's warm-up and schedule."""
    import keras

    learning_rate = recipe["learning_rate"]
    if recipe["schedule"] == "cosine" or recipe["warmup_epochs"]:
        warmup = recipe["warmup_epochs"] * steps_per_epoch
        # "constant" after a warm-up: a cosine too long to bend.
        decay = recipe["epochs"] * steps_per_epoch - warmup if recipe["schedule"] == "cosine" else 10**12
        learning_rate = keras.optimizers.schedules.CosineDecay(
            0.0 if warmup else learning_rate,
            max(decay, 1),
            warmup_target=learning_rate if warmup else None,
            warmup_steps=warmup,
        )
    weight_decay = recipe["weight_decay"]
    if recipe["optimizer"] == "adamw":
        return keras.optimizers.AdamW(learning_rate, weight_decay=weight_decay)
    momentum = recipe["momentum"]
    return keras.optimizers.SGD(
        learning_rate, momentum=momentum, nesterov=momentum > 0, weight_decay=weight_decay or None
    )


def compiled_model(
    name: str,
    declaration: dict[str, Any],
    recipe: dict[str, Any],
    info: dict[str, Any],
    steps_per_epoch: int,
    seed: int | None = None,
    images: np.ndarray | None = None,
    **compile_args: Any,
):
    """The model of `models.<name>`, seeded (by default with its first seed), built and compiled for
    its recipe: ready to fit.

    A family that starts from the data (`Family.initialize`) is initialized from `images`, the
    raw training images; without them (the speed benchmarks) it keeps its random start."""
    import keras

    from widthdepth.training.batchnorm import fuse

    seed = declaration.get("seed", 0) if seed is None else seed
    input_shape, n_classes = tuple(info["image_shape"]), len(info["classes"])
    keras.utils.set_random_seed(seed)
    spec = check_spec(name, declaration, input_shape)
    model = build_model(spec, input_shape, n_classes, preprocessing(recipe, info, seed), name)
    initialize = FAMILIES[spec["family"]].initialize
    if initialize and images is not None:
        initialize(model, spec, images)
    fuse(model)
    model.compile(
        optimizer=optimizer(recipe, steps_per_epoch),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=recipe["label_smoothing"]),
        metrics=["accuracy"],
        **compile_args,
    )
    return model
