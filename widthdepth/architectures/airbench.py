"""airbench: Keller Jordan's airbench94 network for fast CIFAR-10 training, ported."""

from __future__ import annotations

from typing import Any

from widthdepth.architectures.checks import MAX_COUNT, as_list, fraction, knob_error, positive_int
from widthdepth.architectures.cost import Cost
from widthdepth.architectures.registry import Family, Feature


def check(name: str, knobs: dict[str, Any], input_shape: tuple[int, int, int]) -> dict[str, Any]:
    widths = as_list(knobs["widths"])
    if not 1 <= len(widths) <= MAX_COUNT:
        raise knob_error(name, "widths", f"must list 1 to {MAX_COUNT} block widths, not {len(widths)}")
    for width in widths:
        positive_int(name, "widths", width, "width")
    size = min(input_shape[:2])
    kernel = positive_int(name, "whiten_kernel", knobs["whiten_kernel"], "kernel size", size)
    fraction(name, "batch_norm_momentum", knobs["batch_norm_momentum"])
    scale = knobs["logit_scale"]
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not scale > 0:
        raise knob_error(name, "logit_scale", f"must be a number above 0, not {scale!r}")
    size -= kernel - 1
    for _ in widths:
        size //= 2
    if size < 3:
        raise knob_error(
            name,
            "widths",
            f"has {len(widths)} blocks, each halving the feature map: {input_shape[0]}x{input_shape[1]} "
            f"input leaves {max(size, 0)}x{max(size, 0)} before the final 3x3 pool; use fewer blocks",
        )
    return {**knobs, "widths": widths}


def airbench(x, spec: dict[str, Any]):
    """A frozen patch-whitening convolution, then per block: conv, pool, norm, GELU, conv, norm,
    GELU; a 3x3 max-pool and the logits scaled down (airbench94's `Mul(1/9)`)."""
    from keras import layers

    channels = x.shape[-1]
    kernel = spec["whiten_kernel"]
    x = layers.Conv2D(2 * channels * kernel * kernel, kernel, padding="valid", trainable=False, name="whiten")(x)
    x = layers.Activation("gelu")(x)
    norm = dict(momentum=spec["batch_norm_momentum"], epsilon=1e-5, scale=False)
    for width in spec["widths"]:
        x = layers.Conv2D(width, 3, padding="same", use_bias=False)(x)
        x = layers.MaxPooling2D(2)(x)
        x = layers.Activation("gelu")(layers.BatchNormalization(**norm)(x))
        x = layers.Conv2D(width, 3, padding="same", use_bias=False)(x)
        x = layers.Activation("gelu")(layers.BatchNormalization(**norm)(x))
    x = layers.MaxPooling2D(3)(x)
    return layers.Rescaling(spec["logit_scale"])(layers.Flatten()(x))


def cost(spec: dict[str, Any], cost: Cost) -> Cost:
    kernel = spec["whiten_kernel"]
    cost.conv(2 * cost.c * kernel * kernel, kernel, padding="valid").elementwise()
    for width in spec["widths"]:
        cost.conv(width, 3, bias=False).pool(2).batch_norm(scale=False).elementwise()
        cost.conv(width, 3, bias=False).batch_norm(scale=False).elementwise()
    return cost.pool(3).flatten().elementwise()


def initialize_airbench(model, spec: dict[str, Any], images) -> None:
    """airbench94's data-dependent start: the whitening filters are the eigenvectors of the
    training patches' covariance, scaled by 1/sqrt(eigenvalue), with their negatives; every
    other convolution starts as an identity on its first input channels (Dirac)."""
    import keras
    import numpy as np

    from widthdepth import runtime

    whiten = model.get_layer("whiten")
    kernel, _, channels, _ = whiten.kernel.shape
    probe = keras.Model(model.inputs, whiten.input)  # after preprocessing
    sample = probe.predict(runtime.batches(images[:5000], None, 500), verbose=0)
    patches = np.lib.stride_tricks.sliding_window_view(sample, (kernel, kernel), axis=(1, 2))  # n, h, w, c, kh, kw
    patches = patches.transpose(0, 1, 2, 4, 5, 3).reshape(-1, kernel * kernel * channels)  # as the kernel's (kh, kw, c)
    eigenvalues, eigenvectors = np.linalg.eigh(patches.T.astype(np.float64) @ patches / len(patches))
    filters = (eigenvectors / np.sqrt(eigenvalues + 5e-4))[:, ::-1].reshape(kernel, kernel, channels, -1)
    whiten.set_weights(
        [np.concatenate([filters, -filters], axis=-1).astype(np.float32), np.zeros(whiten.filters, np.float32)]
    )
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D) and layer is not whiten:
            weights = np.array(layer.kernel)
            k_h, k_w, c_in, c_out = weights.shape
            identity = min(c_in, c_out)
            weights[..., :identity] = 0.0
            weights[k_h // 2, k_w // 2, np.arange(identity), np.arange(identity)] = 1.0
            layer.kernel.assign(weights)


FAMILY = Family(
    name="airbench",
    defaults={
        "widths": [64, 256, 256],  # width: filters of each block's two convolutions; depth: the number of blocks
        "whiten_kernel": 2,  # the frozen whitening convolution's kernel (2 x 3 x kernel^2 filters)
        "batch_norm_momentum": 0.6,  # airbench94's fast-moving statistics
        "logit_scale": 1 / 9,
    },
    check=check,
    build=airbench,
    cost=cost,
    width_knob="widths",
    initialize=initialize_airbench,
    features=(
        Feature(
            "width",
            "filters of the first block",
            "doubling of width",
            frozenset({"widths"}),
            lambda spec: spec["widths"][0],
            True,
        ),
        Feature(
            "depth",
            "convolution layers",
            "added block",
            frozenset({"widths"}),
            lambda spec: 2 * len(spec["widths"]),
            False,
        ),
    ),
)
