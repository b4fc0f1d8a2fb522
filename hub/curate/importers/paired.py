"""Paired transmitted-light / fluorescence images matched by file-name patterns, optionally tiled.

Each channel is a regular expression over file names; ``field`` is a regular expression whose group
``field`` names the field of view a file belongs to. A large field is cut into ``tile``-sized tiles on a
grid of stride ``tile + guard``, so any two tiles are at least ``guard`` pixels apart and can go to
different splits without sharing pixels or their immediate surroundings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from hub.curate._importer import Importer, register_importer
from hub.curate._sample import SampleData
from hub.errors import InvalidInput
from hub.ome.files import image_files, read_image_file


@lru_cache(maxsize=4)
def _field_stack(files: tuple[Path, ...]) -> np.ndarray:
    planes = [read_image_file(f) for f in files]
    shapes = {p.shape for p in planes}
    if len(shapes) != 1:
        raise InvalidInput(f"channels of one field differ in shape {sorted(shapes)}", files[0].parent)
    dtypes = {p.dtype for p in planes}
    if len(dtypes) != 1:
        raise InvalidInput(f"channels of one field differ in dtype {sorted(map(str, dtypes))}", files[0].parent)
    return np.stack(planes)


@register_importer("paired")
@dataclass
class Paired(Importer):
    channels: dict[str, str] | None = None  # channel name -> regex over file names, in channel order
    inputs: list[str] | None = None  # names of the transmitted-light (input) channels
    targets: list[str] | None = None  # names of the fluorescence (target) channels
    field: str = r"^(?P<field>.+?)[_-][^_-]+$"  # regex whose group 'field' names a file's field of view
    tile: int | None = None
    guard: int = 0

    def _fields(self) -> dict[str, tuple[Path, ...]]:
        if not self.channels:
            raise InvalidInput("the paired importer needs 'channels': {name: file-name regex}")
        pats = {n: re.compile(p) for n, p in self.channels.items()}
        field_re = re.compile(self.field)
        found: dict[str, dict[str, Path]] = {}
        for f in image_files(self.source):
            chans = [n for n, p in pats.items() if p.search(f.name)]
            if not chans:
                continue
            if len(chans) > 1:
                raise InvalidInput(f"file name matches several channels {chans}", f)
            m = field_re.search(f.stem)
            if not m:
                raise InvalidInput(f"file name does not match the field pattern {self.field!r}", f)
            slot = found.setdefault(m.group("field"), {})
            if chans[0] in slot:
                raise InvalidInput(
                    f"two files for channel {chans[0]!r} of field {m.group('field')!r}: {slot[chans[0]].name}", f
                )
            slot[chans[0]] = f
        if not found:
            raise InvalidInput("no file matches any channel pattern", self.source)
        out = {}
        for name, slot in sorted(found.items()):
            missing = [c for c in self.channels if c not in slot]
            if missing:
                raise InvalidInput(f"field {name!r} has no file for channel(s) {missing}", self.source)
            out[name] = tuple(slot[c] for c in self.channels)
        return out

    def scan(self) -> list[tuple]:
        items: list[tuple[str, tuple[Path, ...], tuple[str, int, int] | None]] = []
        for name, files in self._fields().items():
            if not self.tile:
                items.append((name, files, None))
                continue
            h, w = read_image_file(files[0]).shape[:2]
            stride = self.tile + self.guard
            for y in range(0, h - self.tile + 1, stride):
                for x in range(0, w - self.tile + 1, stride):
                    items.append((f"{name}_y{y:04d}_x{x:04d}", files, (name, y, x)))
        return items

    def describe(self, item: tuple) -> str:
        return str(item[1][0].parent)

    def load(self, item: tuple) -> SampleData:
        sid, files, where = item
        stack = _field_stack(files)
        if stack.ndim != 3:
            raise InvalidInput(f"expected single-channel 2-D images, got {stack.shape[1:]}", files[0])
        if where is None:
            return SampleData(id=sid, image=stack, axes="cyx", attrs={"files": [f.name for f in files]})
        field, y, x = where
        t = self.tile
        return SampleData(
            id=sid,
            image=np.ascontiguousarray(stack[:, y : y + t, x : x + t]),
            axes="cyx",
            group=sid,
            source=field,
            region=[y, x, y + t, x + t],
            attrs={"files": [f.name for f in files], "offset_yx": [y, x]},
        )

    def card_defaults(self) -> dict:
        names = list(self.channels or {})
        return {
            "tasks": ["label-free"],
            "channels": [{"name": n, "modality": "other"} for n in names],
            "labels": {"inputs": self.inputs or names[:1], "targets": self.targets or names[1:]},
        }
