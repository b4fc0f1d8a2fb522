"""What an importer hands the writer for one sample, and what the writer records of it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class SampleData:
    """One decoded sample. ``image`` axes are ``axes`` (a subset of 'tcyx'); labels drop 'c'."""

    id: str
    image: np.ndarray
    axes: str
    labels: dict[str, np.ndarray] = field(default_factory=dict)
    label_attrs: dict[str, dict] = field(default_factory=dict)
    label_properties: dict[str, list[dict]] = field(default_factory=dict)  # NGFF image-label properties per label
    targets: dict[str, Any] = field(default_factory=dict)  # e.g. {"class": 3}
    group: str | None = None  # unit that splits keep together (default: the sample id)
    source: str | None = None  # field or movie the sample was cut from (default: the sample id)
    region: list[int] | None = None  # [y0, x0, y1, x1] within the source field, or [t0, t1] within a movie
    split: str | None = None  # the source's own split of this sample (recipes with split method 'source')
    attrs: dict = field(default_factory=dict)  # extra per-sample metadata stored in the OME-Zarr group
    report: dict[str, int] = field(default_factory=dict)  # importer findings, e.g. overlapping pixels


@dataclass
class SampleRecord:
    """A written sample: one row of ``samples.csv`` plus what statistics and checks need."""

    id: str
    path: str
    group: str
    source: str
    shape: tuple[int, ...]
    dtype: str
    targets: dict[str, Any]
    region: list[int] | None
    sha256: str  # image + labels + targets, decoded
    image_sha256: str  # image pixels alone: identical images on two sides of a split are leakage
    phash: str  # 64-bit difference hash of the image, for near-duplicate reports
    objects: int = 0
    tracks: int = 0
    divisions: int = 0
    frames: int = 0
    channels: list[str] = field(default_factory=list)  # channel names, in the image's channel order
    report: dict[str, int] = field(default_factory=dict)
    source_split: str | None = None  # the source's own split (SampleData.split)
    split: str = ""


def dhash(image: np.ndarray, axes: str) -> str:
    """Difference hash (9x8 -> 64 bits) of the first channel / middle frame, as 16 hex digits."""
    from skimage.transform import resize

    plane = image
    for a in axes[:-2]:
        plane = plane[plane.shape[0] // 2] if a == "t" else plane[0]
    small = resize(plane.astype(np.float32), (8, 9), anti_aliasing=True, preserve_range=True)
    bits = (small[:, 1:] > small[:, :-1]).ravel()
    return f"{int(np.packbits(bits).view('>u8')[0]):016x}"
