"""Image classification: a timm classifier over whole crops, any number of input channels."""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from pydantic import Field
from torch import nn
from torch.nn import functional as F

from hub.cards import Architecture, DatasetCard
from hub.models._family import Family, FamilyOptions, register_family


class ClassifierOptions(FamilyOptions):
    output_stride: Literal[8, 16, 32] | None = Field(
        None, description="Dilate the last stages instead of striding them (see hub.models.nets.classifier)"
    )


@register_family
class Classifier(Family):
    """A timm classifier (``drop_rate`` = the card's dropout); outputs class probabilities.

    Option ``output_stride`` (8/16): see :func:`hub.models.nets.classifier`.
    """

    name = "classifier"
    task = "classification"
    Options = ClassifierOptions
    tiled = False
    label = None

    def __init__(self, options=None, source=None):
        super().__init__(options, source)
        self.class_weight: torch.Tensor | None = None  # set by training for class weighting

    def build(self, arch: Architecture, in_chans: int, n_outputs: int, pretrained: bool = False) -> nn.Module:
        from hub.models.nets import classifier

        return classifier(
            arch.backbone,
            in_chans,
            n_outputs,
            dropout=arch.dropout,
            pretrained=pretrained,
            output_stride=self.opts.output_stride,
        )

    def n_outputs(self, card: DatasetCard) -> int:
        return len(card.labels.classes or [])

    def outputs(self, card: DatasetCard, channels: list[str]) -> dict:
        return {"meaning": "class probabilities (softmax)", "axes": "k", "classes": list(card.labels.classes or [])}

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        weight = None if self.class_weight is None else self.class_weight.to(output.device)
        return F.cross_entropy(output, target, weight=weight)

    def activate(self, output: torch.Tensor) -> torch.Tensor:
        return output.softmax(1)

    def postprocess(self, maps: np.ndarray) -> np.ndarray:
        return maps
