"""Ground truth of a benchmark split, read from the curated dataset, one item per sample (sequence)."""

from __future__ import annotations

import numpy as np

from hub.cards import Benchmark
from hub.curate.dataset import Dataset
from hub.errors import InvalidInput
from hub.metrics import TrackingTruth
from hub.ome import lineage_from_attrs


def split_ids(bench: Benchmark, ds: Dataset) -> list[str]:
    ids = ds.ids(bench.split)
    if not ids:
        raise InvalidInput(f"no samples in split {bench.split!r}", ds.path / "samples.csv")
    return ids


def _label(ds: Dataset, sid: str, name: str) -> np.ndarray:
    img = ds.image(sid)
    if name not in img.label_names:
        raise InvalidInput(f"sample {sid!r} has no label image {name!r}", img.path)
    return np.asarray(img.label(name)[...])


def target_channels(bench: Benchmark, ds: Dataset) -> list[int]:
    names = ds.card.channel_names
    targets = bench.targets or ds.card.labels.targets or []
    missing = [t for t in targets if t not in names]
    if not targets or missing:
        raise InvalidInput(f"label-free targets {targets} are not channels of {ds.card.ref}", ds.path / "card.yaml")
    return [names.index(t) for t in targets]


def truth(bench: Benchmark, ds: Dataset, sid: str):
    """The truth of one sample: a label image, a class index, target channels or a :class:`TrackingTruth`."""
    if bench.task == "instance":
        return _label(ds, sid, bench.label or "instances")
    if bench.task == "semantic":
        return (_label(ds, sid, bench.label or "instances") > 0).astype(np.uint8)
    if bench.task == "classification":
        value = ds.sample(sid)["class"]
        if value == "":
            raise InvalidInput(f"sample {sid!r} has no class", ds.path / "samples.csv")
        return int(value)
    if bench.task == "label-free":
        img = ds.image(sid)
        arr = img.read()
        return (arr if "c" in img.axes else arr[None])[target_channels(bench, ds)].astype(np.float32)
    img = ds.image(sid)  # tracking
    name = bench.label or "tracks"
    masks = _label(ds, sid, name)
    attrs = img.label_attrs(name)
    if "lineage" not in attrs:
        raise InvalidInput(f"label image {name!r} of sample {sid!r} has no lineage table", img.path)
    seg, frames = None, None
    if bench.seg_label and bench.seg_label in img.label_names:
        seg = _label(ds, sid, bench.seg_label)
        frames = [int(t) for t in img.label_attrs(bench.seg_label).get("annotated_frames", range(len(seg)))]
    return TrackingTruth(masks, lineage_from_attrs(attrs["lineage"]), seg, frames)
