"""COCO JSON (``images``, ``annotations``, ``categories``): read and checked strictly, annotations rasterised.

The layout of LIVECell, NuInsSeg and most detection data. :func:`read_coco` checks every field CellHub uses
before any image is decoded (one-line :class:`InvalidInput` naming the file and the image or annotation id) and
hands back one :class:`CocoImage` per image with its annotations; :func:`instance_labels` turns an image's
segmentations into one label image; :func:`xywh` writes a stored box back as COCO's ``[x, y, w, h]``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hub._readers import is_number, parse_json
from hub.curate import rle
from hub.dataset import SAFE_ID
from hub.errors import InvalidInput
from hub.safety import check_pixels, inside, read_capped

MAX_COCO_BYTES = 2**30  # a COCO file is parsed whole; LIVECell's largest (train) is about 0.7 GB

Segmentation = list[list[float]] | dict[str, Any] | None  # polygons, an RLE, or none


@dataclass(frozen=True)
class CocoAnnotation:
    """One checked annotation: ``bbox`` as given (``[x, y, w, h]``, ``w, h >= 0``), ``category`` the class index
    (position in the categories sorted by id), ``segmentation`` polygons or an RLE of the image's size, or None."""

    id: int
    category: int
    bbox: tuple[float, float, float, float]
    iscrowd: bool
    segmentation: Segmentation


@dataclass(frozen=True)
class CocoImage:
    """One checked image entry with its annotations (in file order): a picklable work item of the importer.

    ``path`` lies inside the images folder; ``category_ids`` / ``category_names`` are the file's category ids and
    names by class index;
    ``masks``: the file has segmentations, so this image gets an instance label image (possibly empty)."""

    id: int
    file_name: str
    path: Path
    width: int
    height: int
    annotations: tuple[CocoAnnotation, ...]
    category_ids: tuple[int, ...]
    category_names: tuple[str, ...]
    masks: bool

    @property
    def sample_id(self) -> str:
        return Path(self.file_name).stem


@dataclass(frozen=True)
class CocoFile:
    path: Path
    images: list[CocoImage]
    categories: list[tuple[int, str]]  # (id, name), sorted by id: a class index is a position here
    masks: bool


def read_coco(path: Path, images: Path) -> CocoFile:
    """The COCO file ``path`` (at most :data:`MAX_COCO_BYTES`), checked, with image files under ``images``."""
    try:
        size = os.stat(path).st_size
    except FileNotFoundError:
        raise InvalidInput("COCO file not found", path) from None
    if size > MAX_COCO_BYTES:
        raise InvalidInput(f"COCO file has {size:,} bytes, more than the {MAX_COCO_BYTES:,} allowed", path)
    doc = parse_json(read_capped(path, MAX_COCO_BYTES, "COCO file"), path, "COCO file")
    if not isinstance(doc, dict):
        raise InvalidInput(f"COCO file holds a {type(doc).__name__}, not an object", path)
    for key in ("images", "annotations", "categories"):
        if not isinstance(doc.get(key), list):
            raise InvalidInput(f"COCO file has no list {key!r}", path)
    categories = _categories(doc["categories"], path)
    classes = {cid: i for i, (cid, _) in enumerate(categories)}
    entries = [_image(e, i, path, images) for i, e in enumerate(doc["images"])]
    by_id: dict[int, list[CocoAnnotation]] = {}
    stems: dict[str, int] = {}
    for e in entries:
        if e["id"] in by_id:
            raise InvalidInput(f"image id {e['id']} occurs twice", path)
        stem = Path(e["file_name"]).stem
        if stem in stems:
            raise InvalidInput(f"images {stems[stem]} and {e['id']} have the same sample id {stem!r}", path)
        by_id[e["id"]], stems[stem] = [], e["id"]
    sizes = {e["id"]: (e["height"], e["width"]) for e in entries}
    seen: set[int] = set()
    for i, a in enumerate(doc["annotations"]):
        ann, image_id = _annotation(a, i, path, classes, sizes)
        if ann.id in seen:
            raise InvalidInput(f"annotation id {ann.id} occurs twice", path)
        seen.add(ann.id)
        by_id[image_id].append(ann)
    masks = _with_masks(doc["annotations"], by_id, path)
    ids, names = tuple(cid for cid, _ in categories), tuple(name for _, name in categories)
    return CocoFile(
        path,
        [
            CocoImage(**e, annotations=tuple(by_id[e["id"]]), category_ids=ids, category_names=names, masks=masks)
            for e in entries
        ],
        categories,
        masks,
    )


