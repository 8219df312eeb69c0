"""`dvc repro` on a copy of this repository, pointed at a small image-folder dataset."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests import browser, builders
from tests.conftest import ROOT
from tools import sync_artifacts

PIPELINE_FILES = ["dvc.yaml", "params.yaml", "stages", "widthdepth", ".dvc/config", ".dvc/plots", ".dvcignore", ".gitignore"]
STAGES = {"download", "prepare", "report"} | {f"{stage}@{model}" for stage in ("train", "evaluate") for model in ("tiny_alex", "tiny_alex_w8", "tiny_mlp")}
TOP_LEVEL_PLOTS = {"val_accuracy_per_epoch", "val_loss_per_epoch", "train_accuracy_per_epoch", "train_loss_per_epoch", "accuracy_along_sweeps", "accuracy_vs_params", "accuracy_vs_macs", "confusion_of_best_model"}


@pytest.fixture(scope="module")
def reproduced(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A git + DVC repository holding this project's pipeline and a tiny dataset, after
    its first `dvc repro`, committed as the baseline; and what that repro printed."""
    tmp_path = tmp_path_factory.mktemp("pipeline")
    repo = tmp_path / "repo"
    for name in PIPELINE_FILES:
        source, target = ROOT / name, repo / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, target)
    members, _ = builders.image_folder_members(["ant", "bee"], {"train": 10, "test": 3})
    archive = builders.write_zip(tmp_path / "insects.zip", members)
    edit_params(repo, data={"dataset": "imagefolder", "source": str(archive)}, prepare={"val_size": 4})
    params = yaml.safe_load((repo / "params.yaml").read_text())
    for recipe in params["recipes"].values():
        recipe.update(epochs=1, batch_size=8)
    tiny_alex = {"family": "alexnet", "recipe": "modern", "filters": 4, "blocks": 1, "kernels": [3]}
    params["models"] = {  # a two-point width sweep and an mlp instead of the study, for 8x8 images
        "tiny_alex": tiny_alex,
        "tiny_alex_w8": {**tiny_alex, "filters": 8},
        "tiny_mlp": {"family": "mlp", "recipe": "notebook", "widths": [8]},
    }
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (repo / "dvc.yaml").write_text(sync_artifacts.synced((repo / "dvc.yaml").read_text(), params["models"]))
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    commit(repo, "pipeline")  # DVCLive needs a commit
    output = dvc(repo, "repro")
    commit(repo, "baseline")
    return repo, output


def commit(repo: Path, message: str) -> None:
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.com"]
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-qm", message], cwd=repo, check=True)


def edit_params(repo: Path, **sections: dict) -> None:
    """Update keys of params.yaml sections; a dotted section name reaches deeper ("models.a")."""
    path = repo / "params.yaml"
    params = yaml.safe_load(path.read_text())
    for name, values in sections.items():
        section = params
        for key in name.split("."):
            section = section[key]
        section.update(values)
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def dvc(repo: Path, *args: str) -> str:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1"}
    result = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=repo, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def model_artifacts(repo: Path) -> dict[str, tuple[str, str]]:
    """The artifacts DVC's model registry reads from dvc.yaml: name -> (type, path)."""
    from dvc.repo import Repo

    with Repo(str(repo)) as dvc_repo:
        return {name: (a.type, a.path) for name, a in dvc_repo.artifacts.read()["dvc.yaml"].items()}


