"""The bounding-box families: torchvision's Faster R-CNN (detection) and Mask R-CNN (instances) on timm backbones.

Built with ``weights=None`` (no download: the backbone is timm's, trained by the hub's loop from scratch or
fine-tuned from a hub model), at a fixed input ``scale`` instead of torchvision's fixed image size, on inputs
normalised like every other family's. Training takes random windows with their boxes (and masks)
(:class:`hub.data.detection.DetectionDataset`); the validation criterion is one minus the task's primary score
on the validation windows, since torchvision's detectors give losses only in training mode.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import numpy as np
import torch
from pydantic import Field, model_validator
from torch import nn

from hub.cards import Architecture, DatasetCard, ModelCard
from hub.models._family import Family, FamilyOptions, Normalize, optional_split, register_family

if TYPE_CHECKING:
    from hub.models.config import TrainConfig
    from hub.models.model import Model


class RcnnOptions(FamilyOptions):
    depth: int = Field(4, ge=2, le=5, description="Encoder stages built (timm features_only), as the U-Net's depth")
    levels: int = Field(3, ge=1, le=5, description="The last encoder stages feeding the feature pyramid")
    fpn_channels: int = Field(64, ge=8, le=512, description="Channels of each pyramid level")
    head_size: int = Field(256, ge=16, le=1024, description="Width of the two-layer box head")
    anchor_sizes: list[int] = Field(
        [16, 32, 64, 128], min_length=2, max_length=6, description="Anchor size per pyramid level (levels + 1)"
    )
    scale: float = Field(1.0, gt=0.05, le=4.0, description="Resize factor of every input image before the network")
    score_threshold: float = Field(0.05, ge=0, le=1, description="Detections below this score are dropped")
    nms_threshold: float = Field(
        0.5, gt=0, le=1, description="IoU above which a lower-scored box of a class is removed"
    )
    max_detections: int = Field(100, ge=1, le=1000, description="Detections kept per image, best first")
    proposals: int = Field(300, ge=10, le=4000, description="Region proposals kept per image after NMS (2x before)")
    roi_samples: int = Field(128, ge=8, le=1024, description="Proposals per image sampled to train the box head")
    mask_threshold: float = Field(0.5, gt=0, lt=1, description="Mask R-CNN: pixels of a mask above this probability")

    @model_validator(mode="after")
    def _pyramid(self) -> Self:
        if self.levels > self.depth:
            raise ValueError(f"levels ({self.levels}) must not exceed depth ({self.depth})")
        if len(self.anchor_sizes) != self.levels + 1:
            raise ValueError(f"anchor_sizes needs levels + 1 = {self.levels + 1} sizes, got {len(self.anchor_sizes)}")
        return self


class _Rcnn(Family):
    """What Faster R-CNN and Mask R-CNN share: network, windows with objects, collation, loss, criterion."""

    Options = RcnnOptions
    opts: RcnnOptions
    tiled = False
    tensor_output = False  # lists of scored boxes (and masks): no bioimage.io package, a Hugging Face card instead
    masks = False
    normalize = "image"
    usage = "prediction = model.predict(image)  # raw (C, Y, X) or (Y, X) array of any size"

    def build(self, arch: Architecture, in_chans: int, n_outputs: int, pretrained: bool = False) -> nn.Module:
        from hub.models.nets import rcnn

        o = self.opts
        return rcnn(
            arch.backbone,
            in_chans,
            n_outputs,
            masks=self.masks,
            fpn_channels=o.fpn_channels,
            depth=o.depth,
            levels=o.levels,
            head_size=o.head_size,
            anchor_sizes=tuple(o.anchor_sizes),
            scale=o.scale,
            norm="batchnorm" in arch.regularization,
            pretrained=pretrained,
            box_score_thresh=o.score_threshold,
            box_nms_thresh=o.nms_threshold,
            box_detections_per_img=o.max_detections,
            rpn_pre_nms_top_n_train=2 * o.proposals,
            rpn_post_nms_top_n_train=o.proposals,
            rpn_pre_nms_top_n_test=2 * o.proposals,
            rpn_post_nms_top_n_test=o.proposals,
            box_batch_size_per_image=o.roi_samples,
        )

    def datasets(
        self, cfg: TrainConfig, path: Path, channels: list[str], targets: list[str], normalize: Normalize
    ) -> tuple[torch.utils.data.Dataset, torch.utils.data.Dataset | None]:
        from hub.data.detection import DetectionDataset

        label = None if not self.masks else (cfg.label or self.label or "instances")

        def make(split: str, augment: bool, seed: int, n: int | None) -> DetectionDataset:
            train = split == "train"  # few-shot samples and intensity changes apply to training windows only
            return DetectionDataset(
                path,
                split,
                cfg.patch,
                n,
                label,
                channels,
                normalize,
                augment=augment,
                seed=seed,
                samples=cfg.samples if train else None,
                intensity=cfg.intensity if train else None,
            )

        n_train = (cfg.steps_per_epoch or 0) * cfg.batch_size or None
        n_val = (cfg.val_batches or 8) * cfg.batch_size
        return make("train", cfg.augment, cfg.seed, n_train), optional_split(
            lambda: make("val", False, cfg.seed + 1, n_val)
        )

    def collate(self, batch: list) -> Any:
        from hub.data.detection import collate

        return collate(batch)

    def train_loss(self, net: nn.Module, x: Any, y: Any, device: torch.device) -> torch.Tensor:
        images = [im.to(device) for im in x]
        targets = [{k: v.to(device) for k, v in t.items()} for t in y]
        losses: dict[str, torch.Tensor] = net(images, targets)
        return torch.stack(list(losses.values())).sum()

    def val_criterion(
        self, net: nn.Module, data: torch.utils.data.Dataset, cfg: TrainConfig, device: torch.device
    ) -> float:
        """One minus the task's primary score of the network on the validation windows (lower is better)."""
        net.eval()
        truths, preds = [], []
        with torch.no_grad():
            for i in range(len(data)):  # type: ignore[arg-type]
                image, target = data[i]
                out = net([image.to(device)])[0]
                truths.append({k: v.numpy() for k, v in target.items()})
                preds.append({k: v.cpu().numpy() for k, v in out.items()})
        return 1.0 - self.window_score(truths, preds, image.shape[-2:], data.n_classes)  # type: ignore[attr-defined]

    def window_score(self, truths: list[dict], preds: list[dict], shape: tuple[int, int], n_classes: int) -> float:
        """The task's primary score of predicted windows (numpy dicts) against their targets (numpy dicts)."""
        raise NotImplementedError

    def raw(self, model: Model, image: np.ndarray, scale: float) -> dict[str, np.ndarray]:
        """The network's detections of one raw image, in the image's pixels (``scale`` multiplies the family's)."""
        x = model.normalize(model.channels_first(image))
        from hub.models.nets import ScaledTransform

        transform = model.net.transform
        assert isinstance(transform, ScaledTransform)  # what hub.models.nets.rcnn builds
        old = transform.scale
        transform.scale = old * scale
        try:
            with torch.no_grad():
                out = model.net([torch.from_numpy(np.ascontiguousarray(x)).to(model.device)])[0]
        finally:
            transform.scale = old
        return {k: v.cpu().numpy() for k, v in out.items()}


