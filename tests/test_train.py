"""The train stage on tiny random data: outputs, checks, determinism, resuming, backends."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests import builders
from tests.conftest import ROOT, run_stage
from widthdepth.architectures import FAMILIES
from widthdepth.params import Recipe, Train, parse
from widthdepth.stage import StageError

RECIPE = {
    "epochs": 2,
    "batch_size": 16,
    "optimizer": "sgd",
    "learning_rate": 0.05,
    "momentum": 0.9,
    "weight_decay": 0.0005,
    "warmup_epochs": 1,
    "schedule": "cosine",
    "label_smoothing": 0.1,
    "inputs": "standardize",
    "flip": True,
    "translate": 0.125,
    "augment": "data",
    "recalibrate_batch_norm": False,
    "fused_batch_norm": True,
}
MODELS = {
    "tiny_alex": {"family": "alexnet", "recipe": "modern", "filters": 4, "kernels": [5, 3, 3], "dropout": 0.1},
    "tiny_inception": {"family": "inception", "recipe": "modern", "stem": 4, "filters": 2, "branches": 4},
    "tiny_mlp": {"family": "mlp", "recipe": "notebook", "widths": [8]},
    "tiny_airbench": {"family": "airbench", "recipe": "modern", "widths": [4, 8]},
}


def write_params(models: dict = MODELS, **recipe) -> None:
    recipes = {
        "modern": {**RECIPE, **recipe},
        "notebook": {**RECIPE, "inputs": "unit", "flip": False, "translate": 0.0},
    }
    Path("params.yaml").write_text(
        yaml.safe_dump({"train": {"backend": "tensorflow"}, "models": models, "recipes": recipes})
    )


@pytest.fixture
def data(workdir: Path) -> Path:
    builders.write_prepared(workdir / "data", shape=(16, 16, 3))
    return workdir / "data"


def train_model(name: str) -> None:
    run_stage("train", "--model", name, "data", "models", "dvclive")


def weights(path: Path) -> list[np.ndarray]:
    import keras

    return keras.saving.load_model(path).get_weights()


def test_saved_model_takes_raw_images_and_needs_no_other_file(data: Path, tmp_path: Path) -> None:
    import keras

    write_params()
    train_model("tiny_alex")
    moved = tmp_path / "elsewhere" / "model.keras"
    moved.parent.mkdir()
    Path("models/tiny_alex/seed_0.keras").rename(moved)
    model = keras.saving.load_model(moved)
    images = np.load(data / "x_test.npy")
    probabilities = model.predict(images, verbose=0)
    assert model.input.dtype == "uint8"
    assert probabilities.shape == (len(images), 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, rtol=1e-5)
    assert "standardize" in [layer.name for layer in model.layers]
    assert not Path("checkpoints/tiny_alex").exists()


def test_train_max_epochs_caps_every_recipe(data: Path) -> None:
    write_params(epochs=3)
    params = yaml.safe_load(Path("params.yaml").read_text())
    params["train"]["max_epochs"] = 1
    Path("params.yaml").write_text(yaml.safe_dump(params))
    train_model("tiny_alex")
    summary = json.loads(Path("dvclive/tiny_alex/seed_0/metrics.json").read_text())
    logged = yaml.safe_load(Path("dvclive/tiny_alex/seed_0/params.yaml").read_text())
    assert summary["epochs"] == 1 and logged["recipe"]["epochs"] == 1 and logged["recipe"]["warmup_epochs"] == 1


@pytest.mark.parametrize("max_epochs", [0, 1.5, False, "1"])
def test_a_bad_train_max_epochs_names_the_key(max_epochs: object) -> None:
    with pytest.raises(
        StageError, match=r"^params.yaml: train.max_epochs must be a positive number of epochs, or null"
    ):
        parse(Train, {"max_epochs": max_epochs}, "train")


def test_dvclive_logs_each_epoch_params_and_speed(data: Path) -> None:
    write_params(epochs=3)
    train_model("tiny_alex")
    live = Path("dvclive/tiny_alex/seed_0")
    for metric in ("train/loss", "train/accuracy", "val/loss", "val/accuracy"):
        rows = (live / "plots" / "metrics" / f"{metric}.tsv").read_text().splitlines()
        assert rows[0] == f"step\t{metric.split('/')[1]}" and len(rows) == 1 + 3
    summary = json.loads((live / "metrics.json").read_text())
    assert summary["step"] == 2 and summary["params"] > 0
    assert summary["training_seconds"] > 0 and summary["images_per_second"] > 0
    logged = yaml.safe_load((live / "params.yaml").read_text())
    declared = {**FAMILIES["alexnet"].defaults, **MODELS["tiny_alex"], "seed": 0, "seeds": 1}  # defaults filled in
    assert logged["model"] == declared and logged["recipe"]["epochs"] == 3


def test_same_params_give_the_same_weights_and_metrics(data: Path) -> None:
    write_params()
    train_model("tiny_alex")
    first, first_log = (
        weights(Path("models/tiny_alex/seed_0.keras")),
        Path("dvclive/tiny_alex/seed_0/plots/metrics/val/loss.tsv").read_text(),
    )
    train_model("tiny_alex")
    for a, b in zip(first, weights(Path("models/tiny_alex/seed_0.keras"))):
        np.testing.assert_array_equal(a, b)
    assert Path("dvclive/tiny_alex/seed_0/plots/metrics/val/loss.tsv").read_text() == first_log


def test_killed_training_resumes_to_the_same_result(workdir: Path) -> None:
    builders.write_prepared(workdir / "data", shape=(16, 16, 3), n_train=1500, n_val=100)
    write_params(epochs=4, batch_size=32)
    command = [sys.executable, "-m", "stages.train", "--model", "tiny_alex", "data", "models", "dvclive"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run(command, env=env, check=True, capture_output=True)
    uninterrupted = weights(Path("models/tiny_alex/seed_0.keras"))
    uninterrupted_log = Path("dvclive/tiny_alex/seed_0/plots/metrics/val/accuracy.tsv").read_text()
    Path("models/tiny_alex/seed_0.keras").unlink()

    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = Path("checkpoints/tiny_alex/seed_0/state.json")
    while process.poll() is None and not state.exists():
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "training finished before it could be killed"
    assert not Path("models/tiny_alex/seed_0.keras").exists()
    done = json.loads(state.read_text())["epoch"]
    assert 1 <= done < 4

    resumed = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
    assert f"resuming after epoch {done}" in resumed.stderr
    for a, b in zip(uninterrupted, weights(Path("models/tiny_alex/seed_0.keras"))):
        np.testing.assert_array_equal(a, b)
    assert Path("dvclive/tiny_alex/seed_0/plots/metrics/val/accuracy.tsv").read_text() == uninterrupted_log
    assert not Path("checkpoints/tiny_alex").exists()


def test_a_checkpoint_is_resumable_between_any_two_file_operations_of_its_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A kill can land anywhere in an epoch's checkpoint write: every folder it can leave resumes
    the last committed epoch or the new one."""
    import shutil

    import keras

    from widthdepth.training.loop import Checkpoint, RunState, load_checkpoint

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model.compile(optimizer="sgd", loss="mse")
    folder, logs = tmp_path / "checkpoint", {"loss": 1.0, "epoch_seconds": 0.1}
    checkpoint = Checkpoint(folder, RunState("this run"))
    checkpoint.set_model(model)
    checkpoint.on_epoch_end(0, logs)

    seen: list[Path] = []  # the folder as it stood before each file operation that changes what it holds

    def copied_first(operation):
        def wrapped(*args, **kwargs):
            copy = tmp_path / f"before_{len(seen)}"
            shutil.copytree(folder, copy) if folder.exists() else copy.mkdir()
            seen.append(copy)
            return operation(*args, **kwargs)

        return wrapped

    monkeypatch.setattr(os, "replace", copied_first(os.replace))
    monkeypatch.setattr(os, "unlink", copied_first(os.unlink))
    monkeypatch.setattr(os, "rmdir", copied_first(os.rmdir))
    checkpoint.on_epoch_end(1, logs)
    monkeypatch.undo()
    resumed = [load_checkpoint(copy, "this run") for copy in [*seen, folder]]
    assert len(seen) >= 3 and all(resumed), "a step left a folder that does not resume"
    epochs = [state.epoch for _, state in resumed]
    assert epochs[0] == 1 and epochs[-1] == 2 and epochs == sorted(epochs)
    assert sorted(path.name for path in folder.iterdir()) == ["epoch_2.keras", "state.json"]


