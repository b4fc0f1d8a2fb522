"""Per-process lazy reads of a curated dataset's OME-Zarr arrays, safe across DataLoader workers.

Nothing opened is ever pickled: a :class:`Reader` opens the dataset and its zarr arrays on first use in
the current process and reopens them when it finds itself in another process (a forked or spawned
DataLoader worker). Windows are read from level 0 in whole chunks, and decoded chunks are kept in a
per-process LRU cache bounded by bytes (``cache_bytes``; default 512 MiB per process, room for a 100-frame
1024x1024 uint8 movie with a uint16 label image; 0 disables it).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import zarr

from hub.data._cache import ChunkCache
from hub.dataset import Dataset, open_dataset
from hub.errors import InvalidInput
from hub.ome import OmeImage

DEFAULT_CACHE_BYTES = 512 << 20

Lead = tuple  # one entry per non-yx axis: an int (e.g. a frame) or slice(None) (e.g. all channels)


class Reader:
    """Lazy access to the images and label images of the dataset at ``path`` (a folder, or an open
    :class:`~hub.dataset.Dataset` such as a streamed one)."""

    def __init__(self, path: str | Path | Dataset, cache_bytes: int = DEFAULT_CACHE_BYTES):
        self.source = path if isinstance(path, Dataset) else Path(path)
        self.path = self.source.path if isinstance(self.source, Dataset) else self.source
        self.cache_bytes = cache_bytes
        self._pid: int | None = None

    def __getstate__(self) -> dict:
        return {"source": self.source, "path": self.path, "cache_bytes": self.cache_bytes, "_pid": None}

    def _local(self) -> Reader:
        """(Re)open per process: state inherited through fork belongs to the parent and is dropped."""
        if self._pid != os.getpid():
            self._dataset = open_dataset(self.source)
            self._images: dict[str, OmeImage] = {}
            self._arrays: dict[tuple[str, str | None], zarr.Array] = {}
            self._cache = ChunkCache(self.cache_bytes)
            self._pid = os.getpid()
        return self

    @property
    def dataset(self) -> Dataset:
        return self._local()._dataset

    @property
    def cache(self) -> ChunkCache:
        return self._local()._cache

    def image(self, sample_id: str) -> OmeImage:
        images = self._local()._images
        if sample_id not in images:
            images[sample_id] = self._dataset.image(sample_id)
        return images[sample_id]

    def array(self, sample_id: str, label: str | None = None) -> zarr.Array:
        """Level 0 of the image (``label=None``) or of label image ``label``; opened once per process."""
        arrays = self._local()._arrays
        key = (sample_id, label)
        if key not in arrays:
            img = self.image(sample_id)
            if label is not None and label not in img.label_names:
                raise InvalidInput(f"no label image {label!r} (has: {', '.join(img.label_names) or 'none'})", img.path)
            arrays[key] = img.array(0) if label is None else img.label(label, 0)
        return arrays[key]

    def read(
        self,
        sample_id: str,
        lead: Lead = (),
        y: int = 0,
        x: int = 0,
        h: int | None = None,
        w: int | None = None,
        label: str | None = None,
    ) -> np.ndarray:
        """``array[lead + (y:y+h, x:x+w)]`` (clipped to the array), assembled from cached whole chunks.

        Missing chunks are read with one chunk-aligned zarr call over their bounding box.
        """
        arr = self.array(sample_id, label)
        H, W = arr.shape[-2:]
        y1, x1 = min(H, y + h if h is not None else H), min(W, x + w if w is not None else W)
        if len(lead) != arr.ndim - 2 or not (0 <= y < y1 and 0 <= x < x1):
            raise InvalidInput(f"window {lead} y={y}:{y1} x={x}:{x1} outside array {arr.shape}", self.path)
        cy, cx = arr.chunks[-2:]
        tiles = [(r, c) for r in range(y // cy, (y1 - 1) // cy + 1) for c in range(x // cx, (x1 - 1) // cx + 1)]
        base = (sample_id, label, tuple(i if isinstance(i, int) else None for i in lead))
        cache = self.cache
        got = {t: cache.get(base + t) for t in tiles}
        missing = [t for t, v in got.items() if v is None]
        if missing:
            r0, r1 = min(t[0] for t in missing), max(t[0] for t in missing) + 1
            c0, c1 = min(t[1] for t in missing), max(t[1] for t in missing) + 1
            block = arr[lead + (slice(r0 * cy, r1 * cy), slice(c0 * cx, c1 * cx))]
            for r in range(r0, r1):
                for c in range(c0, c1):
                    tile = np.ascontiguousarray(
                        block[..., (r - r0) * cy : (r - r0 + 1) * cy, (c - c0) * cx : (c - c0 + 1) * cx]
                    )
                    cache.put(base + (r, c), tile)
                    if (r, c) in got:
                        got[(r, c)] = tile
        out = np.empty(next(iter(got.values())).shape[:-2] + (y1 - y, x1 - x), dtype=arr.dtype)  # type: ignore[union-attr]
        for (r, c), tile in got.items():
            ty, tx = r * cy, c * cx
            sy, sx = slice(max(y, ty), min(y1, ty + cy)), slice(max(x, tx), min(x1, tx + cx))
            out[..., sy.start - y : sy.stop - y, sx.start - x : sx.stop - x] = tile[  # type: ignore[index]  # all read
                ..., sy.start - ty : sy.stop - ty, sx.start - tx : sx.stop - tx
            ]
        return out
