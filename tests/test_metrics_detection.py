"""COCO box metrics (hub.metrics.detection) against pycocotools' COCOeval on the real BCCD test split.

The truth is parsed here from the PASCAL VOC files; the predictions are derived from it with a seeded generator
(jittered boxes over a range of IoUs, dropped boxes, false positives, wrong classes, duplicates, tied scores,
more than ``max_dets`` detections in some images), and COCOeval runs on the same boxes as in-memory COCO dicts.
"""

from __future__ import annotations

import contextlib
import io
import math
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval, Params

from hub.metrics import Detections, DetectionTruth, accumulate, detection_matches, detection_metrics
from hub.metrics.detection import IOU_THRESHOLDS, RECALL_THRESHOLDS, box_iou

CLASSES = ["RBC", "WBC", "Platelets"]
W, H = 640, 480
TOL = 1e-6


def read_voc_test(root) -> list[DetectionTruth]:
    """The boxes of the test split of a PASCAL VOC folder: 1-based inclusive xmin..xmax is x0 = xmin - 1,
    x1 = xmax."""
    ids = (root / "ImageSets/Main/test.txt").read_text().split()
    truths = []
    for sid in ids:
        boxes, classes, difficult = [], [], []
        for obj in ET.parse(root / "Annotations" / f"{sid}.xml").getroot().iter("object"):
            bb = obj.find("bndbox")
            xmin, ymin, xmax, ymax = (float(bb.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax"))
            boxes.append((xmin - 1, ymin - 1, xmax, ymax))
            classes.append(CLASSES.index(obj.findtext("name").strip()))
            difficult.append(obj.findtext("difficult", "0").strip() == "1")
        truths.append(DetectionTruth(np.array(boxes, float).reshape(-1, 4), np.array(classes), np.array(difficult)))
    return truths


@pytest.fixture(scope="module")
def bccd(data_dir) -> list[DetectionTruth]:
    """The 72 images of BCCD's test split."""
    truths = read_voc_test(data_dir / "detection/bccd/BCCD")
    assert len(truths) == 72 and 800 < sum(len(t.classes) for t in truths) < 1200
    return truths


def _jitter(box: np.ndarray, rng: np.random.Generator, amount: float) -> np.ndarray:
    """The box with each edge moved by up to ``amount`` of its size (continuous coordinates)."""
    w, h = box[2] - box[0], box[3] - box[1]
    out = box + rng.uniform(-amount, amount, 4) * np.array([w, h, w, h])
    return np.array([out[0], out[1], max(out[2], out[0] + 0.5), max(out[3], out[1] + 0.5)])


def _random_box(rng: np.random.Generator) -> np.ndarray:
    x0, y0 = rng.uniform(0, W - 20), rng.uniform(0, H - 20)
    return np.array([x0, y0, x0 + rng.uniform(5, 120), y0 + rng.uniform(5, 120)])


def _predict(
    truths,
    seed: int,
    amount: float,
    p_drop: float,
    p_wrong: float,
    n_fp: int,
    ties: int | None,
    crowded: int = 0,
    dup: float = 0.0,
) -> list[Detections]:
    """Detections derived from the truth: per box dropped (p_drop) or jittered (up to ``amount``), sometimes of
    the wrong class (p_wrong) or twice (dup); plus up to ``n_fp`` random false positives per image, and in
    ``crowded`` images 150 extra boxes of one class near the truth (beyond max_dets). Scores are rounded to
    ``ties`` decimals (ties) when given."""
    rng = np.random.default_rng(seed)
    preds = []
    for i, t in enumerate(truths):
        boxes, classes = [], []
        for b, c in zip(np.asarray(t.xyxy, float), t.classes):
            if rng.random() < p_drop:
                continue
            for _ in range(2 if rng.random() < dup else 1):
                boxes.append(_jitter(b, rng, amount * rng.random()))
                classes.append(int(rng.integers(0, 3)) if rng.random() < p_wrong else int(c))
        for _ in range(int(rng.integers(0, n_fp + 1))):
            boxes.append(_random_box(rng))
            classes.append(int(rng.integers(0, 3)))
        if i < crowded and len(t.classes):
            for _ in range(150):
                boxes.append(_jitter(np.asarray(t.xyxy, float)[rng.integers(len(t.classes))], rng, 0.5))
                classes.append(i % 3)
        scores = rng.random(len(boxes))
        if ties is not None:
            scores = np.round(scores, ties)
        preds.append(Detections(np.array(boxes).reshape(-1, 4), np.array(classes, np.int64), scores))
    return preds


class _KeepIgnore(COCOeval):
    """COCOeval whose ground truth keeps its own ``ignore`` flag (pycocotools' ``_prepare`` sets it to ``iscrowd``)
    with ``iscrowd`` 0: the semantics of hub's ignored truth boxes."""

    def _prepare(self):
        super()._prepare()
        for anns in self._gts.values():
            for g in anns:
                g["ignore"] = g["hub_ignore"]


def _cocoeval(truths, preds, names, max_dets: int = 100) -> COCOeval:
    """COCOeval (bbox) run on the boxes as in-memory COCO dicts; image i has id i + 1, class k id k + 1."""
    anns = []
    for i, t in enumerate(truths):
        ignore = np.zeros(len(t.classes), bool) if t.ignore is None else np.asarray(t.ignore)
        for b, c, ig in zip(np.asarray(t.xyxy, float).reshape(-1, 4).tolist(), t.classes, ignore):
            w, h = b[2] - b[0], b[3] - b[1]
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": i + 1,
                    "category_id": int(c) + 1,
                    "bbox": [b[0], b[1], w, h],
                    "area": w * h,
                    "iscrowd": 0,
                    "hub_ignore": int(ig),
                }
            )
    dets = [
        {
            "image_id": i + 1,
            "category_id": int(c) + 1,
            "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]],
            "score": float(s),
        }
        for i, p in enumerate(preds)
        for b, c, s in zip(np.asarray(p.xyxy, float).reshape(-1, 4).tolist(), p.classes, p.scores)
    ]
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = {
            "images": [{"id": i + 1, "width": W, "height": H} for i in range(len(truths))],
            "categories": [{"id": k + 1, "name": n} for k, n in enumerate(names)],
            "annotations": anns,
        }
        gt.createIndex()
        ev = _KeepIgnore(gt, gt.loadRes(dets), "bbox")
        ev.params.maxDets = [1, 10, max_dets]
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev


