"""Instance metrics: hub.metrics (bincount overlap table + per-group assignment) vs stardist.matching.matching_dataset.

Workload: one 2048x2048 label pair with about 2000 objects, tiled from real DSB2018 nuclei label images (the
first 64 images by id of 256x256 px with at least 8 nuclei, labels made unique). The
prediction is the truth perturbed: objects grown by 1 px, 10% of them dropped, shifted by 1 px. Both sides score
the pair at the 10 thresholds 0.50..0.95, built before any timing; each side is warmed up once (numba JIT).

Values are checked first: TP/FP/FN identical at every threshold, precision/recall/accuracy/F1 equal to 1e-12,
and panoptic quality / mean_true_score to 1e-6 (stardist keeps IoU in float32).

    .venv/bin/python bench/metrics_instance.py [--repeats 5] [--data DIR]

Ends with one line: ``RATIO instance_metrics_vs_stardist <stardist seconds / hub seconds>`` (higher = hub faster).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import imageio.v3 as iio
import numpy as np
from scipy import ndimage as ndi

from hub.config import data_mirror
from hub.metrics import TAUS, instance_counts, pooled_stats

SIZE, TILE = 2048, 256


def load_dsb_labels(data: Path, n: int) -> list[np.ndarray]:
    """The first n DSB2018 label images (by id) of TILE x TILE px with at least 8 nuclei (one PNG per nucleus,
    composed)."""
    root = data / "segmentation/dsb2018-fluo"
    rows = [line.split("\t") for line in (root / "selected_ids.tsv").read_text().splitlines()[1:]]
    chosen = sorted(r[0] for r in rows if r[1].startswith(f"({TILE}, {TILE},") and int(r[2]) >= 8)[:n]
    if len(chosen) < n:
        sys.exit(f"{root}: found {len(chosen)} DSB2018 images of {TILE}x{TILE} px, need {n}")
    out = []
    for image_id in chosen:
        masks = sorted((root / "stage1_train" / image_id / "masks").glob("*.png"))
        label = None
        for k, f in enumerate(masks, 1):
            m = iio.imread(f)
            label = np.zeros(m.shape, np.int32) if label is None else label
            label[m > 0] = k
        out.append(label)
    return out


def mosaic(tiles: list[np.ndarray]) -> np.ndarray:
    y = np.zeros((SIZE, SIZE), np.int32)
    offset, per_row = 0, SIZE // TILE
    for k, t in enumerate(tiles):
        r, c = divmod(k, per_row)
        t = np.where(t > 0, t + offset, 0)
        offset = max(offset, int(t.max()))
        y[r * TILE : (r + 1) * TILE, c * TILE : (c + 1) * TILE] = t
    _, inverse = np.unique(y, return_inverse=True)  # sequential labels 0..n
    return inverse.reshape(y.shape).astype(np.int32)


def perturb(y: np.ndarray, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    grown = np.where(y > 0, y, ndi.maximum_filter(y, size=3))
    labels = np.unique(y)[1:]
    grown[np.isin(grown, rng.choice(labels, size=labels.size // 10, replace=False))] = 0
    out = np.zeros_like(grown)
    out[1:, 1:] = grown[:-1, :-1]
    return out


def ours(y: np.ndarray, p: np.ndarray) -> list[dict]:
    return pooled_stats([instance_counts(y, p, TAUS)])


def anchor(y: np.ndarray, p: np.ndarray):
    from stardist.matching import matching_dataset

    return matching_dataset([y], [p], thresh=TAUS, show_progress=False)


def check(mine: list[dict], ref) -> float:
    worst = 0.0
    for o, r in zip(mine, ref):
        for k in ("tp", "fp", "fn", "n_true", "n_pred"):
            if o[k] != getattr(r, k):
                sys.exit(f"values differ at IoU {o['thresh']}: {k} hub {o[k]} stardist {getattr(r, k)}")
        for k, tol in (
            ("precision", 1e-12),
            ("recall", 1e-12),
            ("accuracy", 1e-12),
            ("f1", 1e-12),
            ("panoptic_quality", 1e-6),
            ("mean_true_score", 1e-6),
            ("mean_matched_score", 1e-6),
        ):
            d = abs(o[k] - getattr(r, k))
            if d > tol:
                sys.exit(f"values differ at IoU {o['thresh']}: {k} hub {o[k]} stardist {getattr(r, k)}")
            worst = max(worst, d)
    return worst


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--data", type=Path, default=None, help="shared data folder (default $CELLHUB_DATA)")
    args = ap.parse_args()
    data = args.data or data_mirror()

    y = mosaic(load_dsb_labels(data, (SIZE // TILE) ** 2))
    p = perturb(y)
    print(
        f"metrics_instance: {SIZE}x{SIZE} label pair from DSB2018 tiles, {int(y.max())} true objects, "
        f"{np.unique(p).size - 1} predicted, {len(TAUS)} thresholds, repeats {args.repeats}"
    )
    mine, ref = ours(y, p), anchor(y, p)  # also the warm-up (numba JIT on the stardist side)
    worst = check(mine, ref)
    print(f"  values: identical counts at every threshold; largest difference {worst:.2e} (float32 IoU in stardist)")
    print(f"  acc@0.5 {mine[0]['accuracy']:.4f}  acc@[.5:.95] {np.mean([s['accuracy'] for s in mine]):.4f}")

    runs: dict[str, list[float]] = {"hub.metrics": [], "stardist matching_dataset": []}
    fns = {"hub.metrics": ours, "stardist matching_dataset": anchor}
    names = list(runs)
    for r in range(args.repeats):
        for name in names if r % 2 == 0 else names[::-1]:
            t0 = time.perf_counter()
            fns[name](y, p)
            runs[name].append(time.perf_counter() - t0)
    med = {name: statistics.median(secs) for name, secs in runs.items()}
    for name, secs in runs.items():
        print(f"    {name:<28} median {med[name]:8.4f} s   runs (s): " + " ".join(f"{s:.4f}" for s in secs))
    ratio = med["stardist matching_dataset"] / med["hub.metrics"]
    print(f"    ratio stardist / hub: {ratio:.1f}x")
    print(f"RATIO instance_metrics_vs_stardist {ratio:.3f}")


if __name__ == "__main__":
    main()