def test_checkpoint_of_other_params_is_not_resumed(data: Path) -> None:
    write_params(epochs=1)
    Path("checkpoints/tiny_alex/seed_0").mkdir(parents=True)
    Path("checkpoints/tiny_alex/seed_0/state.json").write_text(json.dumps({"fingerprint": "other params", "epoch": 1}))
    train_model("tiny_alex")
    assert Path("models/tiny_alex/seed_0.keras").exists()


def test_a_bad_declaration_stops_training_of_every_model(data: Path) -> None:
    write_params({**MODELS, "broken": {"family": "alexnet", "recipe": "modern", "filters": -2}})
    with pytest.raises(StageError, match=r"^params.yaml: models.broken.filters must be a width of at least 1, not -2$"):
        train_model("tiny_alex")
    assert not any(Path(p).exists() for p in ("models", "dvclive", "checkpoints"))


# One bad value per recipe key, of the wrong type or out of range: every key is checked.
BAD_RECIPE_VALUES = [
    ("epochs", 0),
    ("epochs", 2.5),
    ("batch_size", 0),
    ("optimizer", "adam"),
    ("learning_rate", 0),
    ("learning_rate", "fast"),
    ("momentum", 1.0),
    ("weight_decay", -0.1),
    ("warmup_epochs", -1),
    ("warmup_epochs", 3),
    ("schedule", "step"),
    ("label_smoothing", 1),
    ("inputs", "raw"),
    ("flip", 1),
    ("translate", 0.7),
    ("translate", True),
    ("augment", "gpu"),
    ("recalibrate_batch_norm", "yes"),
    ("fused_batch_norm", 0),
]


