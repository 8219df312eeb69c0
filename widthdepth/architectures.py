"""The model families: for each, one record of its defaults, checks, builder, size and sweep knobs.

A model is declared in params.yaml under `models.<name>` as a `family` plus that family's
knobs; knobs left out take the family's defaults. `check_spec` validates a declaration
against the dataset's input shape in plain Python, before Keras is touched, so that a bad
one stops the run before any training with the `models.<name>.<key>` at fault.

A family is one `Family` record, registered with `register` (as pycls registers its
models): adding a family means writing its check, builder and size functions in this
module, registering them, and declaring models of it in params.yaml. The study finds its
sweeps through the record's `features`; the report draws it with the record's style.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from widthdepth.stage import StageError

# Knobs every model has, whatever its family (used by the train stage, not the builders).
COMMON_KEYS = {"family", "recipe", "seed", "seeds"}

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
    size: Callable[[dict[str, Any], Shape], tuple[int, int, int]]  # -> parameters, activations per image, features
    features: tuple[Feature, ...]  # what its sweeps vary
    width_knob: str  # the knob a memory refusal names
    line_style: str = "-"  # in the report's per-epoch chart
    marker: str = "o"  # in the report's cost charts
    # (built model, spec, raw training images) -> None: weights set from the data before training
    initialize: Callable[[Any, dict[str, Any], Any], None] | None = None


FAMILIES: dict[str, Family] = {}


def register(family: Family) -> Family:
    FAMILIES[family.name] = family
    return family


def check_spec(name: str, spec: Any, input_shape: Shape) -> dict[str, Any]:
    """The declaration with defaults filled in and per-block knobs expanded; StageError if invalid."""
    if not isinstance(spec, dict):
        raise StageError(f"params.yaml: models.{name} must be a mapping of knobs, not {spec!r}")
    family = FAMILIES.get(spec.get("family")) if isinstance(spec.get("family"), str) else None
    if family is None:
        raise _error(name, "family", f"is {spec.get('family')!r}; expected one of {', '.join(FAMILIES)}")
    unknown = sorted(set(spec) - set(family.defaults) - COMMON_KEYS)
    if unknown:
        raise _error(
            name, unknown[0], f"is not a knob of the {family.name} family; knobs: {', '.join(family.defaults)}"
        )
    knobs = {**family.defaults, **{k: v for k, v in spec.items() if k not in COMMON_KEYS}}
    return {"family": family.name, **family.check(name, knobs, input_shape)}


def complexity(spec: dict[str, Any], input_shape: Shape, n_classes: int) -> tuple[int, int]:
    """Parameters and activation values per image (every layer's output) of a checked spec,
    counted from the declaration alone: what the memory check weighs before Keras allocates."""
    params, activations, features = FAMILIES[spec["family"]].size(spec, input_shape)
    return params + features * n_classes + n_classes, activations + 3 * _volume(input_shape) + 2 * n_classes


def build_model(spec: dict[str, Any], input_shape: Shape, n_classes: int, preprocessing: list, name: str = "model"):
    """The Keras model of a checked spec: uint8 images in, class probabilities out.

    `preprocessing` is a list of layers applied first (normalization, augmentation), so
    the saved model needs nothing but raw images.
    """
    import keras

    inputs = keras.Input(input_shape, dtype="uint8", name="image")
    x = inputs
    for layer in preprocessing:
        x = layer(x)
    features = FAMILIES[spec["family"]].build(x, spec)
    outputs = keras.layers.Dense(n_classes, activation="softmax", dtype="float32", name="classes")(features)
    return keras.Model(inputs, outputs, name=name)


# -- shared checks and counts ------------------------------------------------------------


def _error(name: str, key: str, message: str) -> StageError:
    return StageError(f"params.yaml: models.{name}.{key} {message}")


# Most blocks, convolutions per block or stages a declaration may ask for: far beyond what
# a 2x2 feature map allows, and a bound on the lists a check expands before anything else.
MAX_COUNT = 256


def _positive_int(name: str, key: str, value: Any, what: str, most: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _error(name, key, f"must be a {what} of at least 1, not {value!r}")
    if most is not None and value > most:
        raise _error(name, key, f"must be a {what} of at most {most}, not {value!r}")
    return value


def _fraction(name: str, key: str, value: Any) -> float:
    """A dropout rate: a number in [0, 1)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise _error(name, key, f"must be a number in [0, 1), not {value!r}")
    return value


def _per_block(name: str, key: str, value: Any, blocks: int) -> list:
    """One value per block: a single value applies to every block."""
    if not isinstance(value, list):
        return [value] * blocks
    if len(value) != blocks:
        raise _error(name, key, f"has {len(value)} entries for {blocks} blocks")
    return list(value)


def _per_item(name: str, key: str, value: Any, count: int, what: str) -> list:
    """One value per conv (or branch) inside a block: a single value applies to all of them."""
    if not isinstance(value, list):
        return [value] * count
    if len(value) != count:
        raise _error(name, key, f"has a block entry of {len(value)} values for {count} {what}")
    return list(value)


def _pooled(size: int, pool: int, stride: int) -> int:
    """Side of a 'valid' max-pool's output."""
    return (size - pool) // stride + 1


def _volume(shape) -> int:
    result = 1
    for side in shape:
        result *= side
    return result


def _dense_size(features: int, widths: list[int], dropout: float, params: int, acts: int) -> tuple[int, int, int]:
    acts += features  # flatten
    for width in widths:
        params += features * width + width
        acts += width * (2 if dropout else 1)
        features = width
    return params, acts, features


def dense_stack(x, widths: list[int], dropout: float):
    """Flatten, then ReLU dense layers, each followed by dropout if any."""
    from keras import layers

    x = layers.Flatten()(x)
    for width in widths:
        x = layers.Dense(width, activation="relu")(x)
        if dropout:
            x = layers.Dropout(dropout)(x)
    return x


# -- alexnet: an AlexNet-style stack of conv-pool blocks with falling kernel sizes ------------


def _check_alexnet(name: str, knobs: dict[str, Any], input_shape: tuple[int, int, int]) -> dict[str, Any]:
    blocks = _positive_int(name, "blocks", knobs["blocks"], "number of blocks", MAX_COUNT)
    convs = [
        _positive_int(name, "convs", c, "number of convolutions", MAX_COUNT)
        for c in _per_block(name, "convs", knobs["convs"], blocks)
    ]
    filters = [
        _per_item(name, "filters", f, n, "convs")
        for f, n in zip(_per_block(name, "filters", knobs["filters"], blocks), convs)
    ]
    kernels = [
        _per_item(name, "kernels", k, n, "convs")
        for k, n in zip(_per_block(name, "kernels", knobs["kernels"], blocks), convs)
    ]
    padding = _per_block(name, "padding", knobs["padding"], blocks)
    if not isinstance(knobs["batch_norm"], bool):
        raise _error(name, "batch_norm", f"must be true or false, not {knobs['batch_norm']!r}")
    pool_size = _positive_int(name, "pool_size", knobs["pool_size"], "pool size")
    pool_stride = _positive_int(name, "pool_stride", knobs["pool_stride"], "pool stride")
    _fraction(name, "dropout", knobs["dropout"])
    _fraction(name, "dense_dropout", knobs["dense_dropout"])
    if not isinstance(knobs["dense"], list):
        raise _error(name, "dense", f"must be a list of widths (may be empty), not {knobs['dense']!r}")
    dense = [_positive_int(name, "dense", width, "width") for width in knobs["dense"]]
    size = min(input_shape[:2])
    for block in range(blocks):
        if padding[block] not in ("same", "valid"):
            raise _error(name, "padding", f"must be 'same' or 'valid', not {padding[block]!r}")
        for width, kernel in zip(filters[block], kernels[block]):
            _positive_int(name, "filters", width, "width")
            _positive_int(name, "kernels", kernel, "kernel size")
            # 'same' zero-pads, so a kernel up to 2 * size - 1 still sees a pixel with every weight.
            largest = size if padding[block] == "valid" else 2 * size - 1
            if kernel > largest:
                raise _error(name, "kernels", f"{kernel} is larger than its {size}x{size} input in block {block + 1}")
            if padding[block] == "valid":
                size -= kernel - 1
        if pool_size > size:
            raise _error(
                name,
                "pool_size",
                f"{pool_size} is larger than the {size}x{size} feature map of block {block + 1} "
                f"of {blocks} (input {input_shape[0]}x{input_shape[1]}): use fewer blocks or a smaller pool",
            )
        size = _pooled(size, pool_size, pool_stride)
    return {**knobs, "convs": convs, "filters": filters, "kernels": kernels, "padding": padding, "dense": dense}


def _alexnet_size(spec: dict[str, Any], input_shape: tuple[int, int, int]) -> tuple[int, int, int]:
    (h, w, c), params, acts = input_shape, 0, 0
    for block in range(spec["blocks"]):
        for filters, kernel in zip(spec["filters"][block], spec["kernels"][block]):
            if spec["padding"][block] == "valid":
                h, w = h - kernel + 1, w - kernel + 1
            params += kernel * kernel * c * filters + filters + (4 * filters if spec["batch_norm"] else 0)
            acts += h * w * filters * (2 if spec["batch_norm"] else 1)
            c = filters
        h, w = _pooled(h, spec["pool_size"], spec["pool_stride"]), _pooled(w, spec["pool_size"], spec["pool_stride"])
        acts += h * w * c * (2 if spec["dropout"] else 1)
    return _dense_size(h * w * c, spec["dense"], spec["dense_dropout"], params, acts)


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


register(
    Family(
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
        check=_check_alexnet,
        build=alexnet,
        size=_alexnet_size,
        width_knob="filters",
        line_style="-",
        marker="o",
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
)


# -- inception: blocks of parallel branches concatenated, in stages split by downsampling ------


def _check_inception(name: str, knobs: dict[str, Any], input_shape: tuple[int, int, int]) -> dict[str, Any]:
    stages = knobs["blocks"] if isinstance(knobs["blocks"], list) else [knobs["blocks"]]
    if not 1 <= len(stages) <= MAX_COUNT:
        raise _error(name, "blocks", f"must list 1 to {MAX_COUNT} stages, not {len(stages)}")
    for count in stages:
        _positive_int(name, "blocks", count, "number of blocks per stage", MAX_COUNT)
    branches = knobs["branches"]
    if branches not in (2, 3, 4):
        raise _error(name, "branches", f"must be 2, 3 or 4, not {branches!r}")
    _positive_int(name, "stem", knobs["stem"], "width")
    n_blocks = sum(stages)
    filters = [
        _per_item(name, "filters", f, branches, "branches")
        for f in _per_block(name, "filters", knobs["filters"], n_blocks)
    ]
    for block in filters:
        for width in block:
            _positive_int(name, "filters", width, "width")
    downsample = knobs["downsample_filters"]
    if downsample is not None:
        downsample = (
            _per_block(name, "downsample_filters", downsample, len(stages) - 1)
            if isinstance(downsample, list)
            else [downsample] * (len(stages) - 1)
        )
        for width in downsample:
            _positive_int(name, "downsample_filters", width, "width")
    else:
        ends = [sum(stages[: i + 1]) - 1 for i in range(len(stages) - 1)]
        downsample = [max(filters[end]) for end in ends]
    return {**knobs, "blocks": stages, "filters": filters, "downsample_filters": downsample}


def _inception_size(spec: dict[str, Any], input_shape: tuple[int, int, int]) -> tuple[int, int, int]:
    def conv(c_in: int, filters: int, kernel: int, pixels: int) -> tuple[int, int]:  # conv_bn_relu
        return kernel * kernel * c_in * filters + 4 * filters, 3 * pixels * filters

    h, w, c = input_shape
    params, acts = conv(c, spec["stem"], 3, h * w)
    c = spec["stem"]
    block_filters = iter(spec["filters"])
    for stage, n_blocks in enumerate(spec["blocks"]):
        if stage:
            down = spec["downsample_filters"][stage - 1]
            h, w = -(-h // 2), -(-w // 2)
            p, a = conv(c, down, 3, h * w)
            params, acts, c = params + p, acts + a + h * w * c + h * w * (c + down), c + down
        for _ in range(n_blocks):
            filters = next(block_filters)
            parts = [conv(c, filters[0], 1, h * w), conv(c, filters[1], 3, h * w)]
            if len(filters) > 2:
                parts += [conv(c, filters[2], 3, h * w), conv(filters[2], filters[2], 3, h * w)]
            if len(filters) > 3:
                parts += [conv(c, filters[3], 1, h * w), (0, h * w * c)]  # the max-pool's output
            params += sum(p for p, _ in parts)
            c = sum(filters)
            acts += sum(a for _, a in parts) + h * w * c  # and the concatenation
    return params, acts + c, c


def conv_bn_relu(x, filters: int, kernel: int, strides: int = 1):
    """Zhang et al.'s conv module: convolution, batch norm, ReLU."""
    from keras import layers

    x = layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    return layers.Activation("relu")(x)


def inception_block(x, filters: list[int]):
    """Parallel branches, concatenated: 1x1; 3x3; two 3x3; 3x3 max-pool then 1x1."""
    from keras import layers

    branches = [conv_bn_relu(x, filters[0], 1), conv_bn_relu(x, filters[1], 3)]
    if len(filters) > 2:
        branches.append(conv_bn_relu(conv_bn_relu(x, filters[2], 3), filters[2], 3))
    if len(filters) > 3:
        branches.append(conv_bn_relu(layers.MaxPooling2D(3, 1, padding="same")(x), filters[3], 1))
    return layers.Concatenate()(branches)


def downsample_block(x, filters: int):
    """A stride-2 3x3 convolution beside a stride-2 3x3 max-pool, concatenated."""
    from keras import layers

    pooled = layers.MaxPooling2D(3, 2, padding="same")(x)
    return layers.Concatenate()([conv_bn_relu(x, filters, 3, strides=2), pooled])


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


register(
    Family(
        name="inception",
        defaults={
            "stem": 32,  # filters of the first 3x3 convolution
            "blocks": [1, 1, 1],  # depth: inception blocks per stage; a downsample module between stages
            "branches": 2,  # threads: 2 = 1x1 and 3x3, 3 = + two 3x3 (a 5x5 field), 4 = + 3x3 max-pool then 1x1
            "filters": 32,  # width: per branch; one number, one per block, or a list per branch inside a block
            "downsample_filters": None,  # 3x3 stride-2 conv beside the pool; None: the widest branch before it
        },
        check=_check_inception,
        build=inception,
        size=_inception_size,
        width_knob="filters",
        line_style="--",
        marker="s",
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
)


# -- airbench: Keller Jordan's airbench94 network for fast CIFAR-10 training, ported ------------


def _check_airbench(name: str, knobs: dict[str, Any], input_shape: tuple[int, int, int]) -> dict[str, Any]:
    widths = knobs["widths"] if isinstance(knobs["widths"], list) else [knobs["widths"]]
    if not 1 <= len(widths) <= MAX_COUNT:
        raise _error(name, "widths", f"must list 1 to {MAX_COUNT} block widths, not {len(widths)}")
    for width in widths:
        _positive_int(name, "widths", width, "width")
    size = min(input_shape[:2])
    kernel = _positive_int(name, "whiten_kernel", knobs["whiten_kernel"], "kernel size", size)
    _fraction(name, "batch_norm_momentum", knobs["batch_norm_momentum"])
    scale = knobs["logit_scale"]
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not scale > 0:
        raise _error(name, "logit_scale", f"must be a number above 0, not {scale!r}")
    size -= kernel - 1
    for _ in widths:
        size //= 2
    if size < 3:
        raise _error(
            name,
            "widths",
            f"has {len(widths)} blocks, each halving the feature map: {input_shape[0]}x{input_shape[1]} "
            f"input leaves {max(size, 0)}x{max(size, 0)} before the final 3x3 pool; use fewer blocks",
        )
    return {**knobs, "widths": widths}


def _airbench_size(spec: dict[str, Any], input_shape: tuple[int, int, int]) -> tuple[int, int, int]:
    h, w, c = input_shape
    kernel = spec["whiten_kernel"]
    whiten = 2 * c * kernel * kernel
    h, w = h - kernel + 1, w - kernel + 1
    params, acts, c = kernel * kernel * c * whiten + whiten, 2 * h * w * whiten, whiten
    for width in spec["widths"]:
        acts += h * w * width  # the first convolution, before its pool
        h, w = h // 2, w // 2
        params += (
            9 * c * width + 9 * width * width + 2 * 3 * width
        )  # two convolutions; batch norm: beta, moving mean and variance
        acts += 6 * h * w * width  # pool, norm, GELU, convolution, norm, GELU
        c = width
    h, w = h // 3, w // 3
    features = h * w * c
    return params, acts + 2 * features + features, features  # the pool, flatten and scaling


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


register(
    Family(
        name="airbench",
        defaults={
            "widths": [64, 256, 256],  # width: filters of each block's two convolutions; depth: the number of blocks
            "whiten_kernel": 2,  # the frozen whitening convolution's kernel (2 x 3 x kernel^2 filters)
            "batch_norm_momentum": 0.6,  # airbench94's fast-moving statistics
            "logit_scale": 1 / 9,
        },
        check=_check_airbench,
        build=airbench,
        size=_airbench_size,
        width_knob="widths",
        line_style="-.",
        marker="D",
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
)


# -- mlp: the fully-connected baseline on the flattened image ---------------------------------


def _check_mlp(name: str, knobs: dict[str, Any], input_shape: tuple[int, int, int]) -> dict[str, Any]:
    widths = knobs["widths"] if isinstance(knobs["widths"], list) else [knobs["widths"]]
    if not widths:
        raise _error(name, "widths", "must list at least one hidden layer width")
    for width in widths:
        _positive_int(name, "widths", width, "width")
    _fraction(name, "dropout", knobs["dropout"])
    return {**knobs, "widths": widths}


def _mlp_size(spec: dict[str, Any], input_shape: tuple[int, int, int]) -> tuple[int, int, int]:
    return _dense_size(_volume(input_shape), spec["widths"], spec["dropout"], 0, 0)


def mlp(x, spec: dict[str, Any]):
    """Dense layers on the flattened image."""
    return dense_stack(x, spec["widths"], spec["dropout"])


register(
    Family(
        name="mlp",
        defaults={"widths": [512], "dropout": 0.5},
        check=_check_mlp,
        build=mlp,
        size=_mlp_size,
        width_knob="widths",
        line_style=":",
        marker="^",
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
)
