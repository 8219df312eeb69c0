"""Stage `report`: every model's results in one table, the study's plots and its answer.

Reads the models declared in params.yaml, their metrics/<name>/seed_<k>.json and
runs/<name>/seed_<k>.json (what evaluate copied of the training logs), the confusion
records of the best model (chosen on validation accuracy, never on the test set) and the
prepared data's description and first training images: only what git keeps, and the
prepared data, which any machine rebuilds from the download.
Writes one folder, kept in git:

  report.md                the generated conclusion, failed runs, the summary table and the figures
  summary.csv              the summary table
  *.png                    the figures (sample images, sweeps, cost, scaling, epochs, confusion of the best model)
  plots/*.json             the same data for `dvc plots show` (top-level plots in dvc.yaml)
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from widthdepth import layout, params
from widthdepth.architectures import parse_models
from widthdepth.report import load_runs, write_report
from widthdepth.stage import atomic_path, run
from widthdepth.study import analyse

log = logging.getLogger("report")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", type=Path, help="folder written by the prepare stage")
    parser.add_argument("metrics", type=Path, help="folder of metrics/<name>/seed_<k>.json")
    parser.add_argument("runs", type=Path, help="folder of runs/<name>/seed_<k>.json (evaluate's copy of the logs)")
    parser.add_argument("confusion", type=Path, help="folder of confusion records, one per model")
    parser.add_argument("out", type=Path, help="report folder to write")
    args = parser.parse_args()
    info = layout.read_info(args.data)
    images, labels = layout.load_split(args.data, "train", mmap=True)
    data, report = params.load(params.Data, "data"), params.load(params.Report, "report")
    max_epochs = params.load(params.Train, "train").max_epochs
    recipes = {name: r.capped(max_epochs) for name, r in params.parse_recipes(params.load_section("recipes")).items()}
    models = parse_models(params.load_section("models"), recipes, tuple(info["image_shape"]))
    runs = load_runs(models, args.metrics, args.runs, info["splits"]["val"]["count"])
    analysis = analyse(runs, recipes, report.equivalence_margin)
    with atomic_path(args.out, directory=True) as folder:
        write_report(folder, info, data, report, analysis, args.confusion, (images[:25], labels[:25]))
    best = analysis.best[0].name
    log.info("%d runs (%d failed); best by validation accuracy: %s", len(runs), len(analysis.failed), best)


if __name__ == "__main__":
    run(main)
