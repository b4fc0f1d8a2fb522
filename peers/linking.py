"""Linking with laptrack (Fukai & Kawaguchi 2023), shared by the tracking peers: centroids of the detections of
each frame, linked by laptrack's LAP tracker (frame-to-frame links, gap closing, splitting = divisions), written
in the Cell Tracking Challenge result layout. Runs in a peer environment (numpy, pandas, scikit-image, laptrack).

The linking distances come from the training split, as a lab would set them from its own annotated movies: the
largest frame-to-frame step of a nucleus and the largest mother-to-daughter step (99th percentile, times 1.5).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import tifffile
from skimage.measure import regionprops_table


def centroids(masks: np.ndarray) -> pd.DataFrame:
    """frame, label, y, x of every object of a (T, Y, X) label movie."""
    rows = []
    for t, plane in enumerate(masks):
        props = regionprops_table(plane, properties=("label", "centroid"))
        rows.append(
            pd.DataFrame({"frame": t, "label": props["label"], "y": props["centroid-0"], "x": props["centroid-1"]})
        )
    return pd.concat(rows, ignore_index=True)


def read_tracks(path: Path) -> list[tuple[int, int, int, int]]:
    """CTC ``L B E P`` rows."""
    return [tuple(int(v) for v in line.split()) for line in path.read_text().splitlines() if line.strip()]


def distances(masks: np.ndarray, tracks: list[tuple[int, int, int, int]]) -> tuple[np.ndarray, np.ndarray]:
    """Frame-to-frame steps of every track, and mother-to-daughter steps at every division, in pixels."""
    c = centroids(masks).set_index(["label", "frame"])[["y", "x"]]
    steps = []
    for _, df in c.groupby(level=0):
        xy = df.droplevel(0).sort_index()
        frames = xy.index.to_numpy()
        d = np.linalg.norm(np.diff(xy.to_numpy(), axis=0), axis=1)
        steps += list(d[np.diff(frames) == 1])
    born = []
    for label, b, _, parent in tracks:
        if parent and (parent, b - 1) in c.index and (label, b) in c.index:
            born.append(np.linalg.norm(c.loc[(label, b)].to_numpy() - c.loc[(parent, b - 1)].to_numpy()))
    return np.asarray(steps), np.asarray(born)


def cutoffs(steps: np.ndarray, born: np.ndarray) -> dict[str, float]:
    """Maximum link and division distances: 1.5 x the 99th percentile of the training steps."""
    link = 1.5 * float(np.percentile(steps, 99)) if len(steps) else 15.0
    split = 1.5 * float(np.percentile(born, 99)) if len(born) else link
    return {"link_distance": round(link, 2), "division_distance": round(split, 2)}


def link(masks: np.ndarray, link_distance: float, division_distance: float, gap_frames: int = 2):
    """laptrack on the centroids of ``masks``: returns the masks relabelled by track and the CTC rows. A track
    that laptrack closed over a gap continues as a new track whose parent is the one before the gap (the CTC
    convention: a track is present in every frame from its begin to its end)."""
    from laptrack import LapTrack

    df = centroids(masks)
    tracker = LapTrack(
        cutoff=link_distance**2,
        gap_closing_cutoff=link_distance**2,
        gap_closing_max_frame_count=gap_frames,
        splitting_cutoff=division_distance**2,
    )
    track_df, split_df, _ = tracker.predict_dataframe(df, ["y", "x"], only_coordinate_cols=False)
    parent_of = dict(zip(split_df["child_track_id"], split_df["parent_track_id"]))
    out = np.zeros(masks.shape, np.uint16)
    rows, last_label, next_label = [], {}, 1
    for track_id, df_t in sorted(track_df.groupby("track_id"), key=lambda kv: kv[1]["frame"].min()):
        df_t = df_t.sort_values("frame")
        frames = df_t["frame"].to_numpy()
        starts = np.flatnonzero(np.diff(frames, prepend=frames[0] - 1) != 1)  # a new segment after each gap
        parent = last_label.get(parent_of.get(track_id), 0)
        for k, s in enumerate(starts):
            e = starts[k + 1] if k + 1 < len(starts) else len(frames)
            seg = df_t.iloc[s:e]
            label = next_label
            next_label += 1
            for t, old in zip(seg["frame"], seg["label"]):
                out[t][masks[t] == old] = label
            rows.append((label, int(seg["frame"].iloc[0]), int(seg["frame"].iloc[-1]), parent))
            parent = label
        last_label[track_id] = parent
    return out, rows


def write_ctc(folder: Path, masks: np.ndarray, rows: list[tuple[int, int, int, int]]) -> None:
    """``maskTTT.tif`` per frame and ``res_track.txt``: a CTC ``<sequence>_RES`` folder."""
    folder.mkdir(parents=True)
    digits = max(3, len(str(len(masks) - 1)))
    for t, plane in enumerate(masks):
        tifffile.imwrite(folder / f"mask{t:0{digits}d}.tif", plane.astype(np.uint16), compression="zlib")
    (folder / "res_track.txt").write_text("".join(f"{lab} {b} {e} {p}\n" for lab, b, e, p in rows))
