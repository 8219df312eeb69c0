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

from widthdepth import layout, runtime
from widthdepth.stage import StageError, atomic_path, load_params, run, stage_item
from widthdepth.training.recipes import capped, check_declarations, check_memory, seeds_of
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
    models, recipes, train = load_params("models"), load_params("recipes"), load_params("train")
    backend = train.get("backend")
    info = layout.read_info(args.data)
    check_declarations(models, recipes, tuple(info["image_shape"]))  # a bad declaration stops every model's run
    if name not in models:
        raise StageError(f"params.yaml: models.{name} is not declared")
    declaration, seeds = models[name], seeds_of(models[name])
    recipe = capped(recipes[declaration["recipe"]], train.get("max_epochs"))
    check_memory(name, declaration, recipe, info, workers_for(seeds)[0])
    runtime.check_backend(backend)

    # The models and logs are written beside their folders and moved in together, so a failed
    # run leaves no partial dvclive/<name>/ for `dvc checkout` to trip on.
    with (
        atomic_path(args.models / name, directory=True) as models_tmp,
        atomic_path(args.live / name, directory=True) as live_tmp,
    ):
        train_seeds(seed_runs(name, declaration, recipe, seeds, args.data, info, models_tmp, live_tmp), backend)
    shutil.rmtree(layout.checkpoint_folder(name), ignore_errors=True)


if __name__ == "__main__":
    run(main)
