"""Stage `report`: every model's results in one table, the study's plots and its answer.

Reads the models declared in params.yaml, their metrics/<name>.json, their DVCLive
training logs, the confusion records of the best model (chosen on validation accuracy,
never on the test set) and the prepared data's description and first training images.
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

import numpy as np

from widthdepth.report import check_report_params, load_runs, write_report
from widthdepth.stage import atomic_path, load_params, read_json, run
from widthdepth.study import analyse

log = logging.getLogger("report")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", type=Path, help="folder written by the prepare stage")
    parser.add_argument("metrics", type=Path, help="folder of metrics/<name>.json")
    parser.add_argument("training_logs", type=Path, help="folder of DVCLive logs, one per model")
    parser.add_argument("confusion", type=Path, help="folder of confusion records, one per model")
    parser.add_argument("out", type=Path, help="report folder to write")
    args = parser.parse_args()
    info = read_json(args.data / "dataset.json")
    samples = (
        np.load(args.data / "x_train.npy", mmap_mode="r")[:25],
        np.load(args.data / "y_train.npy", mmap_mode="r")[:25],
    )
    params = {section: load_params(section) for section in ("data", "recipes", "report")}
    margin = check_report_params(params["report"])
    runs = load_runs(
        load_params("models"),
        tuple(info["image_shape"]),
        args.metrics,
        args.training_logs,
        info["splits"]["val"]["count"],
    )
    analysis = analyse(runs, params["recipes"], margin)
    with atomic_path(args.out, directory=True) as folder:
        write_report(folder, info, params, analysis, args.training_logs, args.confusion, samples)
    log.info(
        "%d runs (%d failed); best by validation accuracy: %s", len(runs), len(analysis.failed), analysis.best[0].name
    )


if __name__ == "__main__":
    run(main)
