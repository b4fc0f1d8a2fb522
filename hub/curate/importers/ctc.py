"""Cell Tracking Challenge layout: ``NN/tTTT.tif``, ``NN_GT/TRA/man_trackTTT.tif`` + ``man_track.txt``,
``NN_GT/SEG/man_segTTT.tif`` (sparse). A flat variant (``images=img``, ``tracks=TRA``) holds one sequence.

A single movie can be cut into time windows (``windows``) separated by guard frames, so that train and test
never share frames; each window's lineage is the movie's lineage clipped to it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hub.curate._importer import Importer, register_importer
from hub.curate._sample import SampleData
from hub.errors import InvalidInput
from hub.ome.ctc import (
    FRAME,
    SEG,
    TRA,
    TRUTH_TRACKS,
    check_lineage,
    clip_lineage,
    frame_labels,
    lineage_to_attrs,
    numbered,
    read_man_track,
    read_stack,
)
from hub.ome.files import read_image_file


@dataclass
class _Item:
    name: str
    sequence: str
    images: Path
    tra: Path | None
    seg: Path | None
    window: tuple[int, int] | None = None


@register_importer("ctc")
@dataclass
class CTC(Importer):
    sequences: list[str] | None = None  # default: every NN/ folder
    images: str | None = None  # flat layout: folder of frames (e.g. 'img')
    tracks: str | None = None  # flat layout: folder of TRA masks + man_track.txt (e.g. 'TRA')
    sequence: str = "01"  # sequence name for the flat layout
    windows: list[list[int]] | None = None  # [[t0, t1], ...] inclusive frame windows of one movie

    def scan(self) -> list[_Item]:
        if self.images:
            seqs: list[tuple[str, Path, Path | None, Path | None]] = [
                (self.sequence, self.source / self.images, self.source / self.tracks if self.tracks else None, None)
            ]
        else:
            names = self.sequences or sorted(
                p.name for p in self.source.iterdir() if p.is_dir() and re.fullmatch(r"\d{2,}", p.name)
            )
            if not names:
                raise InvalidInput(
                    "no sequence folders (01/, 02/, ...): not a Cell Tracking Challenge layout", self.source
                )
            seqs = []
            for n in names:
                gt = self.source / f"{n}_GT"
                seqs.append(
                    (
                        n,
                        self.source / n,
                        gt / "TRA" if (gt / "TRA").is_dir() else None,
                        gt / "SEG" if (gt / "SEG").is_dir() else None,
                    )
                )
        items = []
        for name, img, tra, seg in seqs:
            if not img.is_dir():
                raise InvalidInput("image folder not found", img)
            if self.windows:
                for t0, t1 in self.windows:
                    items.append(_Item(f"{name}_t{t0:03d}-{t1:03d}", name, img, tra, seg, (t0, t1)))
            else:
                items.append(_Item(name, name, img, tra, seg))
        return items

    def describe(self, item: _Item) -> str:
        return str(item.images)

    def load(self, it: _Item) -> SampleData:
        frames = numbered(it.images, FRAME)
        if not frames:
            raise InvalidInput("no tNNN.tif frames", it.images)
        if list(frames) != list(range(len(frames))):
            raise InvalidInput("frame numbers are not contiguous from 0", it.images)
        t0, t1 = it.window or (0, len(frames) - 1)
        if not 0 <= t0 <= t1 < len(frames):
            raise InvalidInput(f"window {t0}-{t1} is outside frames 0-{len(frames) - 1}", it.images)
        ts = range(t0, t1 + 1)
        image = read_stack([frames[t] for t in ts])
        digits = len(frames[0].stem) - 1
        labels, label_attrs, attrs = (
            {},
            {},
            {"sequence": it.sequence, "frame_digits": digits, "source_frames": [t0, t1]},
        )
        if it.tra is not None:
            masks = numbered(it.tra, TRA)
            if sorted(masks) != list(range(len(frames))):
                raise InvalidInput(f"{len(masks)} man_track masks for {len(frames)} frames", it.tra)
            tra = read_stack([masks[t] for t in ts])
            if not np.issubdtype(tra.dtype, np.integer):
                raise InvalidInput(f"tracking masks are {tra.dtype}; labels must be integers", it.tra)
            if tra.shape != image.shape:
                raise InvalidInput(f"tracking masks have shape {tra.shape[1:]}, frames {image.shape[1:]}", it.tra)
            tracks = read_man_track(it.tra / TRUTH_TRACKS)
            if it.window:
                tracks = clip_lineage(tracks, t0, t1)
            check_lineage(tracks, frame_labels(tra), it.tra / TRUTH_TRACKS)
            labels["tracks"] = tra
            label_attrs["tracks"] = {
                "meaning": "tracking markers/masks, label = track id",
                "lineage": lineage_to_attrs(tracks),
                "mask_digits": len(masks[0].stem) - 9,
            }
        if it.seg is not None:
            segs = {t: p for t, p in numbered(it.seg, SEG).items() if t0 <= t <= t1}
            planes = {t: read_image_file(p) for t, p in segs.items()}
            for t, m in planes.items():
                if m.shape != image.shape[1:]:
                    raise InvalidInput(f"segmentation mask has shape {m.shape}, frames {image.shape[1:]}", segs[t])
                if not np.issubdtype(m.dtype, np.integer):
                    raise InvalidInput(f"segmentation mask is {m.dtype}; labels must be integers", segs[t])
            seg = np.zeros(image.shape, np.result_type(np.uint16, *(m.dtype for m in planes.values())))
            for t, m in planes.items():
                seg[t - t0] = m
            labels["segmentation"] = seg
            label_attrs["segmentation"] = {
                "meaning": "sparse gold segmentation (only annotated frames, only some cells)",
                "annotated_frames": [t - t0 for t in segs],
                "mask_digits": len(next(iter(segs.values())).stem) - 7 if segs else 3,
            }
        return SampleData(
            id=it.name,
            image=image,
            axes="tyx",
            labels=labels,
            label_attrs=label_attrs,
            group=it.name,
            source=it.sequence,
            region=[t0, t1] if it.window else None,
            attrs=attrs,
        )

    def card_defaults(self) -> dict:
        return {
            "tasks": ["tracking"],
            "channels": [{"name": "channel-0", "modality": "other"}],
            "labels": {
                "instance": "tracking markers, label = track id",
                "lineage": "CTC man_track.txt: label, first frame, last frame, parent (0 = none)",
            },
        }
