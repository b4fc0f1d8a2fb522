"""Score predictions on a benchmark split, or run a hub model and score it: one harness for both.

Every score becomes an :class:`EvalResult` pinned to the split and suite (and weights, for hub models), with
per-sample scores and a bootstrap 95% interval of the primary metric (samples resampled with replacement,
1000 draws, seed 0; for pooled instance metrics the per-image counts are resampled and pooled again).
"""

from __future__ import annotations

import datetime as dt
import tempfile
import time
from pathlib import Path

import numpy as np

from hub._progress import progress_bar
from hub._versions import package_versions
from hub.bench.predictions import (
    prediction_files,
    predictions_sha256,
    read_channels,
    read_class_csv,
    read_ctc_result,
    read_label_image,
)
from hub.bench.truth import truth, verify_truth
from hub.cards import MODEL_TASK, Benchmark, EvalResult
from hub.curate import open_dataset
from hub.errors import InvalidInput
from hub.metrics import (
    TAUS,
    classification_metrics,
    instance_counts,
    instance_metrics,
    labelfree_metrics,
    semantic_metrics,
    tracking_metrics,
)

N_BOOT, SEED = 1000, 0


def _pairs(bench: Benchmark, ds, ids: list[str], folder: Path):
    """Yield (truth, prediction) per sample, read one at a time (bounded memory)."""
    files = prediction_files(folder, ids, tracking=bench.task == "tracking")
    with progress_bar() as bar:
        job = bar.add_task(f"scoring {bench.name}", total=len(ids))
        for sid in ids:
            t = truth(bench, ds, sid)
            if bench.task == "tracking":
                p = read_ctc_result(files[sid], t.masks.shape)
            elif bench.task == "label-free":
                p = read_channels(files[sid], t.shape)
            else:
                p = read_label_image(files[sid], t.shape)
                if bench.task == "semantic" and p.max() > 1:
                    raise InvalidInput(
                        f"semantic prediction has class {int(p.max())}; classes are 0 (background) and 1 (foreground)",
                        files[sid],
                    )
            bar.advance(job)
            yield t, p


def _bootstrap(values: np.ndarray, stat) -> list[float | None]:
    """95% percentile interval of ``stat(values[idx])`` over resampled index sets."""
    n = len(values)
    if n == 0:
        return [None, None]
    idx = np.random.default_rng(SEED).integers(0, n, size=(N_BOOT, n))
    draws = np.array([stat(values[i]) for i in idx], dtype=float)
    draws = draws[np.isfinite(draws)]
    if not len(draws):
        return [None, None]
    lo, hi = np.percentile(draws, [2.5, 97.5])
    return [float(lo), float(hi)]


def _score(bench: Benchmark, ds, ids: list[str], folder: Path) -> tuple[dict, list[dict], list]:
    """(metrics, per-sample scores, ci95) of the predictions in ``folder``."""
    if bench.task == "classification":
        classes = list(ds.card.labels.classes or [])
        y = np.array([truth(bench, ds, sid) for sid in ids])
        score, probs = read_class_csv(folder, ids, classes)
        out = classification_metrics(y, score, classes=list(range(len(classes))))
        pred = score.argmax(1) if probs else score
        k = len(classes)

        def macro_f1(i):
            cm = np.bincount(y[i] * k + pred[i], minlength=k * k).reshape(k, k)
            tp = np.diag(cm)
            denom = cm.sum(0) + cm.sum(1)
            return np.mean(np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0))

        ci = _bootstrap(np.arange(len(ids)), macro_f1)
        metrics = dict(out["metrics"])
        for j, name in enumerate(classes):  # per-class recall and F1, by class name
            metrics[f"recall/{name}"] = out["per_class"][str(j)]["recall"]
            metrics[f"f1/{name}"] = out["per_class"][str(j)]["f1"]
        return metrics, out["per_sample"], ci
    pairs = list(_pairs(bench, ds, ids, folder)) if bench.task != "tracking" else []
    if bench.task == "instance":
        out = instance_metrics([t for t, _ in pairs], [p for _, p in pairs])
        counts = [instance_counts(t, p) for t, p in pairs]
        tp = np.array([c.tp for c in counts], float)
        n_t = np.array([c.n_true for c in counts], float)[:, None]
        n_p = np.array([c.n_pred for c in counts], float)[:, None]

        def pooled_acc(i):
            t_, d = tp[i].sum(0), (n_t[i] + n_p[i]).sum(0) - tp[i].sum(0)
            return np.mean(np.where(d > 0, t_ / np.maximum(d, 1), 0))

        ci = _bootstrap(np.arange(len(ids)), pooled_acc)
    elif bench.task == "semantic":
        out = semantic_metrics([t for t, _ in pairs], [p for _, p in pairs], classes=[1])
        ci = _per_sample_ci(out["per_sample"], "dice")
    elif bench.task == "label-free":
        out = labelfree_metrics([t for t, _ in pairs], [p for _, p in pairs])
        ci = _per_sample_ci(out["per_sample"], "pearson_r")
    else:
        truths, preds = zip(*_pairs(bench, ds, ids, folder))
        out = tracking_metrics(truths, preds)
        ci = _per_sample_ci(out["per_sample"], "TRA")
    return out["metrics"], out["per_sample"], ci