@register_family
class FasterRcnn(_Rcnn):
    """Faster R-CNN: region proposals on a feature pyramid, then a box head per class (Ren et al. 2015)."""

    name = "faster-rcnn"
    task = "object-detection"
    label = None
    tuning_metric = "mAP@[.5:.95]"

    def n_outputs(self, card: DatasetCard, targets: list[str]) -> int:
        return len(card.labels.classes or [])

    def outputs(self, card: DatasetCard, targets: list[str]) -> dict:
        return {
            "meaning": "scored boxes: [x0, y0, x1, y1] in the image's pixels, a class and a score each",
            "axes": "nb",
            "classes": list(card.labels.classes or []),
        }

    def output_names(self, card: ModelCard, n: int) -> list[str]:
        return list(card.outputs.classes or [])

    def predict(self, model: Model, image: np.ndarray, scale: float = 1.0) -> Any:
        from hub.metrics import Detections

        out = self.raw(model, image, scale)
        return Detections(out["boxes"].astype(float), out["labels"].astype(np.int64) - 1, out["scores"].astype(float))

    def window_score(self, truths: list[dict], preds: list[dict], shape: tuple[int, int], n_classes: int) -> float:
        from hub.metrics import Detections, DetectionTruth, detection_metrics

        t = [
            DetectionTruth(d["boxes"].astype(float), d["labels"] - 1, np.zeros(len(d["labels"]), bool)) for d in truths
        ]
        p = [Detections(d["boxes"].astype(float), d["labels"] - 1, d["scores"]) for d in preds]
        metrics = detection_metrics(t, p, [str(k) for k in range(n_classes)])["metrics"]
        value = metrics.get(self.tuning_metric)
        return float(value) if value is not None and value >= 0 else 0.0


