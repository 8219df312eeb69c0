"""params.yaml, parsed once into frozen, typed records: one per section, one per recipe and model.

Each section is validated by pydantic; a refusal names the params.yaml key at fault and what
it allows (the field's description), e.g. `params.yaml: recipes.fast.momentum must be a number
in [0, 1), not 1.5`. A model's declaration is parsed by `widthdepth.architectures.parse_models`:
its family's check is its parse step, and needs the data's image shape. Stages parse what they use
once and hand the records down; nothing below checks them or fills defaults again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from widthdepth.stage import PARAMS_FILE, StageError, check_name, read_yaml

# Most seeds one model may declare: each is a training run.
MAX_SEEDS = 16


class Record(BaseModel):
    """A section's record: frozen, no unknown keys, no conversions (YAML's `true` is no number)."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


def allows(description: str, **constraints: Any) -> Any:
    """A field whose description says what it allows: the refusal quotes it."""
    return Field(description=description, **constraints)


class Data(Record):
    """Which data: a dataset and, for an image folder, the checksum of its images, which is its
    identity (the official datasets carry theirs). `sources` says where to fetch it from first,
    and is no part of it (not a DVC dependency)."""

    dataset: Literal["cifar10", "fashion_mnist", "imagefolder"] = allows("one of cifar10, fashion_mnist, imagefolder")
    sources: list[str] = allows(
        "a list of places, tried in order: paths or URLs (an image folder or archive; for the official "
        "datasets, a folder or base URL holding their files)",
        default_factory=list,
    )
    sha256: str | None = allows(
        "64 hex digits: an image folder's content checksum (python -m widthdepth.data.checksum PLACE), or null",
        default=None,
        pattern=r"^[0-9a-f]{64}$",
    )

    @model_validator(mode="after")
    def _consistent(self) -> Data:
        if self.dataset == "imagefolder" and not self.sources:
            raise ValueError("sources must list the image folder or archive for data.dataset 'imagefolder'")
        if any(not place for place in self.sources):
            raise ValueError("sources must list paths or URLs, not an empty one")
        return self


class Prepare(Record):
    val_size: int | float = allows("a count, or a fraction in (0, 1)", gt=0)
    seed: int = allows("a non-negative integer", default=0, ge=0)
    limit: int | None = allows("a positive number of images, or null", default=None, ge=1)


class Train(Record):
    backend: Literal["tensorflow", "jax", "torch"] = allows("one of tensorflow, jax, torch", default="tensorflow")
    max_epochs: int | None = allows("a positive number of epochs, or null", default=None, ge=1)


class Recipe(Record):
    """How a model is trained (`recipes.<name>`): every key is required."""

    epochs: int = allows("an integer of at least 1", ge=1)
    batch_size: int = allows("an integer of at least 1", ge=1)
    optimizer: Literal["sgd", "adamw"] = allows("sgd (momentum, Nesterov if > 0) or adamw")
    learning_rate: float = allows("a number above 0", gt=0)
    momentum: float = allows("a number in [0, 1)", ge=0, lt=1)
    weight_decay: float = allows("a number in [0, 1)", ge=0, lt=1)
    warmup_epochs: int = allows("an integer of at least 0, at most epochs", ge=0)
    schedule: Literal["constant", "cosine"] = allows("constant or cosine (after the warm-up)")
    label_smoothing: float = allows("a number in [0, 1)", ge=0, lt=1)
    inputs: Literal["unit", "standardize"] = allows(
        "unit (x / 255) or standardize ((x - mean) / std of the training part)"
    )
    flip: bool = allows("true or false (random horizontal flips)")
    translate: float = allows("a number in [0, 0.5] (random shifts, a fraction of the image size)", ge=0, le=0.5)
    augment: Literal["data", "layers"] = allows(
        "data (flips and whole-pixel shifts of the uint8 batches, outside the gradient graph) "
        "or layers (Keras RandomFlip and RandomTranslation inside the model)"
    )
    recalibrate_batch_norm: bool = allows(
        "true or false (after training, set the batch-norm statistics to those of 8,192 training images "
        "in inference mode: widthdepth.training.batchnorm)"
    )
    fused_batch_norm: bool = allows(
        "true or false (train batch norm through TensorFlow's fused kernel: widthdepth.training.batchnorm)"
    )

    @model_validator(mode="after")
    def _warmup_within_epochs(self) -> Recipe:
        if self.warmup_epochs > self.epochs:
            raise ValueError(f"warmup_epochs must be at most its epochs ({self.epochs}), not {self.warmup_epochs}")
        return self

    def capped(self, max_epochs: int | None) -> Recipe:
        """This recipe with at most `max_epochs` epochs (`train.max_epochs`, for a quick tour)."""
        if max_epochs is None or max_epochs >= self.epochs:
            return self
        return self.model_copy(update={"epochs": max_epochs, "warmup_epochs": min(self.warmup_epochs, max_epochs)})