def _coco_metrics(ev: COCOeval, names) -> dict[str, float]:
    """The suite's metrics read from COCOeval: the stats where maxDets is 100, else the same means of its arrays."""
    prec, rec = ev.eval["precision"][:, :, :, 0, -1], ev.eval["recall"][:, :, 0, -1]
    t50, t75 = (int(np.flatnonzero(ev.params.iouThrs == t)[0]) for t in (0.5, 0.75))

    def mean(s):
        return float(np.mean(s[s > -1])) if (s > -1).any() else -1.0

    out = {"mAP@[.5:.95]": mean(prec), "mAP@0.5": mean(prec[t50]), "mAP@0.75": mean(prec[t75])}
    out[f"AR@{ev.params.maxDets[-1]}"] = mean(rec)
    if ev.params.maxDets[-1] == 100:
        for name, k in (("mAP@[.5:.95]", 0), ("mAP@0.5", 1), ("mAP@0.75", 2), ("AR@100", 8)):
            assert out[name] == float(ev.stats[k])  # the stats people quote are these means
    for k, n in enumerate(names):
        out[f"AP/{n}"] = mean(prec[:, :, k])
        out[f"AP50/{n}"] = mean(prec[t50, :, k])
    return out


def _max_diff(ours: dict[str, float], coco: dict[str, float]) -> float:
    """Largest |difference|; -1 of pycocotools must be NaN here (and NaN nowhere else)."""
    assert set(ours) == set(coco)
    worst = 0.0
    for name, ref in coco.items():
        if ref == -1:
            assert math.isnan(ours[name]), name
        else:
            assert not math.isnan(ours[name]), name
            worst = max(worst, abs(ours[name] - ref))
    return worst


