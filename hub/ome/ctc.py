"""Cell Tracking Challenge I/O in one place: track tables (``man_track.txt``, ``res_track.txt``), numbered frame
and mask files, result folders (``<seq>_RES``), and the one lineage check every reader and writer applies.

A track table row is (label, first frame, last frame, parent; 0 = none), as :class:`Track`. A lineage is valid
with its masks when (the CTC's own validity rules): every row is possible (label > 0, 0 <= first <= last < number
of frames, parent >= 0), no label has two rows, every parent has a row and ends before its child begins, and each
label is in the masks in exactly the frames its row spans. :func:`check_lineage` applies them; the importer, the
validator, the exporter, the linker's result writer and the tracking metrics (truth and prediction) call it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from hub.errors import InvalidInput
from hub.ome.files import read_image_file

FRAME = re.compile(r"^t(\d+)\.tiff?$")  # <seq>/tTTT.tif
TRA = re.compile(r"^man_track(\d+)\.tiff?$")  # <seq>_GT/TRA/man_trackTTT.tif (+ man_track.txt)
SEG = re.compile(r"^man_seg(\d+)\.tiff?$")  # <seq>_GT/SEG/man_segTTT.tif (sparse)
MASK = re.compile(r"^mask(\d+)\.tiff?$")  # <seq>_RES/maskTTT.tif (+ res_track.txt)
RESULT_TRACKS = "res_track.txt"
TRUTH_TRACKS = "man_track.txt"
_NO_HOLES = "CTC tracks have no holes: continue after a gap with a new track whose parent is the track before it"


class Track(NamedTuple):
    label: int
    begin: int
    end: int
    parent: int


# ---- track tables --------------------------------------------------------------------------------------------


def read_man_track(path: str | Path) -> list[Track]:
    """Parse a CTC track file (``man_track.txt`` or ``res_track.txt``); any malformed line is an error naming the
    file and line. Whether the rows agree with each other and with masks is :func:`check_lineage`'s question."""
    path = Path(path)
    tracks = []
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise InvalidInput("track file not found", path) from None
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        try:
            if len(parts) != 4:
                raise ValueError
            t = Track(*(int(p) for p in parts))
        except ValueError:
            raise InvalidInput(f"line {n}: expected 4 integers 'L B E P', got {line.strip()!r}", path) from None
        if t.label <= 0 or t.begin < 0 or t.end < t.begin or t.parent < 0:
            raise InvalidInput(f"line {n}: impossible track {line.strip()!r}", path)
        tracks.append(t)
    return tracks


def write_man_track(tracks: Iterable[Track], path: str | Path) -> None:
    Path(path).write_text("".join(f"{t.label} {t.begin} {t.end} {t.parent}\n" for t in tracks))


def lineage_to_attrs(tracks: Iterable[Track]) -> list[list[int]]:
    """Rows as stored in a label image's attributes (``lineage``)."""
    return [list(t) for t in tracks]


def lineage_from_attrs(rows: Iterable[Sequence[int]]) -> list[Track]:
    return [Track(*map(int, r)) for r in rows]


def clip_lineage(tracks: Iterable[Track], t0: int, t1: int) -> list[Track]:
    """The lineage of frames t0..t1, renumbered from 0; parents outside the window become 0."""
    tracks = list(tracks)
    kept = {t.label for t in tracks if t.begin <= t1 and t.end >= t0}
    return [
        Track(t.label, max(t.begin, t0) - t0, min(t.end, t1) - t0, t.parent if t.parent in kept else 0)
        for t in tracks
        if t.label in kept
    ]


# ---- the lineage check ---------------------------------------------------------------------------------------


def frame_labels(masks) -> list[np.ndarray]:
    """The sorted non-zero labels of each frame of ``masks`` (T, Y, X; a numpy or zarr array, read frame by
    frame): what :func:`check_lineage` compares the rows with."""
    return [_labels_of(np.asarray(masks[t])) for t in range(masks.shape[0])]


def _labels_of(plane: np.ndarray) -> np.ndarray:
    if plane.dtype.kind == "u" and plane.dtype.itemsize <= 2:  # counting beats sorting for small labels
        return np.flatnonzero(np.bincount(plane.ravel(), minlength=1)[1:]) + 1
    u = np.unique(plane)
    return u[u != 0]


def lineage_rows(
    tracks: Iterable[Sequence[int]], who: str | None = None, where: str | Path | None = None
) -> np.ndarray:
    """Track rows as an (N, 4) int64 array; a number beyond int64 is a one-line error."""
    try:
        return np.asarray([tuple(r) for r in tracks], dtype=np.int64).reshape(-1, 4)
    except OverflowError:
        raise InvalidInput(f"{_name(who)}: a number is outside the signed 64-bit range", where) from None


def _name(who: str | None) -> str:
    return f"{who} lineage" if who else "lineage"


