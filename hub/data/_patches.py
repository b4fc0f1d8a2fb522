"""Random square windows over the 2-D planes (frames of a movie, or whole fields) of one split."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from hub.data._reader import Lead, Reader
from hub.data._transforms import Intensity, Normalize, Normalizer, image_percentiles
from hub.dataset import Dataset, open_dataset
from hub.errors import InvalidInput


class Window(NamedTuple):
    sample: str
    frame: int | None  # None for samples without a time axis
    y: int
    x: int
    size: int


def lead(axes: str, frame: int | None, channels: bool = True) -> Lead:
    """Index of the non-yx axes: the frame on 't', every channel on 'c' (dropped with ``channels=False``)."""
    out: list = []
    for a in axes[:-2]:
        if a == "t":
            out.append(frame)
        elif a == "c" and channels:
            out.append(slice(None))
    return tuple(out)


class PatchDataset(torch.utils.data.Dataset):
    """Base of the patch datasets: ``samples_per_epoch`` (default: one per plane) random square windows.

    Planes are drawn uniformly, then a window uniformly inside the plane (at the origin when the plane is
    smaller than the patch; the caller pads). With an integer ``seed`` window ``i`` is a pure function of
    (seed, epoch, i) -- call :meth:`set_epoch` for new windows each epoch (workers see it unless they are
    persistent); with ``seed=None`` every draw is fresh. ``frames(reader, sample_id, n_frames)`` picks the
    usable frames of a time-lapse sample; ``samples`` keeps only those samples of the split (few-shot training).
    """

    def __init__(
        self,
        path: str | Path | Dataset,
        split: str,
        patch: int,
        samples_per_epoch: int | None,
        seed: int | None,
        cache_bytes: int,
        frames: Callable[[Reader, str, int], list[int]] | None = None,
        samples: list[str] | None = None,
        intensity: Intensity | None = None,
    ):
        self.data = open_dataset(path)
        self.reader = Reader(path, cache_bytes)
        self.split, self.patch, self.seed, self.epoch = split, int(patch), seed, 0
        self.intensity = intensity
        self.planes: list[tuple[str, int | None, int, int]] = []
        if samples is not None:
            outside = sorted(set(samples) - set(self.data.ids(split)))
            if outside:
                raise InvalidInput(f"sample {outside[0]!r} is not in split {split!r}", self.data.path / "samples.csv")
        for row in self.data.samples:
            if row.split != split or (samples is not None and row.id not in samples):
                continue
            shape = row.shape
            if row.is_timelapse:
                usable = frames(self.reader, row.id, shape[0]) if frames else range(shape[0])
                self.planes += [(row.id, t, shape[-2], shape[-1]) for t in usable]
            else:
                self.planes.append((row.id, None, shape[-2], shape[-1]))
        if not self.planes:
            raise InvalidInput(f"no usable images in split {split!r}", self.data.path / "samples.csv")
        self.samples_per_epoch = int(samples_per_epoch or len(self.planes))
        self._percentiles: dict[tuple[str, int | None], np.ndarray] = {}

    def __len__(self) -> int:
        return self.samples_per_epoch

    def select_channels(self, channels: list[str] | None, normalize: Normalize) -> None:
        """The input ``channels`` by name (default: all of the card's), their indices and their normaliser."""
        names = self.data.card.channel_names
        self.channels = list(channels or names)
        unknown = [c for c in self.channels if c not in names]
        if unknown:
            raise InvalidInput(f"no channel {unknown[0]!r} (channels: {', '.join(names)})", self.data.path)
        self.channel_index = [names.index(c) for c in self.channels]
        self.normalizer = Normalizer(self.data.card, self.channels, normalize)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng(None if self.seed is None else [self.seed, self.epoch, index])

    def window(self, index: int, rng: np.random.Generator | None = None) -> Window:
        if not 0 <= index < len(self):
            raise IndexError(index)
        rng = rng or self.rng(index)
        sample, frame, h, w = self.planes[int(rng.integers(len(self.planes)))]
        y = int(rng.integers(h - self.patch + 1)) if h > self.patch else 0
        x = int(rng.integers(w - self.patch + 1)) if w > self.patch else 0
        return Window(sample, frame, y, x, self.patch)

    def read_image(self, win: Window) -> np.ndarray:
        """Raw image window, channels first (C, y, x) in the stored dtype."""
        axes = self.reader.image(win.sample).axes
        img = self.reader.read(win.sample, lead(axes, win.frame), win.y, win.x, win.size, win.size)
        return img if "c" in axes else img[None]

    def plane_percentiles(self, win: Window) -> np.ndarray:
        """Per-channel p1/p99.8 (C, 2) of the whole plane under ``win``, computed once per plane."""
        key = (win.sample, win.frame)
        if key not in self._percentiles:
            axes = self.reader.image(win.sample).axes
            plane = self.reader.read(win.sample, lead(axes, win.frame))
            self._percentiles[key] = image_percentiles(plane if "c" in axes else plane[None])
        return self._percentiles[key]

    def normalized_window(self, win: Window, normalizer: Normalizer, channel_index: list[int]) -> np.ndarray:
        """The window's channels ``channel_index``, normalised (float32, C x y x)."""
        image = self.read_image(win)[channel_index]
        if normalizer.mode == "image":
            return normalizer(image, self.plane_percentiles(win)[channel_index])
        return normalizer(image)

    def vary(self, rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
        """A normalised input window with the random intensity change, if any (training windows only)."""
        return self.intensity(rng, image) if self.intensity else image

    def read_label(self, win: Window, label: str) -> np.ndarray:
        axes = self.reader.image(win.sample).axes
        return self.reader.read(
            win.sample, lead(axes, win.frame, channels=False), win.y, win.x, win.size, win.size, label=label
        )
