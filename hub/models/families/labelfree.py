"""Augmented microscopy: U-Net image-to-image regression (transmitted light -> fluorescence)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch
from pydantic import Field
from torch.nn import functional as F

from hub.cards import DatasetCard
from hub.models._family import Family, Normalize, UNetOptions, register_family

if TYPE_CHECKING:
    from hub.models.config import TrainConfig


class RegressionOptions(UNetOptions):
    loss: Literal["mse", "l1"] = Field("mse", description="Mean squared or mean absolute error")


@register_family
class UNetRegression(Family):
    """U-Net regressing the card's target channels (each percentile-normalised per image) from its inputs.

    The loss is the mean squared error (``loss: l1`` for the mean absolute error). A recipe's ``channels`` and
    ``targets`` choose among the card's label-free inputs and targets (default: all of them).
    """

    name = "unet-regression"
    task = "label-free"
    Options = RegressionOptions
    opts: RegressionOptions
    label = None
    maps_are_prediction = True

    def channels(self, cfg: TrainConfig, card: DatasetCard) -> tuple[list[str], list[str]]:
        return list(cfg.channels or card.labels.inputs or []), list(cfg.targets or card.labels.targets or [])

    def n_outputs(self, card: DatasetCard, targets: list[str]) -> int:
        return len(targets)

    def outputs(self, card: DatasetCard, targets: list[str]) -> dict:
        return {
            "meaning": "predicted fluorescence, percentile-normalised (p1 -> 0, p99.8 -> 1 of a typical image)",
            "axes": "cyx",
            "channels": list(targets),
        }

    def patches(
        self,
        cfg: TrainConfig,
        path: Path,
        split: str,
        channels: list[str],
        targets: list[str],
        normalize: Normalize,
        augment: bool,
        seed: int,
        n: int | None,
    ) -> torch.utils.data.Dataset:
        from hub.data import LabelFreeDataset

        return LabelFreeDataset(
            path,
            split,
            patch=cfg.patch,
            samples_per_epoch=n,
            normalize=normalize,
            augment=augment,
            seed=seed,
            inputs=channels,
            targets=targets,
            samples=cfg.samples if split == "train" else None,
            intensity=cfg.intensity if split == "train" else None,
        )

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.opts.loss == "l1":
            return F.l1_loss(output, target)
        return F.mse_loss(output, target)

    def postprocess(self, maps: np.ndarray) -> np.ndarray:
        return maps.astype(np.float32)
