"""COCO JSON: ``annotations`` (the JSON file) lists ``images``, their ``annotations`` (boxes, polygons or RLE
masks) and ``categories``; the image files lie in ``images`` (default: the source folder).

Per image: the boxes become ``targets["boxes"]`` (:class:`hub.dataset.Boxes`, class = position of the category in
the categories sorted by id, ``difficult`` = ``iscrowd``); when the file has segmentations, they become one
``instances`` label image (label k = the image's k-th annotation). The label image's attributes keep, per label,
its class and the index of its box among the stored boxes (``None`` when its box was empty), so that
:func:`hub.curate.export.export_coco` writes the same annotations back.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from hub.curate._importer import Importer, register_importer
from hub.curate._sample import SampleData
from hub.curate.coco import CocoFile, CocoImage, instance_labels, read_coco
from hub.dataset import Boxes, clean_boxes
from hub.errors import InvalidInput
from hub.ome.files import read_picture


@register_importer("coco")
@dataclass
class Coco(Importer):
    annotations: str = "annotations.json"  # the COCO JSON file (relative to the source folder, or absolute)
    images: str | None = None  # folder of the image files (relative to the source folder, or absolute)

    def _path(self, rel: str | None) -> Path:
        p = Path(rel) if rel else self.source
        return p if p.is_absolute() else self.source / p

    @cached_property
    def _coco(self) -> CocoFile:
        if not self.source.is_dir():
            raise InvalidInput("not a folder", self.source)
        images = self._path(self.images)
        if not images.is_dir():
            raise InvalidInput("image folder not found", images)
        return read_coco(self._path(self.annotations), images)

    def __getstate__(self) -> dict:
        """Workers get the options, not the parsed file: each work item carries its image's annotations."""
        return {k: v for k, v in self.__dict__.items() if k != "_coco"}

    def scan(self) -> list[CocoImage]:
        if not self._coco.images:
            raise InvalidInput("COCO file lists no images", self._coco.path)
        return self._coco.images

    def describe(self, item: CocoImage) -> str:
        return str(item.path)

    def load(self, item: CocoImage) -> SampleData:
        image, axes, channels = read_picture(item.path)
        shape = image.shape[-2:]
        if shape != (item.height, item.width):
            raise InvalidInput(
                f"image is {shape[1]}x{shape[0]} pixels, its COCO entry {item.id} says {item.width}x{item.height}",
                item.path,
            )
        anns = item.annotations
        x, y, w, h = np.array([a.bbox for a in anns], float).reshape(-1, 4).T
        xyxy = np.stack([x, y, x + w, y + h], axis=1)
        classes = np.array([a.category for a in anns], np.int64)
        boxes, report = clean_boxes(xyxy, classes, np.array([a.iscrowd for a in anns], bool), shape)
        labels, label_attrs, properties = {}, {}, {}
        if item.masks:
            labels["instances"], found = instance_labels(item, shape, item.path)
            report.update(found)
            label_attrs["instances"] = {
                "meaning": "instance",
                "objects": len(anns),
                "classes": classes.tolist(),
                "boxes": _box_of_each(boxes, classes, xyxy, shape),
            }
            names = [name for _, name in self._coco.categories]  # NGFF properties: what viewers show per label
            properties["instances"] = [
                {"label-value": k, "class": names[c], "annotation": a.id}
                for k, (c, a) in enumerate(zip(classes, anns), 1)
            ]
        return SampleData(
            id=item.sample_id,
            image=image,
            axes=axes,
            labels=labels,
            label_attrs=label_attrs,
            label_properties=properties,
            targets={"boxes": boxes.to_targets()},
            attrs={
                "channel_names": channels,
                "coco": {"image_id": item.id, "file_name": item.file_name, "category_ids": list(item.category_ids)},
            },
            report=report,
        )

    def card_defaults(self) -> dict:
        coco = self._coco
        masks = coco.masks
        labels: dict = {"classes": [name for _, name in coco.categories]}
        if masks:
            labels["instance"] = "0 background; 1..N one annotation each (in the COCO file's order)"
            labels["semantic"] = {0: "background", 1: "foreground"}
        tasks = ["object-detection", *(["instance-segmentation", "semantic-segmentation"] if masks else [])]
        names = read_picture(coco.images[0].path)[2] if coco.images else ["grey"]  # as the first image has them
        return {"tasks": tasks, "channels": [{"name": c, "modality": "other"} for c in names], "labels": labels}


def _box_of_each(boxes: Boxes, classes: np.ndarray, xyxy: np.ndarray, shape: tuple[int, int]) -> list[int | None]:
    """For each annotation, the index of its box among the stored ``boxes`` (a duplicate's: the one kept), or
    None when its box was dropped as empty."""
    h, w = shape
    where = {(int(c), *b): i for i, (b, c) in enumerate(zip(boxes.xyxy.tolist(), boxes.classes))}
    clipped = np.clip(xyxy, 0, [w, h, w, h]).tolist()
    return [where.get((int(c), *b)) for b, c in zip(clipped, classes)]
