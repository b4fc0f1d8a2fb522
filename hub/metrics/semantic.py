"""Semantic segmentation: per-image foreground Dice and IoU with the nnU-Net rule, and dataset-pooled Dice."""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence

import numpy as np

from hub.errors import InvalidInput
from hub.metrics._inputs import check_labels, paired


def class_counts(y_true: np.ndarray, y_pred: np.ndarray, classes: Sequence[int]) -> np.ndarray:
    """(len(classes), 3) integer array of per-class pixel counts: true positives, |truth|, |prediction|."""
    y_true, y_pred = check_labels(y_true, "truth"), check_labels(y_pred, "prediction")
    if y_true.shape != y_pred.shape:
        raise InvalidInput(f"truth and prediction differ in shape: {y_true.shape} vs {y_pred.shape}")
    classes = np.asarray(classes, dtype=np.int64)
    top = int(max(classes.max(initial=0), y_true.max(initial=0), y_pred.max(initial=0))) + 1
    t, p = y_true.ravel().astype(np.int64), y_pred.ravel().astype(np.int64)
    n_true = np.bincount(t, minlength=top)[classes]
    n_pred = np.bincount(p, minlength=top)[classes]
    hit = np.bincount(t[t == p], minlength=top)[classes]
    return np.stack([hit, n_true, n_pred], axis=1)


def _dice_iou(c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Dice 2TP/(|T|+|P|) and IoU TP/(|T|+|P|-TP) per class; NaN where the class is absent from both."""
    hit, n_true, n_pred = (c[..., k].astype(float) for k in range(3))
    den = n_true + n_pred
    with np.errstate(invalid="ignore", divide="ignore"):
        dice = np.where(den > 0, 2 * hit / den, np.nan)
        iou = np.where(den > 0, hit / (den - hit), np.nan)
    return dice, iou


def _nanmean(x, axis=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices are NaN by design
        return np.nanmean(x, axis=axis)


def semantic_metrics(
    y_true: Iterable[np.ndarray], y_pred: Iterable[np.ndarray], classes: Sequence[int] | None = None
) -> dict:
    """Dataset-level semantic segmentation metrics of paired class maps (0 = background, 1..K foreground).

    nnU-Net rule, per image and foreground class: Dice = 2|T∩P|/(|T|+|P|), NaN (skipped) when the class is absent
    from both truth and prediction, 0 when absent from truth but predicted. ``dice`` = mean over foreground classes
    of the NaN-mean over images; ``iou`` the same with |T∩P|/|T∪P|; ``dice_pooled`` = mean over classes of Dice on
    pixel counts summed over images. Per class: ``dice/<c>``, ``iou/<c>``. ``classes`` defaults to every non-zero
    value seen in truths and predictions. Per image: ``dice`` and ``iou`` (NaN-mean over its classes).
    """
    pairs = list(paired(y_true, y_pred, "images"))
    if classes is None:
        seen = set()
        for t, p in pairs:
            seen.update(np.unique(t).tolist())
            seen.update(np.unique(p).tolist())
        classes = sorted(int(c) for c in seen if c != 0)
        if not classes:
            raise InvalidInput("no foreground class in truth or prediction; pass classes explicitly")
    classes = [int(c) for c in classes]
    if 0 in classes:
        raise InvalidInput("class 0 is background; list foreground classes only")
    return semantic_metrics_from_counts([class_counts(t, p, classes) for t, p in pairs], classes)


def semantic_metrics_from_counts(per_image: Sequence[np.ndarray], classes: Sequence[int]) -> dict:
    """What :func:`semantic_metrics` returns, from the images' :func:`class_counts` of ``classes`` already made
    (e.g. on the workers of a cluster, one image each)."""
    if not len(per_image):
        raise InvalidInput("no images to score")
    counts = np.stack(per_image)  # (images, classes, 3)
    dice, iou = _dice_iou(counts)
    class_dice, class_iou = _nanmean(dice, axis=0), _nanmean(iou, axis=0)
    pooled_dice, _ = _dice_iou(counts.sum(axis=0))
    metrics = {
        "dice": float(_nanmean(class_dice)),
        "iou": float(_nanmean(class_iou)),
        "dice_pooled": float(_nanmean(pooled_dice)),
    }
    for k, c in enumerate(classes):
        metrics[f"dice/{c}"] = float(class_dice[k])
        metrics[f"iou/{c}"] = float(class_iou[k])
    per_sample = [{"dice": float(_nanmean(d)), "iou": float(_nanmean(j))} for d, j in zip(dice, iou)]
    return {"metrics": metrics, "per_sample": per_sample}