def test_every_recipe_key_has_a_bad_value_in_the_table() -> None:
    assert {key for key, _ in BAD_RECIPE_VALUES} == set(Recipe.model_fields)


@pytest.mark.parametrize("key, value", BAD_RECIPE_VALUES)
def test_bad_recipe_values_name_the_key(key: str, value) -> None:
    with pytest.raises(StageError, match=rf"^params.yaml: recipes.modern.{key} must be "):
        parse(Recipe, {**RECIPE, key: value}, "recipes.modern")


@pytest.mark.parametrize(
    "change, message",
    [
        (
            {"optimizer": "adam"},
            r"recipes.modern.optimizer must be sgd \(momentum, Nesterov if > 0\) or adamw, not 'adam'",
        ),
        ({"mixup": 0.2}, r"recipes.modern.mixup is not a recipe key"),
    ],
)
def test_bad_recipes_stop_the_stage_and_name_the_key(data: Path, change: dict, message: str) -> None:
    write_params(**change)
    with pytest.raises(StageError, match=message):
        train_model("tiny_alex")
    assert not Path("models").exists()


def test_unknown_recipe_names_the_model_key(data: Path) -> None:
    write_params({"tiny_alex": {**MODELS["tiny_alex"], "recipe": "fancy"}})
    with pytest.raises(StageError, match=r"models.tiny_alex.recipe is 'fancy'; expected one of modern, notebook"):
        train_model("tiny_alex")


BACKEND_SMOKE = """
import numpy as np, yaml, sys
from widthdepth import runtime
runtime.configure(sys.argv[2])
import keras
from widthdepth import metrics
from widthdepth.architectures import parse_models
from widthdepth.params import parse_recipes
from widthdepth.training.recipes import compiled_model
params = yaml.safe_load(open(sys.argv[1]))
recipes = parse_recipes(params["recipes"])
info = {"mean": [127.5] * 3, "std": [73.9] * 3, "image_shape": [16, 16, 3], "classes": ["a", "b", "c"]}
x = np.random.default_rng(0).integers(0, 256, (8, 16, 16, 3), dtype=np.uint8)
y = keras.utils.to_categorical(np.arange(8) % 3, 3)
for name, declared in parse_models(params["models"], recipes, (16, 16, 3)).items():
    # airbench starts from the data
    model = compiled_model(declared, recipes[declared.recipe], info, 1, images=x)
    loss = model.train_on_batch(x, y)[0]
    assert np.isfinite(loss), (name, loss)
    history = model.fit(runtime.batches(x, y, 3), validation_data=runtime.batches(x, y, 4), shuffle=False, verbose=0)
    assert np.isfinite(history.history["val_loss"]).all(), (name, history.history)
    assert metrics.predict(model, x).shape == (8, 3)
    print(keras.backend.backend(), name, "trained one step")
"""


