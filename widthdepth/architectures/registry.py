"""The registry of model families (as pycls registers its models): one `Family` record each."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from widthdepth.architectures.cost import Cost

Shape = tuple[int, int, int]


@dataclass(frozen=True)
class Feature:
    """A quantity a sweep varies: its value comes from the checked declaration."""

    name: str  # width, depth or branches
    label: str  # what its value counts
    step: str  # the unit a gain is given per
    knobs: frozenset[str]  # the declaration's knobs that set it
    value: Callable[[dict[str, Any]], int]
    doubling: bool  # gains per doubling (log2 of the value) rather than per unit


@dataclass(frozen=True)
class Family:
    """Everything about one model family, in one place."""

    name: str
    defaults: dict[str, Any]  # every knob and its default
    check: Callable[[str, dict[str, Any], Shape], dict[str, Any]]  # (model name, knobs, input shape) -> expanded spec
    build: Callable[[Any, dict[str, Any]], Any]  # (Keras tensor, spec) -> features before the classifier
    cost: Callable[[dict[str, Any], Cost], Cost]  # (spec, cost of the input) -> cost up to the classifier, built alike
    features: tuple[Feature, ...]  # what its sweeps vary
    width_knob: str  # the knob a memory refusal names
    # (built model, spec, raw training images) -> None: weights set from the data before training
    initialize: Callable[[Any, dict[str, Any], Any], None] | None = None


FAMILIES: dict[str, Family] = {}


def register(family: Family) -> Family:
    FAMILIES[family.name] = family
    return family
