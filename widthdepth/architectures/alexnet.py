"""alexnet: an AlexNet-style stack of conv-pool blocks with falling kernel sizes, then a dense head."""

from __future__ import annotations

from typing import Any

from widthdepth.architectures.checks import MAX_COUNT, fraction, knob_error, per_block, per_item, positive_int
from widthdepth.architectures.common import dense_stack, dense_stack_cost
from widthdepth.architectures.cost import Cost
from widthdepth.architectures.registry import Family, Feature


def check(name: str, knobs: dict[str, Any], input_shape: tuple[int, int, int]) -> dict[str, Any]:
    blocks = positive_int(name, "blocks", knobs["blocks"], "number of blocks", MAX_COUNT)
    convs = [
        positive_int(name, "convs", c, "number of convolutions", MAX_COUNT)
        for c in per_block(name, "convs", knobs["convs"], blocks)
    ]
    filters = [
        per_item(name, "filters", f, n, "convs")
        for f, n in zip(per_block(name, "filters", knobs["filters"], blocks), convs)
    ]
    kernels = [
        per_item(name, "kernels", k, n, "convs")
        for k, n in zip(per_block(name, "kernels", knobs["kernels"], blocks), convs)
    ]
    padding = per_block(name, "padding", knobs["padding"], blocks)
    if not isinstance(knobs["batch_norm"], bool):
        raise knob_error(name, "batch_norm", f"must be true or false, not {knobs['batch_norm']!r}")
    pool_size = positive_int(name, "pool_size", knobs["pool_size"], "pool size")
    pool_stride = positive_int(name, "pool_stride", knobs["pool_stride"], "pool stride")
    fraction(name, "dropout", knobs["dropout"])
    fraction(name, "dense_dropout", knobs["dense_dropout"])
    if not isinstance(knobs["dense"], list):
        raise knob_error(name, "dense", f"must be a list of widths (may be empty), not {knobs['dense']!r}")
    dense = [positive_int(name, "dense", width, "width") for width in knobs["dense"]]
    size = min(input_shape[:2])
    for block in range(blocks):
        if padding[block] not in ("same", "valid"):
            raise knob_error(name, "padding", f"must be 'same' or 'valid', not {padding[block]!r}")
        for width, kernel in zip(filters[block], kernels[block]):
            positive_int(name, "filters", width, "width")
            positive_int(name, "kernels", kernel, "kernel size")
            # 'same' zero-pads, so a kernel up to 2 * size - 1 still sees a pixel with every weight.
            largest = size if padding[block] == "valid" else 2 * size - 1
            if kernel > largest:
                raise knob_error(
                    name, "kernels", f"{kernel} is larger than its {size}x{size} input in block {block + 1}"
                )
            if padding[block] == "valid":
                size -= kernel - 1
        if pool_size > size:
            raise knob_error(
                name,
                "pool_size",
                f"{pool_size} is larger than the {size}x{size} feature map of block {block + 1} "
                f"of {blocks} (input {input_shape[0]}x{input_shape[1]}): use fewer blocks or a smaller pool",
            )
        size = (size - pool_size) // pool_stride + 1
    return {**knobs, "convs": convs, "filters": filters, "kernels": kernels, "padding": padding, "dense": dense}


def alexnet(x, spec: dict[str, Any]):
    """conv(-conv...)-pool blocks, then a dense head on the flattened feature map."""
    from keras import layers

    for block in range(spec["blocks"]):
        for filters, kernel in zip(spec["filters"][block], spec["kernels"][block]):
            x = layers.Conv2D(filters, kernel, padding=spec["padding"][block], activation="relu")(x)
            if spec["batch_norm"]:
                x = layers.BatchNormalization()(x)
        x = layers.MaxPooling2D(spec["pool_size"], spec["pool_stride"])(x)
        if spec["dropout"]:
            x = layers.Dropout(spec["dropout"])(x)
    return dense_stack(x, spec["dense"], spec["dense_dropout"])


def cost(spec: dict[str, Any], cost: Cost) -> Cost:
    for block in range(spec["blocks"]):
        for filters, kernel in zip(spec["filters"][block], spec["kernels"][block]):
            cost.conv(filters, kernel, padding=spec["padding"][block])
            if spec["batch_norm"]:
                cost.batch_norm()
        cost.pool(spec["pool_size"], spec["pool_stride"])
        if spec["dropout"]:
            cost.elementwise()
    return dense_stack_cost(cost, spec["dense"], spec["dense_dropout"])


FAMILY = Family(
    name="alexnet",
    defaults={
        "filters": 32,  # width: one number, one per block, or a list per conv inside a block
        "blocks": 3,  # depth: number of conv-pool blocks
        "convs": 1,  # depth inside a block: convolutions per block (one number or one per block)
        "kernels": [5, 3, 3],  # kernel size per block (or per conv inside a block)
        "padding": "same",  # "same" or "valid", one or one per block
        "batch_norm": True,
        "pool_size": 2,
        "pool_stride": 2,
        "dropout": 0.0,  # after each block
        "dense": [],  # widths of the hidden dense layers of the head
        "dense_dropout": 0.0,
    },
    check=check,
    build=alexnet,
    cost=cost,
    width_knob="filters",
    features=(
        Feature(
            "width",
            "filters of the first convolution",
            "doubling of width",
            frozenset({"filters"}),
            lambda spec: spec["filters"][0][0],
            True,
        ),
        Feature(
            "depth",
            "convolution layers",
            "added convolution layer",
            frozenset({"blocks", "convs", "kernels", "padding", "filters"}),
            lambda spec: sum(spec["convs"]),
            False,
        ),
    ),
)
