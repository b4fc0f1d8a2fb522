"""Object detection: COCO's bounding-box AP and AR, computed exactly as ``pycocotools`` ``COCOeval`` does.

Boxes are ``[x0, y0, x1, y1]`` in continuous pixels (COCO's ``[x, y, w, h]`` is ``[x0, y0, x1 - x0, y1 - y0]``),
area ``w * h``. :func:`detection_metrics` equals ``COCOeval(gt, dt, "bbox")`` with area range ``all`` and the
``max_dets`` limit (``params.maxDets = [1, 10, max_dets]``): ``mAP@[.5:.95]`` (``stats[0]``), ``mAP@0.5``
(``stats[1]``), ``mAP@0.75`` (``stats[2]``), ``AR@<max_dets>`` (``stats[8]``, ``AR@100`` by default), and per class
``AP/<name>`` = mean of ``precision[:, :, k, 0, -1]`` over its entries > -1 (the usual per-class AP from COCOeval)
and ``AP50/<name>`` = the same at IoU 0.5. The steps, as in ``COCOeval.evaluateImg`` and ``accumulate``:

- Per image and class, detections sorted by score, highest first (stable mergesort, so ties keep input order),
  cut at ``max_dets``; truths sorted with the non-ignored first (stable). IoU is COCO's box IoU
  (``maskUtils.iou``: ``w * h`` areas, no +1, computed from ``x0 + w`` as pycocotools does).
- At each IoU threshold ``np.linspace(.5, .95, 10)`` (pycocotools' values: the 9th is 0.8999999999999999), each
  detection in turn takes the unmatched truth with the highest IoU >= ``min(t, 1 - 1e-10)`` (the last one on
  ties), a non-ignored truth before any ignored one. A detection matched to an ignored truth, or unmatched with
  an area outside ``[0, 1e10]`` (the ``all`` range), is ignored: neither TP nor FP. A truth with an area outside
  that range is ignored as well.
- Per class, the detections of all images are concatenated in image order and mergesorted by score; cumulative
  TP and FP give recall ``TP/n`` (n: non-ignored truths) and precision ``TP/(TP + FP + eps)``, made monotone from
  the right and read at the 101 recall thresholds ``np.linspace(0, 1, 101)`` (``searchsorted``, side left; 0
  beyond the last recall reached). Recall is the last recall (0 without detections).
- A class without any non-ignored truth has no AP or AR (pycocotools: -1) and is left out of the means. Where
  pycocotools reports -1 this suite reports NaN: ``AP/<name>`` of such a class, and every metric when no class
  has a truth box (as elsewhere in CellHub, NaN means "not defined here", never a score).

Ignored truths: a truth box with ``ignore=True`` (VOC's ``difficult``) is treated like COCOeval's ignored ground
truth, with the standard IoU (not the crowd IoU). pycocotools itself cannot take such a flag (its ``_prepare``
overwrites ``ignore`` with ``iscrowd``), so the two agree exactly when no box is ignored, and with ignored boxes
they agree with a COCOeval whose ``_prepare`` keeps the flag (``iscrowd`` 0).

The computation is split for a cheap bootstrap over images: :func:`detection_matches` matches one image once
(:class:`ImageMatches`), and :func:`accumulate` turns any list of them (a resample, repeats allowed) into the
metrics. The per-image scores (``per_sample``) are listed in :func:`detection_metrics`. Malformed input raises
:class:`BadDetections`, an :class:`~hub.errors.InvalidInput` that is also a :class:`ValueError`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from hub.errors import InvalidInput

#: IoU thresholds of COCOeval, bit for bit (``np.linspace``, not decimal literals).
IOU_THRESHOLDS: np.ndarray = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True)
#: Recall thresholds at which precision is read (COCOeval's ``recThrs``).
RECALL_THRESHOLDS: np.ndarray = np.linspace(0.0, 1.0, int(np.round((1.0 - 0.0) / 0.01)) + 1, endpoint=True)
_T50 = int(np.flatnonzero(IOU_THRESHOLDS == 0.5)[0])
_T75 = int(np.flatnonzero(IOU_THRESHOLDS == 0.75)[0])
_MATCH_THRESHOLDS = [min(float(t), 1 - 1e-10) for t in IOU_THRESHOLDS]
_AREA_ALL = (0.0**2, 1e5**2)  # COCOeval's areaRng "all"


class BadDetections(InvalidInput, ValueError):
    """A truth or prediction that cannot be scored (a :class:`ValueError` too, for callers outside CellHub)."""


class DetectionTruth(NamedTuple):
    """Truth boxes of one image: ``xyxy`` (N, 4), ``classes`` (N,) integers in 0..K-1, ``ignore`` (N,) bool
    (None: none ignored)."""

    xyxy: Any
    classes: Any
    ignore: Any = None


class Detections(NamedTuple):
    """Predicted boxes of one image: ``xyxy`` (M, 4), ``classes`` (M,) integers in 0..K-1, ``scores`` (M,)."""

    xyxy: Any
    classes: Any
    scores: Any


class ImageMatches(NamedTuple):
    """One image matched at every IoU threshold of :data:`IOU_THRESHOLDS` (what :func:`accumulate` needs).

    ``classes``/``scores``: the detections kept (the ``max_dets`` best of each class), grouped by class and best
    first within a class; ``tp``/``fp`` (T, D) bool: each one a true or a false positive at threshold t (both False:
    ignored); ``n_gt`` (K,): non-ignored truth boxes per class; ``n_pred``: predictions given, before the cut.
    """

    max_dets: int
    classes: np.ndarray
    scores: np.ndarray
    tp: np.ndarray
    fp: np.ndarray
    n_gt: np.ndarray
    n_pred: int


def _boxes(x: Any, who: str) -> np.ndarray:
    try:
        xyxy = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise BadDetections(f"{who} boxes are not numbers") from None
    if xyxy.size == 0:
        return np.zeros((0, 4))
    if xyxy.ndim != 2 or xyxy.shape[1] != 4:
        raise BadDetections(f"{who} boxes must have shape (N, 4) [x0, y0, x1, y1], got {xyxy.shape}")
    if not np.isfinite(xyxy).all():
        raise BadDetections(f"{who} boxes contain NaN or infinity")
    return xyxy


def _vector(x: Any, n: int, who: str, what: str) -> np.ndarray:
    v = np.asarray(x)
    if v.size == 0 and n == 0:
        return v.reshape(0)
    if v.shape != (n,):
        raise BadDetections(f"{who} {what} must have shape ({n},) like its boxes, got {v.shape}")
    return v


def _classes(x: Any, n: int, n_classes: int, who: str) -> np.ndarray:
    c = _vector(x, n, who, "classes")
    if c.size == 0:
        return np.zeros(0, np.int64)
    if not np.issubdtype(c.dtype, np.integer):
        raise BadDetections(f"{who} classes must be integers, got dtype {c.dtype}")
    if c.min() < 0 or c.max() >= n_classes:
        raise BadDetections(f"{who} class {int(c.min() if c.min() < 0 else c.max())} is not one of 0..{n_classes - 1}")
    return c.astype(np.int64)


def _check_truth(truth: Any, n_classes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if not isinstance(truth, tuple) or len(truth) not in (2, 3):
        raise BadDetections("a truth must be (xyxy, classes, ignore)")
    xyxy = _boxes(truth[0], "truth")
    n = len(xyxy)
    if n and not ((xyxy[:, 2] > xyxy[:, 0]) & (xyxy[:, 3] > xyxy[:, 1])).all():
        bad = int(np.flatnonzero((xyxy[:, 2] <= xyxy[:, 0]) | (xyxy[:, 3] <= xyxy[:, 1]))[0])
        raise BadDetections(f"truth box {bad} {xyxy[bad].tolist()} is empty (needs x1 > x0 and y1 > y0)")
    classes = _classes(truth[1], n, n_classes, "truth")
    ignore = truth[2] if len(truth) == 3 else None
    if ignore is None or (n == 0 and np.asarray(ignore).size == 0):
        return xyxy, classes, np.zeros(n, bool)
    ignore = _vector(ignore, n, "truth", "ignore flags")
    if ignore.dtype != bool and not (np.issubdtype(ignore.dtype, np.integer) and np.isin(ignore, (0, 1)).all()):
        raise BadDetections(f"truth ignore flags must be true or false, got dtype {ignore.dtype}")
    return xyxy, classes, ignore.astype(bool)


def _check_prediction(pred: Any, n_classes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if not isinstance(pred, tuple) or len(pred) != 3:
        raise BadDetections("a prediction must be (xyxy, classes, scores)")
    xyxy = _boxes(pred[0], "predicted")
    n = len(xyxy)
    if n and not ((xyxy[:, 2] >= xyxy[:, 0]) & (xyxy[:, 3] >= xyxy[:, 1])).all():
        bad = int(np.flatnonzero((xyxy[:, 2] < xyxy[:, 0]) | (xyxy[:, 3] < xyxy[:, 1]))[0])
        raise BadDetections(f"predicted box {bad} {xyxy[bad].tolist()} is inverted (needs x1 >= x0 and y1 >= y0)")
    classes = _classes(pred[1], n, n_classes, "predicted")
    scores = _vector(pred[2], n, "predicted", "scores")
    if scores.size and not (np.issubdtype(scores.dtype, np.integer) or np.issubdtype(scores.dtype, np.floating)):
        raise BadDetections(f"predicted scores must be numbers, got dtype {scores.dtype}")
    scores = scores.astype(np.float64)
    if not np.isfinite(scores).all():
        raise BadDetections("predicted scores contain NaN or infinity")
    return xyxy, classes, scores


def _check_max_dets(max_dets: Any) -> None:
    if isinstance(max_dets, bool) or not isinstance(max_dets, int | np.integer) or max_dets < 1:
        raise BadDetections(f"max_dets must be a positive integer, got {max_dets!r}")


def _xywh(xyxy: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    x, y = xyxy[:, 0], xyxy[:, 1]
    return x, y, xyxy[:, 2] - x, xyxy[:, 3] - y


def box_iou(dt: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """IoU (D, G) of boxes ``[x0, y0, x1, y1]``, exactly as ``pycocotools.mask.iou`` on their ``[x, y, w, h]``
    (non-crowd): intersection from ``min(x + w) - max(x)``, areas ``w * h``, 0 without overlap."""
    dx, dy, dw, dh = (v[:, None] for v in _xywh(dt))
    gx, gy, gw, gh = (v[None, :] for v in _xywh(gt))
    iw = np.minimum(dw + dx, gw + gx) - np.maximum(dx, gx)
    ih = np.minimum(dh + dy, gh + gy) - np.maximum(dy, gy)
    inter = iw * ih
    union = dw * dh + gw * gh - inter
    hit = (iw > 0) & (ih > 0)
    return np.divide(inter, union, out=np.zeros(inter.shape), where=hit)


def _greedy(iou: np.ndarray, gt_ignored: np.ndarray, matched: np.ndarray, dt_ig: np.ndarray) -> None:
    """COCOeval.evaluateImg's matching of one image and class, at every threshold, into ``matched``/``dt_ig``
    (T, D). ``iou`` (D, G): detections best first, truths non-ignored first. Only the pairs that pass the lowest
    threshold are visited: the others would be skipped by pycocotools' loop anyway (its early stop only ends the
    search)."""
    lowest = min(_MATCH_THRESHOLDS)
    cd, cg = np.nonzero(iou >= lowest)  # row-major: per detection, truths in order
    if cd.size == 0:
        return
    vals = iou[cd, cg].tolist()
    igs = gt_ignored[cg].tolist()
    cg_l = cg.tolist()
    starts = np.flatnonzero(np.r_[True, cd[1:] != cd[:-1]]).tolist() + [cd.size]
    dets = cd[starts[:-1]].tolist()
    taken: list[set[int]] = [set() for _ in _MATCH_THRESHOLDS]
    for j, d in enumerate(dets):
        a, b = starts[j], starts[j + 1]
        for t, thr in enumerate(_MATCH_THRESHOLDS):
            used = taken[t]
            m, best, m_ig = -1, thr, False
            for k in range(a, b):
                g = cg_l[k]
                if g in used:
                    continue
                if m > -1 and not m_ig and igs[k]:
                    break
                if vals[k] < best:
                    continue
                best, m, m_ig = vals[k], g, igs[k]
            if m > -1:
                used.add(m)
                matched[t, d] = True
                dt_ig[t, d] = m_ig


def detection_matches(truth: Any, prediction: Any, n_classes: int, max_dets: int = 100) -> ImageMatches:
    """Match the detections of one image to its truth at every IoU threshold, per class (see the module
    docstring). ``truth``: :class:`DetectionTruth` (or a tuple ``(xyxy, classes[, ignore])``); ``prediction``:
    :class:`Detections` (or ``(xyxy, classes, scores)``). Predicted boxes may be empty (x1 == x0: they match
    nothing), truth boxes may not. Raises :class:`BadDetections` (a ValueError) on malformed input."""
    _check_max_dets(max_dets)
    if isinstance(n_classes, bool) or not isinstance(n_classes, int | np.integer) or n_classes < 1:
        raise BadDetections(f"n_classes must be a positive integer, got {n_classes!r}")
    gt, gt_cls, gt_ignore = _check_truth(truth, n_classes)
    dt, dt_cls, dt_score = _check_prediction(prediction, n_classes)
    n_t, n_pred = len(_MATCH_THRESHOLDS), int(dt_cls.size)

    order = np.argsort(-dt_score, kind="mergesort")  # best first, ties in input order
    order = order[np.argsort(dt_cls[order], kind="mergesort")]  # grouped by class, best first within
    cls_o = dt_cls[order]
    rank = np.arange(order.size) - np.searchsorted(cls_o, cls_o, side="left")
    keep = order[rank < max_dets]
    dt, dt_cls, dt_score = dt[keep], dt_cls[keep], dt_score[keep]

    _, _, gw, gh = _xywh(gt)
    g_area = gw * gh
    gt_ignore = gt_ignore | (g_area < _AREA_ALL[0]) | (g_area > _AREA_ALL[1])
    g_order = np.argsort(gt_ignore, kind="mergesort")  # non-ignored first, stable
    gt, gt_cls, gt_ignore = gt[g_order], gt_cls[g_order], gt_ignore[g_order]

    matched = np.zeros((n_t, dt_cls.size), bool)
    dt_ig = np.zeros((n_t, dt_cls.size), bool)
    d_bounds = np.searchsorted(dt_cls, np.arange(n_classes + 1))
    for k in np.intersect1d(dt_cls, gt_cls).tolist():
        d0, d1 = int(d_bounds[k]), int(d_bounds[k + 1])
        g_sel = np.flatnonzero(gt_cls == k)
        _greedy(box_iou(dt[d0:d1], gt[g_sel]), gt_ignore[g_sel], matched[:, d0:d1], dt_ig[:, d0:d1])

    _, _, dw, dh = _xywh(dt)
    d_area = dw * dh
    outside = (d_area < _AREA_ALL[0]) | (d_area > _AREA_ALL[1])
    dt_ig |= ~matched & outside[None, :]
    return ImageMatches(
        max_dets=int(max_dets),
        classes=dt_cls,
        scores=dt_score,
        tp=matched & ~dt_ig,
        fp=~matched & ~dt_ig,
        n_gt=np.bincount(gt_cls[~gt_ignore], minlength=n_classes).astype(np.int64),
        n_pred=n_pred,
    )


def precision_recall(matches: Sequence[ImageMatches], n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """COCOeval.accumulate over the images ``matches`` (in that order): precision (T, R, K) at the recall
    thresholds and recall (T, K), -1 for a class without non-ignored truth."""
    n_t, n_r = len(IOU_THRESHOLDS), len(RECALL_THRESHOLDS)
    precision = -np.ones((n_t, n_r, n_classes))
    recall = -np.ones((n_t, n_classes))
    if not matches:
        return precision, recall
    n_gt = np.sum([m.n_gt for m in matches], axis=0)
    cls = np.concatenate([m.classes for m in matches])
    scores = np.concatenate([m.scores for m in matches])
    tp = np.concatenate([m.tp for m in matches], axis=1)
    fp = np.concatenate([m.fp for m in matches], axis=1)
    # per class, the concatenation mergesorted by score: one stable sort by score, then a stable one by class
    order = np.argsort(-scores, kind="mergesort")
    order = order[np.argsort(cls[order], kind="mergesort")]
    bounds = np.searchsorted(cls[order], np.arange(n_classes + 1))
    eps = np.spacing(1)
    for k in range(n_classes):
        npig = int(n_gt[k])
        if npig == 0:
            continue
        sel = order[bounds[k] : bounds[k + 1]]
        nd = sel.size
        if nd == 0:
            precision[:, :, k] = 0.0
            recall[:, k] = 0.0
            continue
        tp_sum = np.cumsum(tp[:, sel], axis=1).astype(np.float64)
        fp_sum = np.cumsum(fp[:, sel], axis=1).astype(np.float64)
        rc = tp_sum / npig
        pr = tp_sum / (fp_sum + tp_sum + eps)
        recall[:, k] = rc[:, -1]
        pr = np.maximum.accumulate(pr[:, ::-1], axis=1)[:, ::-1]
        for t in range(n_t):
            inds = np.searchsorted(rc[t], RECALL_THRESHOLDS, side="left")
            q = np.zeros(n_r)
            ok = inds < nd
            q[ok] = pr[t, inds[ok]]
            precision[t, :, k] = q
    return precision, recall


def _mean(s: np.ndarray) -> float:
    """COCOeval.summarize's mean over the entries > -1; NaN where pycocotools gives -1 (none)."""
    s = s[s > -1]
    return float(np.mean(s)) if s.size else math.nan


