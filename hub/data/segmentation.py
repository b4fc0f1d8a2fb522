"""Random patches of images and their instance (or semantic) label images, for segmentation training."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from hub.data._patches import PatchDataset, Window, lead
from hub.data._reader import DEFAULT_CACHE_BYTES, Reader
from hub.data._transforms import Intensity, Normalize, pad_to, random_dihedral
from hub.dataset import Dataset
from hub.errors import InvalidInput


def annotated_frames(label: str, only: list[int] | None = None):
    """Frames of a movie usable with ``label``: its ``annotated_frames`` attribute when set, else all;
    restricted to the frames ``only`` when given (e.g. a few-shot training set)."""

    def frames(reader: Reader, sample_id: str, n: int) -> list[int]:
        img = reader.image(sample_id)
        if label not in img.label_names:
            raise InvalidInput(f"no label image {label!r} (has: {', '.join(img.label_names) or 'none'})", img.path)
        marked = img.label_attrs(label).get("annotated_frames")
        usable = list(range(n)) if marked is None else [int(t) for t in marked]
        return usable if only is None else [t for t in usable if t in set(only)]

    return frames


class SegmentationDataset(PatchDataset):
    """``(image, label)`` = (float32 C x P x P, int64 P x P) random patches of split ``split``.

    ``label`` names the label image (``instances``; ``tracks`` or ``segmentation`` for tracking movies);
    ``semantic=True`` turns instances into foreground 1 / background 0; ``frames`` keeps only those frames of
    each movie and ``samples`` only those samples (few-shot). Planes smaller than ``patch`` are
    zero-padded at the bottom/right (after normalisation). ``channels`` selects image channels by name.
    ``foreground`` is the fraction of windows centred on a random labelled pixel instead of drawn uniformly
    (nnU-Net-style oversampling: sparse fields such as a young colony are mostly background). ``intensity``
    changes the brightness of each window's image, never its label (:class:`~hub.data.Intensity`).
    """

    def __init__(
        self,
        path: str | Path | Dataset,
        split: str,
        patch: int = 256,
        samples_per_epoch: int | None = None,
        label: str = "instances",
        semantic: bool = False,
        channels: list[str] | None = None,
        normalize: Normalize = True,
        augment: bool = False,
        seed: int | None = None,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
        frames: list[int] | None = None,
        foreground: float = 0.0,
        samples: list[str] | None = None,
        intensity: Intensity | None = None,
    ):
        super().__init__(
            path,
            split,
            patch,
            samples_per_epoch,
            seed,
            cache_bytes,
            frames=annotated_frames(label, frames),
            samples=samples,
            intensity=intensity,
        )
        self.label, self.semantic, self.augment = label, semantic, augment
        if not 0.0 <= foreground <= 1.0:
            raise InvalidInput(f"foreground must be a fraction in [0, 1], got {foreground}")
        self.foreground = float(foreground)
        self._points: dict[tuple[str, int | None], np.ndarray] = {}
        self.select_channels(channels, normalize)

    def window(self, index: int, rng: np.random.Generator | None = None) -> Window:
        rng = rng or self.rng(index)
        if not (self.foreground and rng.random() < self.foreground and 0 <= index < len(self)):
            return super().window(index, rng)
        sample, frame, h, w = self.planes[int(rng.integers(len(self.planes)))]
        points = self.foreground_points(sample, frame)
        if not len(points):
            return super().window(index, rng)
        cy, cx = points[int(rng.integers(len(points)))]
        y = int(np.clip(cy - self.patch // 2, 0, max(h - self.patch, 0)))
        x = int(np.clip(cx - self.patch // 2, 0, max(w - self.patch, 0)))
        return Window(sample, frame, y, x, self.patch)

    def foreground_points(self, sample: str, frame: int | None, most: int = 4096) -> np.ndarray:
        """Up to ``most`` evenly spaced labelled pixels (N, 2) of one plane, read once."""
        key = (sample, frame)
        if key not in self._points:
            axes = self.reader.image(sample).axes
            plane = self.reader.read(sample, lead(axes, frame, channels=False), label=self.label)
            points = np.argwhere(plane > 0)
            self._points[key] = points[:: max(1, len(points) // most)]
        return self._points[key]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = self.rng(index)
        win = self.window(index, rng)
        image = self.vary(rng, self.normalized_window(win, self.normalizer, self.channel_index))
        label = self.read_label(win, self.label).astype(np.int64)
        if self.semantic:
            label = (label > 0).astype(np.int64)
        image, label = pad_to(image, self.patch), pad_to(label, self.patch)
        if self.augment:
            image, label = random_dihedral(rng, image, label)
        return torch.from_numpy(image), torch.from_numpy(label)
