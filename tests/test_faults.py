"""Hostile input and faults, one stage at a time: names, memory, archive bombs, damaged
checkpoints, failed writes and the smaller cases; each refused in one line that names the culprit."""

from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests import builders
from tests.conftest import ROOT, run_stage, write_params
from tests.test_train import MODELS, RECIPE
from tests.test_train import write_params as write_train_params
from widthdepth import architectures
from widthdepth.data import readers
from widthdepth.metrics import macs_per_image
from widthdepth.stage import NAME_RULE, StageError, atomic_path, check_name

HOSTILE_NAMES = [
    "a;touch pwned",
    "$(touch pwned)",
    "`touch pwned`",
    "a b",
    "a/b",
    "..",
    "-x",
    "modèle",
    "a" * 65,
    "",
    7,
]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
# Runs a command, then prints its peak resident memory (KiB), its exit status and its stderr.
MEASURED = (
    "import resource, subprocess, sys; r = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, r.returncode); print(r.stderr, end='')"
)


def run_measured(*command: str) -> tuple[int, str, float, float]:
    """Exit status, stderr, peak resident memory in GiB and wall seconds of a command in a fresh process."""
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", MEASURED, *command], capture_output=True, text=True, env=ENV, check=True
    )
    seconds = time.perf_counter() - start
    first, _, stderr = result.stdout.partition("\n")
    peak_kib, status = map(int, first.split())
    return status, stderr, peak_kib / 2**20, seconds


# -- names -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_a_name_outside_the_rule_is_refused_with_the_rule(name) -> None:
    with pytest.raises(StageError) as refused:
        check_name("models", name)
    assert str(refused.value) == f"params.yaml: models name {name!r} is not allowed: a name is {NAME_RULE}"


@pytest.mark.parametrize("name", ["alex_w16", "inc-base", "B2", "a" * 64])
def test_plain_names_pass(name: str) -> None:
    assert check_name("recipes", name) == name


def test_a_hostile_model_name_stops_every_train_stage_before_any_output(workdir: Path) -> None:
    builders.write_prepared(workdir / "data", shape=(16, 16, 3))
    write_train_params({**MODELS, "a;touch pwned": MODELS["tiny_alex"]})
    with pytest.raises(StageError, match=r"^params.yaml: models name 'a;touch pwned' is not allowed"):
        run_stage("train", "--model", "tiny_alex", "data", "models", "dvclive")
    assert not any(Path(p).exists() for p in ("models", "dvclive", "checkpoints", "pwned"))


