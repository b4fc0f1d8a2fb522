"""Whole small crops with their class index, for image classification."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from hub.data._patches import lead
from hub.data._reader import DEFAULT_CACHE_BYTES, Reader
from hub.data._transforms import Intensity, Normalize, Normalizer, random_dihedral
from hub.dataset import Dataset, open_dataset
from hub.errors import InvalidInput


class ClassificationDataset(torch.utils.data.Dataset):
    """``(image, class)`` = (float32 C x Y x X, int) for every sample of ``split``.

    Crops are read lazily and stay in the per-worker chunk cache (``cache_bytes``), so after the first epoch
    a worker serves them from memory. ``channels`` selects channels by name (default: all, card order).
    """

    def __init__(
        self,
        path: str | Path | Dataset,
        split: str,
        channels: list[str] | None = None,
        normalize: Normalize = True,
        augment: bool = False,
        seed: int | None = None,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
        intensity: Intensity | None = None,
    ):
        self.data = open_dataset(path)
        self.reader = Reader(path, cache_bytes)
        card = self.data.card
        self.classes = list(card.labels.classes or [])
        rows = [r for r in self.data.samples if r.split == split]
        unlabelled = [r.id for r in rows if r.class_index is None]
        if not self.classes:
            raise InvalidInput(
                "not a classification dataset (the card has no labels.classes)", self.data.path / "card.yaml"
            )
        if unlabelled:
            raise InvalidInput(f"sample {unlabelled[0]!r} has no class", self.data.path / "samples.csv")
        self.ids = [r.id for r in rows]
        self.targets = [int(r.class_index or 0) for r in rows]  # every row has a class (checked above)
        names = card.channel_names
        self.channels = list(channels or names)
        unknown = [c for c in self.channels if c not in names]
        if unknown:
            raise InvalidInput(f"no channel {unknown[0]!r} (channels: {', '.join(names)})", self.data.path)
        self.channel_index = [names.index(c) for c in self.channels]
        self.normalizer = Normalizer(card, self.channels, normalize)
        self.augment, self.intensity, self.seed, self.epoch = augment, intensity, seed, 0

    def __len__(self) -> int:
        return len(self.ids)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        sample = self.ids[index]
        axes = self.reader.image(sample).axes
        image = self.reader.read(sample, lead(axes, None))
        image = self.normalizer((image if "c" in axes else image[None])[self.channel_index])
        rng = np.random.default_rng(None if self.seed is None else [self.seed, self.epoch, index])
        if self.augment:
            (image,) = random_dihedral(rng, image)
        if self.intensity:
            image = self.intensity(rng, image)
        return torch.from_numpy(image), self.targets[index]
