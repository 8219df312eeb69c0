"""inception: blocks of parallel branches concatenated, in stages split by downsampling."""

from __future__ import annotations

from typing import Any

from widthdepth.architectures.checks import MAX_COUNT, as_list, knob_error, per_block, per_item, positive_int
from widthdepth.architectures.cost import Cost
from widthdepth.architectures.registry import Family, Feature


def check(name: str, knobs: dict[str, Any], input_shape: tuple[int, int, int]) -> dict[str, Any]:
    stages = as_list(knobs["blocks"])
    if not 1 <= len(stages) <= MAX_COUNT:
        raise knob_error(name, "blocks", f"must list 1 to {MAX_COUNT} stages, not {len(stages)}")
    for count in stages:
        positive_int(name, "blocks", count, "number of blocks per stage", MAX_COUNT)
    branches = knobs["branches"]
    if branches not in (2, 3, 4):
        raise knob_error(name, "branches", f"must be 2, 3 or 4, not {branches!r}")
    positive_int(name, "stem", knobs["stem"], "width")
    filters = [
        per_item(name, "filters", f, branches, "branches")
        for f in per_block(name, "filters", knobs["filters"], sum(stages))
    ]
    for block in filters:
        for width in block:
            positive_int(name, "filters", width, "width")
    downsample = knobs["downsample_filters"]
    if downsample is not None:
        downsample = per_block(name, "downsample_filters", downsample, len(stages) - 1)
        for width in downsample:
            positive_int(name, "downsample_filters", width, "width")
    else:
        ends = [sum(stages[: i + 1]) - 1 for i in range(len(stages) - 1)]
        downsample = [max(filters[end]) for end in ends]
    return {**knobs, "blocks": stages, "filters": filters, "downsample_filters": downsample}


def conv_bn_relu(x, filters: int, kernel: int, strides: int = 1):
    """Zhang et al.'s conv module: convolution, batch norm, ReLU."""
    from keras import layers

    x = layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    return layers.Activation("relu")(x)


def conv_bn_relu_cost(cost: Cost, filters: int, kernel: int, strides: int = 1) -> Cost:
    return cost.conv(filters, kernel, strides, bias=False).batch_norm().elementwise()


def inception_block(x, filters: list[int]):
    """Parallel branches, concatenated: 1x1; 3x3; two 3x3; 3x3 max-pool then 1x1."""
    from keras import layers

    branches = [conv_bn_relu(x, filters[0], 1), conv_bn_relu(x, filters[1], 3)]
    if len(filters) > 2:
        branches.append(conv_bn_relu(conv_bn_relu(x, filters[2], 3), filters[2], 3))
    if len(filters) > 3:
        branches.append(conv_bn_relu(layers.MaxPooling2D(3, 1, padding="same")(x), filters[3], 1))
    return layers.Concatenate()(branches)


def inception_block_cost(cost: Cost, filters: list[int]) -> Cost:
    branches = [conv_bn_relu_cost(cost.branch(), filters[0], 1), conv_bn_relu_cost(cost.branch(), filters[1], 3)]
    if len(filters) > 2:
        branches.append(conv_bn_relu_cost(conv_bn_relu_cost(cost.branch(), filters[2], 3), filters[2], 3))
    if len(filters) > 3:
        branches.append(conv_bn_relu_cost(cost.branch().pool(3, 1, padding="same"), filters[3], 1))
    return cost.concatenate(branches)


def downsample_block(x, filters: int):
    """A stride-2 3x3 convolution beside a stride-2 3x3 max-pool, concatenated."""
    from keras import layers

    pooled = layers.MaxPooling2D(3, 2, padding="same")(x)
    return layers.Concatenate()([conv_bn_relu(x, filters, 3, strides=2), pooled])


def downsample_block_cost(cost: Cost, filters: int) -> Cost:
    return cost.concatenate([conv_bn_relu_cost(cost.branch(), filters, 3, 2), cost.branch().pool(3, 2, padding="same")])


def inception(x, spec: dict[str, Any]):
    """Stem, then stages of inception blocks split by downsample modules, then global pooling."""
    from keras import layers

    x = conv_bn_relu(x, spec["stem"], 3)
    block_filters = iter(spec["filters"])
    for stage, n_blocks in enumerate(spec["blocks"]):
        if stage:
            x = downsample_block(x, spec["downsample_filters"][stage - 1])
        for _ in range(n_blocks):
            x = inception_block(x, next(block_filters))
    return layers.GlobalAveragePooling2D()(x)


def cost(spec: dict[str, Any], cost: Cost) -> Cost:
    conv_bn_relu_cost(cost, spec["stem"], 3)
    block_filters = iter(spec["filters"])
    for stage, n_blocks in enumerate(spec["blocks"]):
        if stage:
            downsample_block_cost(cost, spec["downsample_filters"][stage - 1])
        for _ in range(n_blocks):
            inception_block_cost(cost, next(block_filters))
    return cost.global_pool()


FAMILY = Family(
    name="inception",
    defaults={
        "stem": 32,  # filters of the first 3x3 convolution
        "blocks": [1, 1, 1],  # depth: inception blocks per stage; a downsample module between stages
        "branches": 2,  # threads: 2 = 1x1 and 3x3, 3 = + two 3x3 (a 5x5 field), 4 = + 3x3 max-pool then 1x1
        "filters": 32,  # width: per branch; one number, one per block, or a list per branch inside a block
        "downsample_filters": None,  # 3x3 stride-2 conv beside the pool; None: the widest branch before it
    },
    check=check,
    build=inception,
    cost=cost,
    width_knob="filters",
    features=(
        Feature(
            "width",
            "filters per branch",
            "doubling of width",
            frozenset({"filters", "downsample_filters"}),
            lambda spec: spec["filters"][0][0],
            True,
        ),
        Feature(
            "depth",
            "inception blocks",
            "added block",
            frozenset({"blocks"}),
            lambda spec: sum(spec["blocks"]),
            False,
        ),
        Feature(
            "branches",
            "parallel branches",
            "added branch",
            frozenset({"branches"}),
            lambda spec: spec["branches"],
            False,
        ),
    ),
)
