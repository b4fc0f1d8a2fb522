"""Pictures of a curated dataset, for people who would rather look than read.

Segmentation: images with instance outlines; detection: images with their boxes, one colour per class; tracking:
first, middle and last frame, each track tinted in its own colour; classification: examples per class; label-free:
input next to target. Rendered with Pillow, offline. :func:`sample_views` gives the single pictures (the static
site lays them out itself); :func:`preview_dataset` puts them on one captioned contact sheet.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from skimage.segmentation import find_boundaries
from skimage.transform import resize

from hub.dataset import Boxes, detects, open_dataset
from hub.errors import InvalidInput

TILE = 192
OUTLINE = (255, 200, 0)
BOX_COLOURS = ((255, 80, 80), (80, 160, 255), (255, 220, 0), (80, 220, 120), (220, 120, 255), (255, 150, 50))
RGB = ["red", "green", "blue"]


@dataclass
class View:
    """One picture of a dataset: ``group`` is what it belongs to (a sample, a movie, a class), ``caption``
    what this picture shows of it."""

    image: Image.Image
    caption: str
    group: str


def to_rgb(plane: np.ndarray) -> np.ndarray:
    """Percentile-stretched uint8 RGB from a grey plane (Y, X) or channels-first colour (3, Y, X)."""
    a = plane.astype(np.float32)
    lo, hi = np.percentile(a, [1, 99.8])
    a = np.clip((a - lo) / max(hi - lo, 1e-6), 0, 1)
    a = (a * 255).astype(np.uint8)
    return np.moveaxis(a, 0, -1) if a.ndim == 3 else np.repeat(a[..., None], 3, -1)


def track_colours(lab: np.ndarray) -> np.ndarray:
    """One fixed colour per label value (so a track keeps its colour across frames); 0 stays black."""
    rng = np.random.default_rng(7)
    palette = rng.integers(60, 256, size=(int(lab.max()) + 1, 3), dtype=np.uint8)
    palette[0] = 0
    return palette[lab]


def shown(image: np.ndarray, channels: list[str]) -> np.ndarray:
    """What to show of a channels-first image (C, Y, X): a colour image as colour, else its first channel in grey
    (fluorescence channels are not colours)."""
    return to_rgb(image[:3] if channels[:3] == RGB else image[0])


def fit(
    rgb: np.ndarray,
    outline: np.ndarray | None = None,
    fill: np.ndarray | None = None,
    size: int = TILE,
    boxes: tuple[np.ndarray, np.ndarray] | None = None,
) -> Image.Image:
    """Scale to ``size`` x ``size`` (keeping aspect, padded black); draw label outlines, or tint each labelled
    object with its label's colour (``fill``: tracks keep one colour across frames); draw ``boxes`` (xyxy in the
    image's pixels, class indices), one colour per class."""
    h, w = rgb.shape[:2]
    s = size / max(h, w)
    nh, nw = max(1, round(h * s)), max(1, round(w * s))
    small = resize(rgb, (nh, nw), order=1, preserve_range=True, anti_aliasing=s < 1).astype(np.uint8)
    if outline is not None:
        lab = resize(outline, (nh, nw), order=0, preserve_range=True, anti_aliasing=False).astype(outline.dtype)
        small[find_boundaries(lab, mode="inner")] = OUTLINE
    if fill is not None:
        lab = resize(fill, (nh, nw), order=0, preserve_range=True, anti_aliasing=False).astype(fill.dtype)
        tint, on = track_colours(lab), lab > 0
        small[on] = (0.45 * tint[on] + 0.55 * small[on]).astype(np.uint8)
    canvas = Image.new("RGB", (size, size))
    ox, oy = (size - nw) // 2, (size - nh) // 2
    canvas.paste(Image.fromarray(small), (ox, oy))
    if boxes is not None:
        draw = ImageDraw.Draw(canvas)
        for (x0, y0, x1, y1), k in zip(np.asarray(boxes[0]).tolist(), np.asarray(boxes[1]).tolist()):
            xy = (ox + x0 * s, oy + y0 * s, ox + max(x1 * s - 1, x0 * s), oy + max(y1 * s - 1, y0 * s))
            draw.rectangle(xy, outline=BOX_COLOURS[int(k) % len(BOX_COLOURS)])
    return canvas


def _caption(tile: Image.Image, text: str) -> Image.Image:
    out = Image.new("RGB", (tile.width, tile.height + 16), (24, 24, 24))
    out.paste(tile, (0, 0))
    ImageDraw.Draw(out).text((4, tile.height + 2), text[:30], fill=(230, 230, 230))
    return out


