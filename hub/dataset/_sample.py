"""One row of ``samples.csv`` as a typed, frozen record, parsed and checked once when the table is read."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from hub.errors import InvalidInput

#: The columns of ``samples.csv``, in the order the writer (``hub.curate``) puts them.
COLUMNS = [
    "id",
    "path",
    "split",
    "group",
    "source",
    "region",
    "shape",
    "dtype",
    "class",
    "class_name",
    "objects",
    "tracks",
    "divisions",
    "frames",
    "sha256",
    "image_sha256",
    "phash",
]
REQUIRED = ("id", "path", "split")
SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")  # sample ids are file names (images, predictions)

_COUNT = re.compile(r"^(0|[1-9][0-9]*)$")  # the writer's str(int): no sign, no leading zeros, no spaces
_HEX = {"sha256": re.compile(r"^[0-9a-f]{64}$"), "image_sha256": re.compile(r"^[0-9a-f]{64}$")}
_PHASH = re.compile(r"^[0-9a-f]{16}$")


@dataclass(frozen=True, slots=True)
class Sample:
    """One sample of a curated dataset (a row of ``samples.csv``).

    ``region`` is ``(y0, x0, y1, x1)`` within the source field or ``(t0, t1)`` within a movie (None: the whole
    source); ``shape`` is the stored image's shape (its axes are the image's); ``class_index`` and
    ``class_name`` are None for samples without a class; ``frames`` is 0 for images without a time axis.
    ``sha256`` hashes the decoded sample (image, labels, lineage, targets), ``image_sha256`` the image alone,
    ``phash`` is a 64-bit perceptual hash (16 hex digits) for near-duplicate reports.
    """

    id: str
    path: str
    split: str
    group: str
    source: str
    region: tuple[int, ...] | None = None
    shape: tuple[int, ...] = ()
    dtype: str = ""
    class_index: int | None = None
    class_name: str | None = None
    objects: int = 0
    tracks: int = 0
    divisions: int = 0
    frames: int = 0
    sha256: str = ""
    image_sha256: str = ""
    phash: str = ""

    @property
    def is_timelapse(self) -> bool:
        return self.frames > 0

    def to_row(self) -> dict[str, str]:
        """The row as the writer puts it in ``samples.csv`` (column -> text): ``from_row`` inverts it."""
        return {
            "id": self.id,
            "path": self.path,
            "split": self.split,
            "group": self.group,
            "source": self.source,
            "region": " ".join(map(str, self.region)) if self.region else "",
            "shape": "x".join(map(str, self.shape)),
            "dtype": self.dtype,
            "class": "" if self.class_index is None else str(self.class_index),
            "class_name": self.class_name or "",
            "objects": str(self.objects),
            "tracks": str(self.tracks),
            "divisions": str(self.divisions),
            "frames": str(self.frames),
            "sha256": self.sha256,
            "image_sha256": self.image_sha256,
            "phash": self.phash,
        }

    @classmethod
    def from_row(cls, row: dict[str, str], line: int | None = None, source: str | Path | None = None) -> Sample:
        """Parse one ``samples.csv`` row (column -> text); a value that is not what the writer writes is a
        one-line :class:`InvalidInput` naming ``source`` and ``line``. Columns other than id, path and split
        may be absent (their defaults apply); unknown columns are ignored."""
        where = f"samples table: line {line}" if line is not None else "samples table"

        def bad(column: str, expected: str) -> InvalidInput:
            value = row.get(column, "")
            return InvalidInput(f"{where}: {column} {value[:80]!r} is not {expected}", source)

        for column in REQUIRED:
            if not row.get(column):
                raise InvalidInput(f"{where}: {column} is empty", source)
        sid = row["id"]
        if not SAFE_ID.match(sid):
            raise bad("id", "a safe name (letters, digits, . _ -)")

        def count(column: str) -> int:
            value = row.get(column) or "0"
            if not _COUNT.match(value):
                raise bad(column, "a count (a non-negative integer)")
            return int(value)

        def ints(column: str, sep: str, lengths: tuple[int, ...] | None) -> tuple[int, ...]:
            parts = row[column].split(sep)
            if not all(_COUNT.match(p) for p in parts) or (lengths and len(parts) not in lengths):
                raise bad(
                    column,
                    "'y0 x0 y1 x1' or 't0 t1' (non-negative integers)" if column == "region" else "'NxM...' (sizes)",
                )
            return tuple(int(p) for p in parts)

        for column, pattern in _HEX.items():
            if row.get(column) and not pattern.match(row[column]):
                raise bad(column, "a SHA-256 (64 lowercase hex digits)")
        if row.get("phash") and not _PHASH.match(row["phash"]):
            raise bad("phash", "a 64-bit hash (16 lowercase hex digits)")
        cls_text = row.get("class") or ""
        if cls_text and not _COUNT.match(cls_text):
            raise bad("class", "a class index (a non-negative integer)")
        return cls(
            id=sid,
            path=row["path"],
            split=row["split"],
            group=row.get("group") or sid,
            source=row.get("source") or sid,
            region=ints("region", " ", (2, 4)) if row.get("region") else None,
            shape=ints("shape", "x", None) if row.get("shape") else (),
            dtype=row.get("dtype") or "",
            class_index=int(cls_text) if cls_text else None,
            class_name=row.get("class_name") or None,
            objects=count("objects"),
            tracks=count("tracks"),
            divisions=count("divisions"),
            frames=count("frames"),
            sha256=row.get("sha256") or "",
            image_sha256=row.get("image_sha256") or "",
            phash=row.get("phash") or "",
        )
