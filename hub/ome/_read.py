"""Lazy reads of OME-Zarr images written by :mod:`hub.ome._write` (or any NGFF 0.5 image)."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import zarr

from hub.errors import InvalidInput
from hub.safety import check_pixels


@dataclass
class OmeImage:
    """An opened OME-Zarr image: arrays are zarr arrays (lazy); ``.dask(level)`` for out-of-core work."""

    path: Path
    group: zarr.Group = field(repr=False)

    @cached_property
    def ome(self) -> dict:
        return dict(self.group.attrs.get("ome", {}))

    @cached_property
    def axes(self) -> str:
        return "".join(a["name"] for a in self.ome["multiscales"][0]["axes"])

    @cached_property
    def level_paths(self) -> list[str]:
        return [d["path"] for d in self.ome["multiscales"][0]["datasets"]]

    @property
    def attrs(self) -> dict:
        return dict(self.group.attrs.get("cellhub", {}))

    @cached_property
    def channel_names(self) -> list[str]:
        return [c.get("label", str(i)) for i, c in enumerate(self.ome.get("omero", {}).get("channels", []))]

    @property
    def shape(self) -> tuple[int, ...]:
        """The shape of the full-resolution image (from its metadata: no pixel is read)."""
        return tuple(int(n) for n in self.array().shape)

    def array(self, level: int = 0) -> zarr.Array:
        return self._bounded(self.group[self.level_paths[level]], self.level_paths[level])

    def _bounded(self, arr: zarr.Array, rel: str) -> zarr.Array:
        """``arr`` once its declared shape and its chunk (or shard, decoded whole) fit the pixel budget: a few
        kilobytes of metadata can declare gigabytes (``CELLHUB_MAX_PIXELS``)."""
        check_pixels(arr.shape, self.path / rel, arr.dtype, what="array")
        check_pixels(getattr(arr, "shards", None) or arr.chunks, self.path / rel, arr.dtype, what="a chunk")
        return arr

    def dask(self, level: int = 0):
        import dask.array as da

        return da.from_zarr(self.array(level))

    @cached_property
    def label_names(self) -> list[str]:
        if "labels" not in self.group:
            return []
        return list(self.group["labels"].attrs.get("ome", {}).get("labels", []))

    def label(self, name: str, level: int = 0) -> zarr.Array:
        g = self.group[f"labels/{name}"]
        path = g.attrs["ome"]["multiscales"][0]["datasets"][level]["path"]
        return self._bounded(g[path], f"labels/{name}/{path}")

    def label_attrs(self, name: str) -> dict:
        return dict(self.group[f"labels/{name}"].attrs.get("cellhub", {}))

    def scale(self, level: int = 0) -> dict[str, float]:
        ds = self.ome["multiscales"][0]["datasets"][level]
        vals = next(t["scale"] for t in ds["coordinateTransformations"] if t["type"] == "scale")
        return dict(zip(self.axes, vals))

    def units(self) -> dict[str, str]:
        return {a["name"]: a["unit"] for a in self.ome["multiscales"][0]["axes"] if "unit" in a}

    def read(self, level: int = 0) -> np.ndarray:
        return self.array(level)[...]


def open_image(path: str | Path) -> OmeImage:
    """Open an OME-Zarr image group for reading (nothing is loaded until an array is indexed)."""
    path = Path(path)
    try:
        group = zarr.open_group(str(path), mode="r")
    except (FileNotFoundError, zarr.errors.GroupNotFoundError):
        raise InvalidInput("no OME-Zarr image here", path) from None
    except (ValueError, KeyError, TypeError) as err:  # zarr.json that is not JSON, not UTF-8, or not zarr metadata
        raise InvalidInput(
            f"unreadable Zarr metadata ({err.__class__.__name__}: {' '.join(str(err).split())[:200]})",
            path / "zarr.json",
        ) from None
    if "multiscales" not in group.attrs.get("ome", {}):
        raise InvalidInput("not an OME-Zarr image (no ome.multiscales metadata)", path)
    return OmeImage(path, group)
