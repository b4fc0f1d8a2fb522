"""Per-channel normalisation statistics from the train split, exact from per-sample sparse histograms.

The histograms are summed as the samples' results arrive (:class:`Histograms`), so the statistics of a
million-sample split cost the memory of its distinct pixel values, not of its samples.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from hub.cards import ChannelStats
from hub.executor import imap_samples
from hub.ome import open_image

COMPACT_EVERY = 64  # pending per-sample histograms of a channel that are merged into one


def histograms(image: np.ndarray, axes: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per-channel sparse histogram (values, counts): exact statistics without keeping pixels."""
    cidx = axes.index("c") if "c" in axes else None
    planes = [image] if cidx is None else [np.take(image, i, axis=cidx) for i in range(image.shape[cidx])]
    out = []
    for p in planes:
        if np.issubdtype(p.dtype, np.integer) and p.dtype.itemsize <= 2:
            counts = np.bincount(p.ravel().astype(np.int64) - int(np.iinfo(p.dtype).min))
            vals = np.nonzero(counts)[0]
            out.append((vals + int(np.iinfo(p.dtype).min), counts[vals]))
        else:  # wide or float data: histogram a deterministic subsample of values
            flat = p.ravel()[:: max(1, p.size // 65536)].astype(np.float64)
            vals, counts = np.unique(flat, return_counts=True)
            out.append((vals, counts * max(1, p.size // 65536)))
    return out


def _merge(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """One sparse histogram (sorted float64 values, float64 counts) of several."""
    vals = np.concatenate([p[0] for p in parts]).astype(np.float64)
    counts = np.concatenate([p[1] for p in parts]).astype(np.float64)
    uniq, inv = np.unique(vals, return_inverse=True)
    return uniq, np.bincount(inv, weights=counts)


class Histograms:
    """Sparse histograms (values, counts) per channel name, summed as samples are added. Counts are whole
    numbers, so the sums are exact and do not depend on the order the samples came in."""

    def __init__(self) -> None:
        self._parts: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}

    def add(self, channels: Sequence[str], hists: Sequence[tuple[np.ndarray, np.ndarray]]) -> None:
        """Add one sample's histograms, one per channel of ``channels``."""
        for name, hist in zip(channels, hists, strict=True):
            parts = self._parts.setdefault(name, [])
            parts.append(hist)
            if len(parts) >= COMPACT_EVERY:
                parts[:] = [_merge(parts)]

    def __bool__(self) -> bool:
        return bool(self._parts)

    def statistics(self, channel_names: Sequence[str]) -> list[ChannelStats]:
        """Mean, std, min, max, 1st and 99.8th percentiles of each named channel over the samples added that
        have it (samples of a dataset may differ in channels, e.g. colour images among grey ones)."""
        out = []
        for name in channel_names:
            if name not in self._parts:
                continue
            uniq, cnt = _merge(self._parts[name])
            n = cnt.sum()
            mean = float((uniq * cnt).sum() / n)
            std = float(np.sqrt(max(((uniq - mean) ** 2 * cnt).sum() / n, 0.0)))
            cdf = np.cumsum(cnt) / n
            p1, p998 = (float(uniq[min(int(np.searchsorted(cdf, q)), len(uniq) - 1)]) for q in (0.01, 0.998))
            lo, hi = float(uniq[0]), float(uniq[-1])
            out.append(ChannelStats(channel=name, mean=mean, std=std, min=lo, max=hi, p1=p1, p99_8=p998))
        return out


def image_histograms(job: tuple[str, str]) -> tuple[list[str], list[tuple[np.ndarray, np.ndarray]]]:
    """The channel names and histograms of the image at ``root/path`` (in a worker: only these travel back)."""
    root, path = job
    img = open_image(Path(root) / path)
    return img.channel_names, histograms(img.read(), img.axes)


def fold_histograms(results: Iterable[tuple[list[str], list[tuple[np.ndarray, np.ndarray]]]]) -> Histograms:
    """The sum of per-sample ``(channel names, histograms)`` results, added as they arrive."""
    out = Histograms()
    for channels, hists in results:
        out.add(channels, hists)
    return out


def sum_histograms(root: str | Path, paths: Sequence[str], workers: int | None = None) -> Histograms:
    """The summed histograms of the images ``paths`` (relative to ``root``), read by the block's executor (see
    :func:`hub.executor.use_executor`) and summed as they arrive."""
    jobs = [(str(root), p) for p in paths]
    return fold_histograms(imap_samples(image_histograms, jobs, workers=workers, description="train statistics"))