def _categories(items: list, path: Path) -> list[tuple[int, str]]:
    out: dict[int, str] = {}
    for i, c in enumerate(items):
        if not (isinstance(c, dict) and _int(c.get("id")) and isinstance(c.get("name"), str) and c["name"].strip()):
            raise InvalidInput(f"category {i}: not an object with an integer 'id' and a non-empty 'name'", path)
        if c["id"] in out:
            raise InvalidInput(f"category id {c['id']} occurs twice", path)
        if c["name"] in out.values():
            raise InvalidInput(f"category name {c['name']!r} occurs twice", path)
        out[c["id"]] = c["name"]
    if not out:
        raise InvalidInput("COCO file has no categories", path)
    return sorted(out.items())


def _image(e: Any, i: int, path: Path, images: Path) -> dict:
    if not (isinstance(e, dict) and _int(e.get("id"))):
        raise InvalidInput(f"image {i}: not an object with an integer 'id'", path)
    iid = e["id"]
    if not all(_int(e.get(k)) and e[k] > 0 for k in ("width", "height")):
        raise InvalidInput(f"image {iid}: 'width' and 'height' are not positive integers", path)
    check_pixels((e["height"], e["width"]), path, what=f"image {iid}")
    try:
        file = inside(images, e.get("file_name"), "file_name", path)
    except InvalidInput as err:
        raise InvalidInput(f"image {iid}: {err.problem}", path) from None
    stem = file.stem
    if not SAFE_ID.match(stem):
        raise InvalidInput(f"image {iid}: file name {stem!r} is not a safe sample id (letters, digits, . _ -)", path)
    if not file.is_file():
        raise InvalidInput(f"image {iid} of {path.name}: image file not found", file)
    return {"id": iid, "file_name": e["file_name"], "path": file, "width": e["width"], "height": e["height"]}


def _annotation(
    a: Any, i: int, path: Path, classes: dict[int, int], sizes: dict[int, tuple[int, int]]
) -> tuple[CocoAnnotation, int]:
    if not (isinstance(a, dict) and _int(a.get("id"))):
        raise InvalidInput(f"annotation {i}: not an object with an integer 'id'", path)
    aid = a["id"]

    def bad(problem: str) -> InvalidInput:
        return InvalidInput(f"annotation {aid}: {problem}", path)

    image_id, category_id = a.get("image_id"), a.get("category_id")
    if not _int(image_id) or image_id not in sizes:
        raise bad(f"image_id {image_id!r} is not an image of the file")
    if not _int(category_id) or category_id not in classes:
        raise bad(f"category_id {category_id!r} is not a category of the file")
    bbox = a.get("bbox")
    if not (isinstance(bbox, list) and len(bbox) == 4 and all(is_number(v) for v in bbox)):
        raise bad("bbox is not four finite numbers [x, y, width, height]")
    if bbox[2] < 0 or bbox[3] < 0:
        raise bad(f"bbox {bbox} has a negative width or height")
    crowd = a.get("iscrowd", 0)
    if not (_int(crowd) and crowd in (0, 1)):
        raise bad(f"iscrowd {crowd!r} is not 0 or 1")
    seg = _segmentation(a.get("segmentation"), sizes[image_id], aid, path)
    ann = CocoAnnotation(aid, classes[category_id], tuple(bbox), bool(crowd), seg)
    return ann, image_id


