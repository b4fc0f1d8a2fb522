"""Paired random patches for label-free prediction: input channels -> target channels of one image."""

from __future__ import annotations

from pathlib import Path

import torch

from hub.data._patches import PatchDataset
from hub.data._reader import DEFAULT_CACHE_BYTES
from hub.data._transforms import Intensity, Normalize, Normalizer, pad_to, random_dihedral
from hub.dataset import Dataset
from hub.errors import CardError


class LabelFreeDataset(PatchDataset):
    """``(inputs, targets)`` float32 patches, channels chosen by the card's ``labels.inputs`` / ``targets``
    (or by ``inputs`` / ``targets`` given here, a subset of the card's channels).

    Both sides are normalised with their own channels' train statistics; planes smaller than ``patch`` are
    zero-padded at the bottom/right.
    """

    def __init__(
        self,
        path: str | Path | Dataset,
        split: str,
        patch: int = 256,
        samples_per_epoch: int | None = None,
        normalize: Normalize = True,
        augment: bool = False,
        seed: int | None = None,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
        inputs: list[str] | None = None,
        targets: list[str] | None = None,
        samples: list[str] | None = None,
        intensity: Intensity | None = None,
    ):
        super().__init__(path, split, patch, samples_per_epoch, seed, cache_bytes, samples=samples, intensity=intensity)
        card = self.data.card
        self.inputs, self.targets = list(inputs or card.labels.inputs or []), list(targets or card.labels.targets or [])
        if not self.inputs or not self.targets:
            raise CardError(f"labels: {card.ref} names no label-free inputs/targets channels")
        names = card.channel_names
        unknown = [c for c in self.inputs + self.targets if c not in names]
        if unknown:
            raise CardError(f"labels: channel {unknown[0]!r} is not among acquisition.channels of {card.ref}")
        self.input_index = [names.index(c) for c in self.inputs]
        self.target_index = [names.index(c) for c in self.targets]
        self.augment = augment
        self.normalize_inputs = Normalizer(card, self.inputs, normalize)
        self.normalize_targets = Normalizer(card, self.targets, normalize)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = self.rng(index)
        win = self.window(index, rng)
        x = pad_to(self.vary(rng, self.normalized_window(win, self.normalize_inputs, self.input_index)), self.patch)
        y = pad_to(self.normalized_window(win, self.normalize_targets, self.target_index), self.patch)
        if self.augment:
            x, y = random_dihedral(rng, x, y)
        return torch.from_numpy(x), torch.from_numpy(y)
