"""Example predictions of a model next to the ground truth, for its page: the model runs (CPU) on a few
samples of one benchmark's test split, cropped to at most ``CROP`` pixels, and the panels are drawn with
:mod:`hub.viz.preview`."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hub.bench.truth import truth, truth_label
from hub.cards import Benchmark
from hub.dataset import Dataset
from hub.errors import InvalidInput
from hub.site.figures import Group, save_png
from hub.tasks import get_task
from hub.viz.preview import fit, labelled_box, shown, to_rgb

CROP = 512
PANEL = 240
TRACK_FRAMES = 6
SHOWN_SCORE = 0.5  # detections drawn on the site: those scored at least this


def example_benchmark(task: str, training_dataset: str | None, candidates: list[Benchmark]) -> Benchmark | None:
    """The benchmark to draw a model's examples from: one of its task, on its training dataset if possible."""
    fitting = [b for b in candidates if get_task(b.task).name == task]
    fitting.sort(key=lambda b: b.dataset != training_dataset)
    return fitting[0] if fitting else None


def _channels(model, ds: Dataset) -> list[int]:
    names = ds.card.channel_names
    missing = [c for c in model.card.channel_names if c not in names]
    if missing:
        raise InvalidInput(
            f"model {model.card.ref} needs channel {missing[0]!r}; {ds.card.ref} has {', '.join(names)}",
            ds.path / "card.yaml",
        )
    return [names.index(c) for c in model.card.channel_names]


def _model_input(model, ds: Dataset, sid: str, frames: int | None = None) -> np.ndarray:
    """The raw (C, Y, X) image (or (T, C, Y, X) movie, first ``frames``) with the channels the model takes."""
    img = ds.image(sid)
    arr = np.asarray(img.array()[:frames] if frames else img.read())
    if "c" not in img.axes:
        arr = arr[..., None, :, :]
    return arr[..., _channels(model, ds), :, :]


