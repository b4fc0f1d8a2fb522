"""Sparse overlap (contingency) table of two label images, by bincount: the core of instance and tracking metrics."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from hub.errors import InvalidInput


class Overlap(NamedTuple):
    """Objects of two label images and the pixels they share.

    ``a_labels``/``b_labels`` are the sorted non-zero labels present, ``a_sizes``/``b_sizes`` their pixel counts;
    ``ia``, ``ib`` index into them for every pair of objects that overlap, ``inter`` is that pair's pixel count.
    """

    a_labels: np.ndarray
    a_sizes: np.ndarray
    b_labels: np.ndarray
    b_sizes: np.ndarray
    ia: np.ndarray
    ib: np.ndarray
    inter: np.ndarray

    def iou(self) -> np.ndarray:
        """Intersection over union of each overlapping pair (float64)."""
        union = self.a_sizes[self.ia] + self.b_sizes[self.ib] - self.inter
        return self.inter / union


def _count(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(labels, sizes, lookup table label -> dense index) of the foreground values ``x`` of a label image; no
    table when the label range is too sparse for one (then the caller falls back to sorting)."""
    top = int(x.max()) if x.size else 0
    if top > 4 * x.size + 1024:
        labels, counts = np.unique(x, return_counts=True)
        return labels, counts, None
    counts = np.bincount(x, minlength=top + 1)
    labels = np.flatnonzero(counts[1:]) + 1
    lut = np.full(top + 1, -1, dtype=np.int64)
    lut[labels] = np.arange(labels.size)
    return labels, counts[labels], lut


def _index(values: np.ndarray, labels: np.ndarray, lut: np.ndarray | None) -> np.ndarray:
    return lut[values] if lut is not None else np.searchsorted(labels, values)


_INT64_MAX = np.iinfo(np.int64).max


def _bincountable(x: np.ndarray) -> np.ndarray:
    """uint64 labels as int64 where they fit (bincount refuses uint64). Labels of 2**63 and above stay uint64:
    label ids are only ids, and :func:`_count` then sorts instead of counting into a table."""
    if x.dtype == np.uint64 and not (x.size and x.max() > _INT64_MAX):
        return x.astype(np.int64)
    return x


def overlap_table(a: np.ndarray, b: np.ndarray) -> Overlap:
    """Overlap table of label images ``a`` and ``b`` (same shape; 0 = background), in O(pixels)."""
    if a.shape != b.shape:
        raise InvalidInput(f"label images differ in shape: {a.shape} vs {b.shape}")
    a = np.ascontiguousarray(a).ravel()
    b = np.ascontiguousarray(b).ravel()
    a, b = _bincountable(a), _bincountable(b)
    fg_a = a != 0  # background is most pixels: work on the foreground only
    a_fg, b_on_a = a[fg_a], b[fg_a]
    a_labels, a_sizes, a_lut = _count(a_fg)
    b_labels, b_sizes, b_lut = _count(b[b != 0])
    both = b_on_a != 0
    na, nb = a_labels.size, b_labels.size
    key = _index(a_fg[both], a_labels, a_lut) * nb + _index(b_on_a[both], b_labels, b_lut)
    if na * nb <= key.size + 1024:  # a dense table no bigger than the data
        counts = np.bincount(key, minlength=na * nb)
        pairs = np.flatnonzero(counts)
        inter = counts[pairs]
    else:
        pairs, inter = np.unique(key, return_counts=True)
    ia, ib = np.divmod(pairs, nb) if nb else (pairs, pairs)
    return Overlap(a_labels, a_sizes, b_labels, b_sizes, ia, ib, inter)
