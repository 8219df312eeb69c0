"""The model families: one module each, registered in one place (as pycls' model zoo).

A model is declared in params.yaml under `models.<name>` as a `family` plus that family's
knobs; knobs left out take the family's defaults. `check_spec` validates a declaration
against the dataset's input shape in plain Python, before Keras is touched, so that a bad
one stops the run before any training with the `models.<name>.<key>` at fault.

A family is one module holding its check, its Keras builder and its cost function (the
builder's walk counted with `cost.Cost`'s helpers) in one `Family` record, registered
below. The study finds its sweeps through the record's `features`.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from widthdepth.architectures import airbench, alexnet, inception, mlp
from widthdepth.architectures.checks import knob_error
from widthdepth.architectures.cost import Cost
from widthdepth.architectures.registry import FAMILIES, Family, Feature, Shape, register
from widthdepth.params import ModelKeys, parse
from widthdepth.stage import StageError, check_name

__all__ = [
    "FAMILIES",
    "Cost",
    "Family",
    "Feature",
    "build_model",
    "check_spec",
    "complexity",
    "network_cost",
    "register",
]

# The families, in the order the report lists them.
for family in (alexnet.FAMILY, inception.FAMILY, airbench.FAMILY, mlp.FAMILY):
    register(family)

# Knobs every model has, whatever its family (used by the train stage, not the builders).
COMMON_KEYS = {"family", "recipe", "seed", "seeds"}


def check_spec(name: str, spec: Any, input_shape: Shape) -> dict[str, Any]:
    """The declaration with defaults filled in and per-block knobs expanded; StageError if invalid."""
    if not isinstance(spec, dict):
        raise StageError(f"params.yaml: models.{name} must be a mapping of knobs, not {spec!r}")
    family = FAMILIES.get(spec.get("family")) if isinstance(spec.get("family"), str) else None
    if family is None:
        raise knob_error(name, "family", f"is {spec.get('family')!r}; expected one of {', '.join(FAMILIES)}")
    unknown = sorted(set(spec) - set(family.defaults) - COMMON_KEYS)
    if unknown:
        raise knob_error(
            name, unknown[0], f"is not a knob of the {family.name} family; knobs: {', '.join(family.defaults)}"
        )
    knobs = {**family.defaults, **{k: v for k, v in spec.items() if k not in COMMON_KEYS}}
    return {"family": family.name, **family.check(name, knobs, input_shape)}


def network_cost(spec: dict[str, Any], input_shape: Shape, n_classes: int) -> Cost:
    """What the whole model of a checked spec costs, classifier included, counted from the declaration alone."""
    return FAMILIES[spec["family"]].cost(spec, Cost(*input_shape)).dense(n_classes)


def complexity(spec: dict[str, Any], input_shape: Shape, n_classes: int) -> tuple[int, int]:
    """Parameters and activation values per image of a checked spec: what the memory check weighs
    before Keras allocates. The activations count every layer's output and, beside the input
    itself, two more copies of it for the preprocessing layers."""
    cost = network_cost(spec, input_shape, n_classes)
    h, w, c = input_shape
    return cost.params, cost.activations + 3 * h * w * c + n_classes


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


@dataclass(frozen=True)
class Model:
    """One declared model (`models.<name>`): its family's expanded spec, its recipe's name and its seeds."""

    name: str
    declaration: dict[str, Any]  # as declared, with the family's defaults, `seed` and `seeds` filled in
    spec: dict[str, Any]  # the family's check of it: every knob expanded (per block, per conv)

    @property
    def family(self) -> str:
        return self.spec["family"]

    @property
    def recipe(self) -> str:
        return self.declaration["recipe"]

    @property
    def seeds(self) -> list[int]:
        """`seeds` of them from `seed` on."""
        first = self.declaration["seed"]
        return list(range(first, first + self.declaration["seeds"]))


def parse_model(name: str, raw: Any, recipes: Collection[str], input_shape: Shape) -> Model:
    """`models.<name>`: its family's check (which needs the data's image shape), then the keys every model has."""
    check_name("models", name)
    spec = check_spec(name, raw, input_shape)
    keys = parse(ModelKeys, {k: v for k, v in raw.items() if k in COMMON_KEYS}, f"models.{name}")
    if keys.recipe not in recipes:
        raise StageError(f"params.yaml: models.{name}.recipe is {keys.recipe!r}; expected one of {', '.join(recipes)}")
    declaration = {**FAMILIES[keys.family].defaults, **raw, "seed": keys.seed, "seeds": keys.seeds}
    return Model(name, declaration, spec)


def parse_models(raw: Any, recipes: Collection[str], input_shape: Shape) -> dict[str, Model]:
    """Every model of params.yaml's `models`, so that a bad one stops a run before any training;
    `recipes` are the names a model may train with."""
    if not isinstance(raw, dict) or not raw:
        raise StageError("params.yaml: models must map model names to their declarations (at least one)")
    return {name: parse_model(name, declaration, recipes, input_shape) for name, declaration in raw.items()}
