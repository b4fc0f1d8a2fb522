"""Label-free prediction (augmented microscopy): Pearson r, SSIM, PSNR and NRMSE under the CARE protocol."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from hub.errors import InvalidInput
from hub.metrics._inputs import paired

#: Percentiles of the ground truth mapped to 0 and 1 (CARE, Weigert et al. 2018).
PERCENTILES = (0.1, 99.9)


def normalize_truth(y: np.ndarray) -> np.ndarray:
    """Ground truth percentile-normalised: (y - p0.1) / (p99.9 - p0.1), float64."""
    y = np.asarray(y, dtype=np.float64)
    lo, hi = np.percentile(y, PERCENTILES)
    return (y - lo) / max(hi - lo, 1e-20)


def fit_prediction(x: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``a*x + b`` with (a, b) the least-squares fit to ``target`` (CARE's ``normalize_minmse``, exact)."""
    x = np.asarray(x, dtype=np.float64)
    xc = x - x.mean()
    var = float(np.mean(xc * xc))
    a = float(np.mean(xc * (target - target.mean()))) / var if var > 0 else 0.0
    return a * xc + target.mean()


def image_scores(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """Scores of one 2-D image pair (see :func:`labelfree_metrics`)."""
    from skimage.metrics import structural_similarity  # imported on first use (reading a card needs none of it)

    t = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(y_pred, dtype=np.float64)
    if t.shape != p.shape:
        raise InvalidInput(f"truth and prediction differ in shape: {t.shape} vs {p.shape}")
    if not (np.all(np.isfinite(t)) and np.all(np.isfinite(p))):
        raise InvalidInput("image contains NaN or infinity")
    r = pearson(t, p)
    tn = normalize_truth(t)
    pn = fit_prediction(p, tn)
    data_range = float(tn.max() - tn.min())
    mse = float(np.mean((tn - pn) ** 2))
    if data_range > 0:
        ssim = float(
            structural_similarity(
                tn, pn, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=data_range
            )
        )
        psnr = float(10 * np.log10(data_range**2 / mse)) if mse > 0 else float("inf")
        nrmse = float(np.sqrt(mse) / data_range)
    else:
        ssim = psnr = nrmse = float("nan")
    return {"pearson_r": r, "ssim": ssim, "psnr": psnr, "nrmse": nrmse}


def labelfree_metrics(y_true: Iterable[np.ndarray], y_pred: Iterable[np.ndarray]) -> dict:
    """Dataset-level label-free prediction metrics of paired images, each averaged over images.

    Per image (2-D, or (C, Y, X) scored channel by channel and averaged over channels): ``pearson_r`` on the raw
    images (it is invariant to the normalisation); then CARE: truth percentile-normalised (0.1, 99.9) -> T,
    prediction fitted to T by least squares (scale + offset) -> P, data range R = max(T) - min(T);
    ``ssim`` = skimage structural_similarity(T, P, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
    data_range=R); ``psnr`` = 10 log10(R^2 / MSE(T, P)); ``nrmse`` = RMSE(T, P) / R (skimage's 'min-max'
    normalisation). A constant image has NaN scores, skipped by the averages.
    """
    return labelfree_metrics_from_scores([pair_scores(t, p) for t, p in paired(y_true, y_pred, "images")])


def pair_scores(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """The scores of one image pair (2-D, or (C, Y, X) channel by channel, averaged; see :func:`labelfree_metrics`)."""
    t, p = np.asarray(y_true), np.asarray(y_pred)
    if t.shape != p.shape:
        raise InvalidInput(f"truth and prediction differ in shape: {t.shape} vs {p.shape}")
    if t.ndim == 2:
        return image_scores(t, p)
    if t.ndim == 3:
        chans = [image_scores(tc, pc) for tc, pc in zip(t, p)]
        return {
            k: float(np.nanmean([c[k] for c in chans])) if not all(np.isnan(c[k]) for c in chans) else float("nan")
            for k in chans[0]
        }
    raise InvalidInput(f"expected 2-D images or (C, Y, X), got shape {t.shape}")


def integrated(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """The integrated (summed) true and predicted intensity of one image pair: an object's content when the image
    is one object, e.g. a cell crop's DNA content (Blasi et al. 2016)."""
    t, p = np.asarray(y_true, dtype=np.float64), np.asarray(y_pred, dtype=np.float64)
    if t.shape != p.shape:
        raise InvalidInput(f"truth and prediction differ in shape: {t.shape} vs {p.shape}")
    return {"sum_true": float(t.sum()), "sum_pred": float(p.sum())}


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson r of two paired samples; NaN when either is constant or has fewer than two values."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.size < 2:
        return float("nan")
    ac, bc = a - a.mean(), b - b.mean()
    den = np.sqrt(np.sum(ac * ac) * np.sum(bc * bc))
    return float(np.sum(ac * bc) / den) if den > 0 else float("nan")


def labelfree_metrics_from_scores(per_sample: list[dict[str, float]]) -> dict:
    """What :func:`labelfree_metrics` returns, from the images' :func:`pair_scores` already made (e.g. on the
    workers of a cluster, one image each)."""
    if not per_sample:
        raise InvalidInput("no images to score")
    metrics = {}
    for k in ("pearson_r", "ssim", "psnr", "nrmse"):
        vals = np.array([s[k] for s in per_sample])
        vals = vals[~np.isnan(vals)]
        metrics[k] = float(vals.mean()) if vals.size else float("nan")
    return {"metrics": metrics, "per_sample": per_sample}
