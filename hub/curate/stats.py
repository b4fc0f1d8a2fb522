"""Per-channel normalisation statistics from the train split, exact from per-sample sparse histograms."""

from __future__ import annotations

import numpy as np

from hub.cards import ChannelStats
from hub.curate._sample import SampleRecord


def channel_statistics(records: list[SampleRecord], channel_names: list[str]) -> list[ChannelStats]:
    """Mean, std, min, max, 1st and 99.8th percentiles of each named channel over the (train) samples that
    have it (samples of a dataset may differ in channels, e.g. colour images among grey ones)."""
    out = []
    for name in channel_names:
        parts = [r.hist[r.channels.index(name)] for r in records if name in r.channels]
        if not parts:
            continue
        vals = np.concatenate([p[0] for p in parts]).astype(np.float64)
        counts = np.concatenate([p[1] for p in parts]).astype(np.float64)
        uniq, inv = np.unique(vals, return_inverse=True)
        cnt = np.bincount(inv, weights=counts)
        n = cnt.sum()
        mean = float((uniq * cnt).sum() / n)
        std = float(np.sqrt(max(((uniq - mean) ** 2 * cnt).sum() / n, 0.0)))
        cdf = np.cumsum(cnt) / n
        p1, p998 = (float(uniq[min(int(np.searchsorted(cdf, q)), len(uniq) - 1)]) for q in (0.01, 0.998))
        out.append(
            ChannelStats(channel=name, mean=mean, std=std, min=float(uniq[0]), max=float(uniq[-1]), p1=p1, p99_8=p998)
        )
    return out
