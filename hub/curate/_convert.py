"""Per-sample conversion: load through an importer, check, write OME-Zarr, summarise. Runs in workers."""

from __future__ import annotations

import shutil
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hub.curate._sample import SampleData, SampleRecord, dhash
from hub.dataset import SAFE_ID, array_sha256, sample_sha256
from hub.errors import InvalidInput
from hub.ome import write_image

PARTIAL = ".partial-"  # prefix of the folder a sample is written into before it is renamed into place


@dataclass
class Geometry:
    """Physical metadata that every sample of a dataset shares (from the card)."""

    channel_names: list[str]
    pixel_size: tuple[float, float] | None = None
    pixel_unit: str | None = None
    frame_interval: float | None = None
    time_unit: str | None = None


def check_sample(s: SampleData, where: str) -> None:
    if not SAFE_ID.match(s.id):
        raise InvalidInput(f"sample id {s.id!r} is not a safe name (letters, digits, . _ -)", where)
    geometry = tuple(n for a, n in zip(s.axes, s.image.shape) if a != "c")
    for name, lab in s.labels.items():
        if not np.issubdtype(lab.dtype, np.integer):
            raise InvalidInput(f"label image {name!r} has {lab.dtype} values; labels must be integers", where)
        if lab.shape != geometry:
            raise InvalidInput(f"label image {name!r} has shape {lab.shape}, its image has {geometry}", where)
        if lab.size and lab.min() < 0:
            raise InvalidInput(f"label image {name!r} has negative values", where)


def convert_sample(job: tuple) -> SampleRecord:
    """Load one sample via its importer, write ``images/<id>.ome.zarr`` under ``root``, return its record."""
    importer, item, root, geometry = job
    s: SampleData = importer.load(item)
    where = importer.describe(item)
    check_sample(s, where)
    rel = f"images/{s.id}.ome.zarr"
    attrs = {"id": s.id, **s.attrs}
    if s.targets:
        attrs["targets"] = s.targets
    n_channels = s.image.shape[s.axes.index("c")] if "c" in s.axes else 1
    channels = s.attrs.get("channel_names") or geometry.channel_names
    if len(channels) != n_channels:
        raise InvalidInput(f"image has {n_channels} channel(s), the card names {len(channels)}", where)
    # written beside its place and renamed in: a task run again after its worker died (Dask retries it on another)
    # finds no half-written sample in its way
    final = Path(root) / rel
    part = final.parent / f"{PARTIAL}{uuid.uuid4().hex[:8]}" / final.name
    write_image(
        part,
        s.image,
        s.axes,
        channel_names=channels,
        pixel_size=geometry.pixel_size,
        pixel_unit=geometry.pixel_unit,
        frame_interval=geometry.frame_interval,
        time_unit=geometry.time_unit,
        labels=s.labels,
        label_attrs=s.label_attrs,
        label_properties=s.label_properties,
        attrs=attrs,
    )
    if final.exists():  # an earlier run of this task whose worker died after writing it
        shutil.rmtree(final)
    part.rename(final)
    part.parent.rmdir()
    instance = next((s.labels[n] for n in ("instances", "masks", "tracks") if n in s.labels), None)
    lineage = s.label_attrs.get("tracks", {}).get("lineage", [])
    return SampleRecord(
        id=s.id,
        path=rel,
        group=s.group or s.id,
        source=s.source or s.id,
        shape=tuple(s.image.shape),
        dtype=str(s.image.dtype),
        targets=dict(s.targets),
        region=s.region,
        sha256=sample_sha256(s.image, s.labels, s.label_attrs, s.targets),
        image_sha256=array_sha256(s.image),
        phash=dhash(s.image, s.axes),
        objects=_objects(s, instance),
        tracks=len(lineage),
        divisions=sum(n >= 2 for n in Counter(r[3] for r in lineage if r[3] > 0).values()),
        frames=s.image.shape[0] if s.axes.startswith("t") else 0,
        channels=list(channels),
        report=dict(s.report),
        source_split=s.split,
    )


def _objects(s: SampleData, instance: np.ndarray | None) -> int:
    """Objects of a still image: its instances, else its boxes (movies count tracks instead)."""
    if "t" in s.axes:
        return 0
    if instance is not None:
        return int(np.count_nonzero(np.unique(instance)))
    return len(s.targets.get("boxes", ()))
