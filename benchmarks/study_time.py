"""How the study's time grows with its size: training seconds against training work, from the measured runs.

Reads what `dvc repro` wrote (metrics/<name>/seed_<k>.json, data/prepared/dataset.json, params.yaml)
and prints, per run (a model's seed), the training work (about 3 x MACs per image x images x epochs:
forward once, backward twice) against the measured training seconds; then a least-squares
fit seconds = a x work^b over the models, and what it predicts for the study scaled up.

    python benchmarks/study_time.py [--metrics metrics] [--data data/prepared]
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

from widthdepth.training.recipes import seeds_of  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--metrics", type=Path, default=ROOT / "metrics")
    parser.add_argument("--data", type=Path, default=ROOT / "data" / "prepared")
    parser.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    args = parser.parse_args()
    params = yaml.safe_load(args.params.read_text())
    n_train = json.loads((args.data / "dataset.json").read_text())["splits"]["train"]["count"]

    rows = []
    for name, declaration in params["models"].items():
        for seed in seeds_of(declaration):
            metrics = json.loads((args.metrics / name / f"seed_{seed}.json").read_text())
            work = 3 * metrics["cost"]["macs_per_image"] * n_train * metrics["epochs"]
            rows.append((f"{name}/seed_{seed}", declaration["recipe"], work, metrics["cost"]["training_seconds"]))
    print("| model | recipe | training work (TMAC) | training seconds | GMAC/s |\n|---|---|---|---|---|")
    for name, recipe, work, seconds in rows:
        print(f"| {name} | {recipe} | {work / 1e12:.2f} | {seconds:,.0f} | {work / seconds / 1e9:.1f} |")
    work, seconds = np.array([r[2] for r in rows]), np.array([r[3] for r in rows])
    print(f"| **all** | | {work.sum() / 1e12:.2f} | {seconds.sum():,.0f} ({seconds.sum() / 60:.1f} min) | {work.sum() / seconds.sum() / 1e9:.1f} |")

    b, log_a = np.polyfit(np.log(work), np.log(seconds), 1)
    print(f"\nfit over {len(rows)} runs: seconds = {math.exp(log_a):.3g} x work^{b:.2f} "
          f"(b < 1: small models run far below the machine's arithmetic rate, so time grows slower than work)")
    for scale in (2, 4, 16):
        predicted = float(np.sum(np.exp(log_a) * (scale * work) ** b))
        print(f"every model {scale}x the work (wider, deeper or longer): about {predicted / 60:.0f} min of training")


if __name__ == "__main__":
    main()
