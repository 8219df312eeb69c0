"""What every stage shares: its error type, the rule for names, reading params.yaml, atomic outputs."""

from __future__ import annotations

import contextlib
import errno
import glob
import json
import logging
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml

PARAMS_FILE = Path("params.yaml")

# Model and recipe names become stage names, file names and Keras layer names, so they are
# plain identifiers: a letter, then letters, digits, '_' or '-'; ASCII; at most 64 characters.
NAME_RULE = "a letter, then letters, digits, '_' or '-' (ASCII, at most 64 characters)"
NAME_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")
TEMP_MARK = ".tmp-"  # in the names of atomic_path's temporary files (git- and DVC-ignored)


class StageError(Exception):
    """Bad input or params: the message names the file or the params.yaml key at fault."""


def check_name(section: str, name: object) -> str:
    """A model or recipe name of params.yaml (`section` is `models` or `recipes`), by NAME_RULE."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise StageError(f"params.yaml: {section} name {name!r} is not allowed: a name is {NAME_RULE}")
    return name


def stage_item(name: str | None) -> str:
    """The model a `foreach` stage runs for: `name` if given, else the part after '@' of the
    stage DVC runs (DVC sets DVC_STAGE, e.g. `train@alex_w16`). dvc.yaml passes no name on
    the command line, so that no value of params.yaml ever reaches a shell."""
    if name is None:
        stage = os.environ.get("DVC_STAGE", "")
        if "@" not in stage:
            raise StageError("no model given: run this stage through `dvc repro train@<name>`, or pass --model <name>")
        name = stage.split(":")[-1].partition("@")[2]
    return check_name("models", name)


def read_yaml(path: Path) -> Any:
    """A YAML input file; a StageError naming it if it is missing or malformed."""
    try:
        return yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as err:
        raise StageError(f"cannot read {path}: {err}") from err


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
    never half-written. A write that fails names `target` and the reason in a StageError.
    Leftovers of a killed run (`.<name>.tmp-*`, ignored by git and DVC) are removed here.
    """
    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        remove_leftovers(target)
        prefix = f".{target.name}{TEMP_MARK}"
        if directory:
            tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=target.parent))
        else:
            fd, name = tempfile.mkstemp(prefix=prefix, suffix=target.suffix, dir=target.parent)  # writers go by suffix
            os.close(fd)
            tmp = Path(name)
    except OSError as err:
        raise _write_error(target, err) from err
    umask = os.umask(0)
    os.umask(umask)
    try:
        yield tmp
        os.chmod(tmp, (0o777 if directory else 0o666) & ~umask)  # mkdtemp/mkstemp make them private
        if directory and target.exists():  # moved aside, not deleted first: `target` is absent for an instant only
            old = tmp.with_name(f"{tmp.name}-old")  # a leftover's name: removed by the next run if killed here
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old)
        else:
            os.replace(tmp, target)
    except OSError as err:  # disk full, file too large, permission: say which output
        if is_write_error(err):
            raise _write_error(target, err) from err
        raise
    finally:
        remove(tmp)


# Failures of a write, as opposed to other OSErrors raised while an output is produced (a
# download's URLError, a missing input): disk full, file too large, no permission, read-only.
WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EACCES, errno.EPERM, errno.EROFS, errno.EIO}


def is_write_error(err: OSError) -> bool:
    return err.errno in WRITE_ERRNOS or bool(
        re.search(r"\d+ requested and \d+ written", str(err))
    )  # numpy's short write


def _write_error(target: Path, err: OSError) -> StageError:
    return StageError(f"cannot write {target}: {err.strerror or err}")


def remove_leftovers(target: Path) -> None:
    """Remove temporary files of `target` that a killed run left behind."""
    for leftover in Path(target).parent.glob(f".{glob.escape(Path(target).name)}{TEMP_MARK}*"):
        remove(leftover)


def remove(path: Path) -> None:
    """Delete the file or folder tree at `path`, if there is one."""
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def run(main: Callable[[], None]) -> None:
    """Run a stage's main(); a StageError ends it with its message and exit status 1."""
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    try:
        main()
    except StageError as err:
        sys.exit(f"error: {err}")
