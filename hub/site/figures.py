"""A dataset's pictures and numbers for its page: sample thumbnails with label overlays (drawn by
:mod:`hub.viz.preview`), per-split counts, class counts and object sizes, read from the verified dataset."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from hub.dataset import Dataset
from hub.viz.preview import sample_views

THUMB = 240  # px; pages show them at about this size (2x on dense screens looks fine too)
SIZE_LABELS = ("instances", "masks", "segmentation", "tracks")  # full object masks first; tracks may be markers
FRAMES_PER_MOVIE = 8
UM_PER = {"nanometer": 1e-3, "micrometer": 1.0, "millimeter": 1e3}


@dataclass
class Picture:
    """A PNG of the site: ``src`` relative to the site root."""

    src: str
    width: int
    height: int
    alt: str
    caption: str = ""


@dataclass
class Group:
    """Pictures shown together (frames of one movie, input and target of one tile, crops of one class)."""

    title: str
    pictures: list[Picture] = field(default_factory=list)


def save_png(image: Image.Image, site: Path, rel: str, alt: str, caption: str = "") -> Picture:
    """Write ``image`` at ``site/rel`` and describe it for a page."""
    path = site / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format="PNG")
    return Picture(rel, image.width, image.height, alt, caption)


def _views_per_sample(ds: Dataset) -> int:
    card = ds.card
    if card.labels.classes:
        return 0
    if card.counts and card.counts.frames:
        return 3  # first, middle and last frame of each movie
    return 2 if card.labels.targets else 1


def dataset_pictures(ds: Dataset, site: Path, folder: str, pictures: int = 12) -> list[Group]:
    """About ``pictures`` thumbnails of the dataset, written under ``site/folder``, grouped for the page."""
    card = ds.card
    per = _views_per_sample(ds)
    n = 2 * len(card.labels.classes or ()) if per == 0 else max(1, pictures // per)
    groups: dict[str, Group] = {}
    for i, view in enumerate(sample_views(ds, n=n, size=THUMB)):
        group = groups.setdefault(view.group, Group(view.group))
        caption = view.caption.removeprefix(view.group).strip() or view.caption  # the group title says it
        alt = f"{card.name}, {view.group}: {caption}"
        group.pictures.append(save_png(view.image, site, f"{folder}/sample-{i:02d}.png", alt, caption))
    return list(groups.values())


def cover(
    site: Path, groups: list[Group], rel: str, spread: bool = False, n: int = 3, tile: int = 160
) -> Picture | None:
    """A strip of the dataset's first ``n`` pictures (``spread``: one per group first, e.g. one per class), for
    its card in lists."""
    pictures = [p for g in groups for p in g.pictures]
    if spread:
        pictures = [g.pictures[0] for g in groups] + [p for g in groups for p in g.pictures[1:]]
    if not pictures:
        return None
    chosen = pictures[:n]
    strip = Image.new("RGB", (tile * len(chosen) + 2 * (len(chosen) - 1), tile), (255, 255, 255))
    for i, p in enumerate(chosen):
        with Image.open(site / p.src) as im:
            strip.paste(im.convert("RGB").resize((tile, tile), Image.Resampling.LANCZOS), (i * (tile + 2), 0))
    return save_png(strip, site, rel, f"samples of {Path(rel).parent.name}")


def split_counts(ds: Dataset) -> list[dict]:
    """Per split (train, val, test, then any other): samples and the summed object, track, division and
    frame counts of ``samples.csv``."""
    order = {"train": 0, "val": 1, "test": 2}
    out: dict[str, dict] = {}
    for row in ds.samples:
        s = out.setdefault(
            row.split, {"split": row.split, "samples": 0, "objects": 0, "tracks": 0, "divisions": 0, "frames": 0}
        )
        s["samples"] += 1
        s["objects"] += row.objects
        s["tracks"] += row.tracks
        s["divisions"] += row.divisions
        s["frames"] += row.frames
    return sorted(out.values(), key=lambda s: (order.get(s["split"], 3), s["split"]))


def class_counts(ds: Dataset) -> list[dict]:
    """Per class of a classification dataset: its name and sample count per split and in total."""
    classes = ds.card.labels.classes or []
    if not classes:
        return []
    counts = Counter((row.split, row.class_index) for row in ds.samples)
    splits = [s["split"] for s in split_counts(ds)]
    return [
        {
            "class": name,
            "splits": {s: counts[(s, k)] for s in splits},
            "total": sum(counts[(s, k)] for s in splits),
        }
        for k, name in enumerate(classes)
    ]


def _size_label(img) -> str | None:
    return next((n for n in SIZE_LABELS if n in img.label_names), None)


def object_areas(ds: Dataset) -> tuple[np.ndarray, int]:
    """Areas in pixels of every labelled object (one per label value per plane) and the number of planes read:
    every image, and up to ``FRAMES_PER_MOVIE`` evenly spaced (annotated) frames of each movie."""
    areas, planes = [], 0
    if not ds.card.labels.instance:  # no object labels (classification crops, label-free images)
        return np.zeros(0, np.int64), 0
    for row in ds.samples:
        img = ds.image(row.id)
        name = _size_label(img)
        if name is None:
            continue
        lab = img.label(name)
        if img.axes.startswith("t"):
            frames = img.label_attrs(name).get("annotated_frames") or range(lab.shape[0])
            frames = sorted(
                set(np.asarray(frames)[np.linspace(0, len(frames) - 1, min(FRAMES_PER_MOVIE, len(frames))).astype(int)])
            )
            stack = np.asarray(lab.oindex[frames])
        else:
            stack = np.asarray(lab[...])[None]
        for plane in stack:
            counts = np.bincount(plane.ravel())[1:]
            areas.append(counts[counts > 0])
            planes += 1
    return (np.concatenate(areas) if areas else np.zeros(0, np.int64)), planes


def area_unit(ds: Dataset) -> tuple[float, str]:
    """Square micrometres per pixel and the unit name, or (1, "pixels") when the card gives no pixel size."""
    px = ds.card.acquisition.pixel_size
    if px.unknown or px.unit not in UM_PER:
        return 1.0, "pixels"
    return px.y * px.x * UM_PER[px.unit] ** 2, "µm²"  # type: ignore[operator]  # known: the card gives y and x


def log_bins(values: np.ndarray, n: int = 24) -> tuple[list[int], list[float]]:
    """Histogram of positive ``values`` in ``n`` log-spaced bins: (counts, edges)."""
    lo, hi = float(values.min()), float(values.max())
    if hi <= lo:
        hi = lo * 1.5 + 1
    edges = np.geomspace(lo, hi, n + 1)
    counts, _ = np.histogram(values, edges)
    return counts.tolist(), edges.tolist()
