"""Detection metrics: hub.metrics.detection_metrics vs pycocotools COCOeval (bbox), on the BCCD test boxes.

Workload: the 72 test images of BCCD (PASCAL VOC boxes of RBC, WBC and platelets, read from the source XML) and a
seeded prediction made from them: each box jittered, 10% dropped, a false positive per image, random scores. Both
sides get the same boxes; each timed run does the whole evaluation (pycocotools: index, evaluate, accumulate,
summarize, its printing silenced). The values must agree (mAP@[.5:.95], mAP@0.5, mAP@0.75, AR@100) before any
timing counts. Needs pycocotools (a dev dependency).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from hub.config import data_mirror
from hub.metrics import Detections, DetectionTruth, detection_metrics

CLASSES = ["RBC", "WBC", "Platelets"]


def load(data: Path) -> tuple[list[DetectionTruth], list[Detections]]:
    root = data / "detection/bccd/BCCD"
    rng = np.random.default_rng(0)
    truths, preds = [], []
    for sid in (root / "ImageSets/Main/test.txt").read_text().split():
        boxes, classes = [], []
        for obj in ET.parse(root / "Annotations" / f"{sid}.xml").getroot().iter("object"):
            b = obj.find("bndbox")
            x0, y0, x1, y1 = (float(b.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax"))
            if x1 - x0 < 1 or y1 - y0 < 1:  # 1x1 annotation clicks, as the importer drops them
                continue
            boxes.append([x0 - 1, y0 - 1, x1, y1])
            classes.append(CLASSES.index(obj.findtext("name").strip()))
        xyxy, cls = np.array(boxes, float), np.array(classes)
        truths.append(DetectionTruth(xyxy, cls, np.zeros(len(cls), bool)))
        keep = rng.random(len(cls)) > 0.1
        p = xyxy[keep] + rng.normal(0, 4, (int(keep.sum()), 4))
        p[:, 2:] = np.maximum(p[:, 2:], p[:, :2] + 1)
        p = np.vstack([p, [[10, 10, 60, 60]]])
        preds.append(Detections(p, np.append(cls[keep], 0), rng.random(len(p))))
    return truths, preds


def coco_dicts(truths, preds) -> tuple[dict, list[dict]]:
    gt = {"images": [], "annotations": [], "categories": [{"id": k + 1, "name": n} for k, n in enumerate(CLASSES)]}
    dt = []
    for i, (t, p) in enumerate(zip(truths, preds), 1):
        gt["images"].append({"id": i})
        for b, c in zip(t.xyxy.tolist(), t.classes.tolist()):
            w, h = b[2] - b[0], b[3] - b[1]
            n = len(gt["annotations"]) + 1
            box = {"id": n, "image_id": i, "category_id": c + 1, "bbox": [b[0], b[1], w, h], "area": w * h}
            gt["annotations"].append({**box, "iscrowd": 0})
        for b, c, s in zip(p.xyxy.tolist(), p.classes.tolist(), p.scores.tolist()):
            dt.append({"image_id": i, "category_id": c + 1, "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]], "score": s})
    return gt, dt


def anchor(gt: dict, dt: list[dict]) -> np.ndarray:
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = gt
        coco.createIndex()
        ev = COCOeval(coco, coco.loadRes(dt), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev.stats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--data", type=Path, default=None, help="shared data folder (default $CELLHUB_DATA)")
    args = ap.parse_args()
    truths, preds = load(args.data or data_mirror())
    gt, dt = coco_dicts(truths, preds)
    print(
        f"metrics_detection: BCCD test, {len(truths)} images, {len(gt['annotations'])} true boxes, {len(dt)} "
        f"predicted, repeats {args.repeats}"
    )
    mine = detection_metrics(truths, preds, CLASSES)["metrics"]
    stats = anchor(gt, dt)
    pairs = [("mAP@[.5:.95]", 0), ("mAP@0.5", 1), ("mAP@0.75", 2), ("AR@100", 8)]
    worst = max(abs(mine[name] - stats[i]) for name, i in pairs)
    if worst > 1e-12:
        sys.exit(f"values differ from pycocotools by {worst:.2e}")
    print(f"  values: equal to pycocotools (largest difference {worst:.1e}); mAP@0.5 {mine['mAP@0.5']:.4f}")

    fns = {
        "hub.metrics": lambda: detection_metrics(truths, preds, CLASSES),
        "pycocotools COCOeval": lambda: anchor(gt, dt),
    }
    runs: dict[str, list[float]] = {name: [] for name in fns}
    names = list(fns)
    for r in range(args.repeats):
        for name in names if r % 2 == 0 else names[::-1]:
            t0 = time.perf_counter()
            fns[name]()
            runs[name].append(time.perf_counter() - t0)
    med = {name: statistics.median(secs) for name, secs in runs.items()}
    for name, secs in runs.items():
        print(f"    {name:<22} median {med[name]:8.4f} s   runs (s): " + " ".join(f"{s:.4f}" for s in secs))
    ratio = med["pycocotools COCOeval"] / med["hub.metrics"]
    print(f"    ratio pycocotools / hub: {ratio:.1f}x")
    print(f"RATIO detection_metrics_vs_pycocotools {ratio:.3f}")


if __name__ == "__main__":
    main()
