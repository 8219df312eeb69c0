"""Hostile names and failed stages under `dvc repro`, in a throwaway repository: no name reaches
a shell, and after any failure `dvc checkout` brings back the previous outputs with nothing stray.
Its tiny_alex declares two seeds, trained at once: killed, they resume to the same weights."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.repos import ENV, TINY_ALEX, commit, dvc, edit_params, git, pipeline_repo
from tools import sync_dvc_yaml


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny pipeline, reproduced and committed; tiny_alex has two seeds and trains long enough
    to be killed mid-run."""
    repo = pipeline_repo(tmp_path_factory.mktemp("faults"))
    params = yaml.safe_load((repo / "params.yaml").read_text())
    edit_params(
        repo,
        recipes={"slow": {**params["recipes"]["modern"], "epochs": 40, "learning_rate": 0.01}},
        **{"models.tiny_alex": {"recipe": "slow", "seeds": 2}},
    )
    (repo / "dvc.yaml").write_text(
        sync_dvc_yaml.synced(
            (repo / "dvc.yaml").read_text(), yaml.safe_load((repo / "params.yaml").read_text())["models"]
        )
    )
    dvc(repo, "repro")
    commit(repo, "reproduced")
    return repo


def outputs(repo: Path) -> dict[str, str]:
    """md5 of every file under the pipeline's output folders, but a killed write's ignored leftovers."""
    folders = ["data/prepared", "models", "dvclive", "metrics", "plots", "report"]
    return {
        str(path.relative_to(repo)): hashlib.md5(path.read_bytes()).hexdigest()
        for folder in folders
        for path in sorted((repo / folder).rglob("*"))
        if path.is_file() and ".tmp-" not in str(path)
    }


