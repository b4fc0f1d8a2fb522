"""Bounding boxes: the detection truth of a sample, stored with its OME-Zarr image.

A detection sample keeps its boxes in the image group's attributes, ``attributes.cellhub.targets.boxes``, one
object per box::

    {"box": [x0, y0, x1, y1], "class": 2, "difficult": false}

Coordinates are pixels, continuous, with the origin at the top-left corner of the top-left pixel, so that
``0 <= x0 < x1 <= width`` and ``0 <= y0 < y1 <= height`` (PASCAL VOC's 1-based inclusive ``xmin..xmax`` is
``x0 = xmin - 1, x1 = xmax``; COCO's ``[x, y, w, h]`` is ``[x, y, x + w, y + h]``). ``class`` indexes the card's
``labels.classes``; a ``difficult`` box is neither found nor missed by the detection metrics (VOC's rule).
The boxes are part of the sample's targets, so the content SHA-256 of the split manifest covers them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from hub._readers import is_number
from hub.errors import InvalidInput

MAX_BOXES = 100_000  # per sample: a bound on what a stored (untrusted) table may hold
KEYS = ("box", "class", "difficult")


@dataclass(frozen=True)
class Boxes:
    """The boxes of one sample: ``xyxy`` (N, 4) float64, ``classes`` (N,) int64, ``difficult`` (N,) bool."""

    xyxy: np.ndarray
    classes: np.ndarray
    difficult: np.ndarray

    def __len__(self) -> int:
        return len(self.classes)

    @classmethod
    def empty(cls) -> Boxes:
        return cls(np.zeros((0, 4)), np.zeros(0, np.int64), np.zeros(0, bool))

    def to_targets(self) -> list[dict[str, Any]]:
        """The stored form (see the module docstring); integral coordinates are written as integers."""
        return [
            {"box": [int(v) if float(v).is_integer() else float(v) for v in b], "class": int(c), "difficult": bool(d)}
            for b, c, d in zip(self.xyxy.tolist(), self.classes, self.difficult)
        ]

    @classmethod
    def of_image(cls, img: Any, n_classes: int) -> Boxes:
        """The stored boxes of an opened image (:class:`hub.ome.OmeImage`; none if it has none), checked."""
        return cls.from_targets(img.attrs.get("targets", {}).get("boxes", []), img.shape[-2:], n_classes, img.path)

    @classmethod
    def from_targets(cls, value: Any, shape_yx: tuple[int, int], n_classes: int, where: Any = None) -> Boxes:
        """The boxes of a stored table, checked: the stored form exactly, inside the image, known classes."""
        if not isinstance(value, list):
            raise InvalidInput("boxes: not a list", where)
        if len(value) > MAX_BOXES:
            raise InvalidInput(f"boxes: {len(value)} boxes, more than {MAX_BOXES}", where)
        h, w = shape_yx
        xyxy, classes, difficult = [], [], []
        for i, row in enumerate(value):
            if not isinstance(row, dict) or sorted(row) != sorted(KEYS):
                raise InvalidInput(f"box {i}: not an object with the keys {', '.join(KEYS)}", where)
            b, c, d = row["box"], row["class"], row["difficult"]
            if not (isinstance(b, list) and len(b) == 4 and all(is_number(v) for v in b)):
                raise InvalidInput(f"box {i}: 'box' is not four finite numbers [x0, y0, x1, y1]", where)
            x0, y0, x1, y1 = (float(v) for v in b)
            if not (0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h):
                raise InvalidInput(f"box {i}: {b} is empty or outside the {w}x{h} image", where)
            if isinstance(c, bool) or not isinstance(c, int) or not 0 <= c < n_classes:
                raise InvalidInput(f"box {i}: class {c!r} is not one of 0..{n_classes - 1}", where)
            if not isinstance(d, bool):
                raise InvalidInput(f"box {i}: 'difficult' is not true or false", where)
            xyxy.append((x0, y0, x1, y1))
            classes.append(c)
            difficult.append(d)
        if not xyxy:
            return cls.empty()
        return cls(np.array(xyxy, float), np.array(classes, np.int64), np.array(difficult, bool))


def detects(card: Any) -> bool:
    """Whether a dataset card's samples carry boxes: it serves object detection."""
    return "object-detection" in card.tasks


def clean_boxes(
    xyxy: np.ndarray, classes: np.ndarray, difficult: np.ndarray, shape_yx: tuple[int, int], min_size: float = 0.0
) -> tuple[Boxes, dict[str, int]]:
    """Source boxes made storable, deterministically, with a report of what was changed: boxes reaching beyond the
    image are clipped to it (``boxes_clipped``), boxes left empty are dropped (``boxes_empty``), so are boxes
    narrower or lower than ``min_size`` pixels (``boxes_too_small``: annotation clicks, not objects), and exact
    duplicates (same class and corners) are kept once (``boxes_duplicate``); the order is otherwise kept."""
    h, w = shape_yx
    xyxy = np.asarray(xyxy, float).reshape(-1, 4)
    clipped = np.clip(xyxy, 0, [w, h, w, h])
    n_clipped = int(np.any(clipped != xyxy, axis=1).sum())
    keep = (clipped[:, 2] > clipped[:, 0]) & (clipped[:, 3] > clipped[:, 1])
    n_empty = int((~keep).sum())
    small = keep & ((clipped[:, 2] - clipped[:, 0] < min_size) | (clipped[:, 3] - clipped[:, 1] < min_size))
    keep &= ~small
    seen: set[tuple] = set()
    n_dup = 0
    for i in np.flatnonzero(keep):
        key = (int(classes[i]), *clipped[i].tolist())
        if key in seen:
            keep[i] = False
            n_dup += 1
        seen.add(key)
    boxes = Boxes(clipped[keep], np.asarray(classes, np.int64)[keep], np.asarray(difficult, bool)[keep])
    report = {
        "boxes_clipped": n_clipped,
        "boxes_empty": n_empty,
        "boxes_too_small": int(small.sum()),
        "boxes_duplicate": n_dup,
    }
    return boxes, {k: v for k, v in report.items() if v}
