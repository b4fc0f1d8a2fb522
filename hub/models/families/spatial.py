"""Spatial embeddings (Neven et al. 2019, the instance method of EmbedSeg): each pixel votes for its object's
centre, and each object learns its own margin.

The network predicts a seed map, a 2-D offset and a margin (sigma) per pixel. A pixel's spatial embedding is its
position plus its offset; an object's pixels are trained to embed near the object's centre, each object scored by
a Gaussian of the embedding's distance to the centre, ``exp(-|e - c|**2 * exp(10 * sigma))``, whose 0.5 level
is learnt as the object's edge (Lovasz hinge on the object's mask, Berman et al. 2018). The seed map learns that
score inside objects and 0 outside. Inference takes the best unclaimed seed, claims the foreground pixels whose
embedding scores above 0.5 around it, and repeats: touching nuclei separate because their pixels point to
different centres, whatever their intensity between them.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from pydantic import Field
from skimage.segmentation import relabel_sequential
from torch.nn import functional as F

from hub.cards import DatasetCard, ModelCard
from hub.models._family import Family, UNetOptions, _named, register_family
from hub.models.families.segmentation import _AREA, _instance_outputs, remove_small

_LN2 = math.log(2.0)


class SpatialEmbeddingOptions(UNetOptions):
    offset_scale: float = Field(
        64.0, gt=0, le=4096, description="Pixels per embedding unit: the longest offset a pixel can vote (tanh)"
    )
    seed_weight: float = Field(10.0, gt=0, le=1000, description="Loss weight of the seed map inside objects")
    threshold: float = Field(0.5, ge=0, le=1, description="Foreground where the seed map exceeds it")
    seed_threshold: float = Field(0.9, ge=0, le=1, description="Smallest seed score that starts an object")
    min_size: float = Field(16.0, ge=0, description=f"Smallest object {_AREA}")


@register_family
class SpatialEmbeddings(Family):
    """U-Net predicting a seed map, a pixel's offset to its object's centre and the object's margin (sigma).

    Channels of the activated maps: ``seed`` (a probability), ``offset_y`` and ``offset_x`` (in units of
    ``offset_scale`` pixels, within [-1, 1]) and ``sigma`` (the log-margin, the same for both axes so that the
    8 test-time views of ``tta`` only turn the offset vectors).
    """

    name = "spatial-embeddings"
    task = "instance-segmentation"
    Options = SpatialEmbeddingOptions
    opts: SpatialEmbeddingOptions
    sizes = {"min_size": 2, "offset_scale": 1}
    tuning_grid = {"threshold": [0.3, 0.4, 0.5], "seed_threshold": [0.6, 0.7, 0.8, 0.9]}
    bioimageio_note = (
        " (the package holds the maps: seed, offsets to the centre in units of offset_scale pixels, sigma; "
        "hub.models.families.spatial.cluster_seeds turns them into instance labels)"
    )

    def out_channels(self, n_outputs: int) -> int:
        return 4

    def outputs(self, card: DatasetCard, targets: list[str]) -> dict:
        return _instance_outputs(card)

    def output_names(self, card: ModelCard, n: int) -> list[str]:
        return _named(["seed", "offset_y", "offset_x", "sigma"], n)

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        grid = _grid(output.shape[-2:], self.opts.offset_scale, output.device, output.dtype)
        terms = [spatial_embedding_loss(o, t, grid, self.opts.seed_weight) for o, t in zip(output, target)]
        return torch.stack(terms).mean()

    def activate(self, output: torch.Tensor) -> torch.Tensor:
        return torch.cat([output[:, :1].sigmoid(), output[:, 1:3].tanh(), output[:, 3:]], 1)

    def turn_back(self, y: torch.Tensor, k: int, flip: bool) -> torch.Tensor:
        """Maps of a view (rotated by ``k`` quarter turns, then flipped if ``flip``) in the image's orientation:
        the offset vectors turn with the pixels."""
        y = super().turn_back(y, k, flip)
        oy, ox = y[:, 1], y[:, 2]
        if flip:
            ox = -ox
        for _ in range(k % 4):  # undo one counter-clockwise quarter turn: (dy, dx) -> (dx, -dy)
            oy, ox = ox, -oy
        return torch.cat([y[:, :1], oy[:, None], ox[:, None], y[:, 3:]], 1)

    def postprocess(self, maps: np.ndarray) -> np.ndarray:
        return cluster_seeds(
            maps,
            self.opts.offset_scale,
            threshold=self.opts.threshold,
            seed_threshold=self.opts.seed_threshold,
            min_size=round(self.opts.min_size),
        )


def _grid(shape: tuple[int, ...], scale: float, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32):
    """Pixel coordinates (2, Y, X) in embedding units (``scale`` pixels each)."""
    ys = torch.arange(shape[0], device=device, dtype=dtype) / scale
    xs = torch.arange(shape[1], device=device, dtype=dtype) / scale
    return torch.stack(torch.meshgrid(ys, xs, indexing="ij"))


def lovasz_hinge(logits: torch.Tensor, labels: torch.Tensor, tolerance: float = 1e-3) -> torch.Tensor:
    """Lovasz hinge of each row (Berman et al. 2018): a convex surrogate of 1 - IoU. ``logits`` (K, N) real,
    ``labels`` (K, N) in {0, 1} -> (K,).

    Columns whose hinge error is below ``tolerance`` in every row are left out of the sort: they come last in
    every row's order, so the loss differs from the exact one by less than ``tolerance`` (far background and
    confident object centres, most of a patch once training has begun).
    """
    errors = 1.0 - logits * (2.0 * labels - 1.0)
    total = labels.sum(1, keepdim=True)
    keep = (errors.detach() >= tolerance).any(0)
    errors, labels = errors[:, keep], labels[:, keep]
    errors_sorted, perm = torch.sort(errors, dim=1, descending=True)
    gt = labels.gather(1, perm)
    jaccard = 1.0 - (total - gt.cumsum(1)) / (total + (1.0 - gt).cumsum(1))
    grad = torch.cat([jaccard[:, :1], jaccard[:, 1:] - jaccard[:, :-1]], 1)
    return (F.relu(errors_sorted) * grad).sum(1)


def spatial_embedding_loss(output: torch.Tensor, label: torch.Tensor, grid: torch.Tensor, seed_weight: float):
    """Loss of one image: raw output (4, Y, X), instance labels (Y, X), pixel coordinates ``grid`` (2, Y, X).

    Per object: the Lovasz hinge of its Gaussian score around its centre (the mean of its pixels' coordinates)
    against its mask, and the variance of sigma over its pixels (10x); the seed map's squared error against 0
    outside objects and against the (fixed) score of each pixel's own object inside, ``seed_weight`` x, per pixel.
    """
    seed = output[0].sigmoid().flatten()
    emb = (output[1:3].tanh() + grid).flatten(1)
    sigma = output[3].flatten()
    lab = label.flatten()
    ids, inverse = torch.unique(lab, return_inverse=True)
    background = lab == 0
    seed_loss = (seed[background] ** 2).sum()
    if not bool((~background).any()):
        return seed_loss / lab.numel() + output[1:].sum() * 0
    first = 1 if int(ids[0]) == 0 else 0  # row 0 of the one-hot is the background
    masks = F.one_hot(inverse, len(ids)).T[first:].to(output.dtype)  # (K, N)
    counts = masks.sum(1)
    centres = masks @ grid.flatten(1).T / counts[:, None]  # (K, 2)
    s = masks @ sigma / counts  # (K,)
    var = (masks * (sigma[None] - s.detach()[:, None]) ** 2).sum(1) / counts
    d2 = ((emb[None] - centres[:, :, None]) ** 2).sum(1)  # (K, N)
    score = torch.exp(-d2 * torch.exp(10 * s)[:, None])
    instance = lovasz_hinge(2 * score - 1, masks)
    own = (score * masks).sum(0).detach()
    seed_loss = seed_loss + seed_weight * ((seed - own)[~background] ** 2).sum()
    return instance.mean() + 10 * var.mean() + seed_loss / lab.numel()


def cluster_seeds(
    maps: np.ndarray, offset_scale: float, threshold: float, seed_threshold: float, min_size: int
) -> np.ndarray:
    """Instance labels (Y, X) from activated maps (seed, offset_y, offset_x, sigma): foreground pixels (seed
    above ``threshold``) are claimed object by object, each from the unclaimed pixel of highest seed (at least
    ``seed_threshold``): the pixels whose embedding scores above 0.5 around its embedding, with its sigma. A claim
    of fewer than ``min_size`` pixels, or mostly of pixels already claimed, makes no object."""
    seed = maps[0]
    mask = seed > threshold
    labels = np.zeros(seed.shape, np.int32)
    if not mask.any():
        return labels
    ys, xs = np.nonzero(mask)  # row by row: the pixels of a band of rows are one slice
    offsets = np.clip(maps[1:3][:, mask], -1, 1)  # the window below relies on |offset| <= 1 unit
    emb = (np.stack([ys, xs]) / offset_scale + offsets).T.astype(np.float32)
    seeds = seed[mask]
    radius2 = _LN2 / np.exp(10 * maps[3][mask].astype(np.float64))  # score > 0.5 <=> |e - c|**2 < radius2
    free = np.ones(len(emb), bool)
    claimed = np.zeros(len(emb), np.int32)
    k = 0
    starts = np.flatnonzero(seeds >= seed_threshold)
    for p in starts[np.argsort(-seeds[starts], kind="stable")]:
        if not free[p]:
            continue
        # a pixel within reach lies at most 1 unit (its offset) + the radius from the centre on each axis
        reach = (1 + np.sqrt(radius2[p])) * offset_scale
        (cy, cx) = emb[p] * offset_scale
        lo = np.searchsorted(ys, math.ceil(cy - reach), "left")
        hi = np.searchsorted(ys, math.floor(cy + reach), "right")
        window = lo + np.flatnonzero(np.abs(xs[lo:hi] - cx) <= reach)
        near = window[((emb[window] - emb[p]) ** 2).sum(1) < radius2[p]]
        near_free = near[free[near]]
        free[p] = False
        if len(near) >= max(min_size, 1) and 2 * len(near_free) > len(near):
            k += 1
            claimed[near_free] = k
        free[near] = False
    labels[mask] = claimed
    labels = remove_small(labels, min_size)  # objects left small by earlier claims
    return relabel_sequential(labels)[0].astype(np.int32)
