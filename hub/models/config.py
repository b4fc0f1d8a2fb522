"""What to train on what, and how: :class:`TrainConfig`, also the schema of a training recipe
(``model_cards/<name>/recipe.yaml``, ``cellhub schema model-recipe``).

The fields of a config are checked by pydantic (an unknown field is an error naming it); the family options of a
recipe by :func:`load_recipe`, against the family's ``Options`` model (``options.min_sise: ... unknown option``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from hub.cards import Task, format_validation_error
from hub.data import Intensity
from hub.errors import CardError, InvalidInput
from hub.safety import MAX_CARD_BYTES, load_yaml_file


class TrainConfig(BaseModel):
    """What to train on what, and how. Every field has a sensible default except name, task and dataset."""

    model_config = ConfigDict(extra="forbid")

    name: str
    version: str = "0.1.0"
    title: str | None = None
    description: str = ""
    task: Task
    family: str | None = Field(None, description="Model family (default: the task's default family)")
    dataset: str = Field(description="Curated dataset folder, or name@version pulled from the registry")
    registry: str | None = None
    backbone: str = "resnet18"
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="Family options (depth, thresholds...): the family's options model (extra options are errors)",
    )
    channels: list[str] | None = Field(None, description="Input channels (default: all, or the label-free inputs)")
    targets: list[str] | None = Field(None, description="Label-free target channels (default: the card's)")
    label: str | None = Field(None, description="Label image to train on (default: the family's)")
    frames: list[int] | None = Field(None, description="Train on these frames of each movie only (few-shot)")
    samples: list[str] | None = Field(None, description="Train on these samples of the train split only (few-shot)")
    normalize: Literal["image", "dataset"] | None = Field(
        None,
        description="image: per-image p1/p99.8; dataset: the train statistics (default: the family's: dataset "
        "for classification, image otherwise)",
    )
    epochs: int = Field(20, gt=0)
    steps_per_epoch: int | None = Field(None, gt=0, description="Batches per epoch (default: one pass)")
    batch_size: int = Field(8, gt=0)
    patch: int = Field(256, gt=0)
    foreground: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Fraction of training patches centred on a labelled "
        "pixel (dense tasks; the rest are drawn uniformly)",
    )
    optimizer: Literal["adamw", "sgd"] = "adamw"
    lr: float = Field(1e-3, gt=0)
    momentum: float = 0.9
    lr_schedule: Literal["constant", "one-cycle"] | None = Field(
        None,
        description="one-cycle: warm-up then cosine decay over all steps (default: one-cycle for sgd, "
        "constant for adamw)",
    )
    weight_decay: float = Field(1e-4, ge=0, description="L2 weight decay")
    regularization: Literal["batchnorm", "dropout", "batchnorm+dropout", "none"] = "batchnorm"
    dropout: float = Field(0.0, ge=0, lt=1)
    augment: bool = Field(True, description="Random flips and 90-degree rotations of the training windows")
    intensity: Intensity | None = Field(
        None,
        description="Random intensity change of the training inputs (not the targets), e.g. {scale: [0.6, 2], "
        "shift: [-0.2, 0.2], gamma: [0.7, 1.4]}",
    )
    class_weighting: Literal["none", "balanced", "resample"] = "none"
    patience: int = Field(5, ge=1, description="Epochs without validation improvement before stopping")
    val_batches: int | None = Field(
        None,
        gt=0,
        description="Validation batches (default: the whole split for "
        "classification, 8 random patch batches otherwise)",
    )
    seed: int = Field(0, ge=0, lt=2**32)
    workers: int = Field(0, ge=0)
    device: str = "auto"
    base_model: str | None = Field(None, description="name@version / model folder to fine-tune, or timm:<name>")
    freeze_encoder: bool = False
    weights_dtype: Literal["float32", "float16"] = "float32"
    grid: dict[str, list[Any]] = Field(default_factory=dict, description="Hyper-parameter grid: field -> values")
    members: int | None = Field(
        None,
        ge=2,
        le=16,
        description="Train a deep ensemble: this many networks, member i exactly as this recipe with seed + i; "
        "their outputs are averaged",
    )
    tune_postprocess: bool | dict[str, list[Any]] = Field(
        False,
        description="After training, tune the post-processing thresholds on the val split (else train), as "
        "`cellhub models tune` does: true for the family's grid, or a grid (option -> values)",
    )
    benchmarks: list[str] = Field(
        default_factory=list, description="Benchmarks the trained model is evaluated on (e.g. dsb2018-fluo/instance)"
    )
    license: str = "MIT"
    authors: list[str] = Field(default_factory=list)
    citation: list[str] = Field(default_factory=list)
    intended_use: str = ""
    limitations: str = ""

    @field_validator("grid")
    @classmethod
    def _grid_fields(cls, grid: dict[str, list[Any]]) -> dict[str, list[Any]]:
        """A grid varies settings of this config (not the grid itself, nor the model's name)."""
        fixed = {"grid", "name", "version", "members"}
        for key in grid:
            if key not in cls.model_fields or key in fixed:
                known = ", ".join(k for k in cls.model_fields if k not in fixed)
                raise ValueError(f"{key!r} is not a setting a grid can vary (known: {known})")
        return grid

    @model_validator(mode="after")
    def _one_model(self) -> Self:
        if self.members and self.grid:
            raise ValueError("members and grid: an ensemble trains one configuration, not a grid")
        if self.members and self.seed + self.members > 2**32:
            raise ValueError(f"seed: members' seeds go up to seed + {self.members - 1}, which must be below 2**32")
        return self

    @property
    def schedule(self) -> str:
        """The learning-rate schedule: ``lr_schedule``, or by default one-cycle for sgd and constant for adamw."""
        return self.lr_schedule or ("one-cycle" if self.optimizer == "sgd" else "constant")


def load_recipe(path: str | Path, **overrides: Any) -> TrainConfig:
    """A training recipe (YAML) with command-line ``overrides``; errors name the file and the field path (a
    family option that is not one of the family's: ``options.min_sise``)."""
    path = Path(path)
    try:
        data = load_yaml_file(path, MAX_CARD_BYTES, "recipe") or {}
    except FileNotFoundError:
        raise InvalidInput("recipe not found", path) from None
    except InvalidInput as err:
        raise CardError(err.problem, path) from None
    if not isinstance(data, dict):
        raise CardError(f"a recipe is a mapping of settings, not a {type(data).__name__}", path)
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        cfg = TrainConfig.model_validate(data)
    except ValidationError as err:
        raise CardError(format_validation_error(err), path) from None
    check_options(cfg, path)
    return cfg


def check_options(cfg: TrainConfig, source: str | Path | None = None) -> None:
    """Refuse unknown or out-of-bounds family options (``options``, and the option grid of
    ``tune_postprocess``) before anything is loaded; a fine-tuned model's are checked with its base model's
    options merged in, when the base is loaded."""
    if cfg.base_model is not None and not cfg.base_model.startswith("timm:"):
        return
    from hub.models._family import create_family, family_for_task  # the families import torch

    family = cfg.family or family_for_task(cfg.task)
    create_family(family, cfg.options, source, at="options")
    if isinstance(cfg.tune_postprocess, dict):
        for key, values in cfg.tune_postprocess.items():
            for value in values:
                create_family(family, {**cfg.options, key: value}, source, at="tune_postprocess")