def test_the_model_name_comes_from_dvc_stage(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    builders.write_prepared(workdir / "data", shape=(16, 16, 3))
    write_train_params(epochs=1)
    monkeypatch.setenv("DVC_STAGE", "train@tiny_mlp")
    run_stage("train", "data", "models", "dvclive")
    assert [p.name for p in Path("models").iterdir()] == ["tiny_mlp"] and Path("models/tiny_mlp/seed_0.keras").exists()
    monkeypatch.setenv("DVC_STAGE", "train@$(touch pwned)")
    with pytest.raises(StageError, match=r"^params.yaml: models name '\$\(touch pwned\)' is not allowed"):
        run_stage("train", "data", "models", "dvclive")
    monkeypatch.delenv("DVC_STAGE")
    with pytest.raises(StageError, match=r"^no model given: run this stage through `dvc repro train@<name>`"):
        run_stage("train", "data", "models", "dvclive")


def test_no_value_of_params_reaches_a_stage_command() -> None:
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    for name, stage in stages.items():
        assert "${" not in stage.get("do", stage)["cmd"], name


# -- memory ------------------------------------------------------------------------------

SIZED = {
    "alexnet": [
        {
            "filters": [3, 5, 7],
            "convs": [1, 2, 1],
            "kernels": [5, 3, 3],
            "padding": ["valid", "same", "same"],
            "dropout": 0.1,
            "dense": [16, 8],
            "dense_dropout": 0.2,
        },
        {"batch_norm": False, "pool_size": 3},
    ],
    "inception": [{"stem": 5, "branches": 4, "filters": 3, "blocks": [1, 2]}, {"branches": 3, "downsample_filters": 7}],
    "mlp": [{"widths": [32, 16]}, {"widths": 9, "dropout": 0.0}],
    "airbench": [{"widths": [4, 8], "whiten_kernel": 3}, {"widths": 6, "batch_norm_momentum": 0.9, "logit_scale": 0.5}],
}


@pytest.mark.parametrize("family", list(SIZED))
def test_the_size_counted_from_a_declaration_is_what_keras_builds(family: str) -> None:

    for knobs in SIZED[family]:
        spec = architectures.check_spec("m", {"family": family, **knobs}, (20, 20, 3))
        params, activations = architectures.complexity(spec, (20, 20, 3), 4)
        model = architectures.build_model(spec, (20, 20, 3), 4, [])
        assert params == model.count_params(), knobs
        assert architectures.network_cost(spec, (20, 20, 3), 4).macs == macs_per_image(model), knobs
        # every layer's output, the input and the preprocessing layers counted as 3 copies of the image
        assert activations == sum(int(np.prod(layer.output.shape[1:])) for layer in model.layers) + 2 * 20 * 20 * 3 + 4


def test_a_model_too_large_for_memory_is_refused_in_seconds(workdir: Path) -> None:
    builders.write_prepared(workdir / "data", shape=(32, 32, 3))
    write_train_params({"huge": {"family": "alexnet", "recipe": "modern", "filters": 10000, "kernels": 3}})
    status, stderr, peak_gib, seconds = run_measured(
        sys.executable, "-m", "stages.train", "--model", "huge", "data", "models", "dvclive"
    )
    assert status == 1 and stderr.count("\n") == 1, stderr
    assert stderr.startswith(
        "error: params.yaml: models.huge.filters makes a model too large to train here: an estimated "
    )
    assert "recipes.modern.batch_size 16" in stderr and "WIDTHDEPTH_MEMORY_GB" in stderr
    assert peak_gib < 0.5 and seconds < 30, (peak_gib, seconds)
    assert not any(Path(p).exists() for p in ("models", "dvclive", "checkpoints"))


def test_the_memory_limit_can_be_set(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    builders.write_prepared(workdir / "data", shape=(16, 16, 3))
    write_train_params()
    monkeypatch.setenv("WIDTHDEPTH_MEMORY_GB", "0.00001")
    with pytest.raises(
        StageError, match=r"^params.yaml: models.tiny_mlp.widths makes a model too large .* limit of 0.0 GiB"
    ):
        run_stage("train", "--model", "tiny_mlp", "data", "models", "dvclive")
    monkeypatch.setenv("WIDTHDEPTH_MEMORY_GB", "lots")
    with pytest.raises(StageError, match=r"^WIDTHDEPTH_MEMORY_GB='lots' must be a number of GiB$"):
        run_stage("train", "--model", "tiny_mlp", "data", "models", "dvclive")


def test_a_count_is_bounded_before_any_list_is_built() -> None:
    with pytest.raises(
        StageError, match=r"^params.yaml: models.m.blocks must be a number of blocks of at most 256, not 1000000000$"
    ):
        architectures.check_spec("m", {"family": "alexnet", "blocks": 10**9}, (32, 32, 3))


# -- archive bombs ----------------------------------------------------------------------


def imagefolder_source(workdir: Path, archive: Path, download: bool = True) -> None:
    write_params(data={"dataset": "imagefolder", "sources": [str(archive)]}, prepare={"val_size": 2})
    if download:
        run_stage("download", "data/raw")


def test_a_zip_bomb_is_refused_in_seconds_with_little_memory(workdir: Path) -> None:
    archive = workdir / "bomb.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as bomb:
        for name, data in builders.image_folder_members(["cat", "dog"], {"train": 3, "test": 1})[0].items():
            bomb.writestr(name, data)
        with bomb.open("train/cat/huge.png", "w", force_zip64=True) as member:
            for _ in range(300):
                member.write(bytes(2**20))  # 300 MiB of zeros: about 0.3 MB packed
    assert archive.stat().st_size < 2 * 2**20
    imagefolder_source(workdir, archive, download=False)  # download reads it first, for its content checksum
    status, stderr, peak_gib, seconds = run_measured(sys.executable, "-m", "stages.download", "data/raw")
    assert status == 1 and stderr.count("\n") == 1, stderr
    assert "member train/cat/huge.png unpacks to 314,572,800 bytes, over the limit of 268,435,456 per file" in stderr
    assert peak_gib < 0.5 and seconds < 30, (peak_gib, seconds)
    assert not Path("data/raw").exists()


def test_a_member_that_unpacks_far_beyond_its_packed_size_is_refused(workdir: Path) -> None:
    members = {
        **builders.image_folder_members(["cat", "dog"], {"train": 3, "test": 1})[0],
        "train/cat/zeros.png": bytes(8 * 2**20),
    }
    archive = workdir / "ratio.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as packed:
        for name, data in members.items():
            packed.writestr(name, data)
    with pytest.raises(
        StageError, match=r"member train/cat/zeros.png unpacks [\d,]+ times its packed size .* decompression bomb$"
    ):
        imagefolder_source(workdir, archive)


def test_tar_members_and_gzip_files_are_bounded_before_they_are_read(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(readers, "MAX_MEMBER_BYTES", 1000)
    archive = builders.write_tar(workdir / "images.tar.gz", {"train/cat/big.png": bytes(5000)})
    with pytest.raises(
        StageError, match=r"images.tar.gz: member train/cat/big.png unpacks to 5,000 bytes, over the limit of 1,000"
    ):
        list(readers.iter_members(archive))
    (workdir / "labels.gz").write_bytes(gzip.compress(bytes(5000)))
    with pytest.raises(StageError, match=r"labels.gz: unpacks to over 1,000 bytes, the limit per file$"):
        readers.read_idx(workdir / "labels.gz")


def test_images_that_would_decode_past_the_bound_are_refused(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(readers, "MAX_DECODED_BYTES", 1000)
    imagefolder_source(
        workdir,
        builders.write_zip(
            workdir / "images.zip", builders.image_folder_members(["cat", "dog"], {"train": 3, "test": 1})[0]
        ),
    )
    with pytest.raises(
        StageError,
        match=r"images.zip: 8 images of 8x8 RGB \(like train/cat/0000.png\) decode to 1,536 bytes, "
        r"over the limit of 1,000$",
    ):
        run_stage("prepare", "data/raw", "data/prepared")


# -- checkpoints, writes, leftovers ------------------------------------------------------


def test_a_damaged_checkpoint_is_set_aside_and_training_starts_over(
    workdir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from widthdepth import runtime

    info = builders.write_prepared(workdir / "data", shape=(16, 16, 3))
    write_train_params(epochs=2)
    run_stage("train", "--model", "tiny_alex", "data", "models", "dvclive")
    clean = Path("models/tiny_alex/seed_0.keras").read_bytes()

    from widthdepth.architectures import parse_model
    from widthdepth.params import Recipe
    from widthdepth.training.loop import run_fingerprint
    from widthdepth.training.seeds import SeedRun

    model = parse_model("tiny_alex", MODELS["tiny_alex"], {"modern"}, (16, 16, 3))
    checkpoint = Path("checkpoints/tiny_alex/seed_0")
    checkpoint.mkdir(parents=True)
    run = SeedRun(model, Recipe(**{**RECIPE, "epochs": 2}), 0, Path("data"), info, checkpoint, Path(), Path())
    state = {"fingerprint": run_fingerprint(run, runtime.settings()), "epoch": 1}
    (checkpoint / "state.json").write_text(json.dumps(state))
    (checkpoint / "epoch_1.keras").write_bytes(clean[: len(clean) // 3])  # damaged on disk
    run_stage("train", "--model", "tiny_alex", "data", "models", "dvclive")
    assert "checkpoint checkpoints/tiny_alex/seed_0 cannot be read" in caplog.text
    assert (
        "set aside as checkpoints/.unreadable/tiny_alex/seed_0, training starts over" in caplog.text
        and "resuming" not in caplog.text
    )
    assert Path("checkpoints/.unreadable/tiny_alex/seed_0/epoch_1.keras").exists() and not checkpoint.exists()
    assert json.loads(Path("dvclive/tiny_alex/seed_0/metrics.json").read_text())["epochs"] == 2


def test_a_failed_write_names_the_file_and_the_reason(workdir: Path) -> None:
    builders.write_cifar10_binary(workdir / "cifar-10-binary.tar.gz", per_batch=200)
    write_params(data={"sources": [str(workdir)]})
    run_stage("download", "data/raw")
    limit = (
        "import resource, runpy, sys; resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000)); "
        "sys.argv = ['prepare', 'data/raw', 'data/prepared']; runpy.run_module('stages.prepare', run_name='__main__')"
    )
    result = subprocess.run([sys.executable, "-c", limit], capture_output=True, text=True, env=ENV)
    assert result.returncode == 1
    assert result.stderr.strip() == "error: cannot write data/prepared: File too large" or re.fullmatch(
        r"error: cannot write data/prepared: \d+ requested and \d+ written", result.stderr.strip()
    ), result.stderr
    assert not Path("data/prepared").exists() and not list(Path("data").glob(".*.tmp-*"))


def test_leftovers_of_a_killed_write_are_removed_by_the_next_and_ignored_meanwhile(tmp_path: Path) -> None:
    leftover = tmp_path / ".report.tmp-abc123"
    (leftover / "figures").mkdir(parents=True)
    (tmp_path / ".report.json.tmp-x.json").write_text("{")  # another output's: kept
    with atomic_path(tmp_path / "report", directory=True) as folder:
        (folder / "report.md").write_text("done")
    assert not leftover.exists() and (tmp_path / ".report.json.tmp-x.json").exists()
    leftovers = ["metrics/.m.json.tmp-1x.json", ".report.tmp-abc"]
    ignored = subprocess.run(
        ["git", "check-ignore", "--no-index", *leftovers], cwd=ROOT, capture_output=True, text=True
    )
    assert ignored.stdout.split() == leftovers
    assert ".*.tmp-*" in (ROOT / ".dvcignore").read_text().splitlines()


# -- the smaller cases -------------------------------------------------------------------


def test_an_mlp_without_hidden_layers_is_refused() -> None:
    with pytest.raises(StageError, match=r"^params.yaml: models.m.widths must list at least one hidden layer width$"):
        architectures.check_spec("m", {"family": "mlp", "widths": []}, (8, 8, 1))


def test_a_report_of_no_models_says_so(workdir: Path) -> None:
    from widthdepth.results import load_runs

    with pytest.raises(StageError, match=r"^params.yaml: models declares no model, so there is nothing to report$"):
        load_runs({}, (8, 8, 3), workdir / "metrics", workdir / "runs")


def test_evaluating_a_truncated_model_says_it_is_damaged(workdir: Path) -> None:
    builders.write_prepared(workdir / "data", shape=(16, 16, 3))
    write_train_params(epochs=1)
    run_stage("train", "--model", "tiny_mlp", "data", "models", "dvclive")
    model = Path("models/tiny_mlp/seed_0.keras")
    model.write_bytes(model.read_bytes()[:500])
    with pytest.raises(
        StageError,
        match=r"^models/tiny_mlp/seed_0.keras cannot be loaded, it is damaged or not a .keras model \(\w+\); "
        r"rerun `dvc repro train@tiny_mlp` or `dvc checkout models/tiny_mlp`$",
    ):
        run_stage("evaluate", "--model", "tiny_mlp", "data", "models", "dvclive", "metrics", "runs", "plots")
    assert not any(Path(p).exists() for p in ("metrics/tiny_mlp", "runs/tiny_mlp", "plots"))


def test_a_backend_that_is_not_installed_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    from widthdepth import runtime

    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    with pytest.raises(
        StageError, match=r"^params.yaml: train.backend is torch, which is not installed here \(pip install torch\)$"
    ):
        runtime.configure("torch")


def test_notebook_reference_numbers_are_checked() -> None:
    from widthdepth.params import Report, parse

    with pytest.raises(
        StageError, match=r"^params.yaml: report.notebook.seed_base must be an accuracy in \[0, 1\], not 'abc'$"
    ):
        parse(Report, {"equivalence_margin": 0.01, "notebook": {"seed_base": "abc"}}, "report")
    with pytest.raises(
        StageError,
        match=r"^params.yaml: report.equivalence_margin must be a difference in accuracy in \(0, 1\), not None$",
    ):
        parse(Report, {"equivalence_margin": None, "notebook": {}}, "report")