def _window(shape: tuple[int, ...], mask: np.ndarray | None) -> tuple[slice, slice]:
    """A window of at most CROP x CROP pixels, centred on the labelled pixels when there are any."""
    h, w = shape[-2:]
    cy, cx = h // 2, w // 2
    if mask is not None and mask.any():
        ys, xs = np.nonzero(mask)
        cy, cx = int(ys.mean()), int(xs.mean())
    y0 = min(max(cy - CROP // 2, 0), max(h - CROP, 0))
    x0 = min(max(cx - CROP // 2, 0), max(w - CROP, 0))
    return slice(y0, y0 + CROP), slice(x0, x0 + CROP)


def _display(x: np.ndarray, model) -> np.ndarray:
    """What to show of a (C, Y, X) input: colour for a colour image, else its first channel in grey."""
    return shown(x, model.card.channel_names)


def _count(lab: np.ndarray) -> int:
    return int(len(np.unique(lab[lab > 0])))


def _picks(ds: Dataset, bench) -> list[str]:
    """Two samples of the split: at the first and third quartile of their object counts."""
    rows = sorted((r for r in ds.samples if r.split == bench.split), key=lambda r: r.objects)
    return [r.id for r in ([rows[len(rows) // 4], rows[(3 * len(rows)) // 4]] if len(rows) > 1 else rows)]


def _group(title: str, panels: list, model, sid: str, site: Path, folder: str, k: int) -> Group:
    """A group of ``(caption, picture)`` panels of sample ``sid``, saved as ``folder/example-k-j.png``."""
    group = Group(title)
    for j, (caption, picture) in enumerate(panels):
        group.pictures.append(
            save_png(picture, site, f"{folder}/example-{k}-{j}.png", f"{model.card.ref} on {sid}: {caption}", caption)
        )
    return group


def draw_instance(model, ds, bench, site, folder) -> list[Group]:
    groups = []
    for k, sid in enumerate(_picks(ds, bench)):
        true = np.asarray(truth(bench, ds, sid))
        y, x = _window(true.shape, true > 0)
        image, true = _model_input(model, ds, sid)[:, y, x], true[y, x]
        pred = np.asarray(model.predict(image))
        shown = _display(image, model)
        panels = [
            ("input", fit(shown, size=PANEL)),
            (f"prediction ({_count(pred)} objects)", fit(shown, pred, size=PANEL)),
            (f"ground truth ({_count(true)} objects)", fit(shown, true, size=PANEL)),
        ]
        groups.append(_group(f"test sample {sid[:16]}", panels, model, sid, site, folder, k))
    return groups


def draw_labelfree(model, ds, bench, site, folder) -> list[Group]:
    sid = ds.ids(bench.split)[0]
    image = _model_input(model, ds, sid)
    true = np.asarray(truth(bench, ds, sid))
    y, x = _window(image.shape, None)
    image, true = image[:, y, x], true[:, y, x]
    pred = np.asarray(model.predict(image))
    names = model.card.outputs.channels or bench.targets or []
    group = Group(f"test tile {sid}")
    panels = [(f"input {model.card.channel_names[0]}", image[0])]
    for c, name in enumerate(names):
        panels += [(f"{name} predicted", pred[c]), (f"{name} measured", true[c])]
    for j, (caption, plane) in enumerate(panels):
        group.pictures.append(
            save_png(
                fit(to_rgb(plane), size=PANEL),
                site,
                f"{folder}/example-0-{j}.png",
                f"{model.card.ref} on {sid}: {caption}",
                caption,
            )
        )
    return [group]


def draw_classification(model, ds, bench, site, folder) -> list[Group]:
    classes = ds.card.labels.classes or []
    outputs = model.card.outputs.classes or classes
    first: dict[int, str] = {}
    for row in ds.samples:
        if row.split == bench.split and row.class_index is not None:
            first.setdefault(row.class_index, row.id)
    group = Group("one test crop per class")
    for k in sorted(first):
        sid = first[k]
        image = _model_input(model, ds, sid)
        probs = np.asarray(model.predict(image))
        guess = int(np.argmax(probs))
        caption = f"true {classes[k]} · predicted {outputs[guess]} ({probs[guess]:.2f})"
        group.pictures.append(
            save_png(
                fit(_display(image, model), size=PANEL // 2),
                site,
                f"{folder}/example-0-{k}.png",
                f"{model.card.ref} on {sid}: {caption}",
                caption,
            )
        )
    return [group]


def draw_tracking(model, ds, bench, site, folder) -> list[Group]:
    sid = ds.ids(bench.split)[0]
    img = ds.image(sid)
    n = min(TRACK_FRAMES, img.array().shape[0])
    true = np.asarray(img.label(truth_label(bench))[:n])
    y, x = _window(true.shape, np.asarray(true.any(0)))
    movie, true = _model_input(model, ds, sid, n)[..., y, x], true[:, y, x]
    masks, _ = model.predict(movie)
    box = labelled_box(true)
    frames = sorted({0, n // 2, n - 1})
    groups = []
    for k, (title, labels) in enumerate([("prediction", np.asarray(masks)), ("ground truth", true)]):
        group = Group(f"movie {sid}, {title} (frames {frames[0]}–{frames[-1]})")
        for t in frames:
            caption = f"t={t}: {_count(labels[t])} cells"
            group.pictures.append(
                save_png(
                    fit(_display(movie[t], model)[box], fill=labels[t][box], size=PANEL),
                    site,
                    f"{folder}/example-{k}-{t}.png",
                    f"{model.card.ref} on {sid}, {title}, {caption}",
                    caption,
                )
            )
        groups.append(group)
    return groups


def draw_detection(model, ds, bench, site, folder) -> list[Group]:
    groups = []
    for k, sid in enumerate(_picks(ds, bench)):
        image = _model_input(model, ds, sid)
        y, x = _window(image.shape, None)
        image = image[:, y, x]
        true = truth(bench, ds, sid)
        pred = model.predict(image)
        keep = pred.scores >= SHOWN_SCORE
        h, w = image.shape[-2:]
        shifted = np.clip(true.xyxy - [x.start, y.start, x.start, y.start], 0, [w, h, w, h])
        seen = (shifted[:, 2] > shifted[:, 0]) & (shifted[:, 3] > shifted[:, 1])
        shown = _display(image, model)
        panels = [
            (
                f"prediction ({int(keep.sum())} boxes, score >= {SHOWN_SCORE})",
                fit(shown, size=2 * PANEL, boxes=(pred.xyxy[keep], pred.classes[keep])),
            ),
            (
                f"ground truth ({int(seen.sum())} boxes)",
                fit(shown, size=2 * PANEL, boxes=(shifted[seen], true.classes[seen])),
            ),
        ]
        groups.append(_group(f"test sample {sid[:16]}", panels, model, sid, site, folder, k))
    return groups


draw_semantic = draw_instance


def model_examples(model, ds: Dataset, bench: Benchmark, site: Path, folder: str) -> list[Group]:
    """Run ``model`` on a few samples of ``bench``'s split of ``ds``; write the panels under ``site/folder``."""
    return get_task(bench.task).draw(model, ds, bench, site, folder)
