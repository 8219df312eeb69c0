"""Checks a family's declaration is made of: each names the `models.<name>.<key>` at fault."""

from __future__ import annotations

from typing import Any

from widthdepth.stage import StageError

# Most blocks, convolutions per block or stages a declaration may ask for: far beyond what
# a 2x2 feature map allows, and a bound on the lists a check expands before anything else.
MAX_COUNT = 256


def knob_error(name: str, key: str, message: str) -> StageError:
    """The error for knob `key` of `models.<name>`."""
    return StageError(f"params.yaml: models.{name}.{key} {message}")


def positive_int(name: str, key: str, value: Any, what: str, most: int | None = None) -> int:
    """A whole number from 1 (to `most`): `what` says what it counts, in the error."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise knob_error(name, key, f"must be a {what} of at least 1, not {value!r}")
    if most is not None and value > most:
        raise knob_error(name, key, f"must be a {what} of at most {most}, not {value!r}")
    return value


def fraction(name: str, key: str, value: Any) -> float:
    """A dropout rate or a momentum: a number in [0, 1)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise knob_error(name, key, f"must be a number in [0, 1), not {value!r}")
    return value


def per_block(name: str, key: str, value: Any, blocks: int) -> list:
    """One value per block: a single value applies to every block."""
    if not isinstance(value, list):
        return [value] * blocks
    if len(value) != blocks:
        raise knob_error(name, key, f"has {len(value)} entries for {blocks} blocks")
    return list(value)


def per_item(name: str, key: str, value: Any, count: int, what: str) -> list:
    """One value per conv (or branch) inside a block: a single value applies to all of them."""
    if not isinstance(value, list):
        return [value] * count
    if len(value) != count:
        raise knob_error(name, key, f"has a block entry of {len(value)} values for {count} {what}")
    return list(value)


def as_list(value: Any) -> list:
    """A knob that takes one value or a list of them, as a list."""
    return value if isinstance(value, list) else [value]
