"""Model declarations: the notebook's networks, the families' knobs and their checks."""

from __future__ import annotations

import pytest
import yaml

from tests.conftest import ROOT
from widthdepth.architectures import FAMILIES, build_model, check_spec, parse_models
from widthdepth.params import parse_recipes
from widthdepth.stage import StageError

PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text())
CIFAR = (32, 32, 3)


def n_params(spec: dict, shape=CIFAR) -> int:
    return build_model(check_spec("m", spec, shape), shape, 10, []).count_params()


@pytest.mark.parametrize(
    "name, count",
    [("seed_base", 125_258), ("seed_wide", 427_146), ("seed_deep", 153_386), ("seed_dense", 1_578_506)],
)
def test_seed_models_rebuild_the_notebook(name: str, count: int) -> None:
    """The notebook's model.summary() totals, on 32x32x3 input."""
    assert n_params(PARAMS["models"][name]) == count


def test_seed_deep_layer_for_layer() -> None:
    import keras

    spec = check_spec("seed_deep", PARAMS["models"]["seed_deep"], CIFAR)
    model = build_model(spec, CIFAR, 10, [])
    convs = [
        (layer.filters, layer.kernel_size[0], layer.padding)
        for layer in model.layers
        if isinstance(layer, keras.layers.Conv2D)
    ]
    assert convs == [(32, 11, "same"), (32, 8, "valid"), (32, 5, "same"), (32, 3, "same"), (64, 1, "same")]
    assert model.get_layer(index=-1).output.shape == (None, 10)


def test_small_inception_of_zhang_et_al() -> None:
    """The full-size reference of the inception family: about 1.65M parameters."""
    spec = {
        "family": "inception",
        "stem": 96,
        "blocks": [2, 4, 2],
        "branches": 2,
        "downsample_filters": [80, 96],
        "filters": [[32, 32], [32, 48], [112, 48], [96, 64], [80, 80], [48, 96], [176, 160], [176, 160]],
    }
    assert n_params(spec) == pytest.approx(1.65e6, rel=0.01)


def test_width_and_depth_grow_the_networks() -> None:
    alex = {"family": "alexnet", "filters": 16}
    assert n_params({**alex, "filters": 8}) < n_params(alex) < n_params({**alex, "filters": 32})
    inception = {"family": "inception"}
    sizes = [n_params({**inception, "branches": b}) for b in (2, 3, 4)]
    assert sizes == sorted(sizes) and len(set(sizes)) == 3
    assert n_params({**inception, "blocks": [1, 1, 1]}) < n_params({**inception, "blocks": [2, 2, 2]})


def test_every_declared_model_is_valid_for_cifar10() -> None:
    assert set(parse_models(PARAMS["models"], parse_recipes(PARAMS["recipes"]), CIFAR)) == set(PARAMS["models"])


