"""Write NGFF 0.5 (Zarr v3) images with their label images.

Arrays are written with zarr-python directly (256x256 chunks inside one shard per array)
and the metadata with ome-zarr-py's writers, so any OME-Zarr tool opens the result.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import zarr
from ome_zarr.format import FormatV05
from ome_zarr.writer import add_metadata, write_label_metadata, write_multiscales_metadata

FMT = FormatV05()
CHUNK = 256
MIN_LEVEL_SIZE = 256  # add pyramid levels while the smaller side stays at least this large
MAX_COLOURED = 8  # a class map with at most this many classes gets NGFF colours
PALETTE = (
    (230, 25, 75, 255),
    (60, 180, 75, 255),
    (0, 130, 200, 255),
    (255, 225, 25, 255),
    (145, 30, 180, 255),
    (70, 240, 240, 255),
    (240, 50, 230, 255),
    (245, 130, 48, 255),
)


def pyramid_levels(shape_yx: tuple[int, int]) -> int:
    """Number of 2x levels so that every level's smaller side is >= 256 px (always at least 1)."""
    n, side = 1, min(shape_yx)
    while side // 2 >= MIN_LEVEL_SIZE:
        side //= 2
        n += 1
    return n


def downsample(arr: np.ndarray, is_label: bool) -> np.ndarray:
    """Halve the last two axes: nearest neighbour for labels, 2x2 mean (native dtype) for images."""
    y, x = (arr.shape[-2] // 2) * 2, (arr.shape[-1] // 2) * 2
    if is_label:  # same (floored) geometry as the image levels
        return arr[..., :y:2, :x:2]
    a = arr[..., :y, :x].astype(np.float32)
    m = (a[..., 0::2, 0::2] + a[..., 1::2, 0::2] + a[..., 0::2, 1::2] + a[..., 1::2, 1::2]) / 4
    if np.issubdtype(arr.dtype, np.integer):
        m = np.rint(m)
    return m.astype(arr.dtype)


def _chunking(shape: tuple[int, ...], axes: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """256x256 chunks of single planes, all in one shard: an array is one file (a movie too, not a file per frame).

    A reader takes one chunk by a byte range through the shard's index, so a frame still costs one chunk's read.
    """
    chunks = tuple(min(CHUNK, s) if a in "yx" else 1 for a, s in zip(axes, shape))
    shards = tuple(math.ceil(s / c) * c for s, c in zip(shape, chunks))
    return chunks, shards


def _write_pyramid(
    group: zarr.Group, data: np.ndarray, axes: str, levels: int, is_label: bool, scale: Mapping[str, float]
) -> list[dict]:
    datasets = []
    level = data
    for i in range(levels):
        chunks, shards = _chunking(level.shape, axes)
        arr = group.create_array(
            str(i),
            shape=level.shape,
            dtype=level.dtype,
            chunks=chunks,
            shards=shards,
            dimension_names=list(axes),
            fill_value=0,
        )
        arr[...] = level
        factor = 2**i
        datasets.append(
            {
                "path": str(i),
                "coordinateTransformations": [
                    {
                        "type": "scale",
                        "scale": [scale.get(a, 1.0) * (factor if a in "yx" else 1) for a in axes],
                    }
                ],
            }
        )
        if i + 1 < levels:
            level = downsample(level, is_label)
    return datasets


def _axes_units(axes: str, pixel_unit: str | None, time_unit: str | None) -> dict[str, str]:
    units = {}
    for a in axes:
        if a in "yx" and pixel_unit:
            units[a] = pixel_unit
        if a == "t" and time_unit:
            units[a] = time_unit
    return units


def write_image(
    path: str | Path,
    image: np.ndarray,
    axes: str,
    *,
    channel_names: list[str] | None = None,
    pixel_size: tuple[float, float] | None = None,
    pixel_unit: str | None = None,
    frame_interval: float | None = None,
    time_unit: str | None = None,
    labels: Mapping[str, np.ndarray] | None = None,
    label_attrs: Mapping[str, dict] | None = None,
    label_properties: Mapping[str, list[dict]] | None = None,
    attrs: dict | None = None,
    levels: int | None = None,
) -> None:
    """Write ``image`` (axes a subset of 'tcyx', in that order) as an OME-Zarr 0.5 image at ``path``.

    Labels are integer arrays with the image's axes minus 'c' and the same y/x size; they get the same
    pyramid levels (nearest neighbour) and the image's physical scale. ``attrs`` lands under
    ``attributes.cellhub`` of the image group, ``label_attrs[name]`` under the label group's.
    """
    if axes not in ("yx", "cyx", "tyx", "tcyx"):
        raise ValueError(f"unsupported axes {axes!r}")
    if image.ndim != len(axes):
        raise ValueError(f"image has {image.ndim} dimensions, axes {axes!r} has {len(axes)}")
    _check_labels(image, axes, labels or {})
    if Path(path).exists():
        raise FileExistsError(f"{path}: already exists; write_image never overwrites")
    levels = levels or pyramid_levels(image.shape[-2:])
    scale = {"y": pixel_size[0], "x": pixel_size[1]} if pixel_size else {}
    if frame_interval:
        scale["t"] = frame_interval
    root = zarr.open_group(str(path), mode="w-", zarr_format=3)
    datasets = _write_pyramid(root, image, axes, levels, False, scale)
    units = _axes_units(axes, pixel_unit if pixel_size else None, time_unit if frame_interval else None)
    write_multiscales_metadata(root, datasets, fmt=FMT, axes=list(axes), axes_units=units or None, name=Path(path).name)
    if channel_names:
        lo, hi = (
            (0, 255)
            if image.dtype == np.uint8
            else (0, int(np.iinfo(image.dtype).max))
            if np.issubdtype(image.dtype, np.integer)
            else (0.0, 1.0)
        )
        cidx = axes.index("c") if "c" in axes else None
        channels = []
        for i, name in enumerate(channel_names):
            plane = np.take(image, i, axis=cidx) if cidx is not None else image
            s, e = (float(v) for v in np.percentile(plane[..., ::4, ::4], [0.1, 99.9]))
            channels.append(
                {
                    "label": name,
                    "active": True,
                    "color": "FFFFFF",
                    "window": {"min": lo, "max": hi, "start": s, "end": max(e, s + 1e-6)},
                }
            )
        add_metadata(root, {"omero": {"channels": channels}}, fmt=FMT)
    if attrs:
        root.attrs["cellhub"] = attrs
    if labels:
        _write_labels(root, axes, labels, label_attrs or {}, label_properties or {}, levels, scale, units)


def _check_labels(image: np.ndarray, axes: str, labels: Mapping[str, np.ndarray]) -> None:
    """Refuse bad label images before anything is written."""
    expected = tuple(s for a, s in zip(axes, image.shape) if a != "c")
    for name, lab in labels.items():
        if lab.shape != expected:
            raise ValueError(f"label {name!r} has shape {lab.shape}, image geometry is {expected}")
        if not np.issubdtype(lab.dtype, np.integer):
            raise ValueError(f"label {name!r} has dtype {lab.dtype}; labels must be integer")


def _colours(name: str, lab: np.ndarray) -> list[dict] | None:
    """NGFF label colours for a class map (a label image named ``semantic``) of few values; none for instances."""
    if name != "semantic":
        return None
    values = np.unique(lab)
    values = values[values > 0]
    if len(values) > MAX_COLOURED:
        return None
    return [{"label-value": int(v), "rgba": list(PALETTE[i % len(PALETTE)])} for i, v in enumerate(values)]


def _write_labels(
    root: zarr.Group,
    axes: str,
    labels: Mapping[str, np.ndarray],
    label_attrs: Mapping[str, dict],
    label_properties: Mapping[str, list[dict]],
    levels: int,
    scale: dict,
    units: dict,
) -> None:
    label_axes = axes.replace("c", "")
    labels_group = root.create_group("labels")
    for name, lab in labels.items():
        g = labels_group.create_group(name)
        datasets = _write_pyramid(g, lab, label_axes, levels, True, scale)
        write_multiscales_metadata(g, datasets, fmt=FMT, axes=list(label_axes), axes_units=units or None, name=name)
        if name in label_attrs:  # before the image-label metadata: this handle's attributes would overwrite it
            g.attrs["cellhub"] = label_attrs[name]
        write_label_metadata(
            labels_group,
            name,
            colors=_colours(name, lab),
            properties=label_properties.get(name),
            fmt=FMT,
            source={"image": "../../"},
        )
    # ome-zarr-py leaves the 'labels' group without its own version (NGFF 0.5 requires it)
    add_metadata(labels_group, {"version": FMT.version}, fmt=FMT)
