"""Segmentation families: semantic U-Net, deep watershed and pixel embeddings (instances)."""

from __future__ import annotations

import numpy as np
import torch
from pydantic import Field
from scipy import ndimage as ndi
from skimage.segmentation import find_boundaries, relabel_sequential, watershed
from torch.nn import functional as F

from hub.cards import DatasetCard, ModelCard
from hub.models._family import Family, UNetOptions, _named, register_family

_AREA = "in pixels (an area: scaled by 1 / scale**2 at inference on a resized image)"


class WatershedOptions(UNetOptions):
    boundary_width: int = Field(1, ge=1, le=16, description="Width of the boundary class (each object's inner rim)")
    boundary_weight: float = Field(2.0, gt=0, le=100, description="Loss weight of the boundary class")
    threshold: float = Field(0.5, ge=0, le=1, description="Foreground where 1 - P(background) exceeds it")
    seed_threshold: float = Field(0.5, ge=0, le=1, description="Seeds where P(interior) exceeds it")
    min_seed: float = Field(4.0, ge=0, description=f"Smallest seed {_AREA}")
    min_size: float = Field(16.0, ge=0, description=f"Smallest object {_AREA}")


class EmbeddingOptions(UNetOptions):
    embedding_dim: int = Field(8, ge=1, le=64, description="Embedding channels per pixel")
    delta_v: float = Field(0.5, gt=0, le=100, description="Pull margin of the discriminative loss")
    delta_d: float = Field(1.5, gt=0, le=100, description="Push margin of the discriminative loss")
    bandwidth: float = Field(1.0, gt=0, le=1000, description="Mean-shift kernel radius in embedding space")
    threshold: float = Field(0.5, ge=0, le=1, description="Foreground where P(foreground) exceeds it")
    min_size: float = Field(16.0, ge=0, description=f"Smallest object {_AREA}")


@register_family
class SemanticUNet(Family):
    """U-Net predicting one class per pixel (foreground / background for instance-labelled data)."""

    name = "unet"
    task = "semantic-segmentation"
    probabilities = True

    def n_outputs(self, card: DatasetCard, targets: list[str]) -> int:
        return len(card.labels.semantic or {0: "background", 1: "foreground"})

    def outputs(self, card: DatasetCard, targets: list[str]) -> dict:
        classes = card.labels.semantic or {0: "background", 1: "foreground"}
        return {
            "meaning": "semantic label image: one class index per pixel",
            "axes": "yx",
            "classes": [classes[k] for k in sorted(classes)],
        }

    def target(self, label: np.ndarray) -> np.ndarray:
        return (label > 0).astype(np.int64)

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(output, target)

    def activate(self, output: torch.Tensor) -> torch.Tensor:
        return output.softmax(1)

    def postprocess(self, maps: np.ndarray) -> np.ndarray:
        return maps.argmax(0).astype(np.uint8)


def remove_small(labels: np.ndarray, min_size: int) -> np.ndarray:
    """Labels with fewer than ``min_size`` pixels set to background (in place; returned)."""
    small = np.bincount(labels.ravel()) < min_size
    small[0] = False
    labels[small[labels]] = 0
    return labels


def _instance_outputs(card: DatasetCard) -> dict:
    return {"meaning": "instance label image: 0 background, 1..N one object each", "axes": "yx"}


@register_family
class DeepWatershed(Family):
    """Three-class U-Net (background / interior / boundary) followed by a seeded watershed.

    The boundary class is each object's inner rim, ``boundary_width`` pixels wide (default 1).
    Seeds are the connected interior regions above ``seed_threshold`` (at least ``min_seed`` pixels); they
    grow by watershed on the interior probability into the foreground (1 - P(background) > ``threshold``).
    """

    name = "deep-watershed"
    task = "instance-segmentation"
    Options = WatershedOptions
    opts: WatershedOptions
    sizes = {"min_seed": 2, "min_size": 2}
    tuning_grid = {"threshold": [0.4, 0.5, 0.6], "seed_threshold": [0.5, 0.6, 0.7, 0.8], "min_seed": [4, 16, 64]}
    probabilities = True

    def out_channels(self, n_outputs: int) -> int:
        return 3

    def outputs(self, card: DatasetCard, targets: list[str]) -> dict:
        return _instance_outputs(card)

    def output_names(self, card: ModelCard, n: int) -> list[str]:
        return _named(["background", "interior", "boundary"], n)

    def target(self, label: np.ndarray) -> np.ndarray:
        boundary = find_boundaries(label, mode="inner")
        width = self.opts.boundary_width
        if width > 1:  # thicker rims keep the interiors of tightly packed cells (rods, dense nuclei) apart
            boundary = ndi.binary_dilation(boundary, iterations=width - 1)
        boundary &= label > 0
        return np.where(boundary, 2, (label > 0).astype(np.int64))

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        weight = torch.tensor([1.0, 1.0, self.opts.boundary_weight], device=output.device)
        return F.cross_entropy(output, target, weight=weight)

    def activate(self, output: torch.Tensor) -> torch.Tensor:
        return output.softmax(1)

    def postprocess(self, maps: np.ndarray) -> np.ndarray:
        foreground = (1 - maps[0]) > self.opts.threshold
        interior = maps[1]
        seeds, _ = ndi.label(interior > self.opts.seed_threshold)
        seeds = remove_small(seeds, round(self.opts.min_seed))
        labels = watershed(-interior, seeds, mask=foreground)
        labels = remove_small(labels, round(self.opts.min_size))
        return relabel_sequential(labels)[0].astype(np.int32)