VARIANTS = {
    "close": dict(seed=1, amount=0.08, p_drop=0.05, p_wrong=0.02, n_fp=2, ties=None),
    "loose": dict(seed=2, amount=0.4, p_drop=0.2, p_wrong=0.1, n_fp=6, ties=None, dup=0.1),
    "tied": dict(seed=3, amount=0.25, p_drop=0.1, p_wrong=0.05, n_fp=4, ties=1, dup=0.2),
    "crowded": dict(seed=4, amount=0.3, p_drop=0.1, p_wrong=0.05, n_fp=3, ties=2, crowded=6, dup=0.1),
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_equals_pycocotools_on_bccd(bccd, variant):
    preds = _predict(bccd, **VARIANTS[variant])
    if variant == "crowded":
        assert max(np.bincount(p.classes, minlength=3).max() for p in preds) > 100
    ours = detection_metrics(bccd, preds, CLASSES)
    coco = _coco_metrics(_cocoeval(bccd, preds, CLASSES), CLASSES)
    assert _max_diff(ours["metrics"], coco) <= TOL
    assert 0.05 < ours["metrics"]["mAP@[.5:.95]"] < 0.95  # a variant that tests something
    assert len(ours["per_sample"]) == len(bccd)


def test_equals_pycocotools_with_empty_images_and_other_max_dets(bccd):
    """Images without truth or without predictions, and max_dets 20 (cuts many images)."""
    truths = [*bccd, DetectionTruth(np.zeros((0, 4)), np.zeros(0, int), np.zeros(0, bool))]
    preds = _predict(truths, **VARIANTS["loose"])
    preds[5] = Detections(np.zeros((0, 4)), np.zeros(0, int), np.zeros(0))
    preds[-1] = Detections(np.array([[10.0, 10, 50, 50], [0, 0, 5, 5]]), np.array([0, 2]), np.array([0.99, 0.5]))
    for max_dets in (100, 20):
        ours = detection_metrics(truths, preds, CLASSES, max_dets=max_dets)
        coco = _coco_metrics(_cocoeval(truths, preds, CLASSES, max_dets), CLASSES)
        assert f"AR@{max_dets}" in ours["metrics"]
        assert _max_diff(ours["metrics"], coco) <= TOL
    assert ours["per_sample"][-1]["n_true"] == 0 and math.isnan(ours["per_sample"][-1]["recall@0.5"])
    assert ours["per_sample"][5]["n_pred"] == 0 and ours["per_sample"][5]["recall@0.5"] == 0


def test_ignored_boxes_equal_cocoeval_keeping_the_flag(bccd):
    """A seeded fifth of the truth boxes ignored (VOC difficult): pycocotools with the flag kept."""
    rng = np.random.default_rng(7)
    truths = [t._replace(ignore=rng.random(len(t.classes)) < 0.2) for t in bccd]
    for variant in ("loose", "tied"):
        preds = _predict(bccd, **VARIANTS[variant])
        ours = detection_metrics(truths, preds, CLASSES)
        assert _max_diff(ours["metrics"], _coco_metrics(_cocoeval(truths, preds, CLASSES), CLASSES)) <= TOL
        plain = detection_metrics(bccd, preds, CLASSES)["metrics"]
        assert ours["metrics"]["mAP@0.5"] != plain["mAP@0.5"]  # the flags matter


def test_class_absent_from_truth_is_excluded(bccd):
    """Platelets removed from the truth but still predicted: no AP for them (pycocotools: -1), the means over the
    other two classes."""
    truths = [DetectionTruth(t.xyxy[t.classes != 2], t.classes[t.classes != 2], t.ignore[t.classes != 2]) for t in bccd]
    preds = _predict(bccd, **VARIANTS["close"])
    ours = detection_metrics(truths, preds, CLASSES)["metrics"]
    assert math.isnan(ours["AP/Platelets"]) and math.isnan(ours["AP50/Platelets"])
    assert ours["mAP@[.5:.95]"] == pytest.approx((ours["AP/RBC"] + ours["AP/WBC"]) / 2, abs=1e-12)
    assert _max_diff(ours, _coco_metrics(_cocoeval(truths, preds, CLASSES), CLASSES)) <= TOL
    # a fourth class nobody has: the same numbers, its AP NaN
    four = detection_metrics(truths, preds, [*CLASSES, "Other"])["metrics"]
    assert math.isnan(four["AP/Other"]) and four["mAP@[.5:.95]"] == ours["mAP@[.5:.95]"]


def test_perfect_and_empty_predictions(bccd):
    rng = np.random.default_rng(0)
    perfect = [Detections(t.xyxy, t.classes, rng.random(len(t.classes))) for t in bccd]
    out = detection_metrics(bccd, perfect, CLASSES)
    # 1 up to COCOeval's precision TP / (TP + FP + eps): with a single box 1 / (1 + 2.2e-16)
    assert all(v == pytest.approx(1.0, abs=1e-12) for v in out["metrics"].values()), out["metrics"]
    for s in out["per_sample"]:
        assert s["mAP@[.5:.95]"] == pytest.approx(1.0, abs=1e-12) and s["recall@0.5"] == 1.0 and s["fp@0.5"] == 0

    none = [Detections(np.zeros((0, 4)), np.zeros(0, int), np.zeros(0)) for _ in bccd]
    out = detection_metrics(bccd, none, CLASSES)
    assert all(v == 0.0 for v in out["metrics"].values()), out["metrics"]
    assert all(s["n_pred"] == 0 and s["recall@0.5"] == 0 and s["mAP@0.5"] == 0 for s in out["per_sample"])

    nothing = [DetectionTruth(np.zeros((0, 4)), np.zeros(0, int))]
    out = detection_metrics(nothing, none[:1], CLASSES)  # nothing to find: no metric is defined
    assert all(math.isnan(v) for v in out["metrics"].values())


def test_ignored_match_is_neither_tp_nor_fp():
    """Truth: A (scored) and B (ignored). Detections best first: on B, a miss, on A. B's detection drops out, so
    the ranking is FP, TP: precision 1/2 at recall 1, AP 0.5 at every threshold. Counted as a false positive it
    would be 1/3; with B a real box, (51 * 1 + 50 * 2/3) / 101."""
    truth = DetectionTruth(np.array([[0.0, 0, 10, 10], [20, 0, 30, 10]]), np.array([0, 0]), np.array([False, True]))
    pred = Detections(
        np.array([[20.0, 0, 30, 10], [50, 50, 60, 60], [0, 0, 10, 10]]), np.array([0, 0, 0]), np.array([0.9, 0.85, 0.8])
    )
    out = detection_metrics([truth], [pred], ["cell"])
    assert out["metrics"]["mAP@[.5:.95]"] == pytest.approx(0.5, abs=1e-12)
    assert out["metrics"]["AR@100"] == 1.0
    assert out["per_sample"][0] == {
        "mAP@[.5:.95]": pytest.approx(0.5),
        "mAP@0.5": pytest.approx(0.5),
        "recall@0.5": 1.0,
        "tp@0.5": 1.0,
        "fp@0.5": 1.0,
        "n_true": 1.0,
        "n_pred": 3.0,
    }
    m = detection_matches(truth, pred, 1)
    assert not m.tp[:, 0].any() and not m.fp[:, 0].any()  # best first: on B, ignored
    assert m.fp[:, 1].all() and m.tp[:, 2].all()
    real = detection_metrics([truth._replace(ignore=None)], [pred], ["cell"])["metrics"]
    assert real["mAP@[.5:.95]"] == pytest.approx((51 + 50 * (2 / 3)) / 101, abs=1e-12)


def test_an_ignored_box_is_taken_only_without_a_real_one():
    """A detection passing both a real truth box (IoU 0.82) and an ignored one (IoU 1) takes the real one:
    COCOeval stops searching at the ignored boxes once a real one matched."""
    truth = DetectionTruth(np.array([[0.0, 0, 10, 10], [1, 0, 11, 10]]), np.array([0, 0]), np.array([False, True]))
    pred = Detections(np.array([[1.0, 0, 11, 10]]), np.array([0]), np.array([0.9]))
    out = detection_metrics([truth], [pred], ["cell"])["metrics"]
    assert out["AP50/cell"] == pytest.approx(1.0, abs=1e-12) and out["mAP@0.75"] == pytest.approx(1.0, abs=1e-12)
    # IoU 0.82: the real box at 0.50..0.80; above, the ignored one (the detection drops out, the real box is missed)
    assert out["AP/cell"] == pytest.approx(0.7, abs=1e-12) and out["AR@100"] == pytest.approx(0.7, abs=1e-12)
    assert _max_diff(out, _coco_metrics(_cocoeval([truth], [pred], ["cell"]), ["cell"])) <= TOL


def test_boxes_beyond_the_all_area_range_are_ignored():
    """COCOeval's area range "all" ends at 1e10 px: a larger truth box is ignored, a larger unmatched detection
    too."""
    big = [0.0, 0, 2e5, 2e5]
    truth = DetectionTruth(np.array([big, [0, 0, 10, 10]]), np.array([0, 0]))
    pred = Detections(
        np.array([big, [5e5, 0, 7e5, 2e5], [0, 0, 10, 10]]), np.array([0, 0, 0]), np.array([0.9, 0.8, 0.7])
    )
    out = detection_metrics([truth], [pred], ["cell"])
    assert out["metrics"]["AP/cell"] == pytest.approx(1.0, abs=1e-12)
    assert out["per_sample"][0]["n_true"] == 1 and out["per_sample"][0]["fp@0.5"] == 0
    assert _max_diff(out["metrics"], _coco_metrics(_cocoeval([truth], [pred], ["cell"]), ["cell"])) <= TOL


def test_thresholds_and_iou_are_cocoevals(bccd):
    """The thresholds bit for bit (the 9th IoU threshold is 0.8999999999999999), and the IoU of every predicted
    box with every truth box of some images as pycocotools' maskUtils.iou (w * h areas, no +1)."""
    params = Params(iouType="bbox")
    assert np.array_equal(IOU_THRESHOLDS, params.iouThrs) and np.array_equal(RECALL_THRESHOLDS, params.recThrs)
    preds = _predict(bccd, **VARIANTS["loose"])
    for t, p in list(zip(bccd, preds))[:10]:
        gt, dt = np.asarray(t.xyxy, float), np.asarray(p.xyxy, float)
        xywh = [np.c_[b[:, :2], b[:, 2:] - b[:, :2]] for b in (dt, gt)]
        assert np.array_equal(box_iou(dt, gt), mask_utils.iou(xywh[0], xywh[1], [0] * len(gt)))


def test_accumulate_takes_resamples(bccd):
    """accumulate on the matches equals the suite; on a resample it equals the suite on the resampled images."""
    preds = _predict(bccd, **VARIANTS["tied"])
    matches = [detection_matches(t, p, 3) for t, p in zip(bccd, preds)]
    assert accumulate(matches, CLASSES) == detection_metrics(bccd, preds, CLASSES)["metrics"]
    idx = np.random.default_rng(1).integers(0, len(bccd), len(bccd))
    boot = accumulate([matches[i] for i in idx], CLASSES)
    again = detection_metrics([bccd[i] for i in idx], [preds[i] for i in idx], CLASSES)["metrics"]
    assert boot == again
    coco = _coco_metrics(_cocoeval([bccd[i] for i in idx], [preds[i] for i in idx], CLASSES), CLASSES)
    assert _max_diff(boot, coco) <= TOL


def _ok_truth():
    return DetectionTruth(np.array([[0.0, 0, 10, 10]]), np.array([0]), np.array([False]))


def _ok_pred():
    return Detections(np.array([[0.0, 0, 10, 10]]), np.array([0]), np.array([0.5]))


@pytest.mark.parametrize(
    "truth, pred, match",
    [
        (DetectionTruth(np.zeros((1, 3)), np.array([0])), _ok_pred(), r"shape \(N, 4\)"),
        (DetectionTruth(np.array([[0.0, 0, np.nan, 10]]), np.array([0])), _ok_pred(), "NaN"),
        (DetectionTruth(np.array([[5.0, 0, 5, 10]]), np.array([0])), _ok_pred(), "empty"),
        (DetectionTruth(np.array([[0.0, 0, 10, 10]]), np.array([3])), _ok_pred(), "class 3"),
        (DetectionTruth(np.array([[0.0, 0, 10, 10]]), np.array([0.0])), _ok_pred(), "integers"),
        (DetectionTruth(np.array([[0.0, 0, 10, 10]]), np.array([0, 1])), _ok_pred(), r"shape \(1,\)"),
        (DetectionTruth(np.array([[0.0, 0, 10, 10]]), np.array([0]), np.array([2])), _ok_pred(), "true or false"),
        (_ok_truth(), Detections(np.array([[9.0, 0, 1, 10]]), np.array([0]), np.array([0.5])), "inverted"),
        (_ok_truth(), Detections(np.array([[0.0, 0, 1, np.inf]]), np.array([0]), np.array([0.5])), "infinity"),
        (_ok_truth(), Detections(np.array([[0.0, 0, 1, 1]]), np.array([-1]), np.array([0.5])), "class -1"),
        (_ok_truth(), Detections(np.array([[0.0, 0, 1, 1]]), np.array([0]), np.array([np.nan])), "scores"),
        (_ok_truth(), Detections(np.array([[0.0, 0, 1, 1]]), np.array([0]), np.array([0.5, 0.4])), "scores"),
        (_ok_truth(), Detections(np.array([["a", "b", "c", "d"]]), np.array([0]), np.array([0.5])), "not numbers"),
        (_ok_truth(), np.zeros((1, 4)), "a prediction must be"),
    ],
)
def test_bad_input_raises_value_error(truth, pred, match):
    with pytest.raises(ValueError, match=match):
        detection_metrics([_ok_truth(), truth], [_ok_pred(), pred], ["a", "b", "c"])


def test_bad_calls_raise_value_error():
    with pytest.raises(ValueError, match="1 truths but 2 predictions"):
        detection_metrics([_ok_truth()], [_ok_pred(), _ok_pred()], ["a"])
    with pytest.raises(ValueError, match="no images"):
        detection_metrics([], [], ["a"])
    with pytest.raises(ValueError, match="distinct"):
        detection_metrics([_ok_truth()], [_ok_pred()], ["a", "a"])
    with pytest.raises(ValueError, match="max_dets"):
        detection_metrics([_ok_truth()], [_ok_pred()], ["a"], max_dets=0)
    with pytest.raises(ValueError, match="number of classes"):
        accumulate([detection_matches(_ok_truth(), _ok_pred(), 1)], ["a", "b"])


def test_empty_inputs_work():
    """Boxes given as empty lists; an image with truth but no predictions and one the other way round."""
    out = detection_metrics([DetectionTruth([], [], []), _ok_truth()], [_ok_pred(), Detections([], [], [])], ["a"])
    assert out["metrics"]["mAP@0.5"] == 0.0 and out["metrics"]["AR@100"] == 0.0
    assert out["per_sample"][0]["fp@0.5"] == 1 and out["per_sample"][1]["n_true"] == 1
