"""Instance segmentation: objects matched one-to-one by optimal (Hungarian) assignment on IoU, StarDist convention.

A predicted and a true object match when their IoU >= tau and the assignment pairs them; among assignments the one
with the most matches wins, ties broken by the largest sum of matched IoU (``stardist.matching``). Counts are
pooled over the images of a split before any ratio is taken. IoU comes from a sparse bincount overlap table, and the
assignment is only solved inside the connected groups of candidate pairs (for tau >= 0.5 an object can pass the
threshold with two partners only at IoU exactly 0.5, so almost every group is a single pair).

Agreement with ``stardist.matching.matching_dataset``: identical TP/FP/FN, hence identical precision, recall,
accuracy and F1. StarDist stores IoU as float32, so its IoU sums (panoptic quality, mean_true_score,
mean_matched_score) differ from these float64 ones by float32 rounding (~1e-7); with IoU in float64 it agrees
to the last bit. (Threshold decisions coincide while unions stay below ~8e5 px: closer than that, a float32 IoU
could round onto tau. Below tau = 0.5 StarDist's tie-break also weighs non-matching pairs; ours does not.)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple

import numpy as np

from hub.errors import InvalidInput
from hub.metrics._inputs import check_labels, paired
from hub.metrics._overlap import overlap_table

#: IoU thresholds 0.50, 0.55, ..., 0.95 (exact decimal literals).
TAUS: tuple[float, ...] = tuple(round(0.5 + 0.05 * i, 2) for i in range(10))
_PER_IMAGE_TAUS = (0.5, 0.75, 0.9)


class InstanceCounts(NamedTuple):
    """Matching counts of one image pair, one entry per threshold of ``taus``.

    ``tp``/``sum_iou``: matches and their summed IoU under IoU >= tau; ``tp_strict``: matches under IoU > tau (the
    DSB2018 rule). False positives are ``n_pred - tp``, false negatives ``n_true - tp``.
    """

    taus: tuple[float, ...]
    n_true: int
    n_pred: int
    tp: np.ndarray
    sum_iou: np.ndarray
    tp_strict: np.ndarray


def _assign(ia: np.ndarray, ib: np.ndarray, w: np.ndarray) -> tuple[int, float]:
    """Maximum matching of the candidate pairs (ia[k], ib[k]) with IoU w[k]: (number of matches, sum of their IoU),
    most matches first, then largest IoU sum."""
    if ia.size == 0:
        return 0, 0.0
    if np.bincount(ia).max() == 1 and np.bincount(ib).max() == 1:
        return int(ia.size), float(w.sum())
    from scipy.optimize import linear_sum_assignment  # imported on first use: reading a card needs no scipy
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    na, nb = int(ia.max()) + 1, int(ib.max()) + 1
    graph = coo_matrix((np.ones(ia.size), (ia, ib + na)), shape=(na + nb, na + nb))
    _, comp = connected_components(graph, directed=False)
    edge_comp = comp[ia]
    order = np.argsort(edge_comp, kind="stable")
    bounds = np.flatnonzero(np.diff(edge_comp[order])) + 1
    tp, total = 0, 0.0
    for group in np.split(order, bounds):
        if group.size == 1:
            tp, total = tp + 1, total + float(w[group[0]])
            continue
        rows, ri = np.unique(ia[group], return_inverse=True)
        cols, ci = np.unique(ib[group], return_inverse=True)
        score = np.zeros((rows.size, cols.size))
        score[ri, ci] = w[group]
        gain = np.zeros_like(score)
        gain[ri, ci] = 1.0 + w[group] / (2.0 * (min(rows.size, cols.size) + 1))  # count first, IoU breaks ties
        r, c = linear_sum_assignment(gain, maximize=True)
        ok = gain[r, c] > 0
        tp += int(ok.sum())
        total += float(score[r, c][ok].sum())
    return tp, total


def instance_counts(y_true: np.ndarray, y_pred: np.ndarray, taus: Sequence[float] = TAUS) -> InstanceCounts:
    """Match the objects of one label image pair at each threshold (see the module docstring)."""
    y_true, y_pred = check_labels(y_true, "truth"), check_labels(y_pred, "prediction")
    ov = overlap_table(y_true, y_pred)
    iou = ov.iou()
    taus = tuple(float(t) for t in taus)
    tp, sums, strict = (np.zeros(len(taus), dtype=np.int64), np.zeros(len(taus)), np.zeros(len(taus), dtype=np.int64))
    for k, tau in enumerate(taus):
        keep = iou >= tau
        tp[k], sums[k] = _assign(ov.ia[keep], ov.ib[keep], iou[keep])
        keep = iou > tau
        strict[k] = _assign(ov.ia[keep], ov.ib[keep], iou[keep])[0]
    return InstanceCounts(taus, int(ov.a_labels.size), int(ov.b_labels.size), tp, sums, strict)


def _ratio(num, den):
    """num/den, 0 where num is 0 (StarDist: precision, recall, accuracy and F1 are 0 without a true positive)."""
    num, den = np.asarray(num, dtype=float), np.asarray(den, dtype=float)
    return np.divide(num, den, out=np.zeros(np.broadcast(num, den).shape), where=num > 0)


def _safe(num, den):
    """num/den, 0 where den is 0 (StarDist's ``_safe_divide``)."""
    num, den = np.asarray(num, dtype=float), np.asarray(den, dtype=float)
    return np.divide(num, den, out=np.zeros(np.broadcast(num, den).shape), where=np.abs(den) > 1e-10)


def counts_stats(tp, fp, fn, sum_iou, n_true) -> dict[str, np.ndarray]:
    """StarDist's statistics from counts (arrays over thresholds): precision TP/(TP+FP), recall TP/(TP+FN),
    accuracy TP/(TP+FP+FN), F1 2TP/(2TP+FP+FN) (each 0 without a TP), panoptic quality
    sum IoU/(TP+FP/2+FN/2), mean_true_score sum IoU/n_true, mean_matched_score sum IoU/TP."""
    tp, fp, fn = (np.asarray(v, dtype=float) for v in (tp, fp, fn))
    return {
        "precision": _ratio(tp, tp + fp),
        "recall": _ratio(tp, tp + fn),
        "accuracy": _ratio(tp, tp + fp + fn),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
        "panoptic_quality": _safe(sum_iou, tp + fp / 2 + fn / 2),
        "mean_true_score": _safe(sum_iou, n_true),
        "mean_matched_score": _safe(sum_iou, tp),
    }


def pooled_stats(counts: Sequence[InstanceCounts]) -> list[dict[str, float]]:
    """Per threshold, the counts pooled over images and the statistics of :func:`counts_stats` on them — the fields
    of ``stardist.matching.matching_dataset(..., by_image=False)``."""
    if not counts:
        raise InvalidInput("no images to score")
    taus = counts[0].taus
    tp = np.sum([c.tp for c in counts], axis=0)
    sums = np.sum([c.sum_iou for c in counts], axis=0)
    n_true = sum(c.n_true for c in counts)
    n_pred = sum(c.n_pred for c in counts)
    stats = counts_stats(tp, n_pred - tp, n_true - tp, sums, n_true)
    return [
        {
            "thresh": tau,
            "tp": int(tp[k]),
            "fp": int(n_pred - tp[k]),
            "fn": int(n_true - tp[k]),
            "n_true": n_true,
            "n_pred": n_pred,
            **{name: float(v[k]) for name, v in stats.items()},
        }
        for k, tau in enumerate(taus)
    ]


def dsb_score(c: InstanceCounts) -> float:
    """DSB2018 score of one image: mean over its thresholds of TP/(TP+FP+FN) with matches at IoU > tau (strict).
    An image with neither true nor predicted objects scores 1 (nothing to find, nothing found falsely)."""
    if c.n_true == 0 and c.n_pred == 0:
        return 1.0
    return float(np.mean(c.tp_strict / (c.n_true + c.n_pred - c.tp_strict)))


def _name(metric: str, tau: float) -> str:
    return f"{metric}@{tau:g}"


def _image_scores(c: InstanceCounts) -> dict[str, float]:
    stats = counts_stats(c.tp, c.n_pred - c.tp, c.n_true - c.tp, c.sum_iou, c.n_true)
    out: dict[str, float] = {}
    for k, tau in enumerate(c.taus):
        out[_name("acc", tau)] = float(stats["accuracy"][k])
    if 0.5 in c.taus:
        k = c.taus.index(0.5)
        out.update(
            {
                "precision@0.5": float(stats["precision"][k]),
                "recall@0.5": float(stats["recall"][k]),
                "f1@0.5": float(stats["f1"][k]),
                "pq@0.5": float(stats["panoptic_quality"][k]),
            }
        )
    out["acc@[.5:.95]"] = float(np.mean(stats["accuracy"]))
    out["dsb_score"] = dsb_score(c)
    out.update({"n_true": float(c.n_true), "n_pred": float(c.n_pred)})
    return out


def instance_metrics(y_true: Iterable[np.ndarray], y_pred: Iterable[np.ndarray], taus: Sequence[float] = TAUS) -> dict:
    """Dataset-level instance segmentation metrics of paired label images (truth, prediction).

    Pooled over images (counts summed first, StarDist ``matching_dataset``): ``acc@0.5`` TP/(TP+FP+FN),
    ``precision@0.5``, ``recall@0.5``, ``f1@0.5``, ``pq@0.5`` (panoptic quality), ``acc@T`` for every threshold and
    ``acc@[.5:.95]`` = mean over the thresholds 0.50..0.95 of the pooled accuracy (the primary metric; not "AP").
    Per image then averaged: ``image_acc@0.5/0.75/0.9`` (StarDist ``by_image=True``) and ``dsb_score``.
    Returns ``{"metrics": {...}, "per_sample": [{...} per image]}``.
    """
    return instance_metrics_from_counts([instance_counts(t, p, taus) for t, p in paired(y_true, y_pred, "images")])


def instance_metrics_from_counts(counts: Sequence[InstanceCounts]) -> dict:
    """What :func:`instance_metrics` returns, from the images' counts already made (:func:`instance_counts`, e.g.
    on the workers of a cluster, one image each)."""
    if not counts:
        raise InvalidInput("no images to score")
    pooled = pooled_stats(counts)
    taus = counts[0].taus
    metrics: dict[str, float] = {}
    if 0.5 in taus:
        s = pooled[taus.index(0.5)]
        metrics.update(
            {
                "acc@0.5": s["accuracy"],
                "precision@0.5": s["precision"],
                "recall@0.5": s["recall"],
                "f1@0.5": s["f1"],
                "pq@0.5": s["panoptic_quality"],
            }
        )
    metrics["acc@[.5:.95]"] = float(np.mean([s["accuracy"] for s in pooled]))
    per_sample = [_image_scores(c) for c in counts]
    metrics["dsb_score"] = float(np.mean([s["dsb_score"] for s in per_sample]))
    for tau in _PER_IMAGE_TAUS:
        if tau in taus:
            metrics[_name("image_acc", tau)] = float(np.mean([s[_name("acc", tau)] for s in per_sample]))
    for s in pooled:
        metrics[_name("acc", s["thresh"])] = s["accuracy"]
    return {"metrics": metrics, "per_sample": per_sample}