@register_family
class Embeddings(Family):
    """U-Net predicting a foreground logit and a pixel embedding trained with the discriminative loss.

    De Brabandere et al. 2017: pixels are pulled within ``delta_v`` of their instance's mean embedding and
    instance means pushed ``2 * delta_d`` apart. Inference clusters foreground pixels by mean shift with a
    flat kernel of radius ``bandwidth`` (greedy, seeded in a fixed random order) and splits clusters into connected
    components, so touching cells separate and distant look-alikes do not merge.
    """

    name = "embeddings"
    task = "instance-segmentation"
    Options = EmbeddingOptions
    opts: EmbeddingOptions
    sizes = {"min_size": 2}
    tuning_grid = {"threshold": [0.5, 0.6, 0.7], "bandwidth": [1.0, 2.0, 3.0, 4.0, 6.0]}

    @property
    def dim(self) -> int:
        return self.opts.embedding_dim

    def out_channels(self, n_outputs: int) -> int:
        return 1 + self.dim

    def outputs(self, card: DatasetCard, targets: list[str]) -> dict:
        return _instance_outputs(card)

    def output_names(self, card: ModelCard, n: int) -> list[str]:
        return _named(["foreground"] + [f"embedding{i}" for i in range(1, n)], n)

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        fg = F.binary_cross_entropy_with_logits(output[:, 0], (target > 0).float())
        dv, dd = self.opts.delta_v, self.opts.delta_d
        terms = [discriminative_loss(e, t, dv, dd) for e, t in zip(output[:, 1:], target)]
        return fg + torch.stack(terms).mean()

    def activate(self, output: torch.Tensor) -> torch.Tensor:
        return torch.cat([output[:, :1].sigmoid(), output[:, 1:]], 1)

    def postprocess(self, maps: np.ndarray) -> np.ndarray:
        foreground = maps[0] > self.opts.threshold
        clusters = cluster_embeddings(maps[1:], foreground, self.opts.bandwidth)
        labels = np.zeros(foreground.shape, np.int32)
        n = 0
        for k in range(1, int(clusters.max()) + 1):
            parts, m = ndi.label(clusters == k)
            labels[parts > 0] = parts[parts > 0] + n
            n += m
        labels = remove_small(labels, round(self.opts.min_size))
        return relabel_sequential(labels)[0].astype(np.int32)


def discriminative_loss(
    emb: torch.Tensor, label: torch.Tensor, delta_v: float, delta_d: float, gamma: float = 1e-3
) -> torch.Tensor:
    """Variance + distance + regularisation terms for one image: ``emb`` (E, Y, X), ``label`` (Y, X)."""
    e = emb.flatten(1)
    lab = label.flatten()
    fg = lab > 0
    if not bool(fg.any()):
        return emb.sum() * 0
    ids, inverse = torch.unique(lab[fg], return_inverse=True)
    k = len(ids)
    ef = e[:, fg]
    counts = torch.bincount(inverse, minlength=k).to(e.dtype)
    means = torch.zeros(e.shape[0], k, device=e.device, dtype=e.dtype).index_add_(1, inverse, ef) / counts
    pull = F.relu((ef - means[:, inverse]).norm(dim=0) - delta_v) ** 2
    var = (torch.zeros(k, device=e.device, dtype=e.dtype).index_add_(0, inverse, pull) / counts).mean()
    if k > 1:
        d = torch.cdist(means.T, means.T)
        off = ~torch.eye(k, dtype=torch.bool, device=e.device)
        dist = (F.relu(2 * delta_d - d[off]) ** 2).mean()
    else:
        dist = e.sum() * 0
    return var + dist + gamma * means.norm(dim=0).mean()


def cluster_embeddings(emb: np.ndarray, mask: np.ndarray, bandwidth: float, iterations: int = 5) -> np.ndarray:
    """Greedy flat-kernel mean shift of the embeddings ``emb`` (E, Y, X) under ``mask`` -> cluster ids."""
    out = np.zeros(mask.shape, np.int32)
    points = emb[:, mask].T.astype(np.float32)
    free = np.ones(len(points), bool)
    assigned = np.zeros(len(points), np.int32)
    order = np.random.default_rng(0).permutation(len(points))
    cursor, k = 0, 0
    while free.any():
        while not free[order[cursor]]:
            cursor += 1
        centre = points[order[cursor]]
        idx = np.flatnonzero(free)
        for _ in range(iterations):
            near = idx[np.linalg.norm(points[idx] - centre, axis=1) < bandwidth]
            if len(near) == 0:
                break
            centre = points[near].mean(0)
        near = idx[np.linalg.norm(points[idx] - centre, axis=1) < bandwidth]
        if len(near) == 0:  # a lone outlier pixel: its own cluster
            near = np.array([order[cursor]])
        k += 1
        assigned[near] = k
        free[near] = False
    out[mask] = assigned
    return out
