"""Augmented microscopy: U-Net image-to-image regression (transmitted light -> fluorescence)."""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from pydantic import Field
from torch.nn import functional as F

from hub.cards import DatasetCard
from hub.models._family import Family, UNetOptions, register_family


class RegressionOptions(UNetOptions):
    loss: Literal["mse", "l1"] = Field("mse", description="Mean squared or mean absolute error")


@register_family
class UNetRegression(Family):
    """U-Net regressing the card's target channels (each percentile-normalised per image) from its inputs.

    The loss is the mean squared error (``loss: l1`` for the mean absolute error).
    """

    name = "unet-regression"
    task = "label-free"
    Options = RegressionOptions
    label = None

    def n_outputs(self, card: DatasetCard) -> int:
        return len(card.labels.targets or [])

    def outputs(self, card: DatasetCard, channels: list[str]) -> dict:
        return {
            "meaning": "predicted fluorescence, percentile-normalised (p1 -> 0, p99.8 -> 1 of a typical image)",
            "axes": "cyx",
            "channels": list(card.labels.targets or []),
        }

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.opts.loss == "l1":
            return F.l1_loss(output, target)
        return F.mse_loss(output, target)

    def postprocess(self, maps: np.ndarray) -> np.ndarray:
        return maps.astype(np.float32)
