"""Tracking metrics: hub.metrics.tracking_metrics vs py-ctcmetrics' evaluate_sequence, on a GOWT1 sequence.

Workload: Fluo-N2DH-GOWT1 sequence 01 (92 frames of 1024x1024, its TRA markers + lineage and its 30 frames of
sparse gold segmentation), all frames unless ``--frames N``. The prediction is the truth perturbed: markers grown
by 2 px and 10% of the tracks dropped (their children orphaned). Both sides compute TRA, DET, LNK, SEG and division
F1 (BC(i)) from the same arrays.

py-ctcmetrics reads CTC folders: they are written to a temporary folder before any timing, and its TIFF reads are
served from memory (copies of the same arrays), so both sides are timed on computation only. It runs with
``threads=1`` (``--ctc-threads`` to change; 0 = its process pool over all CPUs) — the hub is single-threaded too.
Values of the first run are checked: TRA/DET/LNK/SEG to 1e-6, division F1 at tolerances 0 and 2 to 1e-9.
Neither side compiles anything at first call, so every run is timed (py-ctcmetrics needs ~1 s per frame).

    .venv/bin/python bench/metrics_tracking.py [--repeats 3] [--frames 92] [--ctc-threads 1] [--data DIR]

Ends with one line: ``RATIO tracking_metrics_vs_ctcmetrics <py-ctcmetrics seconds / hub seconds>``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import tifffile
from scipy import ndimage as ndi

from hub.config import data_mirror
from hub.metrics import TrackingTruth, tracking_metrics
from hub.ome import Track, read_man_track, write_man_track

METRICS = ["TRA", "DET", "LNK", "SEG", "BC"]


def load_gowt1(data: Path, n_frames: int | None):
    gt = data / "tracking/Fluo-N2DH-GOWT1/01_GT"
    files = sorted((gt / "TRA").glob("man_track*.tif"))
    if len(files) != 92:
        sys.exit(f"{gt}: expected 92 TRA masks, found {len(files)}")
    n = min(n_frames or len(files), len(files))
    masks = np.stack([tifffile.imread(f) for f in files[:n]])
    lineage = []
    for t in read_man_track(gt / "TRA" / "man_track.txt"):
        if t.begin < n:
            lineage.append(Track(t.label, t.begin, min(t.end, n - 1), t.parent))
    seg_files = [f for f in sorted((gt / "SEG").glob("man_seg*.tif")) if int(f.stem[7:]) < n]
    seg_frames = [int(f.stem[7:]) for f in seg_files]
    seg = np.stack([tifffile.imread(f) for f in seg_files]) if seg_files else None
    return masks, lineage, seg, seg_frames


def perturb(masks: np.ndarray, lineage: list[Track], seed: int = 0) -> tuple[np.ndarray, list[Track]]:
    rng = np.random.default_rng(seed)
    grown = np.where(masks > 0, masks, ndi.maximum_filter(masks, size=(1, 5, 5)))
    labels = [t.label for t in lineage]
    gone = set(rng.choice(labels, size=max(1, len(labels) // 10), replace=False).tolist())
    grown[np.isin(grown, list(gone))] = 0
    kept = [Track(t.label, t.begin, t.end, 0 if t.parent in gone else t.parent) for t in lineage if t.label not in gone]
    return grown, kept


def write_ctc(root: Path, masks, lineage, pred, pred_lineage, seg, seg_frames) -> tuple[str, str, dict]:
    """GT (TRA, SEG) and RES folders for py-ctcmetrics; returns their paths and path -> array for reads."""
    gt, res = root / "01_GT", root / "01_RES"
    (gt / "TRA").mkdir(parents=True)
    res.mkdir()
    arrays = {}
    for t in range(masks.shape[0]):
        for path, a in ((gt / "TRA" / f"man_track{t:03d}.tif", masks[t]), (res / f"mask{t:03d}.tif", pred[t])):
            tifffile.imwrite(path, a)
            arrays[os.path.normpath(path)] = a
    write_man_track(lineage, gt / "TRA" / "man_track.txt")
    write_man_track(pred_lineage, res / "res_track.txt")
    if seg is not None:
        (gt / "SEG").mkdir()
        for k, f in enumerate(seg_frames):
            path = gt / "SEG" / f"man_seg{f:03d}.tif"
            tifffile.imwrite(path, seg[k])
            arrays[os.path.normpath(path)] = seg[k]
    return str(res), str(gt), arrays


class MemoryTiff:
    """Stands in for the ``tifffile`` module inside py-ctcmetrics: reads come from memory (copies, since it adds
    an offset to the computed masks in place)."""

    def __init__(self, arrays: dict):
        self.arrays = arrays

    def imread(self, path, *args, **kwargs):
        return self.arrays[os.path.normpath(path)].copy()


def check(mine: dict, ref: dict) -> None:
    for k in ("TRA", "DET", "LNK", "SEG"):
        if abs(mine[k] - ref[k]) > 1e-6:
            sys.exit(f"values differ: {k} hub {mine[k]} py-ctcmetrics {ref[k]}")
    for tol in (0, 2):
        r, o = ref[f"BC({tol})"], mine[f"division_f1@{tol}"]
        if (r is None) != bool(np.isnan(o)) or (r is not None and abs(r - o) > 1e-9):
            sys.exit(f"values differ: division_f1@{tol} hub {o} py-ctcmetrics BC({tol}) {r}")
    print(
        "  values: "
        + "  ".join(f"{k} {mine[k]:.6f}" for k in ("TRA", "DET", "LNK", "SEG"))
        + f"  division_f1@0 {mine['division_f1@0']:.4f}  division_f1@2 {mine['division_f1@2']:.4f}"
        " (equal to py-ctcmetrics)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--frames", type=int, default=None, help="first N frames only (default: all 92)")
    ap.add_argument("--ctc-threads", type=int, default=1)
    ap.add_argument("--data", type=Path, default=None, help="shared data folder (default $CELLHUB_DATA)")
    ap.add_argument("--tmp", type=Path, default=None, help="where the CTC folders go (default system temp)")
    args = ap.parse_args()
    data = args.data or data_mirror()

    import ctc_metrics.utils.representations as representations
    from ctc_metrics.scripts.evaluate import evaluate_sequence

    masks, lineage, seg, seg_frames = load_gowt1(data, args.frames)
    pred, pred_lineage = perturb(masks, lineage)
    truth = TrackingTruth(masks, lineage, seg, seg_frames)
    print(
        f"metrics_tracking: GOWT1 01, {masks.shape[0]} frames of {masks.shape[1]}x{masks.shape[2]}, "
        f"{len(lineage)} tracks, {len(seg_frames)} SEG frames, repeats {args.repeats}, "
        f"py-ctcmetrics threads {args.ctc_threads}"
    )

    root = Path(tempfile.mkdtemp(prefix="bench-ctc-", dir=args.tmp))
    real_tiff = representations.tiff
    try:
        res, gt, arrays = write_ctc(root, masks, lineage, pred, pred_lineage, seg, seg_frames)
        representations.tiff = MemoryTiff(arrays)

        def ours():
            return tracking_metrics([truth], [(pred, pred_lineage)])["metrics"]

        def anchor():
            with contextlib.redirect_stdout(io.StringIO()):
                return evaluate_sequence(res, gt, metrics=list(METRICS), threads=args.ctc_threads)

        fns = {"hub.metrics": ours, "py-ctcmetrics": anchor}
        runs: dict[str, list[float]] = {name: [] for name in fns}
        results = {}
        names = list(fns)
        for r in range(args.repeats):  # no JIT on either side: every run is timed, the first one is checked
            for name in names if r % 2 == 0 else names[::-1]:
                t0 = time.perf_counter()
                results[name] = fns[name]()
                runs[name].append(time.perf_counter() - t0)
            if r == 0:
                check(results["hub.metrics"], results["py-ctcmetrics"])
    finally:
        representations.tiff = real_tiff
        shutil.rmtree(root, ignore_errors=True)
    med = {name: statistics.median(secs) for name, secs in runs.items()}
    for name, secs in runs.items():
        print(f"    {name:<16} median {med[name]:8.3f} s   runs (s): " + " ".join(f"{s:.3f}" for s in secs))
    ratio = med["py-ctcmetrics"] / med["hub.metrics"]
    print(f"    ratio py-ctcmetrics / hub: {ratio:.1f}x")
    print(f"RATIO tracking_metrics_vs_ctcmetrics {ratio:.3f}")


if __name__ == "__main__":
    main()
