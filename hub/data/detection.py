"""Random windows of images with their objects as boxes (and masks), for the bounding-box families (R-CNN).

The objects come from the image's stored boxes (``targets.boxes``: a detection dataset) or from an instance
label image (each instance gives its box and its mask: Mask R-CNN on a segmentation dataset). Items are
``(image, target)``: image float32 (C, P, P), target torchvision's detection dict ``boxes`` float32 (N, 4)
``[x0, y0, x1, y1]``, ``labels`` int64 (N,) = class + 1 (0 is the background of torchvision's heads) and, from
label images, ``masks`` uint8 (N, P, P). A box cut by the window keeps its visible part if at least
:data:`MIN_VISIBLE` of it is inside; difficult boxes are not trained on.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from scipy import ndimage as ndi

from hub.data._patches import PatchDataset, Window
from hub.data._reader import DEFAULT_CACHE_BYTES
from hub.data._transforms import Intensity, Normalize, dihedral, dihedral_boxes, pad_to, random_view
from hub.dataset import Boxes, Dataset

MIN_VISIBLE = 0.4  # fraction of a box's area inside the window for it to count there


def instance_objects(label: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Boxes (N, 4) and masks (N, Y, X) of the instances of a label image, in label order."""
    ids = np.unique(label)
    ids = ids[ids > 0]
    slices = ndi.find_objects(label)
    boxes = np.array(
        [[s[1].start, s[0].start, s[1].stop, s[0].stop] for s in (slices[i - 1] for i in ids)], float
    ).reshape(-1, 4)
    masks = (label[None] == ids[:, None, None]).astype(np.uint8)
    return boxes, masks


def collate(batch: list) -> tuple[list[torch.Tensor], list[dict[str, torch.Tensor]]]:
    """A batch as torchvision's detection models take it: a list of images and a list of target dicts."""
    images, targets = zip(*batch)
    return list(images), list(targets)


class DetectionDataset(PatchDataset):
    """``(image, target)`` random windows of split ``split`` (see the module docstring); ``label``: the
    instance label image to take objects from (``None``: the stored boxes)."""

    def __init__(
        self,
        path: str | Path | Dataset,
        split: str,
        patch: int = 512,
        samples_per_epoch: int | None = None,
        label: str | None = None,
        channels: list[str] | None = None,
        normalize: Normalize = "image",
        augment: bool = False,
        seed: int | None = None,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
        samples: list[str] | None = None,
        intensity: Intensity | None = None,
    ):
        super().__init__(path, split, patch, samples_per_epoch, seed, cache_bytes, samples=samples, intensity=intensity)
        self.label, self.augment = label, augment
        self.select_channels(channels, normalize)
        self.n_classes = len(self.data.card.labels.classes or []) if label is None else 1
        self._boxes: dict[str, Boxes] = {}

    def boxes(self, sample: str) -> Boxes:
        """The stored boxes of a sample, checked (:meth:`Boxes.of_image`), read once."""
        if sample not in self._boxes:
            self._boxes[sample] = Boxes.of_image(self.reader.image(sample), self.n_classes)
        return self._boxes[sample]

    def _window_boxes(self, win: Window) -> tuple[np.ndarray, np.ndarray]:
        b = self.boxes(win.sample)
        keep = ~b.difficult
        xyxy, classes = b.xyxy[keep] - [win.x, win.y, win.x, win.y], b.classes[keep]
        inside = np.clip(xyxy, 0, win.size)
        area = (xyxy[:, 2] - xyxy[:, 0]) * (xyxy[:, 3] - xyxy[:, 1])
        seen = (inside[:, 2] - inside[:, 0]) * (inside[:, 3] - inside[:, 1])
        ok = seen >= MIN_VISIBLE * area
        return inside[ok], classes[ok]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        rng = self.rng(index)
        win = self.window(index, rng)
        image = pad_to(self.vary(rng, self.normalized_window(win, self.normalizer, self.channel_index)), self.patch)
        masks = None
        if self.label is None:
            xyxy, classes = self._window_boxes(win)
        else:
            label = pad_to(self.read_label(win, self.label), self.patch)
            xyxy, masks = instance_objects(label)
            classes = np.zeros(len(xyxy), np.int64)
        if self.augment:
            k, flip = random_view(rng, square=True)
            image = dihedral(image, k, flip)
            xyxy = dihedral_boxes(xyxy, k, flip, image.shape[-2:])
            masks = None if masks is None else dihedral(masks, k, flip)
        target = {
            "boxes": torch.as_tensor(xyxy, dtype=torch.float32).reshape(-1, 4),
            "labels": torch.as_tensor(np.asarray(classes) + 1, dtype=torch.int64),
        }
        if masks is not None:
            target["masks"] = torch.from_numpy(np.ascontiguousarray(masks))
        return torch.from_numpy(np.ascontiguousarray(image)), target
