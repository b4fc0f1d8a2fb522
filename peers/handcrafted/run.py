"""Hand-crafted features + gradient boosting (Blasi et al. 2016) on a hub classification benchmark.

The pre-deep-learning method of the field, as Blasi et al. classified the cell-cycle phase of Jurkat cells from
bright-field and dark-field images: a cell mask, then per image a vector of intensity, shape and texture features
(the CellProfiler families, here from scikit-image), then boosted trees. Here:

- mask: the largest object of an Otsu threshold on the smoothed deviation of each channel from its border median;
- shape: area, perimeter, eccentricity, solidity, extent, axis lengths, orientation-free Hu moments;
- intensity, per channel, inside and outside the mask: mean, std, quantiles, integrated intensity, skewness,
  kurtosis, and the mean in three concentric rings (radial distribution);
- texture, per channel: Haralick features of the grey-level co-occurrence matrix (distances 1, 2, 4; four angles
  averaged), uniform local binary pattern histograms, and gradient magnitude statistics;
- classifier: scikit-learn's HistGradientBoostingClassifier with balanced class weights (the rare mitotic phases),
  its number of boosting rounds chosen on val by macro F1.

Run by ``cellhub peers run handcrafted`` in this folder's environment (``make peers``).
"""

import csv
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from common import Clock, Handoff, arguments, threads, write_report  # noqa: E402

args = arguments(__doc__.splitlines()[0])

import os  # noqa: E402

os.environ["OMP_NUM_THREADS"] = str(threads())

from scipy import ndimage as ndi  # noqa: E402
from scipy.stats import kurtosis, skew  # noqa: E402
from skimage.feature import graycomatrix, graycoprops, local_binary_pattern  # noqa: E402
from skimage.filters import gaussian, threshold_otsu  # noqa: E402
from skimage.measure import label, moments_hu, regionprops  # noqa: E402
from sklearn.ensemble import HistGradientBoostingClassifier  # noqa: E402
from sklearn.metrics import f1_score  # noqa: E402

data = Handoff(args.data)
opts = {"max_iter": 300, "learning_rate": 0.1, **args.options}
if args.quick:
    opts.update(max_iter=5)
classes = data.meta["classes"]
HARALICK = ("contrast", "dissimilarity", "homogeneity", "energy", "correlation", "ASM")


def cell_mask(x: np.ndarray) -> np.ndarray:
    """The cell: the largest component of an Otsu threshold on the summed, smoothed deviation of each channel
    from its border median (bright-field cells are darker or brighter than the background)."""
    dev = np.zeros(x.shape[1:], np.float32)
    for ch in x:
        border = np.concatenate([ch[0], ch[-1], ch[:, 0], ch[:, -1]])
        d = np.abs(ch - np.median(border))
        dev += gaussian(d / (d.std() + 1e-6), 1.0)
    try:
        mask = dev > threshold_otsu(dev)
    except ValueError:
        return np.ones(dev.shape, bool)
    mask = ndi.binary_fill_holes(ndi.binary_opening(mask, iterations=1))
    lab = label(mask)
    if lab.max() == 0:
        return np.ones(dev.shape, bool)
    return lab == (np.argmax(np.bincount(lab.ravel())[1:]) + 1)


def stats(v: np.ndarray) -> list[float]:
    if v.size < 2:
        return [0.0] * 9
    q = np.percentile(v, [5, 25, 50, 75, 95])
    return [v.mean(), v.std(), *q, float(skew(v)), float(kurtosis(v))]


def features(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float32)
    mask = cell_mask(x)
    props = regionprops(mask.astype(np.uint8))[0]
    f = [
        props.area,
        props.perimeter,
        props.eccentricity,
        props.solidity,
        props.extent,
        props.axis_major_length,
        props.axis_minor_length,
        *moments_hu(props.moments_central / (props.moments_central[0, 0] + 1e-9)),
    ]
    dist = ndi.distance_transform_edt(mask)
    rings = np.digitize(dist / (dist.max() + 1e-9), [1 / 3, 2 / 3]) if dist.max() else np.zeros_like(dist, int)
    for ch in x:
        lo, hi = np.percentile(ch, [0.5, 99.5])
        norm = np.clip((ch - lo) / (hi - lo + 1e-9), 0, 1)
        f += stats(ch[mask]) + stats(ch[~mask]) + [ch[mask].sum()]
        f += [ch[mask & (rings == r)].mean() if np.any(mask & (rings == r)) else 0.0 for r in range(3)]
        q = (norm * 31).astype(np.uint8)
        glcm = graycomatrix(
            q, [1, 2, 4], [0, np.pi / 4, np.pi / 2, 3 * np.pi / 4], levels=32, symmetric=True, normed=True
        )
        for prop in HARALICK:
            f += list(graycoprops(glcm, prop).mean(axis=1))
        lbp = local_binary_pattern(q, 8, 1, "uniform")
        f += list(np.bincount(lbp[mask].astype(int), minlength=10)[:10] / max(mask.sum(), 1))
        grad = np.hypot(ndi.sobel(norm, 0), ndi.sobel(norm, 1))
        f += [grad[mask].mean(), grad[mask].std(), grad[~mask].mean() if np.any(~mask) else 0.0]
    return np.nan_to_num(np.asarray(f, np.float64))


def table(split):
    ids = data.ids(split)
    X = np.stack([features(data.image(split, i)) for i in ids])
    return ids, X


clock = Clock()
with clock.time("train"):
    _, X_trn = table("train")
    y_trn = np.array([classes.index(r["class"]) for r in data.table("train", "classes.csv")])
    _, X_val = table("val")
    y_val = np.array([classes.index(r["class"]) for r in data.table("val", "classes.csv")])
    model = HistGradientBoostingClassifier(
        max_iter=opts["max_iter"],
        learning_rate=opts["learning_rate"],
        class_weight="balanced",
        early_stopping=False,
        random_state=0,
    )
    model.fit(X_trn, y_trn)
    scores = [f1_score(y_val, p, average="macro") for p in model.staged_predict(X_val)]
    best = int(np.argmax(scores)) + 1
    model.set_params(max_iter=best).fit(X_trn, y_trn)

with clock.time("predict"):
    ids, X_test = table(data.scored)
    proba = model.predict_proba(X_test)
    present = [classes[k] for k in model.classes_]
    with open(args.out / "predictions.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", *classes])
        for sid, p in zip(ids, proba):
            row = dict(zip(present, p))
            w.writerow([sid, *[f"{row.get(c, 0.0):.6f}" for c in classes]])

write_report(
    args,
    "scikit-learn",
    clock,
    len(ids),
    features=int(X_trn.shape[1]),
    boosting_rounds=best,
    val_macro_f1=float(scores[best - 1]),
    train_images=len(X_trn),
    val_images=len(X_val),
)
