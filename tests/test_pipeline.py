"""`dvc repro` on a copy of this repository, pointed at a small image-folder dataset."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests import browser, builders
from tests.conftest import ROOT
from tests.repos import TINY_MODELS, commit, dvc, edit_params, pipeline_repo, ran, stale_stages
from tools import sync_dvc_yaml
from widthdepth.data import readers

STAGES = {"download", "prepare", "report"} | {
    f"{stage}@{model}" for stage in ("train", "evaluate") for model in TINY_MODELS
}
TOP_LEVEL_PLOTS = {
    "val_accuracy_per_epoch",
    "val_loss_per_epoch",
    "train_accuracy_per_epoch",
    "train_loss_per_epoch",
    "accuracy_along_sweeps",
    "accuracy_vs_params",
    "accuracy_vs_macs",
    "confusion_of_best_model",
}


@pytest.fixture(scope="module")
def reproduced(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A git + DVC repository holding this project's pipeline and a tiny dataset, after
    its first `dvc repro`, committed as the baseline; and what that repro printed."""
    repo = pipeline_repo(tmp_path_factory.mktemp("pipeline"))
    output = dvc(repo, "repro")
    commit(repo, "baseline")
    return repo, output


def model_artifacts(repo: Path) -> dict[str, tuple[str, str]]:
    """The artifacts DVC's model registry reads from dvc.yaml: name -> (type, path)."""
    from dvc.repo import Repo

    with Repo(str(repo)) as dvc_repo:
        return {name: (a.type, a.path) for name, a in dvc_repo.artifacts.read()["dvc.yaml"].items()}


def test_plots_show_renders_every_plot_in_a_browser(reproduced: tuple[Path, str], tmp_path: Path) -> None:
    repo, _ = reproduced
    declared = json.loads(dvc(repo, "plots", "show", "--json", "--split"))["data"]
    assert TOP_LEVEL_PLOTS <= set(declared)
    kinds = [render["type"] for renders in declared.values() for render in renders]
    page = browser.show_plots(repo, tmp_path / "html")
    assert page.charts == kinds.count("vega") and page.images == kinds.count("image"), (page, kinds)


def test_repro_runs_once_and_reruns_only_what_changed(reproduced: tuple[Path, str]) -> None:
    repo, output = reproduced
    assert ran(output) == STAGES
    assert (repo / "models/tiny_alex/seed_0.keras").exists() and (
        repo / "dvclive/tiny_mlp/seed_0/metrics.json"
    ).exists()
    assert np.load(repo / "data/prepared/x_val.npy").shape == (4, 8, 8, 3)
    assert (repo / "report/samples.png").exists()
    report = (repo / "report/report.md").read_text()
    assert "alexnet width (modern recipe, 1 convolution layers)" in report
    assert model_artifacts(repo) == {
        name: ("model", f"models/{name}") for name in ("tiny_alex", "tiny_alex_w8", "tiny_mlp")
    }
    assert stale_stages(repo) == set()

    output = dvc(repo, "repro")
    assert "Running stage" not in output

    edit_params(repo, **{"models.tiny_alex": {"filters": 6}})
    assert stale_stages(repo) == {"train@tiny_alex", "report"}
    assert ran(dvc(repo, "repro")) == {"train@tiny_alex", "evaluate@tiny_alex", "report"}
    shown = next(iter(json.loads(dvc(repo, "metrics", "show", "--json")).values()))["data"]
    assert set(shown) == {
        "metrics/tiny_alex/seed_0.json",
        "metrics/tiny_alex_w8/seed_0.json",
        "metrics/tiny_mlp/seed_0.json",
    }
    changed = json.loads(dvc(repo, "metrics", "diff", "HEAD", "--json"))
    assert set(changed) == {"metrics/tiny_alex/seed_0.json"}
    assert changed["metrics/tiny_alex/seed_0.json"]["cost.params"]["diff"] > 0
    output = dvc(repo, "plots", "diff", "HEAD", "-o", str(repo.parent / "diff"))
    assert "WARNING" not in output and "ERROR" not in output, output

    edit_params(repo, train={"backend": "jax"})  # `dvc exp run -S train.backend=jax` retrains and re-evaluates
    assert stale_stages(repo) == {
        f"{stage}@{model}" for stage in ("train", "evaluate") for model in ("tiny_alex", "tiny_alex_w8", "tiny_mlp")
    }
    edit_params(repo, train={"backend": "tensorflow"})

    edit_params(repo, prepare={"val_size": 6})
    assert stale_stages(repo) == {"prepare"}  # training follows once prepare's output changes
    output = dvc(repo, "repro")
    assert "Running stage 'download'" not in output and "Running stage 'prepare'" in output
    assert "Running stage 'train@tiny_mlp'" in output
    assert np.load(repo / "data/prepared/x_val.npy").shape == (6, 8, 8, 3)

    # The same images packed another way, listed first: a place, not the data; nothing reruns.
    same = builders.write_tar(
        repo.parent / "insects.tar.gz", builders.image_folder_members(["ant", "bee"], {"train": 10, "test": 3})[0]
    )
    archive = yaml.safe_load((repo / "params.yaml").read_text())["data"]["sources"][0]
    edit_params(repo, data={"sources": [str(same), archive]})
    assert stale_stages(repo) == set()

    members, _ = builders.image_folder_members(["ant", "bee", "wasp"], {"train": 10, "test": 3})
    other = builders.write_zip(repo.parent / "more-insects.zip", members)
    edit_params(repo, data={"sources": [str(other)], "sha256": readers.content_checksum(other)})
    # other images: prepare follows once download's output changes; report names the data in its regime
    assert stale_stages(repo) == {"download", "report"}
    output = dvc(repo, "repro")
    assert "Running stage 'download'" in output and "Running stage 'prepare'" in output
    assert json.loads((repo / "data/prepared/dataset.json").read_text())["classes"] == ["ant", "bee", "wasp"]


def test_dvc_yaml_declares_one_model_artifact_per_declared_model() -> None:
    models = yaml.safe_load((ROOT / "params.yaml").read_text())["models"]
    dvc_yaml = (ROOT / "dvc.yaml").read_text()
    assert sync_dvc_yaml.synced(dvc_yaml, models) == dvc_yaml, "run: python tools/sync_dvc_yaml.py"
