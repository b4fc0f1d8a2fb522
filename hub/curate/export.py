"""Export curated tracking samples back to the Cell Tracking Challenge layout, losslessly."""

from __future__ import annotations

from pathlib import Path

from hub._atomic import new_folder
from hub.dataset import open_dataset
from hub.errors import InvalidInput
from hub.ome.ctc import TRUTH_TRACKS, check_lineage, lineage_from_attrs, write_frames, write_man_track


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
