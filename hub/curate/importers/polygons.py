"""Polygon annotations in Aperio ImageScope XML beside their images: ``<name>.xml`` + ``<name>.tif`` (MoNuSeg).

The XML is ``Annotations/Annotation/Regions/Region/Vertices/Vertex X= Y=``, one Region per object. It is read
bounded and without a DTD: a file over :data:`MAX_XML_BYTES`, or one that declares a DOCTYPE (and with it any
entity), is refused before it is parsed.

Rasterisation: a vertex's X is a column and Y a row, in pixels, with the centre of pixel (row r, column c) at
(Y=r, X=c); a pixel belongs to a polygon when its centre lies inside it or on an edge (``skimage.draw.polygon``):
MoNuSeg's vertices trace the outermost pixels of a nucleus, and those pixels stay with it. Regions are
painted in file order and a pixel already painted stays with the earlier region, so overlaps resolve the same
way every time. A polygon reaching past the image is clipped to it (``clipped_polygons``). Dropped, and counted in
the sample's report: polygons with fewer than 3 distinct vertices (``degenerate_polygons``), polygons that cover
no pixel centre of the image (``empty_polygons``) and regions whose every pixel an earlier region took
(``objects_lost_to_overlap``; ``overlap_pixels`` counts the contested pixels).
The survivors are numbered 1..N in region order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hub._readers import read_xml
from hub.curate._importer import Importer, register_importer
from hub.curate._sample import SampleData
from hub.curate.importers._names import group_of
from hub.errors import InvalidInput
from hub.ome.files import IMAGE_SUFFIXES, read_image_file

MAX_XML_BYTES = 16 * 2**20  # the largest MoNuSeg annotation is 2 MB


def _number(text: str | None, what: str, path: Path) -> float:
    try:
        value = float(text)  # type: ignore[arg-type]  # None is caught below
    except (TypeError, ValueError):
        raise InvalidInput(f"{what} is not a number: {str(text)[:40]!r}", path) from None
    if not math.isfinite(value):
        raise InvalidInput(f"{what} is not a finite number: {text!r}", path)
    return value


def read_imagescope(path: Path) -> tuple[list[np.ndarray], dict[str, str]]:
    """The polygons of an ImageScope XML, in file order, as (n, 2) float arrays of (Y, X), and the root's
    attributes (``MicronsPerPixel``)."""
    root = read_xml(path, "annotation XML", MAX_XML_BYTES)
    if root.tag != "Annotations":
        raise InvalidInput(f"not an Aperio ImageScope annotation: root <{root.tag[:40]}>, not <Annotations>", path)
    if root.find("Annotation") is None:
        raise InvalidInput("not an Aperio ImageScope annotation: no <Annotation> element", path)
    polygons = []
    for i, region in enumerate(root.iterfind("Annotation/Regions/Region"), 1):
        rid = region.get("Id", "?")[:20]
        vertices = region.findall("Vertices/Vertex")
        polygons.append(
            np.array(
                [
                    [_number(v.get(a), f"Region {i} (Id {rid}) vertex {j} {a}", path) for a in ("Y", "X")]
                    for j, v in enumerate(vertices, 1)
                ],
                dtype=np.float64,
            ).reshape(-1, 2)
        )
    return polygons, dict(root.attrib)


def rasterise(polygons: list[np.ndarray], shape: tuple[int, int]) -> tuple[np.ndarray, dict[str, int]]:
    """Instance labels 1..N in polygon order (earlier polygons keep contested pixels) and what was dropped."""
    from skimage.draw import polygon as fill
    from skimage.segmentation import relabel_sequential

    labels = np.zeros(shape, np.uint16 if len(polygons) < 65535 else np.uint32)
    keys = ("degenerate_polygons", "empty_polygons", "clipped_polygons", "objects_lost_to_overlap", "overlap_pixels")
    report = dict.fromkeys(keys, 0)
    limit = np.array(shape) - 1
    for k, poly in enumerate(polygons, 1):
        if len(np.unique(poly, axis=0)) < 3:
            report["degenerate_polygons"] += 1
            continue
        report["clipped_polygons"] += bool((poly < 0).any() or (poly > limit).any())  # reaches past the image
        rr, cc = fill(poly[:, 0], poly[:, 1], shape=shape)
        if not len(rr):
            report["empty_polygons"] += 1
            continue
        free = labels[rr, cc] == 0
        report["overlap_pixels"] += int(np.count_nonzero(~free))
        if not free.any():
            report["objects_lost_to_overlap"] += 1
        labels[rr[free], cc[free]] = k
    return relabel_sequential(labels)[0].astype(labels.dtype), report


def _rgb_or_grey(img: np.ndarray, path: Path) -> tuple[np.ndarray, str, list[str]]:
    """Colour stays three channels even where R == G == B (one dataset, one channel layout); alpha is dropped."""
    if img.ndim == 2:
        return img, "yx", ["grey"]
    if img.ndim == 3 and img.shape[-1] in (3, 4):
        return np.ascontiguousarray(np.moveaxis(img[..., :3], -1, 0)), "cyx", ["red", "green", "blue"]
    raise InvalidInput(f"cannot tell the axes of an image of shape {img.shape}", path)


@register_importer("polygons")
@dataclass
class Polygons(Importer):
    group: str | None = None  # regex whose group 'group' is the split unit (e.g. the patient); default the image

    def _image_of(self, xml: Path) -> Path:
        found = [xml.with_suffix(s) for s in IMAGE_SUFFIXES if xml.with_suffix(s).is_file()]
        if not found:
            raise InvalidInput(f"no image {xml.stem}{{{','.join(IMAGE_SUFFIXES)}}} for this annotation", xml)
        if len(found) > 1:
            raise InvalidInput(f"ambiguous: images {' and '.join(f.name for f in found)} for this annotation", xml)
        return found[0]

    def scan(self) -> list[tuple[Path, Path]]:
        if not self.source.is_dir():
            raise InvalidInput("not a folder", self.source)
        xmls = sorted(p for p in self.source.iterdir() if p.suffix.lower() == ".xml" and p.is_file())
        if not xmls:
            raise InvalidInput("no .xml annotation files", self.source)
        items = [(xml, self._image_of(xml)) for xml in xmls]
        paired = {image for _, image in items}
        for f in sorted(self.source.iterdir()):
            if f.suffix.lower() in IMAGE_SUFFIXES and f not in paired:
                raise InvalidInput(f"image has no annotation {f.stem}.xml", f)
        return items

    def describe(self, item: tuple[Path, Path]) -> str:
        return str(item[0])

    def load(self, item: tuple[Path, Path]) -> SampleData:
        xml, image_path = item
        polygons, meta = read_imagescope(xml)
        image, axes, channels = _rgb_or_grey(read_image_file(image_path), image_path)
        labels, report = rasterise(polygons, image.shape[-2:])
        attrs: dict = {"files": [image_path.name, xml.name], "channel_names": channels}
        if "MicronsPerPixel" in meta:
            attrs["microns_per_pixel"] = _number(meta["MicronsPerPixel"], "MicronsPerPixel", xml)
        return SampleData(
            id=xml.stem,
            image=image,
            axes=axes,
            labels={"instances": labels},
            label_attrs={"instances": {"meaning": "instance", "objects": int(labels.max()), "regions": len(polygons)}},
            group=group_of(self.group, xml.stem, xml),
            attrs=attrs,
            report={"regions": len(polygons), **report},
        )

    def card_defaults(self) -> dict:
        return {
            "tasks": ["instance-segmentation", "semantic-segmentation"],
            "channels": [{"name": c, "modality": "bright-field"} for c in ("red", "green", "blue")],
            "labels": {
                "instance": "0 background; 1..N one polygon each, in region order; earlier regions keep overlaps",
                "semantic": {0: "background", 1: "foreground"},
            },
        }
