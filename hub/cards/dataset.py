"""DatasetCard: what a curated dataset is, where it comes from, under which terms, how it is split."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
    model_serializer,
    model_validator,
)

from hub.tasks import task_keys, task_names

SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?$")
NAME = re.compile(r"^[a-z0-9][a-z0-9-]*[a-z0-9]$")
GUARD = re.compile(r"^(0|[1-9][0-9]*) (px|frames)$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", use_enum_values=True)


def _card_task(value: str) -> str:
    if value not in task_names():
        raise ValueError(f"unknown task {value!r} (known: {', '.join(task_names())})")
    return value


def _bench_task(value: str) -> str:
    if value not in task_keys():
        raise ValueError(f"unknown benchmark task {value!r} (known: {', '.join(task_keys())})")
    return value


#: A task as cards name it (``instance-segmentation``), one of :func:`hub.tasks.task_names`.
Task = Annotated[str, AfterValidator(_card_task), WithJsonSchema({"type": "string", "enum": task_names()})]
#: A task as benchmark names and result records name it (``instance``), one of :func:`hub.tasks.task_keys`.
TaskKey = Annotated[str, AfterValidator(_bench_task), WithJsonSchema({"type": "string", "enum": task_keys()})]


class Modality(StrEnum):
    fluorescence = "fluorescence"
    confocal_fluorescence = "confocal-fluorescence"
    phase_contrast = "phase-contrast"
    bright_field = "bright-field"
    dark_field = "dark-field"
    dic = "DIC"
    histology = "histology"
    other = "other"


class Terms(_Model):
    """Licence and conditions of use. ``license`` is an SPDX id, or ``unknown`` with the terms spelled out."""

    license: str = Field(description="SPDX licence identifier (e.g. CC0-1.0, CC-BY-4.0) or 'unknown'")
    terms: str | None = Field(None, description="Conditions of use in words; required when the licence is unknown")
    redistribution: bool = Field(description="Whether the data may be republished on a public registry")
    citations: list[str] = Field(min_length=1, description="References to cite when using the data")
    sources: list[str] = Field(min_length=1, description="Source URLs, repositories with commits, or accessions")

    @model_validator(mode="after")
    def _unknown_needs_terms(self) -> Self:
        if self.license.lower() == "unknown" and not self.terms:
            raise ValueError("licence 'unknown' needs a 'terms' text saying how the data may be used")
        return self


class Channel(_Model):
    name: str
    modality: Modality
    stain: str | None = Field(None, description="Stain, dye or fluorescent protein (e.g. Hoechst, GFP)")
    marker: str | None = Field(None, description="What the stain marks (e.g. DNA, nuclei, MAP2)")


class PhysicalSize(_Model):
    """Physical size of one pixel. ``unknown: true`` records honestly that the source does not say."""

    y: float | None = Field(None, gt=0)
    x: float | None = Field(None, gt=0)
    unit: Literal["nanometer", "micrometer", "millimeter"] | None = None
    unknown: bool = False
    note: str | None = None

    @model_validator(mode="after")
    def _complete(self) -> Self:
        if not self.unknown and (self.y is None or self.x is None or self.unit is None):
            raise ValueError("give y, x and unit, or set unknown: true with a note")
        return self


class FrameInterval(_Model):
    value: float = Field(gt=0)
    unit: Literal["millisecond", "second", "minute", "hour"]


class Acquisition(_Model):
    organism: str
    cell_type: str = Field(description="Cell type or line")
    channels: list[Channel] = Field(min_length=1)
    pixel_size: PhysicalSize
    frame_interval: FrameInterval | None = None
    instrument: str | None = None


class LabelSchema(_Model):
    """What the targets mean."""

    classes: list[str] | None = Field(
        None, description="Class names, index = label value (classification) or box class (detection)"
    )
    instance: str | None = Field(None, description="Meaning of instance labels: 0 background, 1..N one object each")
    semantic: dict[int, str] | None = Field(None, description="Semantic label value -> class name (0 = background)")
    lineage: str | None = Field(None, description="Meaning of the lineage table (tracking)")
    boxes: str | None = Field(None, description="Meaning of the bounding boxes (detection), one table per image")
    targets: list[str] | None = Field(None, description="Target channels (label-free): names of channels predicted")
    inputs: list[str] | None = Field(None, description="Input channels (label-free)")


class Guard(_Model):
    """The guard band kept between splits cut from one source: ``size`` pixels between tiles of one field
    (``unit: px``) or ``size`` frames between windows of one movie (``unit: frames``).

    Cards and recipes write it as text, ``32 px`` or ``2 frames``, and it is written back the same way (the
    text is part of the frozen split manifest, so the round trip is exact)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    size: int = Field(ge=0)
    unit: Literal["px", "frames"]

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, value: Any) -> Any:
        if isinstance(value, str):
            m = GUARD.fullmatch(value)
            if m is None:
                raise ValueError(f"write the guard band as '<n> px' or '<n> frames', not {value[:40]!r}")
            return {"size": int(m[1]), "unit": m[2]}
        return value

    @model_serializer(mode="plain")
    def _to_text(self) -> str:
        return str(self)

    def __str__(self) -> str:
        return f"{self.size} {self.unit}"


