"""The score of a prediction folder on a benchmark split, one function per task (:attr:`TaskSpec.score`).

Each returns :class:`Scores`: the task's metric suite over the split, and a bootstrap 95% interval of the primary
metric (samples resampled with replacement, 1000 draws, seed 0; for pooled instance metrics the per-image counts
are resampled and pooled again; classification recomputes macro F1; detection accumulates the resampled images'
box matches again; tracking cuts each sequence into ``interval_blocks`` (a task parameter) blocks of consecutive
frames and resamples those within each sequence, since a benchmark is often one test movie, recomputing TRA from
the blocks' AOGM counts). A benchmark's views add metrics with their own intervals: classes merged into groups
(``class_groups``), accuracy at the class mix of the population the samples were drawn from (``population``) and,
where each sample is one object (``per_object``), the correlation of integrated
intensities across objects.
Predictions are read one sample at a time, each checked against its truth's shape. For the image tasks (instance,
semantic, label-free) each sample's truth and prediction are read and reduced to its share of the score (its
matching counts, pixel counts or image scores) by :func:`hub.executor.map_samples`: in this process, or on the
cluster of the enclosing :func:`hub.executor.use_executor` block, where only those small parts travel back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from hub._progress import progress_bar
from hub.bench.predictions import (
    prediction_files,
    read_boxes,
    read_channels,
    read_class_csv,
    read_ctc_result,
    read_label_image,
)
from hub.bench.truth import truth
from hub.cards import Benchmark
from hub.dataset import SAMPLES, Dataset, open_dataset
from hub.errors import InvalidInput
from hub.executor import map_samples
from hub.metrics import (
    COUNTS,
    accumulate,
    aogm_measures,
    class_counts,
    class_shares,
    classification_metrics,
    detection_matches,
    instance_counts,
    instance_metrics_from_counts,
    integrated,
    labelfree_metrics_from_scores,
    macro_f1_score,
    matched_metrics,
    merged_classes,
    merged_metrics,
    pair_scores,
    pearson,
    population_accuracy,
    semantic_metrics_from_counts,
)
from hub.tasks import get_task

N_BOOT, SEED = 1000, 0
FOREGROUND = [1]  # the one class a semantic benchmark scores


class Scores(NamedTuple):
    metrics: dict
    per_sample: list[dict]
    ci95: list  # of the primary metric
    intervals: dict[str, list] | None = None  # of the metrics a benchmark's views add, by name


def _pairs(bench: Benchmark, ds, ids: list[str], folder: Path, read: Callable[[Path, Any], Any]) -> Iterator:
    """Yield (truth, prediction) per sample, read one at a time (bounded memory)."""
    files = prediction_files(folder, ids, tracking=get_task(bench.task).sequences)
    with progress_bar() as bar:
        job = bar.add_task(f"scoring {bench.name}", total=len(ids))
        for sid in ids:
            t = truth(bench, ds, sid)
            yield t, read(files[sid], t)
            bar.advance(job)


@lru_cache(maxsize=4)
def _opened(root: str, stamp: tuple[int, int]) -> Dataset:
    return open_dataset(root)


def _dataset(root: str) -> Dataset:
    """The dataset at ``root``, opened once per process while its sample table stays the same."""
    st = (Path(root) / SAMPLES).stat()
    return _opened(root, (st.st_mtime_ns, st.st_size))


def _part(job: tuple) -> Any:
    """One sample's share of a score (in a worker): its truth and prediction are read there, only the part travels."""
    fn, bench, root, sid, file = job
    return fn(Path(file), truth(bench, _dataset(root), sid))


def _parts(bench: Benchmark, ds, ids: list[str], folder: Path, fn: Callable[[Path, Any], Any]) -> list:
    """``fn(prediction file, truth)`` of every sample, in order (see the module's note)."""
    files = prediction_files(folder, ids)
    jobs = [(fn, bench, str(ds.path), sid, str(files[sid])) for sid in ids]
    return map_samples(_part, jobs, workers=1, description=f"scoring {bench.name}")


