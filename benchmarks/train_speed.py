"""Training throughput of every declared model, the pipeline's overhead, and speed switches.

Needs `data/prepared` (run `dvc repro prepare` first). Three parts, each optional:

  throughput  images per second of each model in params.yaml, trained as the `train`
              stage builds it (its recipe's batch size, augmentation, optimizer), and the
              default study's projected training time: epochs x training images / rate.
  overhead    the `train` stage, run as DVC runs it, against a bare `model.fit` script on
              the same model, data and epochs (the stage adds validation, DVCLive logging
              and a checkpoint per epoch); both on a subset, alternated, best of --repeats.
  switches    one model under float32 vs mixed_bfloat16, the recipe's batch size vs twice
              it, augmentation layers on vs off, XLA (jit_compile) off vs on, and one vs
              16 training steps per call into the backend (steps_per_execution).

    python benchmarks/train_speed.py [--parts throughput,overhead,switches] [--models a,b]
"""

from __future__ import annotations

import argparse
import json
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

from stages import train as stage  # noqa: E402
from stages.architectures import build_model, check_spec  # noqa: E402

DATA = ROOT / "data" / "prepared"

BARE_FIT = """
import json, sys, numpy as np, keras, yaml
sys.path.insert(0, {root!r})
from stages import train as stage
from stages.architectures import build_model, check_spec
name, data = sys.argv[1], sys.argv[2]
params = yaml.safe_load(open("params.yaml"))
spec = params["models"][name]; recipe = params["recipes"][spec["recipe"]]
info = json.load(open(f"{{data}}/dataset.json"))
x, y = np.load(f"{{data}}/x_train.npy"), np.load(f"{{data}}/y_train.npy")
xv, yv = np.load(f"{{data}}/x_val.npy"), np.load(f"{{data}}/y_val.npy")
n = len(info["classes"]); shape = tuple(info["image_shape"])
keras.utils.set_random_seed(0)
model = build_model(check_spec(name, spec, shape), shape, n, stage.preprocessing(recipe, info, 0))
model.compile(stage.optimizer(recipe, -(-len(x) // recipe["batch_size"])),
              keras.losses.CategoricalCrossentropy(label_smoothing=recipe["label_smoothing"]), metrics=["accuracy"])
model.fit(x, keras.utils.to_categorical(y, n), batch_size=recipe["batch_size"], epochs=recipe["epochs"],
          validation_data=(xv, keras.utils.to_categorical(yv, n)), verbose=0)
model.save("bare.keras")
"""


def load(n: int | None = None) -> tuple[dict, np.ndarray, np.ndarray]:
    info = json.loads((DATA / "dataset.json").read_text())
    return info, np.load(DATA / "x_train.npy")[:n], np.load(DATA / "y_train.npy")[:n]


def images_per_second(spec: dict, recipe: dict, info: dict, x: np.ndarray, y: np.ndarray, **compile_args) -> float:
    """Rate of one epoch over x, after a warm-up epoch on part of it (tracing excluded)."""
    import keras

    shape, n = tuple(info["image_shape"]), len(info["classes"])
    model = build_model(check_spec("m", spec, shape), shape, n, stage.preprocessing(recipe, info, 0))
    model.compile(stage.optimizer(recipe, 1000), keras.losses.CategoricalCrossentropy(), metrics=["accuracy"], **compile_args)
    onehot = keras.utils.to_categorical(y, n)
    warm = 4 * recipe["batch_size"]
    model.fit(x[:warm], onehot[:warm], batch_size=recipe["batch_size"], verbose=0)
    start = time.perf_counter()
    model.fit(x, onehot, batch_size=recipe["batch_size"], verbose=0)
    return len(x) / (time.perf_counter() - start)


def throughput(params: dict, names: list[str], images: int) -> None:
    info, x, y = load(images)
    n_train = info["splits"]["train"]["count"]
    print(f"\n| model | params | recipe | img/s | projected training time (min) |\n|---|---|---|---|---|")
    total = 0.0
    for name in names:
        spec = params["models"][name]
        recipe = params["recipes"][spec["recipe"]]
        rate = images_per_second(spec, recipe, info, x, y)
        minutes = recipe["epochs"] * n_train / rate / 60
        total += minutes
        shape = tuple(info["image_shape"])
        n_params = build_model(check_spec(name, spec, shape), shape, len(info["classes"]), []).count_params()
        print(f"| {name} | {n_params:,} | {spec['recipe']} | {rate:.0f} | {minutes:.1f} |", flush=True)
    print(f"| all | | | | {total:.1f} |")


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
        stage_cmd = [sys.executable, "-m", "stages.train", name, "data", "model.keras", "live"]
        bare_cmd = [sys.executable, "bare.py", name, "data"]
        times = {"stage": [], "bare": []}
        for _ in range(repeats):
            times["stage"].append(timed(stage_cmd, work))
            times["bare"].append(timed(bare_cmd, work))
    recipe = params["recipes"][params["models"][name]["recipe"]]
    stage_s, bare_s = min(times["stage"]), min(times["bare"])
    print(f"\noverhead: {name}, {train_images} training images, {recipe['epochs']} epochs, best of {repeats} (whole process)")
    print(f"| run | seconds | img/s |\n|---|---|---|")
    for label, seconds in (("train stage", stage_s), ("bare model.fit", bare_s)):
        print(f"| {label} | {seconds:.1f} | {recipe['epochs'] * train_images / seconds:.0f} |")
    print(f"pipeline overhead: {100 * (stage_s / bare_s - 1):+.1f}%")


def switches(params: dict, name: str, images: int) -> None:
    import keras

    info, x, y = load(images)
    spec = params["models"][name]
    recipe = params["recipes"][spec["recipe"]]
    rows = [("recipe as declared (float32)", recipe, {})]
    rows.append(("batch size x2", {**recipe, "batch_size": 2 * recipe["batch_size"]}, {}))
    rows.append(("no augmentation layers", {**recipe, "flip": False, "translate": 0.0}, {}))
    rows.append(("XLA (jit_compile=True)", recipe, {"jit_compile": True}))
    rows.append(("16 steps per execution", recipe, {"steps_per_execution": 16}))
    print(f"\nswitches: {name}, {images} images\n| switch | img/s |\n|---|---|")
    for label, variant, compile_args in rows:
        print(f"| {label} | {images_per_second(spec, variant, info, x, y, **compile_args):.0f} |", flush=True)
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    print(f"| mixed_bfloat16 | {images_per_second(spec, recipe, info, x, y):.0f} |")
    keras.mixed_precision.set_global_policy("float32")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", default="throughput,overhead,switches")
    parser.add_argument("--models", help="comma-separated; default: every model in params.yaml")
    parser.add_argument("--images", type=int, default=4096, help="images per throughput measurement")
    parser.add_argument("--overhead-model", default="seed_base")
    parser.add_argument("--overhead-images", type=int, default=4500)
    parser.add_argument("--switch-model", default="alex_w32")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    parts = args.parts.split(",")
    import keras

    print(f"keras {keras.__version__}, backend {keras.backend.backend()}, {os.cpu_count()} cores")
    if "throughput" in parts:
        throughput(params, args.models.split(",") if args.models else list(params["models"]), args.images)
    if "overhead" in parts:
        overhead(params, args.overhead_model, args.overhead_images, args.repeats)
    if "switches" in parts:
        switches(params, args.switch_model, args.images)


if __name__ == "__main__":
    main()
