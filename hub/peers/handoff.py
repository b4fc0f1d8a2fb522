"""The hand-off of a benchmark to a peer tool: its splits as plain files that any tool's environment reads with
numpy and tifffile alone, and of the scored split nothing but the images.

Layout of the folder (``<split>`` is ``train``, ``val`` or the benchmark's split, usually ``test``)::

    benchmark.json             benchmark, task, dataset, split hash, axes, channels, classes, targets, the
                               ids of each split, and which split is scored ("scored")
    <split>/<id>.tif           the input channels: (C, Y, X), or (T, C, Y, X) for a movie; stored dtype
    <split>/<id>.labels.tif    instance (or track) labels, (Y, X) or (T, Y, X)      instance, semantic, tracking
    <split>/<id>.tracks.txt    the lineage, CTC ``L B E P`` rows                   tracking
    <split>/<id>.seg.tif       sparse segmentation truth of the annotated frames, (N, Y, X), with
    <split>/<id>.seg.json      their frame indices                                 tracking, where it exists
    <split>/<id>.target.tif    the target channels, float32 (C, Y, X)               label-free
    <split>/classes.csv        ``id,class`` (class names)                          classification
    <split>/boxes.csv          ``id,class,x0,y0,x1,y1,difficult``                   detection
    detections/<id>.tif        a hub model's instance masks of the scored split, (T, Y, X)   linker peers

Truth files are written for ``train`` and ``val`` only. The scored split's truth never leaves the hub.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import tifffile

from hub.bench.truth import target_channels, truth, truth_label
from hub.cards import Benchmark
from hub.dataset import SPLIT_NAMES, Dataset
from hub.ome import lineage_from_attrs, write_man_track
from hub.tasks import get_task

TRAINING_SPLITS = ("train", "val")  # the splits whose truth a peer learns or tunes on


def input_channels(bench: Benchmark, ds: Dataset) -> list[str]:
    """The channels a peer may see: the benchmark's inputs, else every channel that is not a target."""
    names = ds.card.channel_names
    if bench.inputs:
        return list(bench.inputs)
    targets = set(bench.targets or ds.card.labels.targets or []) if get_task(bench.task).channel_targets else set()
    return [n for n in names if n not in targets]


def _inputs(ds: Dataset, sid: str, channels: list[str]) -> np.ndarray:
    """The sample's ``channels``, (C, Y, X) or (T, C, Y, X): stored images keep their channels before Y and X
    (as :func:`hub.models.predict.samples` reads them)."""
    img = ds.image(sid)
    arr = img.read()
    if "c" not in img.axes:
        arr = arr[..., None, :, :]
    names = ds.card.channel_names
    return arr[..., [names.index(c) for c in channels], :, :]


def _table(tables: dict[str, list[list]], name: str, header: list[str], row: list) -> None:
    tables.setdefault(name, [header]).append(row)


def handoff_instance(bench: Benchmark, ds: Dataset, sid: str, folder: Path, tables: dict) -> None:
    """``<id>.labels.tif``: the instance label image."""
    labels = np.asarray(ds.image(sid).label(truth_label(bench))[...])
    tifffile.imwrite(folder / f"{sid}.labels.tif", labels, compression="zlib")


handoff_semantic = handoff_instance  # a semantic peer learns from the instances, as the hub's models do


def handoff_tracking(bench: Benchmark, ds: Dataset, sid: str, folder: Path, tables: dict) -> None:
    """``<id>.labels.tif`` (T, Y, X) track masks, ``<id>.tracks.txt`` their lineage; ``<id>.seg.tif`` and
    ``<id>.seg.json`` the sparse segmentation truth and its frames, where the benchmark has one."""
    img = ds.image(sid)
    name = truth_label(bench)
    tifffile.imwrite(folder / f"{sid}.labels.tif", np.asarray(img.label(name)[...]), compression="zlib")
    write_man_track(lineage_from_attrs(img.label_attrs(name)["lineage"]), folder / f"{sid}.tracks.txt")
    if bench.seg_label and bench.seg_label in img.label_names:
        seg = np.asarray(img.label(bench.seg_label)[...])
        frames = [int(t) for t in img.label_attrs(bench.seg_label).get("annotated_frames", range(len(seg)))]
        tifffile.imwrite(folder / f"{sid}.seg.tif", seg[frames], compression="zlib")
        (folder / f"{sid}.seg.json").write_text(json.dumps({"frames": frames}))


def handoff_labelfree(bench: Benchmark, ds: Dataset, sid: str, folder: Path, tables: dict) -> None:
    """``<id>.target.tif``: the target channels, float32 (C, Y, X)."""
    tifffile.imwrite(folder / f"{sid}.target.tif", truth(bench, ds, sid), compression="zlib")


def handoff_classification(bench: Benchmark, ds: Dataset, sid: str, folder: Path, tables: dict) -> None:
    """A row ``id,class`` of ``classes.csv``."""
    classes = ds.card.labels.classes or []
    _table(tables, "classes.csv", ["id", "class"], [sid, classes[truth(bench, ds, sid)]])


def handoff_detection(bench: Benchmark, ds: Dataset, sid: str, folder: Path, tables: dict) -> None:
    """Rows ``id,class,x0,y0,x1,y1,difficult`` of ``boxes.csv`` (pixel corners, as the hub stores them)."""
    found = truth(bench, ds, sid)
    names = ds.card.labels.classes or []
    ignore = found.ignore if found.ignore is not None else np.zeros(len(found.classes), bool)
    for box, c, d in zip(np.asarray(found.xyxy).tolist(), np.asarray(found.classes).tolist(), ignore.tolist()):
        _table(tables, "boxes.csv", ["id", "class", "x0", "y0", "x1", "y1", "difficult"], [sid, names[c], *box, int(d)])


def write_handoff(bench: Benchmark, ds: Dataset, out: Path, *, limit: int | None = None) -> dict:
    """Write ``bench``'s splits of ``ds`` into the new folder ``out`` (layout: module docstring); ``limit``
    keeps the first samples of each training split only (quick runs). Returns the ``benchmark.json`` content."""
    spec = get_task(bench.task)
    channels = input_channels(bench, ds)
    splits = {s: ds.ids(s) for s in SPLIT_NAMES}
    if limit:
        splits = {s: ids if s == bench.split else ids[:limit] for s, ids in splits.items()}
    out.mkdir(parents=True)
    for split, ids in splits.items():
        folder = out / split
        folder.mkdir()
        tables: dict[str, list[list]] = {}
        for sid in ids:
            tifffile.imwrite(folder / f"{sid}.tif", _inputs(ds, sid, channels), compression="zlib")
            if split in TRAINING_SPLITS and split != bench.split:  # never the truth of the scored split
                spec.handoff(bench, ds, sid, folder, tables)
        for name, rows in tables.items():
            with open(folder / name, "w", newline="") as f:
                csv.writer(f).writerows(rows)
    meta = {
        "benchmark": bench.name,
        "task": spec.key,
        "dataset": bench.dataset,
        "split_sha256": bench.split_sha256,
        "scored": bench.split,
        "axes": "tcyx" if spec.sequences else "cyx",
        "channels": channels,
        "targets": [ds.card.channel_names[i] for i in target_channels(bench, ds)] if spec.channel_targets else None,
        "classes": ds.card.labels.classes,
        "splits": splits,
    }
    (out / "benchmark.json").write_text(json.dumps(meta, indent=1))
    return meta
