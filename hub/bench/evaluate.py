"""Score predictions on a benchmark split, or run a hub model and score it: one harness for both.

Every score becomes an :class:`EvalResult` pinned to the split and suite (and weights, for hub models), with
per-sample scores and a bootstrap 95% interval of the primary metric (the task's scorer: :mod:`hub.bench.scoring`).
"""

from __future__ import annotations

import datetime as dt
import tempfile
import time
from pathlib import Path

import numpy as np

from hub._versions import package_versions
from hub.bench.predictions import predictions_sha256
from hub.bench.truth import verify_truth
from hub.cards import Benchmark, EvalResult
from hub.config import build_root
from hub.dataset import open_dataset
from hub.errors import InvalidInput
from hub.executor import ExecutorLike, use_executor
from hub.tasks import get_task


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
    executor: ExecutorLike | None = None,
) -> EvalResult:
    """Score the prediction folder (or CSV) ``predictions`` on ``bench``'s split of the curated ``dataset``.

    The dataset is checked first (:func:`hub.bench.truth.verify_truth`): a copy whose split or content differs
    from the split manifest frozen for ``bench`` is refused, so a result's ``split_sha256`` vouches for the truth
    it was scored against. ``executor``: where the samples are scored (:mod:`hub.bench.scoring`; on a cluster the
    dataset and the predictions must be on storage its workers reach)."""
    ds = open_dataset(dataset)
    ids = verify_truth(bench, ds)
    with use_executor(executor):
        return _result(
            bench,
            ds,
            ids,
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
    spec = get_task(bench.task)
    metrics, per_sample, ci, intervals = spec.score(bench, ds, ids, predictions)
    per_sample = [{"id": sid, **s} for sid, s in zip(ids, per_sample)] if per_sample else []
    runtime = {"score_s": round(time.perf_counter() - start, 3)}
    if predict_s is not None:
        runtime["predict_s"] = round(predict_s, 3)
    return EvalResult(
        benchmark=bench.name,
        dataset=bench.dataset,
        split=bench.split,
        split_sha256=bench.split_sha256,
        task=bench.task,
        suite_version=bench.suite_version,
        parameters=dict(spec.parameters),
        model=model,
        weights_sha256=weights_sha256,
        source=source,
        predictions_sha256=predictions_sha256(predictions),
        inputs=inputs,
        primary_metric=bench.primary_metric,
        value=_clean(metrics.get(bench.primary_metric)),
        ci95=_clean(ci),
        metrics=_clean(metrics),
        intervals=_clean(intervals or {}),
        per_sample=_clean(per_sample),
        runtime_s=runtime,
        packages=package_versions("cellhub", "numpy", "scipy", "scikit-learn", "scikit-image"),
        date=dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
    )


def evaluate_model(
    bench: Benchmark, dataset: str | Path, model, device: str = "cpu", executor: ExecutorLike | None = None
) -> EvalResult:
    """Run a loaded hub model (:class:`hub.models.Model`) on the benchmark split and score it. ``executor``: where
    the predictions are made (:func:`hub.models.predict.predict_to`); on a cluster they are written under the
    build folder (``$CELLHUB_BUILD``), which its workers must reach."""

    card, spec = model.card, get_task(bench.task)
    if not spec.accepts(card.task):
        raise InvalidInput(f"model {card.ref} does {card.task}; benchmark {bench.name} needs {spec.name}")
    if spec.channel_targets and card.outputs.channels != (bench.targets or card.outputs.channels):
        raise InvalidInput(
            f"model {card.ref} predicts {card.outputs.channels}; benchmark {bench.name} scores {bench.targets}"
        )
    ds = open_dataset(dataset)
    ids = verify_truth(bench, ds)  # before the model runs: a copy that is not the frozen truth is refused at once
    with use_executor(executor) as pool:
        shared = build_root() if pool is not None else None
        if shared:
            shared.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="cellhub-eval-", dir=shared) as tmp:
            return _evaluate(bench, ds, ids, dataset, model, Path(tmp) / "predictions")


def _evaluate(bench: Benchmark, ds, ids: list[str], dataset: str | Path, model, out: Path) -> EvalResult:
    """Predict the split into ``out`` and score it."""
    from hub.models.predict import predict_to

    card, spec = model.card, get_task(bench.task)
    start = time.perf_counter()
    predict_to(model, dataset, out, split=bench.split)
    predict_s = time.perf_counter() - start
    if card.task != spec.name and spec.adapt:  # e.g. instance labels binarised for a semantic benchmark
        spec.adapt(out)
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