@register_family
class MaskRcnn(_Rcnn):
    """Mask R-CNN: Faster R-CNN with a mask head per box (He et al. 2017); its masks become an instance label
    image (higher-scored objects painted last, so they win overlaps), scored like every instance family."""

    name = "mask-rcnn"
    task = "instance-segmentation"
    masks = True
    label = "instances"
    tuning_metric = "acc@[.5:.95]"

    def n_outputs(self, card: DatasetCard, targets: list[str]) -> int:
        return 1

    def outputs(self, card: DatasetCard, targets: list[str]) -> dict:
        return {"meaning": "instance label image: 0 background, 1..N one object each", "axes": "yx"}

    def output_names(self, card: ModelCard, n: int) -> list[str]:
        return ["object"]

    def label_image(self, out: dict[str, np.ndarray], shape: tuple[int, ...]) -> np.ndarray:
        """Mask R-CNN output (boxes, scores, masks (N, 1, M, M) probabilities over each box) -> an instance label
        image: each mask resized onto its box's pixels and thresholded, higher scores painted last (they win
        overlaps); memory follows the boxes, not N full-size images."""
        from skimage.segmentation import relabel_sequential
        from skimage.transform import resize

        h, w = shape[-2:]
        label = np.zeros((h, w), np.int32)
        order = np.argsort(out["scores"], kind="stable")  # ascending: the best object is painted last
        for n, i in enumerate(order, 1):
            x0, y0, x1, y1 = out["boxes"][i]
            c0, r0 = max(int(np.floor(x0)), 0), max(int(np.floor(y0)), 0)
            c1, r1 = min(int(np.ceil(x1)), w), min(int(np.ceil(y1)), h)
            if c1 <= c0 or r1 <= r0:
                continue
            prob = resize(out["masks"][i, 0], (r1 - r0, c1 - c0), order=1, preserve_range=True, anti_aliasing=False)
            label[r0:r1, c0:c1][prob > self.opts.mask_threshold] = n
        return relabel_sequential(label)[0]

    def predict(self, model: Model, image: np.ndarray, scale: float = 1.0) -> Any:
        return self.label_image(self.raw(model, image, scale), image.shape)

    def window_score(self, truths: list[dict], preds: list[dict], shape: tuple[int, int], n_classes: int) -> float:
        from hub.models.tuning import instance_score

        def truth(d: dict) -> np.ndarray:
            label = np.zeros(shape, np.int32)
            for n, m in enumerate(d["masks"], 1):
                label[m > 0] = n
            return label

        return instance_score([truth(d) for d in truths], [self.label_image(d, shape) for d in preds])