def check_lineage(
    tracks: Iterable[Sequence[int]],
    labels: Sequence[np.ndarray],
    where: str | Path | None = None,
    who: str | None = None,
) -> np.ndarray:
    """Refuse an impossible lineage, or one its masks contradict, in one line naming the first problem (and
    ``where``, the track file or label image); returns the rows as an (N, 4) int64 array.

    ``labels[t]`` are the sorted non-zero labels present in frame ``t`` (:func:`frame_labels`); ``who`` (e.g.
    ``prediction``) prefixes the message. The rules are the module's (the CTC's validity check), in this order:
    each row on its own, rows against the masks, parents.
    """
    name = _name(who)
    rows = lineage_rows(tracks, who, where)
    n_frames = len(labels)
    lab, begin, end, parent = rows.T
    uniq, counts = np.unique(lab, return_counts=True)
    if (counts > 1).any():
        raise InvalidInput(f"{name}: track {int(uniq[counts > 1][0])} is listed twice", where)
    bad = (lab <= 0) | (begin < 0) | (end < begin) | (end >= n_frames) | (parent < 0)
    if bad.any():
        r = rows[bad][0]
        raise InvalidInput(f"{name}: impossible track {' '.join(map(str, r.tolist()))!r} for {n_frames} frames", where)
    order = np.argsort(lab)  # rows in label order: rows[order[k]] is the row of uniq[k]
    _check_presence(rows[order], uniq, labels, name, where)
    has_parent = parent > 0
    if has_parent.any():
        k = np.minimum(np.searchsorted(uniq, parent[has_parent]), uniq.size - 1)
        missing = uniq[k] != parent[has_parent]
        if missing.any():
            r = rows[has_parent][missing][0]
            raise InvalidInput(f"{name}: track {int(r[0])} has parent {int(r[3])}, which is not a track", where)
        p_end = end[order][k]
        late = p_end >= begin[has_parent]
        if late.any():
            r, e = rows[has_parent][late][0], int(p_end[late][0])
            raise InvalidInput(
                f"{name}: track {int(r[0])} begins at frame {int(r[1])}, not after its parent {int(r[3])} ends "
                f"(frame {e})",
                where,
            )
    return rows


def _as_int64(x: np.ndarray) -> tuple[np.ndarray, int | None]:
    """Labels as int64, and the first label beyond int64 (it can have no row), if any."""
    x = np.asarray(x)
    if x.dtype == np.uint64 and x.size and x.max() > np.iinfo(np.int64).max:
        big = x[x > np.iinfo(np.int64).max]
        return x[x <= np.iinfo(np.int64).max].astype(np.int64), int(big[0])
    return x.astype(np.int64, copy=False), None