def _check_names(class_names: Sequence[str]) -> list[str]:
    names = [str(c) for c in class_names]
    if not names:
        raise BadDetections("no classes to score")
    if len(set(names)) != len(names):
        raise BadDetections("class names must be distinct")
    return names


def accumulate(matches: Sequence[ImageMatches], class_names: Sequence[str]) -> dict[str, float]:
    """The metrics of the images ``matches`` (any list: a bootstrap resample may repeat images): ``mAP@[.5:.95]``,
    ``mAP@0.5``, ``mAP@0.75``, ``AR@<max_dets>``, ``AP/<name>`` and ``AP50/<name>`` per class (see the module
    docstring; NaN where undefined)."""
    names = _check_names(class_names)
    if not matches:
        raise BadDetections("no images to score")
    if any(m.n_gt.shape != (len(names),) for m in matches):
        raise BadDetections(f"matches were made for another number of classes than {len(names)}")
    max_dets = matches[0].max_dets
    if any(m.max_dets != max_dets for m in matches):
        raise BadDetections("matches were made with different max_dets")
    precision, recall = precision_recall(matches, len(names))
    metrics = {
        "mAP@[.5:.95]": _mean(precision),
        "mAP@0.5": _mean(precision[[_T50]]),
        "mAP@0.75": _mean(precision[[_T75]]),
        f"AR@{max_dets}": _mean(recall),
    }
    for k, name in enumerate(names):
        metrics[f"AP/{name}"] = _mean(precision[:, :, k])
    for k, name in enumerate(names):
        metrics[f"AP50/{name}"] = _mean(precision[_T50, :, k])
    return metrics


