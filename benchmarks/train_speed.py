"""Training speed: each declared model's throughput against the machine's limit, runtime settings
side by side, pipeline overhead, switches.

Needs `data/prepared` (run `dvc repro prepare` first), or PREPARED_DATA=<folder>. Parts, each optional:

  throughput  images per second of each model in params.yaml, built and compiled as the
              `train` stage does (widthdepth.training.recipes.compiled_model); its training
              GFLOP/s (about 6 x MACs x img/s: forward 2 x MACs, backward twice that) as a
              share of this machine's measured float32 matmul peak (the roofline column);
              and the study's projected training time, epochs x training images / rate.
  settings    the throughput part in a fresh process per runtime setting (they are read
              when TensorFlow is imported): the defaults (oneDNN on, batch norm through
              TensorFlow's fused kernel), and each with the other off; alternated over
              --repeats rounds, best kept, side by side.
  overhead    the `train` stage, run as DVC runs it, against a bare `model.fit` of the same
              compiled model, data and epochs (the stage adds validation, the training log,
              a checkpoint per epoch and the divergence check); best of --repeats.
  switches    one model as declared, at twice its batch size, with its augmentation as layers
              in the model and on the data, under XLA, with 16 steps per call into the
              backend, and in mixed_bfloat16.
  feeding     one `model.fit` call per epoch over the whole training set, as the `train` stage
              calls it, fed NumPy arrays (Keras' own pipeline, before issue #15's feeding fix)
              and fed `widthdepth.runtime.batches`, alternated epoch by epoch: wall seconds of
              each whole call (its teardown included) and the longest wait after its last epoch
              ended, for each of --feed-models.
  seeds       the `train` stage, run as DVC runs it, for each of --seed-models: one seed with
              the augmentation as Keras layers (the recipe before issue #15), one seed with it
              on the data, and --seeds seeds trained at once; wall seconds of the whole process
              and the training seconds its log records, side by side in one run.

    python benchmarks/train_speed.py [--parts throughput,settings,overhead,switches,feeding,seeds] [--models a,b]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from widthdepth import runtime  # noqa: E402
from widthdepth.architectures import Model, parse_models  # noqa: E402
from widthdepth.params import Recipe, parse_recipes  # noqa: E402

DATA = Path(os.environ.get("PREPARED_DATA", ROOT / "data" / "prepared"))  # or another prepared folder
SETTINGS = {  # runtime.FAST_DEFAULTS, one switch off at a time
    "oneDNN off": {"TF_ENABLE_ONEDNN_OPTS": "0", runtime.FUSED_BATCH_NORM: "1"},
    "Keras' batch norm": {"TF_ENABLE_ONEDNN_OPTS": "1", runtime.FUSED_BATCH_NORM: "0"},
    "both on (the default)": {"TF_ENABLE_ONEDNN_OPTS": "1", runtime.FUSED_BATCH_NORM: "1"},
}

BARE_FIT = """
import json, sys, numpy as np, yaml
sys.path.insert(0, {root!r})
from widthdepth import runtime
runtime.configure("tensorflow")
import keras
from widthdepth.architectures import parse_models
from widthdepth.params import parse_recipes
from widthdepth.training.recipes import compiled_model
name, data = sys.argv[1], sys.argv[2]
params = yaml.safe_load(open("params.yaml"))
info = json.load(open(f"{{data}}/dataset.json"))
recipes = parse_recipes(params["recipes"])
model = parse_models(params["models"], recipes, tuple(info["image_shape"]))[name]
recipe = recipes[model.recipe]
x, y = np.load(f"{{data}}/x_train.npy"), np.load(f"{{data}}/y_train.npy")
xv, yv = np.load(f"{{data}}/x_val.npy"), np.load(f"{{data}}/y_val.npy")
n = len(info["classes"])
network = compiled_model(model, recipe, info, -(-len(x) // recipe.batch_size))
train = runtime.batches(x, keras.utils.to_categorical(y, n), recipe.batch_size)
val = runtime.batches(xv, keras.utils.to_categorical(yv, n), max(256, recipe.batch_size))
network.fit(train, epochs=recipe.epochs, shuffle=False, validation_data=val, verbose=0)
network.save("bare.keras")
"""


def load(n: int | None = None) -> tuple[dict, np.ndarray, np.ndarray]:
    info = json.loads((DATA / "dataset.json").read_text())
    return info, np.load(DATA / "x_train.npy")[:n], np.load(DATA / "y_train.npy")[:n]


def matmul_peak(n: int = 2048, repeats: int = 5) -> float:
    """Best float32 GFLOP/s of an n x n matmul in the Keras backend: the roofline's ceiling."""
    import keras

    a = keras.ops.convert_to_tensor(np.random.default_rng(0).standard_normal((n, n), dtype=np.float32))
    np.asarray(keras.ops.matmul(a, a))  # warm-up
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        np.asarray(keras.ops.matmul(a, a))
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def declared(params: dict, name: str, info: dict) -> tuple[Model, Recipe]:
    """The model `name` of params.yaml and its recipe, parsed as the train stage parses them."""
    recipes = parse_recipes(params["recipes"])
    model = parse_models(params["models"], recipes, tuple(info["image_shape"]))[name]
    return model, recipes[model.recipe]


def images_per_second(
    model: Model, recipe: Recipe, info: dict, x: np.ndarray, y: np.ndarray, **compile_args
) -> tuple[float, int]:
    """Rate of one epoch over x after a warm-up on part of it (tracing excluded), and the model's MACs per image."""
    import keras

    from widthdepth.metrics import macs_per_image
    from widthdepth.training.recipes import compiled_model

    network = compiled_model(model, recipe, info, 1000, **compile_args)
    onehot = keras.utils.to_categorical(y, len(info["classes"]))
    warm = 4 * recipe.batch_size
    network.fit(runtime.batches(x[:warm], onehot[:warm], recipe.batch_size), shuffle=False, verbose=0)
    batches = runtime.batches(x, onehot, recipe.batch_size)
    start = time.perf_counter()
    network.fit(batches, shuffle=False, verbose=0)
    return len(x) / (time.perf_counter() - start), macs_per_image(network)


def throughput(
    params: dict, names: list[str], images: int, reference: tuple[str, float] | None = None
) -> dict[str, dict]:
    """Each model's rate, and its training time at its recipe's epochs for all its seeds one after
    another (an upper bound: small models' seeds train at once). `reference` (model, seconds):
    that model's measured one-seed training time on another machine, to scale every
    projection to that machine."""
    info, x, y = load(images)
    n_train = info["splits"]["train"]["count"]
    peak = matmul_peak()
    print(f"\nfloat32 matmul peak (2048 x 2048, best of 5): {peak:.0f} GFLOP/s")
    print(
        "| model | recipe | seeds | MACs/image | img/s | training GFLOP/s | % of matmul peak "
        "| projected training, all seeds (min) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    rows, total = {}, 0.0
    for name in names:
        model, recipe = declared(params, name, info)
        rate, macs = images_per_second(model, recipe, info, x, y)
        gflops = 6 * macs * rate / 1e9
        seeds = len(model.seeds)
        minutes = recipe.epochs * n_train / rate / 60 * seeds
        total += minutes
        rows[name] = {"rate": rate, "gflops": gflops, "minutes": minutes, "seeds": seeds}
        print(
            f"| {name} | {model.recipe} | {seeds} | {macs:,} | {rate:,.0f} | {gflops:.1f} "
            f"| {100 * gflops / peak:.0f}% | {minutes:.1f} |",
            flush=True,
        )
    print(f"| **the whole study** | | | | | | | **{total:.1f}** |")
    if reference and reference[0] in rows:
        model, seconds = reference
        scale = seconds / 60 / (rows[model]["minutes"] / rows[model]["seeds"])
        print(
            f"\nScaled so that one seed of {model} trains in {seconds:g} s (as measured on the reference machine): "
            f"the whole study's training {total * scale:.0f} min there (this machine is {1 / scale:.2f}x slower)."
        )
    return {"peak": peak, "models": rows}


def settings_side_by_side(names: list[str], images: int, repeats: int) -> None:
    """The throughput part once per runtime setting, each in its own process, alternated."""
    best: dict[str, dict] = {label: {} for label in SETTINGS}
    peaks: dict[str, float] = {}
    for _ in range(repeats):
        for label, env in SETTINGS.items():
            with tempfile.NamedTemporaryFile(suffix=".json") as out:
                subprocess.run(
                    [
                        sys.executable,
                        __file__,
                        "--parts",
                        "throughput",
                        "--models",
                        ",".join(names),
                        "--images",
                        str(images),
                        "--json",
                        out.name,
                    ],
                    env={**os.environ, **env},
                    check=True,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                result = json.loads(Path(out.name).read_text())
            peaks[label] = max(peaks.get(label, 0), result["peak"])
            for name, row in result["models"].items():
                if row["rate"] > best[label].get(name, {"rate": 0})["rate"]:
                    best[label][name] = row
    labels = list(SETTINGS)
    print(
        f"\nimg/s per runtime setting, best of {repeats} alternated rounds, {images} images; "
        "in brackets: % of that run's matmul peak"
    )
    print("| model | " + " | ".join(labels) + " |\n|---|" + "---|" * len(labels))
    for name in names:
        cells = [f"{best[la][name]['rate']:,.0f} ({100 * best[la][name]['gflops'] / peaks[la]:.0f}%)" for la in labels]
        print(f"| {name} | " + " | ".join(cells) + " |")
    totals = [sum(row["minutes"] for row in best[la].values()) for la in labels]
    print("| projected training (min) | " + " | ".join(f"{t:.1f}" for t in totals) + " |")
    print("| matmul peak (GFLOP/s) | " + " | ".join(f"{peaks[la]:.0f}" for la in labels) + " |")


def subset(folder: Path, train_images: int) -> None:
    """A prepared-data folder holding the first images of each split."""
    folder.mkdir()
    info = json.loads((DATA / "dataset.json").read_text())
    for split, count in (("train", train_images), ("val", train_images // 9)):
        for kind in "xy":
            np.save(folder / f"{kind}_{split}.npy", np.load(DATA / f"{kind}_{split}.npy")[:count])
    (folder / "dataset.json").write_text(json.dumps(info))


def timed(args: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(args, cwd=cwd, check=True, capture_output=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    return time.perf_counter() - start


def overhead(params: dict, name: str, train_images: int, repeats: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        subset(work / "data", train_images)
        (work / "params.yaml").write_text(yaml.safe_dump(params))
        (work / "bare.py").write_text(BARE_FIT.format(root=str(ROOT)))
        stage_cmd = [sys.executable, "-m", "stages.train", "--model", name, "data", "models", "live"]
        bare_cmd = [sys.executable, "bare.py", name, "data"]
        times = {"stage": [], "bare": []}
        for _ in range(repeats):
            times["stage"].append(timed(stage_cmd, work))
            times["bare"].append(timed(bare_cmd, work))
    epochs = params["recipes"][params["models"][name]["recipe"]]["epochs"]
    stage_s, bare_s = min(times["stage"]), min(times["bare"])
    print(f"\noverhead: {name}, {train_images} training images, {epochs} epochs, best of {repeats} (whole process)")
    print("| run | seconds | img/s |\n|---|---|---|")
    for label, seconds in (("train stage", stage_s), ("bare model.fit", bare_s)):
        print(f"| {label} | {seconds:.1f} | {epochs * train_images / seconds:.0f} |")
    print(f"pipeline overhead: {100 * (stage_s / bare_s - 1):+.1f}%")


def seeds_side_by_side(params: dict, names: list[str], train_images: int, seeds: int) -> None:
    """The train stage per variant, in a fresh process each, on the first `train_images` images."""
    variants = [
        ("1 seed, augmentation as layers", {"augment": "layers"}, 1),
        ("1 seed, augmentation on the data", {"augment": "data"}, 1),
        (f"{seeds} seeds at once, augmentation on the data", {"augment": "data"}, seeds),
    ]
    print(f"\nseeds: the train stage, {train_images:,} training images, whole processes, one run each")
    print("| model | variant | wall s | training s per seed (from the logs) | wall s per seed |\n|---|---|---|---|---|")
    for name in names:
        for label, recipe_change, count in variants:
            spec = {**params["models"][name], "seeds": count}
            recipe = {**params["recipes"][spec["recipe"]], **recipe_change}
            with tempfile.TemporaryDirectory() as tmp:
                work = Path(tmp)
                subset(work / "data", train_images)
                (work / "params.yaml").write_text(
                    yaml.safe_dump({**params, "models": {name: spec}, "recipes": {spec["recipe"]: recipe}})
                )
                wall = timed([sys.executable, "-m", "stages.train", "--model", name, "data", "models", "live"], work)
                logs = [
                    json.loads(path.read_text()) for path in sorted((work / "live" / name).glob("seed_*/metrics.json"))
                ]
            training = ", ".join(f"{log['training_seconds']:.0f}" for log in logs)
            print(f"| {name} | {label} | {wall:.0f} | {training} | {wall / count:.0f} |", flush=True)


def feeding(params: dict, names: list[str], epochs: int) -> None:
    """Keras' pipeline for arrays against runtime.batches, epoch calls alternated, per model."""
    import keras

    from widthdepth.training.recipes import compiled_model

    info, x, y = load()
    onehot = keras.utils.to_categorical(y, len(info["classes"]))
    print(
        f"\nfeeding: one model.fit call per epoch on {len(x):,} images, the two ways alternated, {epochs} epochs each"
    )
    print("| model | fed | seconds per epoch call (mean) | longest wait after the epoch ended (s) |\n|---|---|---|---|")
    for name in names:
        model, recipe = declared(params, name, info)
        size = recipe.batch_size
        model = compiled_model(model, recipe, info, 1000)
        model.fit(runtime.batches(x[: 4 * size], onehot[: 4 * size], size), shuffle=False, verbose=0)  # tracing
        ends: list[float] = []
        marker = keras.callbacks.LambdaCallback(on_train_end=lambda logs, ends=ends: ends.append(time.perf_counter()))
        calls = {  # each called within this iteration: the defaults only keep the linter sure of it
            "arrays (Keras' pipeline)": lambda model=model, size=size, marker=marker: model.fit(
                x, onehot, batch_size=size, shuffle=False, callbacks=[marker], verbose=0
            ),
            "runtime.batches": lambda model=model, size=size, marker=marker: model.fit(
                runtime.batches(x, onehot, size), shuffle=False, callbacks=[marker], verbose=0
            ),
        }
        seconds: dict[str, list[float]] = {label: [] for label in calls}
        waits: dict[str, list[float]] = {label: [] for label in calls}
        for _ in range(epochs):
            for label, call in calls.items():
                start = time.perf_counter()
                call()
                seconds[label].append(time.perf_counter() - start)
                waits[label].append(time.perf_counter() - ends[-1])
        for label in calls:
            print(f"| {name} | {label} | {np.mean(seconds[label]):.1f} | {max(waits[label]):.1f} |", flush=True)


def switches(params: dict, name: str, images: int) -> None:
    import keras

    info, x, y = load(images)
    model, recipe = declared(params, name, info)
    rows = [
        ("as declared (float32)", recipe, {}),
        ("batch size x2", recipe.model_copy(update={"batch_size": 2 * recipe.batch_size}), {}),
        ("augmentation as layers", recipe.model_copy(update={"augment": "layers"}), {}),
        ("augmentation on the data", recipe.model_copy(update={"augment": "data"}), {}),
        ("XLA (jit_compile=True)", recipe, {"jit_compile": True}),
        ("16 steps per execution", recipe, {"steps_per_execution": 16}),
    ]
    print(f"\nswitches: {name}, {images} images\n| switch | img/s |\n|---|---|")
    for label, variant, compile_args in rows:
        print(f"| {label} | {images_per_second(model, variant, info, x, y, **compile_args)[0]:,.0f} |", flush=True)
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    print(f"| mixed_bfloat16 | {images_per_second(model, recipe, info, x, y)[0]:,.0f} |")
    keras.mixed_precision.set_global_policy("float32")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", default="throughput,settings,overhead,switches")
    parser.add_argument("--models", help="comma-separated; default: every model in params.yaml")
    parser.add_argument("--images", type=int, default=4096, help="images per throughput measurement")
    parser.add_argument("--overhead-model", default="alex_w16")
    parser.add_argument("--overhead-images", type=int, default=9000)
    parser.add_argument("--switch-model", default="alex_w16")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--feed-models", default="alex_w2,inc_base,alex_w16")
    parser.add_argument("--feed-epochs", type=int, default=3)
    parser.add_argument("--seed-models", default="alex_w2,inc_base")
    parser.add_argument("--seed-images", type=int, default=45000, help="training images of the seeds part")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--json", help="also write the throughput part's numbers to this file")
    parser.add_argument(
        "--reference",
        help="MODEL=SECONDS: that model's one-seed training time measured on another machine "
        "with this code (a time taken with older, slower code overstates the other machine's); "
        "the throughput part scales its projection to it",
    )
    args = parser.parse_args()
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    parts = args.parts.split(",")
    names = args.models.split(",") if args.models else list(params["models"])
    settings = runtime.configure(params["train"]["backend"])
    import keras

    print(f"{runtime.machine()}; keras {keras.__version__}, {settings}")
    if "throughput" in parts:
        reference = args.reference.split("=") if args.reference else None
        result = throughput(params, names, args.images, (reference[0], float(reference[1])) if reference else None)
        if args.json:
            Path(args.json).write_text(json.dumps(result))
    if "settings" in parts:
        settings_side_by_side(names, args.images, args.repeats)
    if "overhead" in parts:
        overhead(params, args.overhead_model, args.overhead_images, args.repeats)
    if "switches" in parts:
        switches(params, args.switch_model, args.images)
    if "feeding" in parts:
        feeding(params, args.feed_models.split(","), args.feed_epochs)
    if "seeds" in parts:
        seeds_side_by_side(params, args.seed_models.split(","), args.seed_images, args.seeds)


if __name__ == "__main__":
    main()
