"""Stage `report`: every model's results in one table, the study's plots and its answer.

Reads the models declared in params.yaml, their metrics/<name>/seed_<k>.json and
runs/<name>/seed_<k>.json (what evaluate copied of the training logs), the confusion
records (each model's first seed, image by image) of the best model (chosen on validation
accuracy, never on the test set) and of the primary questions' models (`report.primary`),
and the prepared data's description and first training images: only what git keeps, and
the prepared data, which any machine rebuilds from the download.
Writes one folder, kept in git:

  report.md                the answer (primary questions, Holm-controlled), the exploratory sections,
                           failed runs, the summary table and the figures
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
from widthdepth.questions import parse_report
from widthdepth.report import write_report
from widthdepth.results import load_outcomes, load_runs
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
    data = params.load(params.Data, "data")
    max_epochs = params.load(params.Train, "train").max_epochs
    recipes = {name: r.capped(max_epochs) for name, r in params.parse_recipes(params.load_section("recipes")).items()}
    models = parse_models(params.load_section("models"), recipes, tuple(info["image_shape"]))
    report = parse_report(params.load_section("report"), models)
    runs = load_runs(models, args.metrics, args.runs, info["splits"]["val"]["count"])
    questioned = [model for question in report.primary.values() for model in question.models]
    outcomes = load_outcomes(questioned, args.confusion)
    analysis = analyse(runs, recipes, report.equivalence_margin, report.primary, outcomes)
    with atomic_path(args.out, directory=True) as folder:
        write_report(folder, info, data, report, analysis, args.confusion, (images[:25], labels[:25]))
    best = analysis.best.name
    log.info("%d runs (%d failed); best by validation accuracy: %s", len(runs), len(analysis.failed), best)


if __name__ == "__main__":
    run(main)