def _image_scores(m: ImageMatches, n_classes: int) -> dict[str, float]:
    precision, _ = precision_recall([m], n_classes)
    n_true = int(m.n_gt.sum())
    tp50, fp50 = int(m.tp[_T50].sum()), int(m.fp[_T50].sum())
    return {
        "mAP@[.5:.95]": _mean(precision),
        "mAP@0.5": _mean(precision[[_T50]]),
        "recall@0.5": tp50 / n_true if n_true else math.nan,
        "tp@0.5": float(tp50),
        "fp@0.5": float(fp50),
        "n_true": float(n_true),
        "n_pred": float(m.n_pred),
    }


def detection_metrics(
    truths: Sequence[Any], predictions: Sequence[Any], class_names: Sequence[str], max_dets: int = 100
) -> dict:
    """Dataset-level COCO box metrics of paired images (truth :class:`DetectionTruth`, prediction
    :class:`Detections`); ``class_names`` names the classes 0..K-1 (metric names ``AP/<name>``, ``AP50/<name>``).

    ``metrics``: ``mAP@[.5:.95]`` (primary), ``mAP@0.5``, ``mAP@0.75``, ``AR@<max_dets>`` and per class ``AP/<name>``,
    ``AP50/<name>``, all equal to pycocotools' COCOeval (module docstring; NaN where it gives -1).
    ``per_sample``, per image: ``mAP@[.5:.95]`` and ``mAP@0.5`` of the image alone (the same suite on one image;
    NaN without a non-ignored truth box), ``recall@0.5`` (truth boxes found at IoU 0.5 by the ``max_dets`` best
    detections of each class / non-ignored truth boxes; NaN without one), ``tp@0.5`` and ``fp@0.5`` (those
    detections that are true or false positives at IoU 0.5, regardless of score), ``n_true`` (non-ignored truth
    boxes) and ``n_pred`` (all predicted boxes given). Returns ``{"metrics": {...}, "per_sample": [...]}``.
    """
    names = _check_names(class_names)
    _check_max_dets(max_dets)
    truths, predictions = list(truths), list(predictions)
    if len(truths) != len(predictions):
        raise BadDetections(f"{len(truths)} truths but {len(predictions)} predictions")
    if not truths:
        raise BadDetections("no images to score")
    matches = []
    for i, (t, p) in enumerate(zip(truths, predictions)):
        try:
            matches.append(detection_matches(t, p, len(names), int(max_dets)))
        except BadDetections as err:
            raise BadDetections(f"image {i}: {err}") from None
    return matched_metrics(matches, names)


def matched_metrics(matches: Sequence[ImageMatches], class_names: Sequence[str]) -> dict:
    """What :func:`detection_metrics` returns, from the images' matches already made (:func:`detection_matches`):
    a caller that also resamples the matches (a bootstrap) matches each image once."""
    names = _check_names(class_names)
    return {"metrics": accumulate(matches, names), "per_sample": [_image_scores(m, len(names)) for m in matches]}