def _segmentation(seg: Any, shape: tuple[int, int], aid: int, path: Path) -> Segmentation:
    """Polygons (lists of at least 3 x, y pairs) or an RLE of the image's ``[height, width]``; ``[]`` is none."""

    def bad(problem: str) -> InvalidInput:
        return InvalidInput(f"annotation {aid}: {problem}", path)

    if seg is None or seg == []:
        return None
    if isinstance(seg, list):
        for p in seg:
            if not (isinstance(p, list) and len(p) >= 6 and len(p) % 2 == 0 and all(is_number(v) for v in p)):
                raise bad("segmentation polygon is not an even list of at least 6 finite numbers")
        return seg
    if not isinstance(seg, dict):
        raise bad("segmentation is neither a list of polygons nor an RLE object")
    if seg.get("size") != list(shape):
        raise bad(f"RLE size {seg.get('size')!r} is not the image's [height, width] {list(shape)}")
    counts = seg.get("counts")
    if isinstance(counts, str):
        runs = rle.string_to_counts(counts, path, f"annotation {aid}: RLE")
    elif isinstance(counts, list) and all(_int(n) and n >= 0 for n in counts):
        runs = counts
    else:
        raise bad("RLE counts is neither a string nor a list of non-negative integers")
    if sum(runs) != shape[0] * shape[1]:
        raise bad(f"RLE run lengths add up to {sum(runs)} pixels, the image has {shape[0]}x{shape[1]}")
    return {"size": list(shape), "counts": counts}


def _with_masks(annotations: list, by_id: dict[int, list[CocoAnnotation]], path: Path) -> bool:
    """Whether the file has segmentations; then every annotation must have one (else masks would be incomplete)."""
    flat = [a for anns in by_id.values() for a in anns]
    with_seg = [a for a in flat if a.segmentation is not None]
    if with_seg and len(with_seg) < len(flat):
        missing = next(a for a in flat if a.segmentation is None)
        raise InvalidInput(
            f"annotation {missing.id}: no segmentation, while {len(with_seg)} others have one (incomplete masks)", path
        )
    return bool(with_seg)


def annotation_mask(ann: CocoAnnotation, shape: tuple[int, int], where: str | Path | None = None) -> np.ndarray:
    """The boolean mask of one checked annotation's segmentation. Polygon vertices are continuous coordinates
    (origin at the top-left corner of the top-left pixel); a pixel is inside when its centre is."""
    from skimage.draw import polygon

    seg = ann.segmentation
    if isinstance(seg, dict):
        return rle.decode(seg, where, f"annotation {ann.id}")
    mask = np.zeros(shape, bool)
    for p in seg or []:
        xy = np.asarray(p, float).reshape(-1, 2) - 0.5  # to pixel-centre coordinates
        rr, cc = polygon(xy[:, 1], xy[:, 0], shape=shape)
        mask[rr, cc] = True
    return mask


def instance_labels(
    image: CocoImage, shape: tuple[int, int], where: str | Path | None = None
) -> tuple[np.ndarray, dict[str, int]]:
    """One label image of the image's annotations (label k = its k-th annotation, file order): an earlier
    annotation keeps a pixel two claim. The report counts overlapping pixels, annotations whose mask is empty
    (``masks_empty``) and those whose every pixel went to earlier ones (``objects_lost_to_overlap``)."""
    n = len(image.annotations)
    labels = np.zeros(shape, np.uint16 if n < 65535 else np.uint32)
    overlap = empty = lost = 0
    for k, ann in enumerate(image.annotations, 1):
        mask = annotation_mask(ann, shape, where)
        free = mask & (labels == 0)
        overlap += int(np.count_nonzero(mask)) - int(np.count_nonzero(free))
        if not mask.any():
            empty += 1
        elif not free.any():
            lost += 1
        labels[free] = k
    report = {"overlap_pixels": overlap, "masks_empty": empty, "objects_lost_to_overlap": lost}
    return labels, {k: v for k, v in report.items() if v}


def xywh(box: list[float] | tuple[float, ...]) -> list[float]:
    """A stored ``[x0, y0, x1, y1]`` as COCO's ``[x, y, w, h]`` (integers stay integers). Reading it back gives the
    same corners: a stored corner is a sum ``x + w`` read from COCO (or the image's edge), and in floating point
    ``x + ((x + w) - x)`` is ``x + w`` again (checked on random non-negative boxes in tests/test_coco.py)."""
    x0, y0, x1, y1 = box
    return [x0, y0, x1 - x0, y1 - y0]


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)
