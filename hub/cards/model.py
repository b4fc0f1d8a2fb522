"""ModelCard: what a model expects, what it outputs, how it was made and how well it does."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self

from pydantic import Field, model_validator

from hub.cards.dataset import DatasetCard, Modality, Task, _Model, _Named
from hub.safety import relpath_validator


class Architecture(_Model):
    """The network: a registered family on a timm backbone (``timm.create_model`` name and options)."""

    family: str = Field(description="Registered model family (hub.models.families())")
    backbone: str = Field(description="timm model name of the encoder / classifier")
    options: dict[str, Any] = Field(default_factory=dict, description="Family options (decoder widths, ...)")
    regularization: Literal["batchnorm", "dropout", "batchnorm+dropout", "none"] = "batchnorm"
    dropout: float = Field(0.0, ge=0, lt=1)
    members: int | None = Field(
        None, ge=2, le=16, description="An ensemble: this many networks of the architecture, their outputs averaged"
    )

    @property
    def network(self) -> str:
        """``family on backbone``, and the ensemble's size if it is one."""
        return f"{self.family} on {self.backbone}" + (f", an ensemble of {self.members}" if self.members else "")


class InputChannel(_Model):
    name: str
    modality: Modality

    @classmethod
    def of(cls, data: DatasetCard, names: list[str]) -> list[InputChannel]:
        """The channels ``names`` of dataset ``data`` as a model's inputs (name and modality)."""
        by_name = {c.name: c for c in data.acquisition.channels}
        return [cls(name=c, modality=by_name[c].modality) for c in names]


class Normalization(_Model):
    """How raw intensities become network input, per channel.

    ``image-percentile``: each image's own ``low``/``high`` percentiles map to 0/1 (CSBDeep convention);
    ``dataset-percentile`` / ``dataset-meanstd``: fixed per-channel ``offset`` and ``scale`` taken from the
    training dataset's train statistics, ``(x - offset) * scale``.
    """

    mode: Literal["image-percentile", "dataset-percentile", "dataset-meanstd"]
    low: float | None = Field(None, ge=0, le=100)
    high: float | None = Field(None, ge=0, le=100)
    offset: list[float] | None = None
    scale: list[float] | None = None

    @model_validator(mode="after")
    def _complete(self) -> Self:
        if self.mode == "image-percentile" and (self.low is None or self.high is None):
            raise ValueError("image-percentile needs low and high")
        if self.mode != "image-percentile" and (self.offset is None or self.scale is None):
            raise ValueError(f"{self.mode} needs offset and scale per channel")
        return self


class PixelSize(_Model):
    value: float = Field(gt=0)
    unit: Literal["nanometer", "micrometer", "millimeter"]


class Inputs(_Model):
    axes: Literal["cyx"] = "cyx"
    channels: list[InputChannel] = Field(min_length=1)
    dtype: Literal["float32"] = "float32"
    normalization: Normalization
    pixel_size: PixelSize | None = Field(None, description="Physical pixel size the model was trained at")
    tile: int = Field(1024, gt=0, description="Tile edge of tiled inference (pixels); smaller images run whole")
    halo: int = Field(64, ge=0, description="Overlap cropped from each tile side")
    size_multiple: int = Field(32, gt=0, description="Network input edges must be multiples of this")


class Outputs(_Model):
    meaning: str
    axes: str
    classes: list[str] | None = None
    channels: list[str] | None = None


class Weights(_Model):
    file: Annotated[str, relpath_validator("weights file")] = Field(
        "weights.safetensors", description="Safetensors file, relative to the model folder"
    )
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(gt=0)
    parameters: int = Field(gt=0)
    dtype: Literal["float32", "float16"] = "float32"


class Trial(_Model):
    hyperparameters: dict[str, Any]
    best_epoch: int
    val_loss: float | None = None
    val_metric: dict[str, float] | None = None


class Training(_Model):
    """Everything needed to reproduce the weights."""

    dataset: str = Field(description="Training dataset name@version")
    dataset_manifest_sha256: str | None = Field(None, description="SHA-256 of the dataset's split manifest")
    split: str = "train"
    validation_split: str | None = "val"
    hyperparameters: dict[str, Any]
    seed: int
    epochs: int = Field(description="Epochs run (early stopping may end before the maximum)")
    best_epoch: int
    optimizer: str
    augmentation: str
    class_weighting: str = "none"
    base_model: str | None = Field(None, description="name@version or timm:<name> when fine-tuned")
    frozen_encoder: bool = False
    packages: dict[str, str]
    wall_time_s: float
    device: str
    trials: list[Trial] = Field(
        default_factory=list,
        description="Every trial of a hyper-parameter grid, or every member of an ensemble (its seed)",
    )
    per_class_recall: dict[str, float] | None = None
    postprocess_tuning: dict[str, Any] | None = Field(
        None,
        description="Post-processing options tuned after training: split, metric, grid, chosen options, "
        "score before and after (cellhub models tune)",
    )


class ResultSummary(_Model):
    """A result record mirrored into the card (the full record is a separate JSON file)."""

    benchmark: str
    split: str
    metrics: dict[str, float | None]
    primary_metric: str
    ci95: list[float] | None = None
    split_sha256: str | None = None
    record: str | None = Field(None, description="Result record file name or registry path")


class ModelCard(_Named):
    """The card of one model version (``card.yaml`` next to ``weights.safetensors``)."""

    schema_version: Literal[1] = 1
    name: str
    version: str
    title: str
    description: str = ""
    task: Task
    architecture: Architecture
    inputs: Inputs
    outputs: Outputs
    weights: Weights
    training: Training | None = None
    results: list[ResultSummary] = Field(default_factory=list)
    license: str = Field("MIT", description="SPDX licence of the weights")
    authors: list[str] = Field(default_factory=list, description="Who trained / maintains the model")
    citation: list[str] = Field(default_factory=list)
    intended_use: str = ""
    limitations: str = ""

    @property
    def channel_names(self) -> list[str]:
        return [c.name for c in self.inputs.channels]
