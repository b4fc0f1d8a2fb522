"""Export curated tracking samples back to the Cell Tracking Challenge layout, losslessly."""

from __future__ import annotations

from pathlib import Path

import tifffile

from hub._atomic import new_folder
from hub.curate.dataset import open_dataset
from hub.errors import InvalidInput
from hub.ome import lineage_from_attrs, write_man_track


def export_ctc(dataset: str | Path, out: str | Path, ids: list[str] | None = None) -> list[str]:
    """Write ``<seq>/tTTT.tif``, ``<seq>_GT/TRA/man_trackTTT.tif`` + ``man_track.txt`` and
    ``<seq>_GT/SEG/man_segTTT.tif`` for each time-lapse sample; returns the sequence folder names."""
    ds = open_dataset(dataset)
    chosen = ids or [s["id"] for s in ds.samples if s["frames"] not in ("", "0")]
    if not chosen:
        raise InvalidInput("dataset has no time-lapse samples to export", ds.path)
    with new_folder(out) as tmp:
        for sid in chosen:
            img = ds.image(sid)
            if not img.axes.startswith("t"):
                raise InvalidInput(f"sample {sid!r} is not a time-lapse (axes {img.axes})", img.path)
            digits = int(img.attrs.get("frame_digits", 3))
            (tmp / sid).mkdir()
            frames = img.array()
            for t in range(frames.shape[0]):
                tifffile.imwrite(tmp / sid / f"t{t:0{digits}d}.tif", frames[t])
            if "tracks" in img.label_names:
                attrs = _write_masks(img, "tracks", tmp / f"{sid}_GT" / "TRA", "man_track", digits)
                write_man_track(lineage_from_attrs(attrs["lineage"]), tmp / f"{sid}_GT" / "TRA" / "man_track.txt")
            if "segmentation" in img.label_names:
                _write_masks(img, "segmentation", tmp / f"{sid}_GT" / "SEG", "man_seg", digits)
    return chosen


def _write_masks(img, label: str, folder: Path, prefix: str, digits: int) -> dict:
    """Write the annotated frames (all, unless ``annotated_frames`` says otherwise) of a label image as
    ``<prefix>TTT.tif``; returns the label's attributes."""
    folder.mkdir(parents=True)
    attrs = img.label_attrs(label)
    d = int(attrs.get("mask_digits", digits))
    masks = img.label(label)
    for t in attrs.get("annotated_frames", range(masks.shape[0])):
        tifffile.imwrite(folder / f"{prefix}{t:0{d}d}.tif", masks[t])
    return attrs