def repro(repo: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dvc", *args], cwd=repo, env=ENV, capture_output=True, text=True)


def stray(repo: Path) -> list[str]:
    """What `git status` shows beside a params.yaml under test."""
    return [line for line in git(repo, "status", "--porcelain").splitlines() if line[3:] != "params.yaml"]


@pytest.mark.parametrize("name", ["a;touch pwned", "$(touch pwned)", "`touch pwned`", "a b", "-x", "modèle", "a/b"])
def test_a_hostile_model_name_reaches_no_shell_and_writes_nothing(repo: Path, name: str) -> None:
    before = outputs(repo)
    edit_params(repo, models={name: TINY_ALEX})  # added beside the others
    result = repro(repo, "repro")
    git(repo, "checkout", "params.yaml")
    assert result.returncode != 0
    assert (
        f"error: params.yaml: models name {name!r} is not allowed: a name is a letter" in result.stdout + result.stderr
    )
    assert not list(repo.parent.rglob("pwned")) and not list(Path.cwd().glob("pwned"))
    assert outputs(repo) == before and stray(repo) == []


def test_a_name_that_would_make_an_output_path_outside_its_folder_is_refused_by_dvc(repo: Path) -> None:
    before = outputs(repo)
    edit_params(repo, models={"..": TINY_ALEX})  # added beside the others
    result = repro(repo, "repro")
    git(repo, "checkout", "params.yaml")
    assert result.returncode != 0 and "train@.." in result.stderr and "overlap" in result.stderr
    assert "Running stage" not in result.stdout
    assert outputs(repo) == before and stray(repo) == []


def test_a_hostile_name_in_an_experiment_is_refused_too(repo: Path) -> None:
    edit_params(repo, models={"x;touch pwned": TINY_ALEX})  # added beside the others
    result = repro(repo, "exp", "run")
    git(repo, "checkout", "params.yaml")
    assert result.returncode != 0 and "models name 'x;touch pwned' is not allowed" in result.stdout + result.stderr
    assert not list(repo.parent.rglob("pwned")) and stray(repo) == []


def test_two_seeds_train_at_once_and_the_report_pools_them(repo: Path) -> None:
    assert sorted(p.name for p in (repo / "models" / "tiny_alex").iterdir()) == ["seed_0.keras", "seed_1.keras"]
    assert sorted(p.name for p in (repo / "metrics" / "tiny_alex").iterdir()) == ["seed_0.json", "seed_1.json"]
    logged = [
        yaml.safe_load((repo / "dvclive" / "tiny_alex" / f"seed_{k}" / "params.yaml").read_text()) for k in (0, 1)
    ]
    assert [entry["seed"] for entry in logged] == [0, 1] and all(
        entry["runtime"]["TF_NUM_INTRAOP_THREADS"] == "1" for entry in logged
    )
    summary = (repo / "report" / "summary.csv").read_text().splitlines()
    assert [line.split(",")[:4] for line in summary if line.startswith("tiny_alex,")] == [
        ["tiny_alex", "alexnet", "slow", "0"],
        ["tiny_alex", "alexnet", "slow", "1"],
    ]  # each seed its own run, one point


def test_after_a_killed_train_dvc_checkout_restores_it_and_a_damaged_checkpoint_does_not_block(repo: Path) -> None:
    import keras

    from widthdepth.training.loop import checkpoint_model

    before = outputs(repo)
    uninterrupted = [
        keras.saving.load_model(repo / "models" / "tiny_alex" / f"seed_{k}.keras").get_weights() for k in (0, 1)
    ]
    process = subprocess.Popen(
        [sys.executable, "-m", "dvc", "repro", "--force", "train@tiny_alex"],
        cwd=repo,
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    checkpoint = repo / "checkpoints" / "tiny_alex" / "seed_0"
    states = [repo / "checkpoints" / "tiny_alex" / f"seed_{k}" / "state.json" for k in (0, 1)]
    while process.poll() is None and not all(state.exists() for state in states):
        time.sleep(0.02)
    time.sleep(0.3)  # into a later epoch
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "training finished before it could be killed"
    leftovers = list((repo / "dvclive").glob(".tiny_alex.tmp-*"))
    assert leftovers, "the killed run's log was not being written aside"

    dvc(repo, "checkout")
    assert outputs(repo) == before and stray(repo) == []

    model = checkpoint_model(checkpoint, json.loads((checkpoint / "state.json").read_text())["epoch"])
    model.write_bytes(model.read_bytes()[:100])  # a checkpoint damaged by the disk
    try:
        rerun = repro(repo, "repro", "--force", "train@tiny_alex")
        assert rerun.returncode == 0, rerun.stderr
        assert "checkpoint checkpoints/tiny_alex/seed_0 cannot be read" in rerun.stderr, rerun.stderr
        assert "tiny_alex seed 1: resuming after epoch" in rerun.stderr, rerun.stderr
        assert not checkpoint.exists() and (repo / "models" / "tiny_alex" / "seed_0.keras").exists()
        for k in (0, 1):  # seed 0 started over, seed 1 resumed: both end as the uninterrupted run did
            for a, b in zip(
                uninterrupted[k],
                keras.saving.load_model(repo / "models" / "tiny_alex" / f"seed_{k}.keras").get_weights(),
            ):
                np.testing.assert_array_equal(a, b)
        assert not any(path.exists() for path in leftovers)  # the next run cleans up
    finally:  # the module's other tests start from the committed outputs, whatever happened here
        git(repo, "checkout", "dvc.lock")  # the rerun saved another .keras file (timestamps): back to the committed one
        dvc(repo, "checkout")
    assert outputs(repo) == before and stray(repo) == []


def test_after_a_failed_prepare_dvc_checkout_restores_the_data(repo: Path) -> None:
    before = outputs(repo)
    edit_params(repo, prepare={"val_size": "ten"})
    result = repro(repo, "repro")
    assert result.returncode != 0 and "error: params.yaml: prepare.val_size" in result.stderr
    assert not (repo / "data" / "prepared").exists()  # DVC removed it before running the stage
    git(repo, "checkout", "params.yaml")
    dvc(repo, "checkout")
    assert outputs(repo) == before and stray(repo) == []


def test_a_failed_report_leaves_the_committed_report_and_metrics_as_they_were(repo: Path) -> None:
    before = outputs(repo)
    edit_params(repo, report={"notebook": {"tiny_alex": 2}})
    result = repro(repo, "repro")
    assert (
        result.returncode != 0
        and "error: params.yaml: report.notebook.tiny_alex must be an accuracy in [0, 1], not 2" in result.stderr
    )
    git(repo, "checkout", "params.yaml")
    assert outputs(repo) == before and stray(repo) == []  # nothing to restore: git-kept outputs persist
    dvc(repo, "checkout")
    assert outputs(repo) == before and stray(repo) == []
