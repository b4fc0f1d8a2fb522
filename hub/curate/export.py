"""Export curated samples back to source layouts, losslessly: tracking samples to the Cell Tracking Challenge
layout (``ctc``), images with boxes and instance masks to COCO JSON (``coco``). :data:`EXPORTERS` names them."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from hub._atomic import new_folder
from hub.curate import rle
from hub.curate.coco import xywh
from hub.dataset import Boxes, Dataset, open_dataset
from hub.errors import InvalidInput
from hub.ome.ctc import TRUTH_TRACKS, check_lineage, lineage_from_attrs, write_frames, write_man_track

if TYPE_CHECKING:
    from hub.ome import OmeImage

COCO_JSON = "annotations.json"


def export_ctc(dataset: str | Path, out: str | Path, ids: list[str] | None = None) -> list[str]:
    """Write ``<seq>/tTTT.tif``, ``<seq>_GT/TRA/man_trackTTT.tif`` + ``man_track.txt`` and
    ``<seq>_GT/SEG/man_segTTT.tif`` for each time-lapse sample; returns the sequence folder names. A lineage
    that its masks contradict is refused (:func:`hub.ome.ctc.check_lineage`) and nothing is written."""
    ds = open_dataset(dataset)
    chosen = ids or [s.id for s in ds.samples if s.is_timelapse]
    if not chosen:
        raise InvalidInput("dataset has no time-lapse samples to export", ds.path)
    with new_folder(out) as tmp:
        for sid in chosen:
            img = ds.image(sid)
            if not img.axes.startswith("t"):
                raise InvalidInput(f"sample {sid!r} is not a time-lapse (axes {img.axes})", img.path)
            digits = int(img.attrs.get("frame_digits", 3))
            frames = img.array()
            (tmp / sid).mkdir()
            write_frames(tmp / sid, "t", frames, range(frames.shape[0]), digits)
            if "tracks" in img.label_names:
                tra = tmp / f"{sid}_GT" / "TRA"
                attrs = img.label_attrs("tracks")
                annotated = _annotated(attrs, frames.shape[0])
                labels = _write_masks(img, "tracks", tra, "man_track", digits, labels=True)
                tracks = lineage_from_attrs(attrs["lineage"])
                if annotated == list(range(frames.shape[0])):
                    check_lineage(tracks, labels, f"{img.path}/labels/tracks")
                write_man_track(tracks, tra / TRUTH_TRACKS)
            if "segmentation" in img.label_names:
                _write_masks(img, "segmentation", tmp / f"{sid}_GT" / "SEG", "man_seg", digits)
    return chosen


def _annotated(attrs: dict, n_frames: int) -> list[int]:
    return [int(t) for t in attrs.get("annotated_frames", range(n_frames))]


def _write_masks(img, label: str, folder: Path, prefix: str, digits: int, labels: bool = False) -> list:
    """Write the annotated frames (all, unless ``annotated_frames`` says otherwise) of a label image as
    ``<prefix>TTT.tif``; with ``labels``, returns the non-zero labels of each frame written."""
    folder.mkdir(parents=True)
    attrs = img.label_attrs(label)
    masks = img.label(label)
    d = int(attrs.get("mask_digits", digits))
    return write_frames(folder, prefix, masks, _annotated(attrs, masks.shape[0]), d, labels=labels)


def export_coco(dataset: str | Path, out: str | Path, ids: list[str] | None = None) -> list[str]:
    """Write ``out/annotations.json`` (COCO) and ``out/images/<id>.png`` (8-bit grey or RGB; ``.tif`` otherwise)
    for the samples ``ids`` (default: all); returns the ids written. Per sample, one annotation per stored box
    (category = class, ``iscrowd`` = difficult) or, when it has an ``instances`` label image, one per instance with
    a compressed RLE segmentation, its area, and its box (the stored box the ``coco`` importer linked it to; else
    the mask's extent). Image and category ids are :func:`coco_ids` (those the ``coco`` importer recorded, where
    it did), the same for any subset; the ``coco`` importer reads the folder back (``images: images``) to the same
    boxes and masks."""
    ds = open_dataset(dataset)
    chosen = ids or [s.id for s in ds.samples]
    if not chosen:
        raise InvalidInput("dataset has no samples to export", ds.path)
    image_ids, category_ids = coco_ids(ds)
    classes = ds.card.labels.classes or ["object"]
    images: list[dict] = []
    annotations: list[dict] = []
    with new_folder(out) as tmp:
        (tmp / "images").mkdir()
        for sid in chosen:
            img = ds.image(sid)
            if img.axes not in ("yx", "cyx"):
                raise InvalidInput(f"sample {sid!r} has axes {img.axes}; COCO holds 2-D images", img.path)
            pixels = np.asarray(img.read())
            h, w = pixels.shape[-2:]
            name = _write_image(pixels, img.axes, tmp / "images", sid)
            images.append({"id": image_ids[sid], "file_name": name, "width": w, "height": h})
            for a in _coco_annotations(img, (h, w), len(classes)):
                annotations.append({"id": len(annotations) + 1, "image_id": image_ids[sid], **a})
        for a in annotations:
            a["category_id"] = category_ids[a.pop("class")]
        doc = {
            "info": {"description": f"{ds.card.name} {ds.card.version}, exported by CellHub"},
            "images": images,
            "annotations": annotations,
            "categories": [{"id": i, "name": n} for i, n in zip(category_ids, classes)],
        }
        (tmp / COCO_JSON).write_text(json.dumps(doc))
    return chosen


def _coco_annotations(img: OmeImage, shape: tuple[int, int], n_classes: int) -> list[dict]:
    """The annotations of one sample (``class`` not yet a category id), see :func:`export_coco`."""
    targets = img.attrs.get("targets") or {}
    boxes = Boxes.from_targets(targets["boxes"], shape, n_classes, img.path).to_targets() if "boxes" in targets else []
    if "instances" not in img.label_names:
        return [_box_annotation(b["box"], b["class"], b["difficult"]) for b in boxes]
    labels = np.asarray(img.label("instances")[...])
    attrs = img.label_attrs("instances")
    if "boxes" not in attrs:
        if boxes:
            raise InvalidInput("sample has boxes and instance masks, but no link from the masks to the boxes", img.path)
        return [_mask_annotation(labels == k, 0, None, False) for k in np.unique(labels) if k]
    links, cls = attrs["boxes"], attrs.get("classes")
    if not (isinstance(links, list) and isinstance(cls, list) and len(links) == len(cls)):
        raise InvalidInput("instances: 'boxes' and 'classes' are not lists of one entry per label", img.path)
    out = []
    for k, (b, c) in enumerate(zip(links, cls), 1):
        if not (b is None or _index(b, len(boxes))) or not _index(c, n_classes):
            raise InvalidInput(f"instances: label {k} links to box {b!r} and class {c!r}, not stored ones", img.path)
        if b is None:  # its box was empty: an empty box again, so that reading it back drops it again
            out.append(_mask_annotation(labels == k, c, [0, 0, 0, 0], False))
        else:
            out.append(_mask_annotation(labels == k, c, boxes[b]["box"], boxes[b]["difficult"]))
    return out


def _index(v: object, n: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v < n


def _box_annotation(box: list, cls: int, difficult: bool) -> dict:
    bbox = xywh(box)
    return {"class": cls, "bbox": bbox, "area": bbox[2] * bbox[3], "iscrowd": int(difficult)}


def _mask_annotation(mask: np.ndarray, cls: int, box: list | None, difficult: bool) -> dict:
    """An annotation with the RLE of ``mask``; without ``box``, its box is the mask's extent."""
    if box is None:
        ys, xs = np.nonzero(mask)
        box = [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1]
    seg = rle.encode(mask)
    return {"class": cls, "bbox": xywh(box), "area": rle.area(seg), "iscrowd": int(difficult), "segmentation": seg}