def _instance_part(file: Path, t: np.ndarray):
    return instance_counts(t, read_label_image(file, t.shape))


def _semantic_part(file: Path, t: np.ndarray) -> np.ndarray:
    return class_counts(t, _foreground(file, t), FOREGROUND)


def _labelfree_part(file: Path, t: np.ndarray) -> dict[str, float]:
    return pair_scores(t, read_channels(file, t.shape))


def _labelfree_object_part(file: Path, t: np.ndarray) -> dict[str, float]:
    p = read_channels(file, t.shape)
    return {**pair_scores(t, p), **integrated(t, p)}


def _bootstrap(values: np.ndarray, stat) -> list[float | None]:
    """95% percentile interval of ``stat(values[idx])`` over resampled index sets."""
    n = len(values)
    if n == 0:
        return [None, None]
    idx = np.random.default_rng(SEED).integers(0, n, size=(N_BOOT, n))
    return _interval(np.array([stat(values[i]) for i in idx], dtype=float))


def _interval(draws: np.ndarray) -> list[float | None]:
    """The 95% percentile interval of bootstrap draws (NaN draws left out)."""
    draws = draws[np.isfinite(draws)]
    if not len(draws):
        return [None, None]
    lo, hi = np.percentile(draws, [2.5, 97.5])
    return [float(lo), float(hi)]


def _per_sample_ci(per_sample: list[dict], name: str) -> list:
    vals = np.array([s.get(name, np.nan) for s in per_sample], float)
    return _bootstrap(vals, lambda v: np.nanmean(v) if np.isfinite(v).any() else np.nan)


def _with_mean_ci(bench: Benchmark, out: dict) -> Scores:
    """A suite's output with the interval of the per-sample mean of the primary metric."""
    return Scores(out["metrics"], out["per_sample"], _per_sample_ci(out["per_sample"], get_task(bench.task).primary))


def score_classification(bench: Benchmark, ds, ids: list[str], folder: Path) -> Scores:
    classes = list(ds.card.labels.classes or [])
    y = np.array([truth(bench, ds, sid) for sid in ids])
    score, probs = read_class_csv(folder, ids, classes)
    out = classification_metrics(y, score, classes=list(range(len(classes))))
    pred = score.argmax(1) if probs else score
    everyone = np.arange(len(ids))
    ci = _bootstrap(everyone, lambda i: macro_f1_score(y[i], pred[i], len(classes)))
    metrics = dict(out["metrics"])
    for j, name in enumerate(classes):  # per-class recall and F1, by class name
        metrics[f"recall/{name}"] = out["per_class"][str(j)]["recall"]
        metrics[f"f1/{name}"] = out["per_class"][str(j)]["f1"]
    right = {"": pred == y}  # per view (prefix of its metrics' names): which samples are right
    intervals = {}
    if bench.class_groups:
        merged = merged_classes(classes, bench.class_groups)
        metrics |= merged_metrics(y, pred, merged)
        right["merged_"] = merged[y] == merged[pred]
        intervals["merged_accuracy"] = _bootstrap(everyone, lambda i: float(np.mean(right["merged_"][i])))
    if bench.population:
        shares = class_shares(classes, bench.population)
        for view, ok in right.items():
            metrics[f"{view}population_accuracy"] = population_accuracy(y, ok, shares)
            intervals[f"{view}population_accuracy"] = _bootstrap(
                everyone, lambda i, ok=ok: population_accuracy(y[i], ok[i], shares)
            )
    return Scores(metrics, out["per_sample"], ci, intervals or None)


def score_instance(bench: Benchmark, ds, ids: list[str], folder: Path) -> Scores:
    counts = _parts(bench, ds, ids, folder, _instance_part)
    out = instance_metrics_from_counts(counts)
    tp = np.array([c.tp for c in counts], float)
    n_t = np.array([c.n_true for c in counts], float)[:, None]
    n_p = np.array([c.n_pred for c in counts], float)[:, None]

    def pooled_acc(i):
        t_, d = tp[i].sum(0), (n_t[i] + n_p[i]).sum(0) - tp[i].sum(0)
        return np.mean(np.where(d > 0, t_ / np.maximum(d, 1), 0))

    return Scores(out["metrics"], out["per_sample"], _bootstrap(np.arange(len(ids)), pooled_acc))


