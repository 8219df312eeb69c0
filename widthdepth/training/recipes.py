"""A model and its recipe (`widthdepth.params`) made into a compiled Keras model: the one place
a model is built and compiled; and the memory check that runs before.

A recipe says how a model is trained: optimizer and schedule, batch size and epochs,
label smoothing, input scaling and augmentation. Normalization and augmentation are
layers inside the model, so a saved model takes raw uint8 images and needs nothing else.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from widthdepth.architectures import FAMILIES, Model, build_model, complexity
from widthdepth.params import Recipe
from widthdepth.stage import StageError

# The memory check's estimate of training memory, in float32 values: each parameter is held
# as weight, gradient, optimizer slot and update; each activation as its value (kept for the
# backward pass) and its gradient.
PARAMETER_COPIES, ACTIVATION_COPIES = 4, 2
# Share of the memory available when a run starts that one training may take; the
# environment variable MEMORY_LIMIT_VARIABLE (in GiB) overrides it.
MEMORY_FRACTION = 0.5
MEMORY_LIMIT_VARIABLE = "WIDTHDEPTH_MEMORY_GB"


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


def check_memory(model: Model, recipe: Recipe, info: dict[str, Any], runs: int = 1) -> int:
    """Refuse a model whose estimated training memory at its batch size, times the `runs` (seeds)
    that train at once, exceeds `memory_limit()`; return the estimate in bytes. Counted from the
    declaration, before anything is allocated."""
    params, activations = complexity(model.spec, tuple(info["image_shape"]), len(info["classes"]))
    batch = recipe.batch_size
    needed = 4 * (PARAMETER_COPIES * params + ACTIVATION_COPIES * batch * activations) * runs
    limit = memory_limit()
    if needed > limit:
        raise StageError(
            f"params.yaml: models.{model.name}.{FAMILIES[model.family].width_knob} makes a model too large to train "
            f"here: an estimated {needed / 2**30:.1f} GiB ({params:,} parameters, {activations:,} activation values "
            f"per image at recipes.{model.recipe}.batch_size {batch}"
            f"{f', {runs} seeds at once' if runs > 1 else ''}), over the limit of {limit / 2**30:.1f} GiB "
            f"({MEMORY_FRACTION:.0%} of the available memory; set {MEMORY_LIMIT_VARIABLE} to change it)"
        )
    return needed


def preprocessing(recipe: Recipe, info: dict[str, Any], seed: int) -> list:
    """The layers between the raw uint8 image and the network."""
    import keras

    if recipe.inputs == "unit":
        layers = [keras.layers.Rescaling(1 / 255, name="to_unit")]
    else:
        std = np.array(info["std"])
        layers = [keras.layers.Normalization(mean=info["mean"], variance=std**2, name="standardize")]
    if recipe.augment == "data":
        return layers  # flips and shifts are done on the batches (widthdepth.training.augment)
    if recipe.flip:
        layers.append(keras.layers.RandomFlip("horizontal", seed=seed, name="random_flip"))
    if recipe.translate:
        t = recipe.translate
        layers.append(
            keras.layers.RandomTranslation(t, t, fill_mode="reflect", seed=seed + 1, name="random_translation")
        )
    return layers


def optimizer(recipe: Recipe, steps_per_epoch: int):
    """SGD (Nesterov when momentum > 0) or AdamW, with the recipe's warm-up and schedule."""
    import keras

    learning_rate = recipe.learning_rate
    if recipe.schedule == "cosine" or recipe.warmup_epochs:
        warmup = recipe.warmup_epochs * steps_per_epoch
        # "constant" after a warm-up: a cosine too long to bend.
        decay = recipe.epochs * steps_per_epoch - warmup if recipe.schedule == "cosine" else 10**12
        learning_rate = keras.optimizers.schedules.CosineDecay(
            0.0 if warmup else learning_rate,
            max(decay, 1),
            warmup_target=learning_rate if warmup else None,
            warmup_steps=warmup,
        )
    weight_decay = recipe.weight_decay
    if recipe.optimizer == "adamw":
        return keras.optimizers.AdamW(learning_rate, weight_decay=weight_decay)
    momentum = recipe.momentum
    return keras.optimizers.SGD(
        learning_rate, momentum=momentum, nesterov=momentum > 0, weight_decay=weight_decay or None
    )


def compiled_model(
    model: Model,
    recipe: Recipe,
    info: dict[str, Any],
    steps_per_epoch: int,
    seed: int | None = None,
    images: np.ndarray | None = None,
    **compile_args: Any,
):
    """The Keras model of `model`, seeded (by default with its first seed), built and compiled for
    its recipe: ready to fit.

    A family that starts from the data (`Family.initialize`) is initialized from `images`, the
    raw training images; without them (the speed benchmarks) it keeps its random start. Batch
    norm trains through the fused kernel where the recipe says so."""
    import keras

    from widthdepth.training.batchnorm import fuse

    seed = model.seeds[0] if seed is None else seed
    input_shape, n_classes = tuple(info["image_shape"]), len(info["classes"])
    keras.utils.set_random_seed(seed)
    network = build_model(model.spec, input_shape, n_classes, preprocessing(recipe, info, seed), model.name)
    initialize = FAMILIES[model.family].initialize
    if initialize and images is not None:
        initialize(network, model.spec, images)
    if recipe.fused_batch_norm:
        fuse(network)
    network.compile(
        optimizer=optimizer(recipe, steps_per_epoch),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=recipe.label_smoothing),
        metrics=["accuracy"],
        **compile_args,
    )
    return network
