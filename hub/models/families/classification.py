"""Image classification: a timm classifier over whole crops, any number of input channels."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal, cast

import numpy as np
import torch
from pydantic import Field
from torch import nn
from torch.nn import functional as F

from hub.cards import Architecture, DatasetCard
from hub.errors import InvalidInput
from hub.models._family import Family, FamilyOptions, Normalize, optional_split, register_family

if TYPE_CHECKING:
    from hub.data import ClassificationDataset
    from hub.models.config import TrainConfig


class ClassifierOptions(FamilyOptions):
    output_stride: Literal[8, 16, 32] | None = Field(
        None, description="Dilate the last stages instead of striding them (see hub.models.nets.classifier)"
    )


@register_family
class Classifier(Family):
    """A timm classifier (``drop_rate`` = the card's dropout); outputs class probabilities.

    Option ``output_stride`` (8/16): see :func:`hub.models.nets.classifier`. Trains on whole crops, normalised by
    the train split's statistics unless the recipe says otherwise; ``class_weighting`` weighs the loss
    (``balanced``) or resamples the crops (``resample``).
    """

    name = "classifier"
    task = "classification"
    Options = ClassifierOptions
    opts: ClassifierOptions
    tiled = False
    label = None
    probabilities = True
    normalize = "dataset"
    maps_are_prediction = True

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

    def n_outputs(self, card: DatasetCard, targets: list[str]) -> int:
        return len(card.labels.classes or [])

    def outputs(self, card: DatasetCard, targets: list[str]) -> dict:
        return {"meaning": "class probabilities (softmax)", "axes": "k", "classes": list(card.labels.classes or [])}

    def datasets(
        self, cfg: TrainConfig, path: Path, channels: list[str], targets: list[str], normalize: Normalize
    ) -> tuple[torch.utils.data.Dataset, torch.utils.data.Dataset | None]:
        """Every crop of the train split; of val, ``val_batches`` batches evenly spaced (default: all)."""
        from hub.data import ClassificationDataset

        if cfg.samples is not None:
            raise InvalidInput("samples: the classifier trains on every crop of the train split (no sample list)")

        def make(split: str, augment: bool) -> ClassificationDataset:
            intensity = cfg.intensity if split == "train" else None
            return ClassificationDataset(
                path, split, channels=channels, normalize=normalize, augment=augment, seed=cfg.seed, intensity=intensity
            )

        train_set = make("train", cfg.augment)
        val_set = optional_split(lambda: make("val", False))
        if val_set is None or not cfg.val_batches:
            return train_set, val_set
        n = min(len(val_set), cfg.val_batches * cfg.batch_size)  # an evenly spaced subset of the split
        return train_set, torch.utils.data.Subset(
            val_set, np.linspace(0, len(val_set) - 1, n).round().astype(int).tolist()
        )

    def sampler(
        self, cfg: TrainConfig, data: torch.utils.data.Dataset, generator: torch.Generator
    ) -> torch.utils.data.Sampler | None:
        """``balanced``: the loss weighs each class by its inverse frequency; ``resample``: crops are drawn with
        replacement, each class equally often."""
        if cfg.class_weighting == "none":
            return None
        crops = cast("ClassificationDataset", data)  # what datasets() made
        targets = np.asarray(crops.targets)
        counts = np.bincount(targets, minlength=self.n_outputs(crops.data.card, [])).astype(np.float64)
        if cfg.class_weighting == "balanced":
            weight = counts.sum() / (len(counts) * np.maximum(counts, 1))
            self.class_weight = torch.tensor(weight, dtype=torch.float32)
            return None
        return torch.utils.data.WeightedRandomSampler(1.0 / counts[targets], len(targets), generator=generator)

    @torch.no_grad()
    def per_class_recall(
        self, net: nn.Module, data: torch.utils.data.Dataset | None, device: torch.device, card: DatasetCard
    ) -> dict[str, float] | None:
        if data is None:
            return None
        net.eval()
        preds, truth = [], []
        for x, y in torch.utils.data.DataLoader(data, batch_size=64, shuffle=False):
            preds.append(net(x.to(device)).argmax(1).cpu().numpy())
            truth.append(np.asarray(y))
        p, t = np.concatenate(preds), np.concatenate(truth)
        classes = card.labels.classes or []
        return {c: float((p[t == k] == k).mean()) if (t == k).any() else float("nan") for k, c in enumerate(classes)}

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        weight = None if self.class_weight is None else self.class_weight.to(output.device)
        return F.cross_entropy(output, target, weight=weight)

    def activate(self, output: torch.Tensor) -> torch.Tensor:
        return output.softmax(1)

    def postprocess(self, maps: np.ndarray) -> np.ndarray:
        return maps