def score_detection(bench: Benchmark, ds, ids: list[str], folder: Path) -> Scores:
    classes = list(ds.card.labels.classes or [])
    preds = read_boxes(folder, ids, ds)
    matches = [detection_matches(truth(bench, ds, sid), preds[sid], len(classes)) for sid in ids]
    out = matched_metrics(matches, classes)
    primary = get_task(bench.task).primary

    def resampled(i):
        return accumulate([matches[j] for j in i], classes)[primary]

    return Scores(out["metrics"], out["per_sample"], _bootstrap(np.arange(len(ids)), resampled))


def _foreground(path: Path, t: np.ndarray) -> np.ndarray:
    p = read_label_image(path, t.shape)
    if p.max() > 1:
        raise InvalidInput(
            f"semantic prediction has class {int(p.max())}; classes are 0 (background) and 1 (foreground)", path
        )
    return p


def score_semantic(bench: Benchmark, ds, ids: list[str], folder: Path) -> Scores:
    return _with_mean_ci(
        bench, semantic_metrics_from_counts(_parts(bench, ds, ids, folder, _semantic_part), FOREGROUND)
    )


def score_labelfree(bench: Benchmark, ds, ids: list[str], folder: Path) -> Scores:
    if not bench.per_object:
        return _with_mean_ci(bench, labelfree_metrics_from_scores(_parts(bench, ds, ids, folder, _labelfree_part)))
    per_sample = _parts(bench, ds, ids, folder, _labelfree_object_part)
    scores = _with_mean_ci(bench, labelfree_metrics_from_scores(per_sample))
    sums = np.array([[s["sum_true"], s["sum_pred"]] for s in per_sample])
    scores.metrics["object_pearson_r"] = pearson(sums[:, 0], sums[:, 1])
    interval = _bootstrap(sums, lambda v: pearson(v[:, 0], v[:, 1]))
    return scores._replace(intervals={"object_pearson_r": interval})


def score_tracking(bench: Benchmark, ds, ids: list[str], folder: Path) -> Scores:
    spec = get_task(bench.task)
    truths, preds = zip(*_pairs(bench, ds, ids, folder, lambda f, t: read_ctc_result(f, t.masks.shape)))
    out = spec.suite(list(truths), list(preds))
    blocks = [_frame_blocks(s.pop("frame_counts"), spec.parameters["interval_blocks"]) for s in out["per_sample"]]
    rng = np.random.default_rng(SEED)

    def draw() -> float:  # each sequence's blocks resampled, the measure averaged over sequences as reported
        return float(np.nanmean([_measure(b, rng.integers(0, len(b), len(b)), spec.primary) for b in blocks]))

    return Scores(out["metrics"], out["per_sample"], _interval(np.array([draw() for _ in range(N_BOOT)])))


def _frame_blocks(frame_counts: list, n: int) -> np.ndarray:
    """A sequence's per-frame AOGM counts summed over ``n`` blocks of consecutive frames (fewer for a shorter
    sequence), as equal in length as they can be."""
    counts = np.asarray(frame_counts, dtype=np.int64).reshape(-1, len(COUNTS))
    return np.stack([b.sum(axis=0) for b in np.array_split(counts, min(n, len(counts)))]) if len(counts) else counts


def _measure(blocks: np.ndarray, pick: np.ndarray, name: str) -> float:
    """A CTC measure of the frame blocks ``pick`` (drawn with replacement) of one sequence."""
    return aogm_measures(dict(zip(COUNTS, blocks[pick].sum(axis=0).tolist())))[name]


def binarise(folder: Path) -> None:
    """Instance label TIFFs -> foreground masks, so an instance model also enters the semantic benchmark."""
    import tifffile

    for p in folder.glob("*.tif"):
        tifffile.imwrite(p, (tifffile.imread(p) > 0).astype(np.uint8), compression="zlib")
