"""How the study's time grows with its size: training seconds against training work, from the measured runs.

Reads what `dvc repro` wrote (metrics/<name>/seed_<k>.json, data/prepared/dataset.json, params.yaml)
and prints, per run (a model's seed), the training work (about 3 x MACs per image x images x epochs:
forward once, backward twice) against the measured training seconds; then a least-squares
fit seconds = a x work^b over the models, and what it predicts for the study scaled up.

With --wall (the whole `dvc repro`'s wall seconds, timed outside it): the pipeline's own
cost, that wall time less the training and the evaluation the runs record. A model's
seeds train at once when it has several (widthdepth.training.seeds), so its training
counts as its longest seed; its seeds are evaluated one after another, so evaluation
counts as their sum.

    python benchmarks/study_time.py [--metrics metrics] [--data data/prepared] [--wall SECONDS]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from widthdepth import layout  # noqa: E402
from widthdepth.architectures import parse_models  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--metrics", type=Path, default=ROOT / "metrics")
    parser.add_argument("--data", type=Path, default=ROOT / "data" / "prepared")
    parser.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    parser.add_argument("--wall", type=float, help="wall seconds of the whole `dvc repro` that wrote --metrics")
    args = parser.parse_args()
    params = yaml.safe_load(args.params.read_text())
    info = layout.read_info(args.data)
    n_train = info["splits"]["train"]["count"]
    models = parse_models(params["models"], params["recipes"], tuple(info["image_shape"]))

    rows = []
    for name, model in models.items():
        for seed in model.seeds:
            metrics = json.loads(layout.seed_json(args.metrics / name, seed).read_text())
            work = 3 * metrics["cost"]["macs_per_image"] * n_train * metrics["epochs"]
            rows.append((f"{name}/seed_{seed}", model.recipe, work, metrics["cost"]["training_seconds"]))
    print("| model | recipe | training work (TMAC) | training seconds | GMAC/s |\n|---|---|---|---|---|")
    for name, recipe, work, seconds in rows:
        print(f"| {name} | {recipe} | {work / 1e12:.2f} | {seconds:,.0f} | {work / seconds / 1e9:.1f} |")
    work, seconds = np.array([r[2] for r in rows]), np.array([r[3] for r in rows])
    print(
        f"| **all** | | {work.sum() / 1e12:.2f} | {seconds.sum():,.0f} ({seconds.sum() / 60:.1f} min) "
        f"| {work.sum() / seconds.sum() / 1e9:.1f} |"
    )

    if args.wall:
        own_cost(models, args.metrics, args.wall)
    if len(rows) < 2:
        return
    b, log_a = np.polyfit(np.log(work), np.log(seconds), 1)
    print(
        f"\nfit over {len(rows)} runs: seconds = {math.exp(log_a):.3g} x work^{b:.2f} "
        f"(b < 1: small models run far below the machine's arithmetic rate, so time grows slower than work)"
    )
    for scale in (2, 4, 16):
        predicted = float(np.sum(np.exp(log_a) * (scale * work) ** b))
        print(f"every model {scale}x the work (wider, deeper or longer): about {predicted / 60:.0f} min of training")


def own_cost(models: dict, metrics_folder: Path, wall: float) -> None:
    """The wall time less training and evaluation, in all and per stage."""
    training = evaluation = 0.0
    for name, model in models.items():
        runs = [json.loads(layout.seed_json(metrics_folder / name, seed).read_text())["cost"] for seed in model.seeds]
        training += max(run["training_seconds"] for run in runs)  # one seed, or all at once
        evaluation += sum(run["evaluation_seconds"] for run in runs)
    stages = 2 * len(models) + 3  # train and evaluate per model; download, prepare, report
    own = wall - training - evaluation
    print("\n| part of the `dvc repro` wall time | seconds | share |\n|---|---|---|")
    for label, seconds in (
        ("training (each model's longest seed)", training),
        ("evaluation (every seed)", evaluation),
        (f"the pipeline's own cost ({stages} stages: {own / stages:.1f} s each)", own),
        ("wall", wall),
    ):
        print(f"| {label} | {seconds:,.0f} | {100 * seconds / wall:.1f}% |")


if __name__ == "__main__":
    main()