BAD_DECLARATIONS = [
    ({"family": "resnet"}, "family", "is 'resnet'; expected one of alexnet, inception, airbench, mlp"),
    ({"family": "alexnet", "widht": 3}, "widht", "is not a knob of the alexnet family"),
    ({"family": "alexnet", "filters": 0}, "filters", "must be a width of at least 1, not 0"),
    ({"family": "alexnet", "filters": [16, 0, 16]}, "filters", "must be a width of at least 1"),
    ({"family": "alexnet", "blocks": 0}, "blocks", "must be a number of blocks of at least 1"),
    ({"family": "alexnet", "convs": 0}, "convs", "must be a number of convolutions of at least 1"),
    ({"family": "alexnet", "blocks": 1, "kernels": [70]}, "kernels", "70 is larger than its 32x32 input in block 1"),
    (
        {"family": "alexnet", "blocks": 2, "kernels": [3, 20], "padding": "valid"},
        "kernels",
        "20 is larger than its 15x15 input in block 2",
    ),
    (
        {"family": "alexnet", "blocks": 6, "kernels": 1},
        "pool_size",
        "2 is larger than the 1x1 feature map of block 6 of 6",
    ),
    ({"family": "alexnet", "padding": "full"}, "padding", "must be 'same' or 'valid', not 'full'"),
    ({"family": "alexnet", "batch_norm": "yes"}, "batch_norm", "must be true or false"),
    ({"family": "alexnet", "pool_size": 0}, "pool_size", "must be a pool size of at least 1, not 0"),
    ({"family": "alexnet", "pool_stride": 0}, "pool_stride", "must be a pool stride of at least 1, not 0"),
    ({"family": "alexnet", "dropout": 1.0}, "dropout", "must be a number in [0, 1), not 1.0"),
    ({"family": "alexnet", "dense": 512}, "dense", "must be a list of widths"),
    ({"family": "alexnet", "dense_dropout": -0.1}, "dense_dropout", "must be a number in [0, 1)"),
    ({"family": "inception", "stem": 0}, "stem", "must be a width of at least 1"),
    ({"family": "inception", "filters": [8, 8]}, "filters", "has 2 entries for 3 blocks"),
    ({"family": "inception", "downsample_filters": 0}, "downsample_filters", "must be a width of at least 1"),
    ({"family": "mlp", "dropout": "half"}, "dropout", "must be a number in [0, 1)"),
    ({"family": "alexnet", "blocks": 4}, "kernels", "has 3 entries for 4 blocks"),
    (
        {"family": "alexnet", "convs": [1, 2, 1], "kernels": [5, [3, 3, 3], 3]},
        "kernels",
        "has a block entry of 3 values for 2 convs",
    ),
    ({"family": "inception", "branches": 5}, "branches", "must be 2, 3 or 4"),
    ({"family": "inception", "blocks": [1, 0]}, "blocks", "must be a number of blocks per stage of at least 1"),
    ({"family": "mlp", "widths": [0]}, "widths", "must be a width of at least 1"),
    ({"family": "airbench", "widths": [8, 0]}, "widths", "must be a width of at least 1, not 0"),
    (
        {"family": "airbench", "widths": [8, 8, 8, 8]},
        "widths",
        "has 4 blocks, each halving the feature map: 32x32 input leaves 1x1",
    ),
    ({"family": "airbench", "whiten_kernel": 0}, "whiten_kernel", "must be a kernel size of at least 1"),
    ({"family": "airbench", "batch_norm_momentum": 1}, "batch_norm_momentum", "must be a number in [0, 1), not 1"),
    ({"family": "airbench", "logit_scale": 0}, "logit_scale", "must be a number above 0, not 0"),
]


def test_airbench_is_the_published_network_and_starts_whitened() -> None:
    """airbench94's network has 1.97M parameters; its first convolution, frozen, whitens 2x2
    patches of the training images: each of its first 12 channels has unit second moment."""
    import keras
    import numpy as np

    from widthdepth.architectures.airbench import initialize_airbench

    assert n_params({"family": "airbench"}) == pytest.approx(1.97e6, rel=0.005)
    spec = check_spec("m", {"family": "airbench", "widths": [4, 8]}, CIFAR)
    model = build_model(spec, CIFAR, 10, [keras.layers.Rescaling(1 / 255)])
    images = np.random.default_rng(0).integers(0, 256, (300, 32, 32, 3), dtype=np.uint8)
    initialize_airbench(model, spec, images)
    whitened = keras.Model(model.inputs, model.get_layer("whiten").output).predict(images, verbose=0)[..., :12]
    assert np.allclose((whitened.reshape(-1, 12) ** 2).mean(0), 1.0, atol=0.01)
    assert not model.get_layer("whiten").trainable
    first = next(layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D) and layer.name != "whiten")
    assert np.array(first.kernel)[1, 1, :4, :4].tolist() == np.eye(4).tolist()  # Dirac: identity on its first channels


@pytest.mark.parametrize("spec, key, message", BAD_DECLARATIONS)
def test_bad_declarations_name_the_key(spec: dict, key: str, message: str) -> None:
    with pytest.raises(StageError) as error:
        check_spec("net", spec, CIFAR)
    assert str(error.value).startswith(f"params.yaml: models.net.{key} ")
    assert message in str(error.value)


def test_the_table_of_bad_declarations_walks_every_knob() -> None:
    table = BAD_DECLARATIONS
    for family, knobs in ((f.name, f.defaults) for f in FAMILIES.values()):
        assert set(knobs) <= {key for spec, key, _ in table if spec["family"] == family}, family
