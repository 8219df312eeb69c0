"""Stage `train`: train each seed of the model declared under `models.<name>` into a self-contained .keras file.

Writes `<models>/<name>/seed_<k>.keras` (raw uint8 images in: normalization is a layer
inside) and `<live>/<name>/seed_<k>/` (the DVCLive training log) for each of its seeds,
trained at once when there are several (widthdepth.training.seeds). Each epoch goes to a
checkpoint in `checkpoints/<name>/seed_<k>/`; a run killed and started again with the same
params, data, runtime and code resumes from it and ends with the same weights as an
uninterrupted run. A run whose loss diverges is stopped and marked so in its training log.

`dvc repro train@<name>` passes the name through DVC_STAGE, never on the command line, so
no value of params.yaml reaches a shell; by hand: `python -m stages.train --model <name> ...`.
"""

from __future__ import annotations

import argparse
import logging
import shutil
from pathlib import Path

from widthdepth import layout, params, runtime
from widthdepth.architectures import parse_models
from widthdepth.stage import StageError, atomic_path, run, stage_item
from widthdepth.training.recipes import check_memory
from widthdepth.training.seeds import seed_runs, train_seeds, workers_for

log = logging.getLogger("train")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="the model's key under `models` in params.yaml (default: from DVC_STAGE)")
    parser.add_argument("data", type=Path, help="folder written by the prepare stage")
    parser.add_argument("models", type=Path, help="folder of the trained models: writes <models>/<name>/seed_<k>.keras")
    parser.add_argument("live", type=Path, help="folder of the training logs: writes <live>/<name>/seed_<k>/ (DVCLive)")
    args = parser.parse_args()
    name = stage_item(args.model)
    info = layout.read_info(args.data)
    train = params.load(params.Train, "train")
    recipes = params.parse_recipes(params.load_section("recipes"))
    models = parse_models(params.load_section("models"), recipes, tuple(info["image_shape"]))  # all, or none
    if name not in models:
        raise StageError(f"params.yaml: models.{name} is not declared")
    model = models[name]
    recipe = recipes[model.recipe].capped(train.max_epochs)
    check_memory(model, recipe, info, workers_for(model.seeds)[0])
    runtime.check_backend(train.backend)

    # The models and logs are written beside their folders and moved in together, so a failed
    # run leaves no partial dvclive/<name>/ for `dvc checkout` to trip on.
    with (
        atomic_path(args.models / name, directory=True) as models_tmp,
        atomic_path(args.live / name, directory=True) as live_tmp,
    ):
        train_seeds(seed_runs(model, recipe, args.data, info, models_tmp, live_tmp), train.backend)
    shutil.rmtree(layout.checkpoint_folder(name), ignore_errors=True)


if __name__ == "__main__":
    run(main)