#: A :class:`Guard` in a card or recipe field: text in the file and in its JSON Schema.
GuardText = Annotated[
    Guard,
    WithJsonSchema({"type": "string", "pattern": GUARD.pattern, "examples": ["32 px", "2 frames"]}),
]


class SplitInfo(_Model):
    """How the frozen split was made; the manifest itself is ``splits.json``."""

    method: str
    seed: int
    group_key: str = "group"
    stratify: str | None = None
    fractions: dict[str, float] | None = None
    guard: GuardText | None = Field(None, description="Guard band between splits cut from one field or movie")
    counts: dict[str, int] = Field(default_factory=dict)
    manifest_sha256: str | None = None


class ChannelStats(_Model):
    """Normalisation statistics of one channel, computed on the train split only."""

    channel: str
    mean: float
    std: float
    min: float
    max: float
    p1: float
    p99_8: float = Field(alias="p99.8")

    model_config = ConfigDict(extra="forbid", populate_by_name=True, serialize_by_alias=True)


class Statistics(_Model):
    split: Literal["train"] = "train"
    channels: list[ChannelStats]


class Counts(_Model):
    samples: int
    objects: int | None = None
    tracks: int | None = None
    divisions: int | None = None
    per_class: dict[str, int] | None = None
    frames: int | None = None


class _Named(_Model):
    """A card with a ``name`` (lower case, dashes) and a semantic ``version``: ``ref`` is ``name@version``."""

    if TYPE_CHECKING:  # declared by each card, where they take their place in its field order
        name: str
        version: str

    @field_validator("name", check_fields=False)
    @classmethod
    def _name(cls, v: str) -> str:
        if not NAME.fullmatch(v):
            raise ValueError("use lower-case letters, digits and dashes (e.g. dsb2018-fluo)")
        return v

    @field_validator("version", check_fields=False)
    @classmethod
    def _version(cls, v: str) -> str:
        if not SEMVER.fullmatch(v):
            raise ValueError("must be a semantic version X.Y.Z")
        return v

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"


class DatasetCard(_Named):
    """The card of one dataset version (``card.yaml`` at the top of a dataset folder)."""

    schema_version: Literal[1] = 1
    name: str = Field(description="Lower-case name with dashes, e.g. dsb2018-fluo")
    version: str = Field(description="Semantic version X.Y.Z")
    title: str
    description: str
    tasks: list[Task] = Field(min_length=1)
    terms: Terms
    acquisition: Acquisition
    labels: LabelSchema
    splits: SplitInfo | None = None
    statistics: Statistics | None = None
    counts: Counts | None = None
    importer: str | None = None

    @property
    def channel_names(self) -> list[str]:
        return [c.name for c in self.acquisition.channels]
