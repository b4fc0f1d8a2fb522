"""Ultralytics YOLO on a hub detection benchmark, by its own code.

The recipe is Ultralytics' own for a custom dataset: the boxes converted to YOLO labels (class, centre, size,
normalised), a ``data.yaml`` naming the train and val images, ``YOLO("yolo11n.yaml")`` built from scratch (no
pretrained weights: they cannot be downloaded here) and trained by ``model.train`` with every default (640 px,
batch 16, SGD/AdamW chosen by ``optimizer="auto"``, mosaic and HSV augmentation, the weights of the best val
fitness kept), then ``model.predict`` on the test images at the confidence Ultralytics validates with (0.001), so
that the mAP sees the whole precision-recall curve. The changes: the epochs, cut from 100 to fit the hub's CPU
budget (peer.yaml says how many), and no plots (they fetch a font from the internet).

Run by ``cellhub peers run yolo`` in this folder's environment (``make peers``).
"""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from common import Clock, Handoff, arguments, threads, write_report  # noqa: E402

args = arguments(__doc__.splitlines()[0])
work = args.out.parent / "yolo"
os.environ.update(YOLO_CONFIG_DIR=str(work / "config"), YOLO_OFFLINE="1", YOLO_AUTOINSTALL="false")

import csv  # noqa: E402

import cv2  # noqa: E402
import torch  # noqa: E402
from ultralytics import YOLO  # noqa: E402

torch.set_num_threads(threads())
data = Handoff(args.data)
opts = {"epochs": 30, "imgsz": 640, "model": "yolo11n.yaml", **args.options}
if args.quick:
    opts.update(epochs=1)
classes = data.meta["classes"]


def png(split: str, sid: str, folder: Path) -> tuple[Path, tuple[int, int]]:
    """The image as an 8-bit PNG (OpenCV writes BGR), and its (height, width)."""
    x = data.image(split, sid)
    x = np.moveaxis(x, 0, -1) if x.shape[0] in (1, 3) else x
    if x.dtype != np.uint8:
        lo, hi = np.percentile(x, (0.1, 99.9))
        x = (np.clip((x - lo) / max(hi - lo, 1e-6), 0, 1) * 255).astype(np.uint8)
    path = folder / f"{sid}.png"
    cv2.imwrite(str(path), x[..., ::-1] if x.shape[-1] == 3 else x)
    return path, x.shape[:2]


def yolo_split(split: str) -> Path:
    """images/<split>/*.png with labels/<split>/*.txt (class cx cy w h, normalised): Ultralytics' layout."""
    images, labels = work / "images" / split, work / "labels" / split
    images.mkdir(parents=True)
    labels.mkdir(parents=True)
    boxes: dict[str, list[dict]] = {}
    for row in data.table(split, "boxes.csv"):
        boxes.setdefault(row["id"], []).append(row)
    for sid in data.ids(split):
        _, (h, w) = png(split, sid, images)
        lines = []
        for b in boxes.get(sid, []):
            x0, y0, x1, y1 = (float(b[k]) for k in ("x0", "y0", "x1", "y1"))
            lines.append(
                f"{classes.index(b['class'])} {(x0 + x1) / 2 / w:.6f} {(y0 + y1) / 2 / h:.6f} "
                f"{(x1 - x0) / w:.6f} {(y1 - y0) / h:.6f}"
            )
        (labels / f"{sid}.txt").write_text("\n".join(lines) + ("\n" if lines else ""))
    return images


clock = Clock()
with clock.time("train"):
    yolo_split("train")
    yolo_split("val")
    spec = work / "data.yaml"
    names = "\n".join(f"  {i}: {c}" for i, c in enumerate(classes))
    spec.write_text(f"path: {work}\ntrain: images/train\nval: images/val\nnames:\n{names}\n")
    model = YOLO(opts["model"])
    model.train(
        data=str(spec),
        epochs=opts["epochs"],
        imgsz=opts["imgsz"],
        device="cpu",
        workers=0,
        plots=False,
        project=str(work / "runs"),
        name="train",
        seed=0,
        deterministic=True,
        verbose=True,
    )
    best = work / "runs" / "train" / "weights" / "best.pt"
    model = YOLO(str(best))

with clock.time("predict"):
    ids = data.ids(data.scored)
    folder = work / "test"
    folder.mkdir()
    rows = []
    for sid in ids:
        path, _ = png(data.scored, sid, folder)
        (result,) = model.predict(str(path), imgsz=opts["imgsz"], conf=0.001, iou=0.7, max_det=300, verbose=False)
        for (x0, y0, x1, y1), k, s in zip(
            result.boxes.xyxy.tolist(), result.boxes.cls.tolist(), result.boxes.conf.tolist()
        ):
            rows.append([sid, classes[int(k)], f"{x0:.2f}", f"{y0:.2f}", f"{x1:.2f}", f"{y1:.2f}", f"{s:.5f}"])
    with open(args.out / "boxes.csv", "w", newline="") as f:
        csv.writer(f).writerows([["id", "class", "x0", "y0", "x1", "y1", "score"], *rows])

write_report(
    args,
    "ultralytics",
    clock,
    len(ids),
    model=opts["model"],
    epochs=opts["epochs"],
    imgsz=opts["imgsz"],
    boxes=len(rows),
    train_images=len(data.ids("train")),
    val_images=len(data.ids("val")),
)
