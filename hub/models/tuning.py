"""Post-processing thresholds tuned on labelled data, as StarDist's ``optimize_thresholds`` does.

The network's maps are computed once per image (or per sampled movie frame), and once more with test-time
views if the grid has ``tta: [false, true]`` (chosen only when they gain ``TTA_GAIN``: they cost 8x the
inference time); every combination of the grid (default: the family's :attr:`~hub.models.Family.tuning_grid`)
then post-processes them and is scored by the family's :meth:`~hub.models.Family.tuning_score`: instance
models by the pooled accuracy averaged over IoU 0.5:0.95 (the DSB2018/StarDist measure, :func:`instance_score`),
tracking detectors by the CTC DET measure of their detections (:func:`det_score`: a reference marker is found
when one object covers more than half of it; weights 10 per missed marker, 1 per extra object, 5 per object
covering several markers) and, where the movies have segmentation truth (the task's ``seg_label``: the CTC's
sparse gold masks), by the mean of DET and of SEG on the annotated frames (:func:`seg_score`; the CTC's OP_CSB):
the masks are tuned to cover whole nuclei, not only the markers the detector learnt. The weights never change;
the card records what was tuned on which split and both scores.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np

from hub.cards import ModelCard, load_card, save_card
from hub.dataset import open_dataset
from hub.errors import InvalidInput
from hub.metrics import overlap_table
from hub.metrics.instance import instance_counts, pooled_stats
from hub.metrics.tracking import seg_jaccard
from hub.models._family import create_family, family_classes
from hub.models.model import CARD, Model
from hub.models.predict import samples
from hub.tasks import get_task

TTA_GAIN = 0.005  # test-time views are chosen only when they beat the best setting without them by this much


def _spaced(items, k: int) -> list:
    """At most ``k`` evenly spaced elements of ``items``, first and last included."""
    items = list(items)
    return [items[i] for i in np.linspace(0, len(items) - 1, min(len(items), k)).round().astype(int)] if items else []


def _planes(model: Model, dataset: Path, split: str, label: str, max_planes: int, seg_label: str | None = None):
    """``(raw image, label image)`` pairs of ``split``: every image, or evenly spaced frames of movies; and
    the pairs of the frames with segmentation truth (``seg_label``: sparse gold masks, as in the CTC), evenly
    spaced over the annotated frames (at most ``max_planes``)."""
    ds = open_dataset(dataset)
    movies = get_task(model.card.task).sequences
    pairs, seg_pairs = [], []
    for sid, image in samples(model, dataset, split):
        img = ds.image(sid)
        lab = img.label(label)
        if not movies:
            pairs.append((image, np.asarray(lab[...])))
            continue
        pairs += [(image[t], np.asarray(lab[t])) for t in _spaced(range(len(image)), max_planes)]
        if seg_label and seg_label in img.label_names:
            annotated = [int(t) for t in img.label_attrs(seg_label).get("annotated_frames", [])]
            if any(not 0 <= t < len(image) for t in annotated):
                raise InvalidInput(f"{seg_label!r} of sample {sid!r} names a frame outside the movie", img.path)
            seg = img.label(seg_label)
            seg_pairs += [(image[t], np.asarray(seg[t])) for t in _spaced(annotated, max_planes)]
    if not pairs:
        raise InvalidInput(f"no labelled images in split {split!r}", dataset)
    return (pairs[:max_planes] if movies else pairs), _spaced(seg_pairs, max_planes)


def det_score(truth: list[np.ndarray], predictions: list[np.ndarray]) -> float:
    """CTC DET of per-frame detections against reference markers: 1 - min(AOGM-D, AOGM-D0) / AOGM-D0."""
    cost, empty = 0.0, 0.0
    for ref, pred in zip(truth, predictions):
        ov = overlap_table(ref, pred)
        found = 2 * ov.inter > ov.a_sizes[ov.ia]
        markers, objects = ov.ia[found], ov.ib[found]
        _, per_object = np.unique(objects, return_counts=True)
        cost += 10 * (ov.a_labels.size - np.unique(markers).size)  # missed markers
        cost += ov.b_labels.size - np.unique(objects).size  # objects on no marker
        cost += 5 * int((per_object - 1).sum())  # objects that need splitting
        empty += 10 * ov.a_labels.size
    return 1.0 - min(cost, empty) / empty if empty else float("nan")


def seg_score(truth: list[np.ndarray], predictions: list[np.ndarray]) -> float:
    """CTC SEG over frames with segmentation truth: mean Jaccard of the reference objects (0 for one missed)."""
    counts = [seg_jaccard(t, p) for t, p in zip(truth, predictions)]
    n = sum(c[1] for c in counts)
    return sum(c[0] for c in counts) / n if n else float("nan")


def instance_score(truth: list[np.ndarray], predictions: list[np.ndarray]) -> float:
    """Pooled accuracy TP / (TP + FP + FN) averaged over IoU thresholds 0.5:0.95."""
    stats = pooled_stats([instance_counts(t, p) for t, p in zip(truth, predictions)])
    return float(np.mean([s["accuracy"] for s in stats]))


def choose(trials: list[tuple[float, dict, bool]]) -> tuple[float, dict]:
    """The best ``(score, options)`` of ``(score, options, with test-time views)`` trials: the first wins ties,
    and views must beat the best trial without them by ``TTA_GAIN``."""
    best = max(trials, key=lambda t: t[0])
    plain = [t for t in trials if not t[2]]
    if plain and max(t[0] for t in plain) > best[0] - TTA_GAIN:
        best = max(plain, key=lambda t: t[0])
    return best[0], best[1]


def tune(
    folder: str | Path,
    dataset: str | Path,
    split: str | None = None,
    grid: dict[str, list] | None = None,
    max_planes: int = 24,
) -> dict[str, Any]:
    """Tune the post-processing options of the model in ``folder`` on ``split`` of the curated ``dataset``
    (default: val, else train), write the best into its card, and return what was done (``options`` is
    empty when no combination beats the trained options)."""
    folder = Path(folder)
    tuning = tune_options(Model.load(folder), dataset, split, grid, max_planes)
    save_card(tuned_card(load_card(ModelCard, folder / CARD), tuning), folder / CARD)
    return tuning


def tune_options(
    model: Model,
    dataset: str | Path,
    split: str | None = None,
    grid: dict[str, list] | None = None,
    max_planes: int = 24,
) -> dict[str, Any]:
    """What :func:`tune` records (``split``, ``planes``, ``metric``, ``grid``, the best ``options``, ``score``,
    ``score_before``), computed without changing the model or its card."""
    dataset = Path(dataset)
    card = model.card
    family = card.architecture.family
    grid = grid or {k: list(v) for k, v in model.family.tuning_grid.items()}
    if not grid:
        tunable = ", ".join(n for n, c in family_classes().items() if c.tuning_grid)
        raise InvalidInput(f"no post-processing to tune for family {family!r} (tunable: {tunable})")
    ds = open_dataset(dataset)
    split = split or ("val" if ds.ids("val") else "train")
    trained_on = card.training.hyperparameters.get("label") if card.training else None
    label = trained_on or model.family.label or "instances"
    pairs, seg_pairs = _planes(model, dataset, split, label, max_planes, get_task(card.task).seg_label)
    planes = [image for image, _ in pairs + seg_pairs]
    trained = model.family.opts.tta
    maps = {}  # test-time views off/on -> the maps of every plane, computed once
    for tta in {trained, *(bool(v) for v in grid.get("tta", []))}:
        views = create_family(family, {**card.architecture.options, "tta": tta})
        maps[tta] = [Model(card, model.net, views).maps(image) for image in planes]
    truth, seg_truth = [lab for _, lab in pairs], [lab for _, lab in seg_pairs]
    metric = f"({model.family.tuning_metric} + SEG) / 2" if seg_pairs else model.family.tuning_metric

    def score(fam, maps: list[np.ndarray]) -> float:
        """The family's score; with segmentation truth, its mean with SEG (the CTC's OP_CSB for tracking)."""
        predictions = [fam.postprocess(m) for m in maps]
        value = fam.tuning_score(truth, predictions[: len(pairs)])
        return (value + seg_score(seg_truth, predictions[len(pairs) :])) / 2 if seg_pairs else value

    before = score(model.family, maps[trained])
    # first: the card's options, kept unless the grid does better
    trials: list[tuple[float, dict[str, Any], bool]] = [(before, {}, trained)]
    for values in itertools.product(*grid.values()):
        options = {**card.architecture.options, **dict(zip(grid, values))}
        fam = create_family(family, options)
        trials.append((score(fam, maps[fam.opts.tta]), dict(zip(grid, values)), fam.opts.tta))
    best_score, best = choose(trials)
    return {
        "split": split,
        "planes": len(pairs),
        **({"seg_planes": len(seg_pairs)} if seg_pairs else {}),
        "metric": metric,
        "grid": grid,
        "options": best,
        "score": round(best_score, 4),
        "score_before": round(before, 4),
    }


def tuned_card(card: ModelCard, tuning: dict[str, Any]) -> ModelCard:
    """A new card: ``card`` with the tuned options merged into its architecture's and ``tuning`` recorded in its
    training section (``card`` itself is left as it is)."""
    arch = card.architecture.model_copy(update={"options": {**card.architecture.options, **tuning["options"]}})
    training = card.training.model_copy(update={"postprocess_tuning": tuning}) if card.training else None
    return card.model_copy(update={"architecture": arch, "training": training})
