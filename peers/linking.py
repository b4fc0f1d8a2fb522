"""Linking with laptrack (Fukai & Kawaguchi 2023), shared by the tracking peers: centroids of the detections of
each frame, linked by laptrack's LAP tracker (frame-to-frame links, gap closing, splitting = divisions), written
in the Cell Tracking Challenge result layout. Runs in a peer environment (numpy, pandas, scikit-image, laptrack).

The linking distances are tuned on the training split, as a lab would set them from its own annotated movies:
candidates from the percentiles of the frame-to-frame steps and of the mother-to-daughter steps of the truth,
each scored by the F1 of the links laptrack recovers when it links the true masks (:func:`tune`).
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


def true_links(masks: np.ndarray, tracks: list[tuple[int, int, int, int]]) -> set[tuple]:
    """The links of the truth, ``((t, label), (t', label'))``: a track from frame to frame, a mother's last
    frame to each daughter's first."""
    present = {(int(t), int(lab)) for t, plane in enumerate(masks) for lab in np.unique(plane[plane > 0])}
    links = set()
    for lab, b, e, parent in tracks:
        frames = [t for t in range(b, e + 1) if (t, lab) in present]
        links |= {((t0, lab), (t1, lab)) for t0, t1 in zip(frames, frames[1:])}
        ends = [t for lab2, _, t, _ in tracks if lab2 == parent]
        if parent and ends and (ends[0], parent) in present and frames:
            links.add(((ends[0], parent), (frames[0], lab)))
    return links


def tune(sequences: list[tuple[np.ndarray, list]], steps: np.ndarray, born: np.ndarray) -> dict[str, float]:
    """The link and division distances that recover the most true links (F1) when laptrack links the true masks
    of the training sequences; candidates: the 90th, 99th and 100th percentile of the steps times 1 and 1.5,
    and the 50th, 90th and 99th percentile of the mother-to-daughter steps."""
    link_c = sorted({round(f * float(np.percentile(steps, q)), 2) for q in (90, 99, 100) for f in (1.0, 1.5)})
    split_c = sorted({round(float(np.percentile(born, q)), 2) for q in (50, 90, 99)}) if len(born) else [0.0]
    best = None
    for lk in link_c:
        for sp in split_c:
            tp = fp = fn = 0
            for masks, tracks in sequences:
                truth = true_links(masks, tracks)
                found = link(masks, lk, sp)[2]
                tp, fp, fn = tp + len(truth & found), fp + len(found - truth), fn + len(truth - found)
            f1 = 2 * tp / max(2 * tp + fp + fn, 1)
            if best is None or f1 > best[0]:
                best = (f1, lk, sp)
    assert best is not None
    return {"link_distance": best[1], "division_distance": best[2], "train_link_f1": round(best[0], 4)}


def link(masks: np.ndarray, link_distance: float, division_distance: float, gap_frames: int = 2):
    """laptrack on the centroids of ``masks``: returns the masks relabelled by track, the CTC rows and the links
    ``((t, label), (t', label'))`` between the objects of ``masks``. A track that laptrack closed over a gap
    continues as a new track whose parent is the one before the gap (the CTC convention: a track is present in
    every frame from its begin to its end). A division distance of 0 links no divisions."""
    from laptrack import LapTrack

    df = centroids(masks)
    tracker = LapTrack(
        cutoff=link_distance**2,
        gap_closing_cutoff=link_distance**2,
        gap_closing_max_frame_count=gap_frames,
        splitting_cutoff=division_distance**2 if division_distance > 0 else False,
    )
    track_df, split_df, _ = tracker.predict_dataframe(df, ["y", "x"], only_coordinate_cols=False)
    parent_of = dict(zip(split_df["child_track_id"], split_df["parent_track_id"])) if len(split_df) else {}
    nodes = {
        tid: list(zip(d.sort_values("frame")["frame"], d.sort_values("frame")["label"]))
        for tid, d in track_df.groupby("track_id")
    }
    links = {(a, b) for seq in nodes.values() for a, b in zip(seq, seq[1:])}
    links |= {(nodes[p][-1], nodes[c][0]) for c, p in parent_of.items() if p in nodes and c in nodes}
    links = {((int(a[0]), int(a[1])), (int(b[0]), int(b[1]))) for a, b in links}
    out = np.zeros(masks.shape, np.uint16)
    rows, last_label, next_label = [], {}, 1
    for track_id, df_t in sorted(track_df.groupby("track_id"), key=lambda kv: kv[1]["frame"].min()):
        df_t = df_t.sort_values("frame")
        frames = df_t["frame"].to_numpy()
        starts = np.concatenate([[0], np.flatnonzero(np.diff(frames) != 1) + 1])  # a new segment after each gap
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
    return out, rows, links


def write_ctc(folder: Path, masks: np.ndarray, rows: list[tuple[int, int, int, int]]) -> None:
    """``maskTTT.tif`` per frame and ``res_track.txt``: a CTC ``<sequence>_RES`` folder."""
    folder.mkdir(parents=True)
    digits = max(3, len(str(len(masks) - 1)))
    for t, plane in enumerate(masks):
        tifffile.imwrite(folder / f"mask{t:0{digits}d}.tif", plane.astype(np.uint16), compression="zlib")
    (folder / "res_track.txt").write_text("".join(f"{lab} {b} {e} {p}\n" for lab, b, e, p in rows))