def ran(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


def stale_stages(repo: Path) -> set[str]:
    return set(json.loads(dvc(repo, "status", "--json")))


def test_plots_show_renders_every_plot_in_a_browser(reproduced: tuple[Path, str], tmp_path: Path) -> None:
    repo, _ = reproduced
    declared = json.loads(dvc(repo, "plots", "show", "--json", "--split"))["data"]
    assert TOP_LEVEL_PLOTS <= set(declared)
    kinds = [render["type"] for renders in declared.values() for render in renders]
    output = dvc(repo, "plots", "show", "-o", str(tmp_path / "html"))
    assert "WARNING" not in output and "ERROR" not in output, output
    why = browser.missing()
    if why and not os.environ.get("REQUIRE_BROWSER"):
        pytest.skip(why)
    page = browser.render(tmp_path / "html" / "index.html")
    assert page.charts == kinds.count("vega") and page.images == kinds.count("image"), (page, kinds)
    assert page.problems == []
    assert page.rendered == page.charts and page.loaded_images == page.images


def test_repro_runs_once_and_reruns_only_what_changed(reproduced: tuple[Path, str]) -> None:
    repo, output = reproduced
    assert ran(output) == STAGES
    assert (repo / "models/tiny_alex.keras").exists() and (repo / "dvclive/tiny_mlp/metrics.json").exists()
    assert np.load(repo / "data/prepared/x_val.npy").shape == (4, 8, 8, 3)
    assert (repo / "plots/samples.png").exists()
    report = (repo / "report/report.md").read_text()
    assert "alexnet width (modern recipe, 1 convolution layers)" in report
    assert model_artifacts(repo) == {name: ("model", f"models/{name}.keras") for name in ("tiny_alex", "tiny_alex_w8", "tiny_mlp")}
    assert stale_stages(repo) == set()

    output = dvc(repo, "repro")
    assert "Running stage" not in output

    edit_params(repo, **{"models.tiny_alex": {"filters": 6}})
    assert stale_stages(repo) == {"train@tiny_alex", "report"}
    assert ran(dvc(repo, "repro")) == {"train@tiny_alex", "evaluate@tiny_alex", "report"}
    shown = next(iter(json.loads(dvc(repo, "metrics", "show", "--json")).values()))["data"]
    assert set(shown) == {"metrics/tiny_alex.json", "metrics/tiny_alex_w8.json", "metrics/tiny_mlp.json"}
    changed = json.loads(dvc(repo, "metrics", "diff", "HEAD", "--json"))
    assert set(changed) == {"metrics/tiny_alex.json"}
    assert changed["metrics/tiny_alex.json"]["cost.params"]["diff"] > 0
    output = dvc(repo, "plots", "diff", "HEAD", "-o", str(repo.parent / "diff"))
    assert "WARNING" not in output and "ERROR" not in output, output

    edit_params(repo, train={"backend": "jax"})  # `dvc exp run -S train.backend=jax` retrains and re-evaluates
    assert stale_stages(repo) == {f"{stage}@{model}" for stage in ("train", "evaluate") for model in ("tiny_alex", "tiny_alex_w8", "tiny_mlp")}
    edit_params(repo, train={"backend": "tensorflow"})

    edit_params(repo, prepare={"val_size": 6})
    assert stale_stages(repo) == {"prepare"}  # training follows once prepare's output changes
    output = dvc(repo, "repro")
    assert "Running stage 'download'" not in output and "Running stage 'prepare'" in output
    assert "Running stage 'train@tiny_mlp'" in output
    assert np.load(repo / "data/prepared/x_val.npy").shape == (6, 8, 8, 3)

    members, _ = builders.image_folder_members(["ant", "bee", "wasp"], {"train": 10, "test": 3})
    other = builders.write_zip(repo.parent / "more-insects.zip", members)
    edit_params(repo, data={"source": str(other)})
    # prepare follows once download's output changes; report names the data in its regime
    assert stale_stages(repo) == {"download", "report"}
    output = dvc(repo, "repro")
    assert "Running stage 'download'" in output and "Running stage 'prepare'" in output
    assert json.loads((repo / "data/prepared/dataset.json").read_text())["classes"] == ["ant", "bee", "wasp"]


def test_dvc_yaml_declares_one_model_artifact_per_declared_model() -> None:
    models = yaml.safe_load((ROOT / "params.yaml").read_text())["models"]
    dvc_yaml = (ROOT / "dvc.yaml").read_text()
    assert sync_artifacts.synced(dvc_yaml, models) == dvc_yaml, "run: python tools/sync_artifacts.py"
