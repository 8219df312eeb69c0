"""What every stage shares: its error type, reading params.yaml, atomic outputs."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml

PARAMS_FILE = Path("params.yaml")


class StageError(Exception):
    """Bad input or params: the message names the file or the params.yaml key at fault."""


def read_yaml(path: Path) -> Any:
    """A YAML input file; a StageError naming it if it is missing or malformed."""
    try:
        return yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as err:
        raise StageError(f"cannot read {path}: {err}") from err


def load_params(section: str, path: Path = PARAMS_FILE) -> dict[str, Any]:
    """Return one top-level section of params.yaml."""
    params = read_yaml(path)
    if not isinstance(params, dict) or not isinstance(params.get(section), dict):
        raise StageError(f"{path}: section '{section}' is missing or not a mapping")
    return params[section]


def read_json(path: Path) -> Any:
    """A JSON input file; a StageError naming it if it is missing or malformed."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        raise StageError(f"cannot read {path}: {err}") from err


@contextlib.contextmanager
def atomic_path(target: Path, *, directory: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside `target`; move it into place only if the block succeeds.

    A failing or interrupted stage therefore leaves `target` as it was (or absent),
    never half-written.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{target.name}.tmp-"
    if directory:
        tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=target.parent))
    else:
        fd, name = tempfile.mkstemp(prefix=prefix, suffix=target.suffix, dir=target.parent)  # writers go by suffix
        os.close(fd)
        tmp = Path(name)
    umask = os.umask(0)
    os.umask(umask)
    try:
        yield tmp
        os.chmod(tmp, (0o777 if directory else 0o666) & ~umask)  # mkdtemp/mkstemp make them private
        if directory and target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp)
        elif tmp.exists():
            tmp.unlink()


def run(main: Callable[[], None]) -> None:
    """Run a stage's main(); a StageError ends it with its message and exit status 1."""
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    try:
        main()
    except StageError as err:
        sys.exit(f"error: {err}")
