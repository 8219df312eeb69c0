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

from widthdepth import layout
from widthdepth.report import check_report_params, load_runs, write_report
from widthdepth.stage import atomic_path, load_params, run
from widthdepth.study import analyse
from widthdepth.training.recipes import capped

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
    params = {section: load_params(section) for section in ("data", "recipes", "report")}
    max_epochs = load_params("train").get("max_epochs")  # the recipes as trained
    params["recipes"] = {name: capped(recipe, max_epochs) for name, recipe in params["recipes"].items()}
    margin = check_report_params(params["report"])
    shape, val_images = tuple(info["image_shape"]), info["splits"]["val"]["count"]
    runs = load_runs(load_params("models"), shape, args.metrics, args.runs, val_images)
    analysis = analyse(runs, params["recipes"], margin)
    with atomic_path(args.out, directory=True) as folder:
        write_report(folder, info, params, analysis, args.confusion, (images[:25], labels[:25]))
    best = analysis.best[0].name
    log.info("%d runs (%d failed); best by validation accuracy: %s", len(runs), len(analysis.failed), best)


if __name__ == "__main__":
    run(main)