def _per_sample_ci(per_sample: list[dict], name: str) -> list:
    vals = np.array([s.get(name, np.nan) for s in per_sample], float)
    return _bootstrap(vals, lambda v: np.nanmean(v) if np.isfinite(v).any() else np.nan)


def _clean(x):
    """JSON-safe floats: NaN becomes None."""
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, (float, np.floating)):
        return None if not np.isfinite(x) else float(x)
    if isinstance(x, np.integer):
        return int(x)
    return x


def score_predictions(
    bench: Benchmark,
    dataset: str | Path,
    predictions: str | Path,
    *,
    model: str = "submission",
    weights_sha256: str | None = None,
    source: str = "self-reported",
    inputs: list[str] | None = None,
    predict_s: float | None = None,
) -> EvalResult:
    """Score the prediction folder (or CSV) ``predictions`` on ``bench``'s split of the curated ``dataset``.

    The dataset is checked first (:func:`hub.bench.truth.verify_truth`): a copy whose split or content differs
    from the split manifest frozen for ``bench`` is refused, so a result's ``split_sha256`` vouches for the truth
    it was scored against."""
    ds = open_dataset(dataset)
    return _result(
        bench,
        ds,
        verify_truth(bench, ds),
        predictions,
        model=model,
        weights_sha256=weights_sha256,
        source=source,
        inputs=inputs,
        predict_s=predict_s,
    )


def _result(
    bench: Benchmark,
    ds,
    ids: list[str],
    predictions: str | Path,
    *,
    model: str,
    weights_sha256: str | None,
    source: str,
    inputs: list[str] | None,
    predict_s: float | None,
) -> EvalResult:
    """The result record of ``predictions`` on the verified split ``ids`` of ``ds``."""
    start = time.perf_counter()
    predictions = Path(predictions)
    metrics, per_sample, ci = _score(bench, ds, ids, predictions)
    per_sample = [{"id": sid, **s} for sid, s in zip(ids, per_sample)] if per_sample else []
    runtime = {"score_s": round(time.perf_counter() - start, 3)}
    if predict_s is not None:
        runtime["predict_s"] = round(predict_s, 3)
    parameters = (
        {"taus": list(TAUS)}
        if bench.task == "instance"
        else ({"division_tolerances": [0, 2]} if bench.task == "tracking" else {})
    )
    return EvalResult(
        benchmark=bench.name,
        dataset=bench.dataset,
        split=bench.split,
        split_sha256=bench.split_sha256,
        task=bench.task,
        suite_version=bench.suite_version,
        parameters=parameters,
        model=model,
        weights_sha256=weights_sha256,
        source=source,
        predictions_sha256=predictions_sha256(predictions),
        inputs=inputs,
        primary_metric=bench.primary_metric,
        value=_clean(metrics.get(bench.primary_metric)),
        ci95=_clean(ci),
        metrics=_clean(metrics),
        per_sample=_clean(per_sample),
        runtime_s=runtime,
        packages=package_versions("cellhub", "numpy", "scipy", "scikit-learn", "scikit-image"),
        date=dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
    )


def evaluate_model(bench: Benchmark, dataset: str | Path, model, device: str = "cpu") -> EvalResult:
    """Run a loaded hub model (:class:`hub.models.Model`) on the benchmark split and score it."""
    from hub.models.predict import predict_to

    card = model.card
    if MODEL_TASK[bench.task] != card.task and not (bench.task == "semantic" and card.task == "instance-segmentation"):
        raise InvalidInput(f"model {card.ref} does {card.task}; benchmark {bench.name} needs {MODEL_TASK[bench.task]}")
    if bench.task == "label-free" and card.outputs.channels != (bench.targets or card.outputs.channels):
        raise InvalidInput(
            f"model {card.ref} predicts {card.outputs.channels}; benchmark {bench.name} scores {bench.targets}"
        )
    ds = open_dataset(dataset)
    ids = verify_truth(bench, ds)  # before the model runs: a copy that is not the frozen truth is refused at once
    with tempfile.TemporaryDirectory(prefix="cellhub-eval-") as tmp:
        out = Path(tmp) / "predictions"
        start = time.perf_counter()
        predict_to(model, dataset, out, split=bench.split)
        predict_s = time.perf_counter() - start
        if bench.task == "semantic" and card.task == "instance-segmentation":
            _binarise(out)
        return _result(
            bench,
            ds,
            ids,
            out,
            model=card.ref,
            weights_sha256=card.weights.sha256,
            source="hub",
            inputs=card.channel_names,
            predict_s=predict_s,
        )


def _binarise(folder: Path) -> None:
    """Instance label TIFFs -> foreground masks, so an instance model also enters the semantic benchmark."""
    import tifffile

    for p in folder.glob("*.tif"):
        tifffile.imwrite(p, (tifffile.imread(p) > 0).astype(np.uint8), compression="zlib")