def _check_presence(rows: np.ndarray, uniq: np.ndarray, labels: Sequence[np.ndarray], name: str, where) -> None:
    """Each label in exactly the frames its row spans (``rows`` in label order, ``uniq`` their labels)."""
    k_n = max(uniq.size, 1)
    first_unlisted: tuple[int, int] | None = None  # (frame, label) of a label that has no row
    present = []
    for t, x in enumerate(labels):
        x, big = _as_int64(x)
        idx = np.minimum(np.searchsorted(uniq, x), k_n - 1) if uniq.size else np.zeros(x.size, np.int64)
        found = uniq[idx] == x if uniq.size else np.zeros(x.size, bool)
        if first_unlisted is None and (big is not None or not found.all()):
            first_unlisted = (t, big if big is not None else int(x[~found][0]))
        present.append(t * k_n + idx[found])
    present_keys = np.concatenate(present) if present else np.zeros(0, np.int64)
    listed = (
        np.concatenate([np.arange(b, e + 1) * k_n + k for k, (_, b, e, _) in enumerate(rows.tolist())])
        if rows.size
        else np.zeros(0, np.int64)
    )
    extra = np.setdiff1d(present_keys, listed, assume_unique=True)
    absent = np.setdiff1d(listed, present_keys, assume_unique=True)
    firsts = [int(a[0]) // k_n for a in (extra, absent) if a.size]
    if first_unlisted is not None and (not firsts or first_unlisted[0] <= min(firsts)):
        t, lbl = first_unlisted
        raise InvalidInput(
            f"{name} contradicts the masks: label {lbl} is in the mask of frame {t} but not in the lineage", where
        )
    if not firsts:
        return
    key = int(extra[0]) if extra.size and (not absent.size or extra[0] <= absent[0]) else int(absent[0])
    t, k = divmod(key, k_n)
    lbl, b, e = (int(v) for v in rows[k][:3])
    seen = [s for s, x in enumerate(labels) if x.size and _contains(x, lbl)]
    if not seen:
        problem = f"track {lbl} of the lineage (frames {b}-{e}) is absent from the masks"
    elif key in set(absent.tolist()) and seen[0] < t < seen[-1]:
        problem = f"label {lbl} is missing from frame {t} between its first and last frames ({seen[0]}-{seen[-1]}); "
        problem += _NO_HOLES
    else:
        problem = f"track {lbl} spans frames {b}-{e} in the lineage but {seen[0]}-{seen[-1]} in the masks"
    raise InvalidInput(f"{name} contradicts the masks: {problem}", where)


def _contains(sorted_labels: np.ndarray, label: int) -> bool:
    x, _ = _as_int64(sorted_labels)
    i = int(np.searchsorted(x, label))
    return i < x.size and int(x[i]) == label


# ---- frame and mask files ------------------------------------------------------------------------------------


def numbered(folder: Path, pattern: re.Pattern) -> dict[int, Path]:
    """Frame number -> file of the files in ``folder`` whose names match ``pattern`` (one number group)."""
    out = {}
    for p in folder.iterdir():
        m = pattern.match(p.name)
        if m:
            out[int(m.group(1))] = p
    return dict(sorted(out.items()))


def read_stack(files: list[Path]) -> np.ndarray:
    """Frames of one movie as a (T, Y, X) array; a frame of another shape or dtype is an error naming it."""
    planes = [read_image_file(f) for f in files]
    for f, p in zip(files, planes):
        if p.shape != planes[0].shape or p.dtype != planes[0].dtype:
            raise InvalidInput(
                f"{p.dtype} {p.shape} frame, but {files[0].name} is {planes[0].dtype} {planes[0].shape}", f
            )
    if planes[0].ndim != 2:
        raise InvalidInput(f"expected 2-D frames, got shape {planes[0].shape}", files[0])
    return np.stack(planes)


def write_frames(
    folder: Path, prefix: str, planes, frames: Iterable[int], digits: int, dtype=None, labels: bool = False
) -> list[np.ndarray]:
    """Write ``planes[t]`` (as ``dtype``, if given) to ``<prefix>TTT.tif`` for each ``t`` of ``frames``, creating
    ``folder``; with ``labels``, returns the non-zero labels of each plane written (for :func:`check_lineage`)."""
    import tifffile

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for t in frames:
        plane = np.asarray(planes[t])
        if dtype is not None:
            plane = plane.astype(dtype, copy=False)
        tifffile.imwrite(folder / f"{prefix}{t:0{digits}d}.tif", plane)
        if labels:
            written.append(_labels_of(plane))
    return written


def check_masks(masks) -> np.ndarray:
    """``masks`` as a 3-D (T, Y, X) array of non-negative integer labels, else a one-line error."""
    masks = np.asarray(masks)
    if masks.ndim != 3:
        raise InvalidInput(f"masks must be a 3-D (T, Y, X) label array, got {masks.ndim}-D shape {masks.shape}")
    if not np.issubdtype(masks.dtype, np.integer):
        raise InvalidInput(f"masks must hold integer instance labels, got dtype {masks.dtype}")
    if masks.size and np.issubdtype(masks.dtype, np.signedinteger) and masks.min() < 0:
        raise InvalidInput(f"masks hold negative labels (min {int(masks.min())}); labels are >= 0, 0 = background")
    return masks


# ---- result folders (<seq>_RES) ------------------------------------------------------------------------------


def write_ctc_result(masks: np.ndarray, tracks: list[Track], folder: str | Path, digits: int = 3) -> Path:
    """Write ``maskTTT.tif`` (uint16) per frame and ``res_track.txt`` into ``folder`` (CTC ``<seq>_RES``).

    The lineage must match the masks (:func:`check_lineage`). Nothing is left half-written on failure.
    """
    from hub._atomic import new_folder

    masks = check_masks(masks)
    folder = Path(folder)
    if masks.size and masks.max() > np.iinfo(np.uint16).max:
        raise InvalidInput(f"CTC masks are uint16, but label {int(masks.max())} exceeds 65535", folder)
    check_lineage(tracks, frame_labels(masks), folder)
    digits = max(digits, len(str(max(masks.shape[0] - 1, 0))))
    with new_folder(folder) as tmp:
        write_frames(tmp, "mask", masks, range(masks.shape[0]), digits, dtype=np.uint16)
        write_man_track(sorted(tracks), tmp / RESULT_TRACKS)
    return folder


def read_ctc_result(
    folder: Path, shape: tuple[int, ...], read_mask: Callable[[Path, tuple[int, ...]], np.ndarray]
) -> tuple[np.ndarray, list[Track]]:
    """A CTC ``<seq>_RES`` folder as (masks (T, Y, X), track rows); every frame of ``shape`` needs a mask, read
    by ``read_mask(file, frame shape)``. The rows are parsed, not yet checked against the masks."""
    frames = numbered(folder, MASK)
    missing = [t for t in range(shape[0]) if t not in frames]
    if missing:
        raise InvalidInput(f"no mask for frame {missing[0]} (expected mask{missing[0]:03d}.tif)", folder)
    extra = sorted(t for t in frames if t >= shape[0])
    if extra:
        raise InvalidInput(f"mask for frame {extra[0]}, but the sequence has {shape[0]} frames", folder)
    masks = np.stack([read_mask(frames[t], shape[1:]) for t in range(shape[0])])
    return masks, read_man_track(folder / RESULT_TRACKS)