def coco_ids(ds: Dataset) -> tuple[dict[str, int], list[int]]:
    """The COCO ids of a dataset: sample id -> image id, and the category id of each class index.

    Those the ``coco`` importer recorded (``attributes.cellhub.coco``) when every sample has a distinct image id
    and all agree on the category ids; else 1..N in ``samples.csv`` order and 1..K in class order. The same for
    any subset of the samples, so a COCO results file made against an export of the test split names its images
    and categories as :func:`hub.bench.predictions.read_boxes` reads them."""
    recorded = [ds.image(s.id).attrs.get("coco") or {} for s in ds.samples]
    found = [c.get("image_id") for c in recorded]
    ids = [i for i in found if isinstance(i, int) and not isinstance(i, bool)]
    if len(set(ids)) != len(found):  # not one distinct recorded id per sample
        ids = list(range(1, len(found) + 1))
    classes = ds.card.labels.classes or ["object"]
    return {s.id: i for s, i in zip(ds.samples, ids)}, _category_ids(
        [c.get("category_ids") for c in recorded], len(classes)
    )


def _category_ids(recorded: list, n_classes: int) -> list[int]:
    """The category ids the importer recorded (by class index), when all samples agree on them; else 1..K."""
    first = recorded[0] if recorded else None
    if (
        isinstance(first, list)
        and all(isinstance(i, int) and not isinstance(i, bool) for i in first)
        and len(first) == n_classes == len(set(first))
        and all(r == first for r in recorded)
    ):
        return list(first)
    return list(range(1, n_classes + 1))


def _write_image(pixels: np.ndarray, axes: str, folder: Path, sid: str) -> str:
    """Write a sample's pixels as ``<sid>.png`` (8-bit grey or RGB) or ``<sid>.tif``; returns the file name."""
    if pixels.dtype == np.uint8 and (axes == "yx" or pixels.shape[0] == 3):
        from PIL import Image

        Image.fromarray(pixels if axes == "yx" else np.moveaxis(pixels, 0, -1)).save(folder / f"{sid}.png")
        return f"{sid}.png"
    import tifffile

    tifffile.imwrite(folder / f"{sid}.tif", pixels)
    return f"{sid}.tif"


#: The layouts ``cellhub datasets export FORMAT`` writes: name -> (function(dataset, out folder, ids), what it writes).
EXPORTERS: dict[str, tuple[Callable[..., list[str]], str]] = {
    "ctc": (export_ctc, "Cell Tracking Challenge folders <seq>/, <seq>_GT/TRA, <seq>_GT/SEG"),
    "coco": (export_coco, f"COCO JSON {COCO_JSON} with images/"),
}