@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_every_family_trains_a_step_on_each_backend(workdir: Path, backend: str) -> None:
    write_params()
    result = subprocess.run(
        [sys.executable, "-c", BACKEND_SMOKE, "params.yaml", backend],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(result.stdout.split("\n")[: len(MODELS)]) == sorted(
        f"{backend} {name} trained one step" for name in MODELS
    )


def test_batches_feed_the_arrays_in_order_with_tf_data_autotuning_off() -> None:
    import keras

    from widthdepth import runtime

    x, y = np.arange(10 * 2).reshape(10, 2), np.arange(10)
    batches = runtime.batches(x, y, 4)
    seen = [(np.asarray(images), np.asarray(labels)) for images, labels in batches]
    assert [len(labels) for _, labels in seen] == [4, 4, 2]  # in order, the last batch partial
    assert np.array_equal(np.concatenate([images for images, _ in seen]), x) and np.array_equal(
        np.concatenate([labels for _, labels in seen]), y
    )
    assert np.array_equal(np.concatenate([np.asarray(images) for images in runtime.batches(x, None, 3)]), x)
    assert keras.backend.backend() == "tensorflow" and batches.options().autotune.enabled is False


def test_a_diverging_recipe_stops_and_is_marked(data: Path) -> None:
    write_params(epochs=3, learning_rate=1e6, weight_decay=0.0, warmup_epochs=0, schedule="constant")
    train_model("tiny_alex")
    summary = json.loads(Path("dvclive/tiny_alex/seed_0/metrics.json").read_text())
    assert summary["diverged_epoch"] == 1 and summary["epochs"] == 1  # stopped in its first epoch, not run to 3
    assert Path("models/tiny_alex/seed_0.keras").exists() and not Path("checkpoints/tiny_alex").exists()


def test_missing_prepared_data_names_the_file(workdir: Path) -> None:
    write_params()
    with pytest.raises(StageError, match=r"^cannot read data/dataset.json: "):
        train_model("tiny_alex")
    assert not Path("models").exists()


def test_a_bad_number_of_seeds_names_the_key(data: Path) -> None:
    write_params({"tiny_alex": {**MODELS["tiny_alex"], "seeds": 0}})
    with pytest.raises(
        StageError, match=r"^params.yaml: models.tiny_alex.seeds must be a number of seeds from 1 to 16, not 0$"
    ):
        train_model("tiny_alex")


def test_augmenting_the_data_flips_and_shifts_whole_pixels_like_keras_reflect() -> None:
    from widthdepth.training.augment import augment_epoch

    images = np.arange(2 * 4 * 4, dtype=np.uint8).reshape(2, 4, 4, 1)
    assert np.array_equal(augment_epoch(images, 0, 0, flip=False, shift=0), images)
    out = augment_epoch(images, seed=3, epoch=1, flip=True, shift=1)
    assert np.array_equal(out, augment_epoch(images, seed=3, epoch=1, flip=True, shift=1))  # (seed, epoch) fixes it
    for image, moved in zip(images, out):  # each output is the image, maybe flipped, moved by -1, 0 or 1 pixel each way
        padded = np.pad(image, ((1, 1), (1, 1), (0, 0)), mode="symmetric")
        candidates = [
            np.pad(im, ((1, 1), (1, 1), (0, 0)), mode="symmetric")[1 + dy : 5 + dy, 1 + dx : 5 + dx]
            for im in (image, image[:, ::-1])
            for dy in (-1, 0, 1)
            for dx in (-1, 0, 1)
        ]
        assert any(np.array_equal(moved, c) for c in candidates) and padded.shape == (6, 6, 1)
    assert not np.array_equal(out, augment_epoch(images, seed=3, epoch=2, flip=True, shift=1))


def test_recomputed_batch_norm_statistics_are_those_of_each_layers_inputs_in_inference_mode() -> None:
    import keras

    from widthdepth.training.batchnorm import batch_norm_layers, recalibrate

    inputs = keras.Input((4, 4, 2))
    x = keras.layers.BatchNormalization()(keras.layers.Dropout(0.5)(keras.layers.Conv2D(3, 1)(inputs)))
    x = keras.layers.BatchNormalization()(keras.layers.Conv2D(2, 1)(x))
    outputs = keras.layers.BatchNormalization()(keras.layers.Dense(5)(keras.layers.Flatten()(x)))  # features only
    model = keras.Model(inputs, outputs)
    images = (3 * np.random.default_rng(0).normal(size=(700, 4, 4, 2)) + 1).astype("float32")
    assert recalibrate(model, images) == 3
    for layer in batch_norm_layers(model):  # the second layer's inputs pass through the first, already recomputed
        seen = keras.Model(inputs, layer.input).predict(images, verbose=0).reshape(-1, layer.moving_mean.shape[0])
        assert np.allclose(np.array(layer.moving_mean), seen.mean(0), rtol=1e-4, atol=1e-5)
        assert np.allclose(np.array(layer.moving_variance), seen.var(0), rtol=1e-4, atol=1e-5)


def test_fused_batch_norm_trains_as_keras_layers_do_and_saves_keras_own_layer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import keras

    from widthdepth.training.batchnorm import batch_norm_layers, fuse

    inputs = keras.Input((6, 6, 3))
    x = keras.layers.BatchNormalization()(keras.layers.Conv2D(4, 3)(inputs))
    x = keras.layers.BatchNormalization(scale=False, epsilon=1e-5, momentum=0.6)(
        keras.layers.Conv2D(5, 1)(x)
    )  # airbench's
    outputs = keras.layers.BatchNormalization()(keras.layers.Dense(3)(keras.layers.Flatten()(x)))  # after a dense layer
    models = [keras.Model(inputs, outputs)]
    models.append(keras.models.clone_model(models[0]))
    models[1].set_weights(models[0].get_weights())
    assert fuse(models[1]) == 3 and fuse(models[1]) == 0  # switched once
    monkeypatch.setenv("WIDTHDEPTH_FUSED_BATCH_NORM", "0")
    assert fuse(models[0]) == 0  # switched off: Keras' code
    images = (2 * np.random.default_rng(0).normal(size=(32, 6, 6, 3)) + 1).astype("float32")
    targets = np.random.default_rng(1).normal(size=(32, 3)).astype("float32")
    for model in models:
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
        for _ in range(3):
            model.train_on_batch(images, targets)
    for keras_weights, fused_weights in zip(models[0].get_weights(), models[1].get_weights(), strict=True):
        assert np.allclose(keras_weights, fused_weights, rtol=1e-4, atol=1e-5)  # the moving statistics included
    assert np.allclose(models[0].predict(images, verbose=0), models[1].predict(images, verbose=0), rtol=1e-4, atol=1e-5)

    models[1].save(tmp_path / "fused.keras")
    reloaded = keras.saving.load_model(tmp_path / "fused.keras")
    assert [type(layer) for layer in batch_norm_layers(reloaded)] == [keras.layers.BatchNormalization] * 3
    assert "call" not in vars(batch_norm_layers(reloaded)[0])  # Keras' own code until fused again


def test_a_recipe_can_recompute_the_batch_norm_statistics_after_training(data: Path) -> None:
    write_params(recalibrate_batch_norm=True)
    train_model("tiny_alex")
    train_model("tiny_mlp")  # its notebook recipe keeps the option off
    assert json.loads(Path("dvclive/tiny_alex/seed_0/metrics.json").read_text())["batch_norm_recalibrated"] is True
    assert json.loads(Path("dvclive/tiny_mlp/seed_0/metrics.json").read_text())["batch_norm_recalibrated"] is False
