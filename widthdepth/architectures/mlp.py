"""mlp: the fully-connected baseline on the flattened image."""

from __future__ import annotations

from typing import Any

from widthdepth.architectures.checks import as_list, fraction, knob_error, positive_int
from widthdepth.architectures.common import dense_stack, dense_stack_cost
from widthdepth.architectures.cost import Cost
from widthdepth.architectures.registry import Family, Feature


def check(name: str, knobs: dict[str, Any], input_shape: tuple[int, int, int]) -> dict[str, Any]:
    widths = as_list(knobs["widths"])
    if not widths:
        raise knob_error(name, "widths", "must list at least one hidden layer width")
    for width in widths:
        positive_int(name, "widths", width, "width")
    fraction(name, "dropout", knobs["dropout"])
    return {**knobs, "widths": widths}


def mlp(x, spec: dict[str, Any]):
    """Dense layers on the flattened image."""
    return dense_stack(x, spec["widths"], spec["dropout"])


def cost(spec: dict[str, Any], cost: Cost) -> Cost:
    return dense_stack_cost(cost, spec["widths"], spec["dropout"])


FAMILY = Family(
    name="mlp",
    defaults={"widths": [512], "dropout": 0.5},
    check=check,
    build=mlp,
    cost=cost,
    width_knob="widths",
    features=(
        Feature(
            "width",
            "units of the widest hidden layer",
            "doubling of width",
            frozenset({"widths"}),
            lambda spec: max(spec["widths"]),
            True,
        ),
        Feature(
            "depth",
            "hidden layers",
            "added hidden layer",
            frozenset({"widths"}),
            lambda spec: len(spec["widths"]),
            False,
        ),
    ),
)
