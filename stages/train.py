"""Stage `train`: train the model declared under `models.<name>` into a self-contained .keras file.

The model takes raw uint8 images: normalization and augmentation are layers inside it.
Each epoch goes to the DVCLive folder and to a checkpoint in `checkpoints/<name>/`; a run
killed and started again with the same params, data, runtime and code resumes from it and
ends with the same weights as an uninterrupted run. A run whose loss diverges is stopped
and marked so in its training log (`diverged_epoch`).

`dvc repro train@<name>` passes the name through DVC_STAGE, never on the command line, so
no value of params.yaml reaches a shell; by hand: `python -m stages.train --model <name> ...`.
"""

from __future__ import annotations

import argparse
import logging
import shutil
from pathlib import Path

from widthdepth import runtime
from widthdepth.stage import StageError, atomic_path, load_params, read_json, run, stage_item
from widthdepth.training.recipes import check_declarations, check_memory

log = logging.getLogger("train")

CHECKPOINTS = Path("checkpoints")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="the model's key under `models` in params.yaml (default: from DVC_STAGE)")
    parser.add_argument("data", type=Path, help="folder written by the prepare stage")
    parser.add_argument("models", type=Path, help="folder of the trained models: writes <models>/<name>.keras")
    parser.add_argument("live", type=Path, help="folder of the training logs: writes <live>/<name>/ (DVCLive)")
    args = parser.parse_args()
    name = stage_item(args.model)
    models, recipes, backend = load_params("models"), load_params("recipes"), load_params("train").get("backend")
    info = read_json(args.data / "dataset.json")
    check_declarations(models, recipes, tuple(info["image_shape"]))  # a bad declaration stops every model's run
    if name not in models:
        raise StageError(f"params.yaml: models.{name} is not declared")
    declaration = models[name]
    recipe = recipes[declaration["recipe"]]
    check_memory(name, declaration, recipe, info)
    runtime.configure(backend)

    from widthdepth.training.loop import train

    # The log is written beside its folder and moved in with the model, so a failed run leaves
    # no partial dvclive/<name>/ for `dvc checkout` to trip on.
    with atomic_path(args.models / f"{name}.keras") as model_tmp, atomic_path(args.live / name, directory=True) as live_tmp:
        train(name, declaration, recipe, args.data, info, CHECKPOINTS / name, model_tmp, live_tmp)
    shutil.rmtree(CHECKPOINTS / name, ignore_errors=True)


if __name__ == "__main__":
    run(main)