class Report(Record):
    equivalence_margin: float = allows("a difference in accuracy in (0, 1)", gt=0, lt=1)
    notebook: dict[str, float] = allows("an accuracy in [0, 1]", default_factory=dict)

    @model_validator(mode="after")
    def _accuracies(self) -> Report:
        for name, number in self.notebook.items():
            if not 0 <= number <= 1:
                raise ValueError(f"notebook.{name} must be an accuracy in [0, 1], not {number!r}")
        return self


class ModelKeys(Record):
    """The keys every model has, whatever its family; the family checks the rest
    (`widthdepth.architectures.parse_model`)."""

    model_config = ConfigDict(frozen=True, extra="allow", strict=True)
    family: str = allows("the name of a registered family")
    recipe: str = allows("the name of a recipe under recipes")
    seed: int = allows("a non-negative integer", default=0, ge=0)
    seeds: int = allows(f"a number of seeds from 1 to {MAX_SEEDS}", default=1, ge=1, le=MAX_SEEDS)


def _refusal(where: str, record: type[BaseModel], error: ValidationError) -> StageError:
    """The first of pydantic's errors, as a StageError naming the key and what it allows."""
    first = error.errors()[0]
    key = ".".join([where, *map(str, first["loc"])])
    if first["type"] == "value_error":  # a model validator's message, which starts with the key in the section
        return StageError(f"params.yaml: {where}.{first['ctx']['error']}")
    if first["type"] == "missing":
        return StageError(f"params.yaml: {key} is missing; keys: {', '.join(record.model_fields)}")
    if first["type"] == "extra_forbidden":
        return StageError(f"params.yaml: {key} is not a {where.split('.')[0].rstrip('s')} key; "
                          f"keys: {', '.join(record.model_fields)}")  # fmt: skip
    field = record.model_fields.get(str(first["loc"][0]))
    allowed = field.description if field is not None else first["msg"]
    return StageError(f"params.yaml: {key} must be {allowed}, not {first['input']!r}")


def parse(record: type[Record], raw: Any, where: str) -> Any:
    """`raw` (a params.yaml section) as `record`; a StageError names the key `where`.<key> at fault."""
    if not isinstance(raw, dict):
        raise StageError(f"params.yaml: {where} is missing or not a mapping")
    try:
        return record.model_validate(raw)
    except ValidationError as error:
        raise _refusal(where, record, error) from None


def parse_recipes(raw: Any) -> dict[str, Recipe]:
    if not isinstance(raw, dict) or not raw:
        raise StageError("params.yaml: recipes must map recipe names to training recipes")
    return {check_name("recipes", name): parse(Recipe, recipe, f"recipes.{name}") for name, recipe in raw.items()}


def load_section(section: str, path: Path = PARAMS_FILE) -> Any:
    """One top-level section of params.yaml, raw."""
    params = read_yaml(path)
    if not isinstance(params, dict) or section not in params:
        raise StageError(f"{path}: section '{section}' is missing")
    return params[section]


def load(record: type[Record], section: str, path: Path = PARAMS_FILE) -> Any:
    """One flat section of params.yaml (`data`, `prepare`, `train`, `report`) as its record."""
    return parse(record, load_section(section, path), section)
