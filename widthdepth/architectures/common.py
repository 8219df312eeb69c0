"""Pieces more than one family builds with."""

from __future__ import annotations

from widthdepth.architectures.cost import Cost


def dense_stack(x, widths: list[int], dropout: float):
    """Flatten, then ReLU dense layers, each followed by dropout if any."""
    from keras import layers

    x = layers.Flatten()(x)
    for width in widths:
        x = layers.Dense(width, activation="relu")(x)
        if dropout:
            x = layers.Dropout(dropout)(x)
    return x


def dense_stack_cost(cost: Cost, widths: list[int], dropout: float) -> Cost:
    cost.flatten()
    for width in widths:
        cost.dense(width)
        if dropout:
            cost.elementwise()
    return cost
