"""Whole time-lapse sequences for tracking: lazy frames, lazy label frames and the lineage table."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from hub.data._patches import lead
from hub.data._reader import DEFAULT_CACHE_BYTES, Reader
from hub.data._transforms import Normalize, Normalizer
from hub.dataset import Dataset, open_dataset
from hub.errors import InvalidInput
from hub.ome.ctc import Track, lineage_from_attrs


class Frames:
    """A movie's frames read on demand: ``len(frames)``, ``frames[t]`` -> tensor.

    Image frames come normalised, float32 (C, Y, X); label frames (``label`` set) int64 (Y, X).
    """

    def __init__(self, reader: Reader, sample_id: str, label: str | None = None, normalizer: Normalizer | None = None):
        self.reader, self.sample_id, self.label, self.normalizer = reader, sample_id, label, normalizer

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.reader.array(self.sample_id, self.label).shape)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, t: int) -> torch.Tensor:
        if not -len(self) <= t < len(self):
            raise IndexError(t)
        t = t % len(self)
        axes = self.reader.image(self.sample_id).axes
        plane = self.reader.read(self.sample_id, lead(axes, t, channels=self.label is None), label=self.label)
        if self.label is not None:
            return torch.from_numpy(plane.astype(np.int64))
        return torch.from_numpy(self.normalizer(plane if "c" in axes else plane[None]))  # type: ignore[misc]  # images have one


@dataclass
class TrackingSequence:
    """One movie: ``frames`` and ``labels[name]`` are lazy; ``lineage`` rows are (label, begin, end, parent)."""

    id: str
    frames: Frames
    labels: dict[str, Frames]
    lineage: list[Track]
    annotated_frames: dict[str, list[int]] = field(default_factory=dict)


class TrackingDataset(torch.utils.data.Dataset):
    """One :class:`TrackingSequence` per time-lapse sample of ``split`` (use ``batch_size=None`` to load)."""

    def __init__(
        self,
        path: str | Path | Dataset,
        split: str,
        normalize: Normalize = True,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
    ):
        self.data = open_dataset(path)
        self.reader = Reader(path, cache_bytes)
        self.ids = [r.id for r in self.data.samples if r.split == split and r.is_timelapse]
        if not self.ids:
            raise InvalidInput(f"no time-lapse samples in split {split!r}", self.data.path / "samples.csv")
        self.normalizer = Normalizer(self.data.card, self.data.card.channel_names, normalize)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> TrackingSequence:
        sample = self.ids[index]
        img = self.reader.image(sample)
        labels, lineage, annotated = {}, [], {}
        for name in img.label_names:
            labels[name] = Frames(self.reader, sample, label=name)
            attrs = img.label_attrs(name)
            if "lineage" in attrs:
                lineage = lineage_from_attrs(attrs["lineage"])
            if "annotated_frames" in attrs:
                annotated[name] = [int(t) for t in attrs["annotated_frames"]]
        return TrackingSequence(
            sample, Frames(self.reader, sample, normalizer=self.normalizer), labels, lineage, annotated
        )
