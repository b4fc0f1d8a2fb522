"""PASCAL VOC: ``JPEGImages/<id>.jpg`` with ``Annotations/<id>.xml`` boxes and the ``ImageSets/Main`` split lists.

Each ``<object>`` is a box ``<name>`` with ``<bndbox>`` ``xmin ymin xmax ymax`` (1-based, inclusive pixel
indices, so the stored box is ``[xmin - 1, ymin - 1, xmax, ymax]``: see :mod:`hub.dataset._boxes`) and an optional
``<difficult>`` flag. Boxes beyond the image are clipped, empty ones and those under ``min_box_size`` pixels
dropped and exact duplicates kept once; the import report counts each. The source's own split (``train.txt``,
``val.txt``, ``test.txt``) is read for recipes with split method ``source``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hub._readers import read_xml
from hub.curate._importer import Importer, register_importer
from hub.curate._sample import SampleData
from hub.dataset import SPLIT_NAMES, clean_boxes
from hub.errors import InvalidInput
from hub.ome.files import IMAGE_SUFFIXES, read_picture
from hub.safety import read_capped

IMAGE_EXTS = (".jpg", ".jpeg", *IMAGE_SUFFIXES)  # VOC's JPEGImages, or lossless files
MAX_LIST_BYTES = 64 * 2**20  # an ImageSets/Main/<split>.txt list of ids


@register_importer("voc")
@dataclass
class Voc(Importer):
    classes: list[str] = field(default_factory=list)  # the box classes, in the card's order (index = class)
    annotations: str = "Annotations"
    images: str = "JPEGImages"
    image_sets: str | None = "ImageSets/Main"  # folder of <split>.txt id lists (None: no source split)
    min_box_size: float = 2.0  # boxes narrower or lower than this (pixels) are annotation clicks: dropped, reported

    def _dir(self, name: str) -> Path:
        d = self.source / name
        if not d.is_dir():
            raise InvalidInput(f"VOC folder {name!r} not found", d)
        return d

    def _splits(self) -> dict[str, str]:
        """Sample id -> the source's split, from ``train.txt``, ``val.txt`` and ``test.txt``."""
        if self.image_sets is None:
            return {}
        where: dict[str, str] = {}
        for split in SPLIT_NAMES:
            f = self._dir(self.image_sets) / f"{split}.txt"
            if not f.is_file():
                raise InvalidInput(f"no {split}.txt split list", f.parent)
            text = read_capped(f, MAX_LIST_BYTES, "split list").decode("utf-8", "replace")
            for n, line in enumerate(text.splitlines(), 1):
                sid = line.strip()
                if sid and sid in where:
                    raise InvalidInput(f"line {n}: {sid!r} is already in the {where[sid]} list", f)
                if sid:
                    where[sid] = split
        return where

    def scan(self) -> list[tuple[Path, str | None]]:
        if not self.classes:
            raise InvalidInput("the voc importer needs its 'classes' option (the box class names, in order)")
        files = sorted(self._dir(self.annotations).glob("*.xml"))
        if not files:
            raise InvalidInput("no .xml annotations", self._dir(self.annotations))
        splits = self._splits()
        if splits:
            listed = {f.stem for f in files}
            stray = sorted(set(splits) - listed)
            if stray:
                raise InvalidInput(
                    f"split lists name {len(stray)} id(s) without annotation (first: {stray[0]!r})",
                    self._dir(self.image_sets),  # type: ignore[arg-type]  # lists were read: image_sets is set
                )
        return [(f, splits.get(f.stem)) for f in files]

    def describe(self, item: tuple[Path, str | None]) -> str:
        return str(item[0])

    def _image(self, root, xml: Path) -> Path:
        name = (root.findtext("filename") or "").strip()
        stem = Path(name).stem if name else xml.stem
        if stem != xml.stem:
            raise InvalidInput(f"<filename> {name!r} does not match the annotation's name", xml)
        for ext in IMAGE_EXTS:
            p = self._dir(self.images) / f"{stem}{ext}"
            if p.is_file():
                return p
        raise InvalidInput(f"no image {stem}.jpg (or .png, .tif) in {self.images}/", xml)

    def load(self, item: tuple[Path, str | None]) -> SampleData:
        xml, split = item
        root = read_xml(xml, "VOC annotation")
        if root.tag != "annotation":
            raise InvalidInput(f"root element is <{root.tag}>, not a VOC <annotation>", xml)
        image, axes, channels = read_picture(self._image(root, xml))
        h, w = image.shape[-2:]
        size = root.find("size")
        if size is not None and (_number(size, "width", xml), _number(size, "height", xml)) != (w, h):
            said = f"{_number(size, 'width', xml):g}x{_number(size, 'height', xml):g}"
            raise InvalidInput(f"<size> says {said}, the image is {w}x{h}", xml)
        xyxy, classes, difficult = [], [], []
        for i, obj in enumerate(root.iter("object")):
            name = (obj.findtext("name") or "").strip()
            if name not in self.classes:
                raise InvalidInput(f"object {i}: class {name!r} is not one of {self.classes}", xml)
            box = obj.find("bndbox")
            if box is None:
                raise InvalidInput(f"object {i}: no <bndbox>", xml)
            x0, y0, x1, y1 = (_number(box, k, xml) for k in ("xmin", "ymin", "xmax", "ymax"))
            xyxy.append((x0 - 1, y0 - 1, x1, y1))
            classes.append(self.classes.index(name))
            difficult.append((obj.findtext("difficult") or "0").strip() == "1")
        boxes, report = clean_boxes(
            np.array(xyxy, float), np.array(classes), np.array(difficult), (h, w), self.min_box_size
        )
        return SampleData(
            id=xml.stem,
            image=image,
            axes=axes,
            targets={"boxes": boxes.to_targets()},
            split=split,
            attrs={"channel_names": channels},
            report=report,
        )

    def card_defaults(self) -> dict:
        return {
            "tasks": ["object-detection"],
            "labels": {"classes": list(self.classes), "boxes": "one box per object: class, corners, difficult flag"},
        }


def _number(node, tag: str, xml: Path) -> float:
    text = (node.findtext(tag) or "").strip()
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise InvalidInput(f"<{tag}> {text!r} is not a number", xml)
    return value