def _grid(tiles: list[Image.Image], columns: int) -> Image.Image:
    rows = (len(tiles) + columns - 1) // columns
    w, h = tiles[0].size
    sheet = Image.new("RGB", (columns * w + (columns - 1) * 4, rows * h + (rows - 1) * 4), (255, 255, 255))
    for i, t in enumerate(tiles):
        sheet.paste(t, ((i % columns) * (w + 4), (i // columns) * (h + 4)))
    return sheet


def labelled_box(lab: np.ndarray, margin: float = 0.08) -> tuple[slice, slice]:
    """The (y, x) box holding every labelled pixel of a (T, Y, X) stack, with a margin: small colonies fill
    the picture instead of a few pixels of it."""
    ys, xs = np.nonzero(lab.any(0))
    if not len(ys):
        return np.s_[:, :]
    h, w = lab.shape[-2:]
    my, mx = int((ys.max() - ys.min()) * margin) + 8, int((xs.max() - xs.min()) * margin) + 8
    return np.s_[max(0, ys.min() - my) : min(h, ys.max() + my + 1), max(0, xs.min() - mx) : min(w, xs.max() + mx + 1)]


def instance_label(img) -> str | None:
    """The name of an image's instance-like label (instances, masks, tracks, segmentation), if it has one."""
    return next((n for n in ("instances", "masks", "tracks", "segmentation") if n in img.label_names), None)


def sample_views(ds, n: int = 12, split: str | None = None, size: int = TILE) -> list[View]:
    """About ``n`` pictures of the opened dataset ``ds`` (of one split, or all), each ``size`` px square."""
    card = ds.card
    rows = [r for r in ds.samples if split is None or r.split == split]
    if not rows:
        raise InvalidInput(f"no samples in split {split!r}", ds.path / "samples.csv")
    views = []
    if detects(card):  # detection: every image with its boxes, one colour per class
        for r in rows[:: max(1, len(rows) // n)][:n]:
            img = ds.image(r.id)
            b = Boxes.of_image(img, len(card.labels.classes or []))
            image = img.read()
            rgb = shown(image if "c" in img.axes else image[None], img.channel_names)
            views.append(View(fit(rgb, size=size, boxes=(b.xyxy, b.classes)), f"{r.id[:18]} ({len(b)})", r.id))
        return views
    if card.labels.classes:  # examples per class
        per = max(1, n // len(card.labels.classes))
        names = card.channel_names
        keep = [names.index(c) for c in (card.labels.inputs or names[:1]) if c in names][:1] or [0]
        for k, name in enumerate(card.labels.classes):
            for r in [r for r in rows if r.class_index == k][:per]:
                image = ds.image(r.id).read()
                views.append(View(fit(to_rgb(image[keep[0]]), size=size), f"{name} #{r.id}", name))
        return views
    step = max(1, len(rows) // n)
    for r in rows[::step][:n]:
        img = ds.image(r.id)
        label = instance_label(img)
        if img.axes.startswith("t"):  # first, middle and last frame of a movie, with track outlines
            n_frames = img.array().shape[0]
            frames = (0, n_frames // 2, n_frames - 1)
            image = img.array()[list(frames)]
            lab = img.label(label)[list(frames)] if label else None
            box = labelled_box(lab) if lab is not None else np.s_[:, :]
            for i, t in enumerate(frames):
                views.append(
                    View(
                        fit(to_rgb(image[i][box]), fill=lab[i][box] if lab is not None else None, size=size),
                        f"{r.id} t={t}",
                        r.id,
                    )
                )
        elif card.labels.targets:  # label-free: first input next to first target
            image, names = img.read(), img.channel_names
            i, t = names.index(card.labels.inputs[0]), names.index(card.labels.targets[0])
            views.append(View(fit(to_rgb(image[i]), size=size), f"{r.id[:18]} {names[i]}", r.id))
            views.append(View(fit(to_rgb(image[t]), size=size), f"{names[t]} (target)", r.id))
        else:
            lab = img.label(label)[...] if label else None
            views.append(View(fit(to_rgb(img.read()), lab, size=size), r.id[:12], r.id))
    return views


def preview_dataset(path: str | Path, out: str | Path, n: int = 12, split: str | None = None, columns: int = 6) -> Path:
    """Write a PNG contact sheet of about ``n`` samples of the dataset at ``path`` to ``out``."""
    ds = open_dataset(path)
    out = Path(out)
    sheet = _grid([_caption(v.image, v.caption) for v in sample_views(ds, n, split)], columns)
    tmp = out.with_name(f".{out.name}.partial")
    sheet.save(tmp, format="PNG")
    tmp.replace(out)
    return out
