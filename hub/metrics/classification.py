"""Image classification: macro-F1 and the usual companions, by scikit-learn."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import numpy as np

from hub.errors import InvalidInput


def classification_metrics(
    y_true: Sequence | np.ndarray, y_score: Sequence | np.ndarray, classes: Sequence | None = None
) -> dict:
    """Classification metrics of true classes against class probabilities (N, K) or predicted classes (N,).

    ``classes`` lists the K classes in column order of ``y_score`` (default: sorted classes seen in ``y_true``
    and ``y_score``, only for label predictions). With probabilities the prediction is the arg-max column.
    ``macro_f1``: unweighted mean of per-class F1 over all K classes, zero_division=0 (a never-predicted class has
    F1 0); ``accuracy``; ``balanced_accuracy`` (mean per-class recall over classes present in truth);
    ``macro_auroc``: mean over classes of one-vs-rest ROC AUC from the probabilities, skipping a class absent from
    truth (or the only class present) — NaN without probabilities; ``mcc``: multi-class Matthews correlation.
    Also returned: ``per_class`` precision/recall/F1/support and ``confusion_matrix`` (rows truth, columns
    prediction, in ``classes`` order); ``per_sample``: ``correct`` (0/1) and, with probabilities, ``p_true``.
    """
    from sklearn.metrics import (  # imported on first use: reading a dataset or a card needs no scikit-learn
        accuracy_score,
        balanced_accuracy_score,
        confusion_matrix,
        f1_score,
        matthews_corrcoef,
        precision_recall_fscore_support,
    )

    y_true = np.asarray(y_true)
    score = np.asarray(y_score)
    if y_true.ndim != 1:
        raise InvalidInput(f"y_true must be one class per sample, got shape {y_true.shape}")
    if y_true.size == 0:
        raise InvalidInput("no samples to score")
    probs = score.ndim == 2
    if score.shape[0] != y_true.shape[0] or score.ndim not in (1, 2):
        raise InvalidInput(f"{y_true.shape[0]} truths but predictions of shape {score.shape}")
    if classes is None:
        if probs:
            raise InvalidInput("class probabilities need the list of classes in column order")
        classes = sorted(set(y_true.tolist()) | set(score.tolist()))
    classes = list(classes)
    index = {c: k for k, c in enumerate(classes)}
    unknown = sorted({str(c) for c in y_true.tolist() if c not in index})
    if unknown:
        raise InvalidInput(f"truth has classes not in the class list: {', '.join(unknown[:5])}")
    t = np.array([index[c] for c in y_true.tolist()])
    if probs:
        if score.shape[1] != len(classes):
            raise InvalidInput(f"{score.shape[1]} probability columns for {len(classes)} classes")
        score = score.astype(float)
        if not np.all(np.isfinite(score)):
            raise InvalidInput("class probabilities contain NaN or infinity")
        p = score.argmax(axis=1)
    else:
        unknown = sorted({str(c) for c in score.tolist() if c not in index})
        if unknown:
            raise InvalidInput(f"predictions have classes not in the class list: {', '.join(unknown[:5])}")
        p = np.array([index[c] for c in score.tolist()])
    labels = np.arange(len(classes))
    prec, rec, f1, support = precision_recall_fscore_support(t, p, labels=labels, zero_division=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # balanced accuracy warns about predicted-only classes
        metrics = {
            "macro_f1": float(f1_score(t, p, labels=labels, average="macro", zero_division=0)),
            "accuracy": float(accuracy_score(t, p)),
            "balanced_accuracy": float(balanced_accuracy_score(t, p)),
            "macro_auroc": _macro_auroc(t, score, len(classes)) if probs else float("nan"),
            "mcc": float(matthews_corrcoef(t, p)),
        }
    per_class = {
        str(c): {"precision": float(prec[k]), "recall": float(rec[k]), "f1": float(f1[k]), "support": int(support[k])}
        for k, c in enumerate(classes)
    }
    correct = (t == p).astype(float)
    per_sample = [{"correct": float(c)} for c in correct]
    if probs:
        for s, v in zip(per_sample, score[np.arange(t.size), t]):
            s["p_true"] = float(v)
    return {
        "metrics": metrics,
        "per_sample": per_sample,
        "per_class": per_class,
        "confusion_matrix": confusion_matrix(t, p, labels=labels).tolist(),
        "classes": [str(c) for c in classes],
    }


def _macro_auroc(t: np.ndarray, score: np.ndarray, k: int) -> float:
    """Mean one-vs-rest ROC AUC over the classes that have both positives and negatives in truth."""
    from sklearn.metrics import roc_auc_score

    aucs = []
    for c in range(k):
        positive = t == c
        if positive.any() and not positive.all():
            aucs.append(roc_auc_score(positive, score[:, c]))
    return float(np.mean(aucs)) if aucs else float("nan")


def macro_f1_score(t: np.ndarray, p: np.ndarray, k: int) -> float:
    """Macro F1 of class indices ``t`` (truth) and ``p`` (prediction) over all ``k`` classes, a class neither true
    nor predicted counting 0: scikit-learn's ``f1_score(average="macro", labels=all, zero_division=0)``, in numpy
    (fast enough to bootstrap)."""
    cm = np.bincount(t * k + p, minlength=k * k).reshape(k, k)
    tp, denom = np.diag(cm), cm.sum(0) + cm.sum(1)
    return float(np.mean(np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0)))


def merged_classes(classes: Sequence[str], groups: Mapping[str, Sequence[str]]) -> np.ndarray:
    """For each class (by index), its class index in the merged view: each group one class, in ``groups`` order,
    then every class outside the groups on its own, in ``classes`` order."""
    unknown = [c for members in groups.values() for c in members if c not in classes]
    if unknown:
        raise InvalidInput(f"class group member {unknown[0]!r} is not a class ({', '.join(map(str, classes))})")
    group_of = {c: i for i, members in enumerate(groups.values()) for c in members}
    rest = [c for c in classes if c not in group_of]
    return np.array([group_of[c] if c in group_of else len(groups) + rest.index(c) for c in classes])


def class_shares(classes: Sequence[str], population: Mapping[str, int]) -> np.ndarray:
    """Each class's share (by index) of a population given as class -> count; every class must have a count."""
    missing = [c for c in classes if c not in population]
    unknown = [c for c in population if c not in classes]
    if missing or unknown:
        what = f"has no count for class {missing[0]!r}" if missing else f"counts {unknown[0]!r}, not a class"
        raise InvalidInput(f"benchmark population {what} ({', '.join(map(str, classes))})")
    counts = np.array([population[c] for c in classes], float)
    return counts / counts.sum()


def population_accuracy(t: np.ndarray, correct: np.ndarray, shares: np.ndarray) -> float:
    """Accuracy at a population's class mix: the sum over classes of the class's share (``shares``, from
    :func:`class_shares`) times the fraction of its samples that are ``correct``; the shares renormalised over
    the classes present in ``t`` (a bootstrap draw may miss a rare class). With the samples' own mix as shares it
    is the plain accuracy."""
    n = np.bincount(t, minlength=len(shares))
    hits = np.bincount(t, weights=correct.astype(float), minlength=len(shares))
    w = np.where(n > 0, shares, 0.0)
    return float(np.sum(w * hits / np.maximum(n, 1)) / w.sum())


def merged_metrics(t: np.ndarray, p: np.ndarray, merged: np.ndarray) -> dict[str, float]:
    """``merged_accuracy`` and ``merged_macro_f1`` of class indices ``t`` and ``p`` once each class is replaced
    by its class in the merged view (``merged``, from :func:`merged_classes`)."""
    mt, mp = merged[t], merged[p]
    return {
        "merged_accuracy": float(np.mean(mt == mp)),
        "merged_macro_f1": macro_f1_score(mt, mp, int(merged.max()) + 1),
    }
