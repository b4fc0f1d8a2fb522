"""Ground truth of a benchmark split, read from the curated dataset, one item per sample (sequence)."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from hub.cards import Benchmark
from hub.dataset import SAMPLES, SPLITS, Boxes, Dataset, manifest_sha256, sample_sha256
from hub.errors import IntegrityError, InvalidInput
from hub.metrics import DetectionTruth, TrackingTruth
from hub.ome import lineage_from_attrs, open_image
from hub.tasks import get_task


def split_ids(bench: Benchmark, ds: Dataset) -> list[str]:
    ids = ds.ids(bench.split)
    if not ids:
        raise InvalidInput(f"no samples in split {bench.split!r}", ds.path / SAMPLES)
    return ids


def _label(ds: Dataset, sid: str, name: str) -> np.ndarray:
    img = ds.image(sid)
    if name not in img.label_names:
        raise InvalidInput(f"sample {sid!r} has no label image {name!r}", img.path)
    return np.asarray(img.label(name)[...])


def target_channels(bench: Benchmark, ds: Dataset) -> list[int]:
    names = ds.card.channel_names
    targets = bench.targets or ds.card.labels.targets or []
    missing = [t for t in targets if t not in names]
    if not targets or missing:
        raise InvalidInput(f"label-free targets {targets} are not channels of {ds.card.ref}", ds.path / "card.yaml")
    return [names.index(t) for t in targets]


def truth(bench: Benchmark, ds: Dataset, sid: str):
    """The truth of one sample, as its task reads it (:attr:`hub.tasks.TaskSpec.truth`)."""
    return get_task(bench.task).truth(bench, ds, sid)


def truth_label(bench: Benchmark) -> str:
    """The label image holding ``bench``'s truth: the benchmark's own, else its task's (:attr:`TaskSpec.label`)."""
    name = bench.label or get_task(bench.task).label
    if name is None:
        raise InvalidInput(f"benchmark {bench.name} names no label image")
    return name


def truth_instance(bench: Benchmark, ds: Dataset, sid: str) -> np.ndarray:
    """An instance label image."""
    return _label(ds, sid, truth_label(bench))


def truth_semantic(bench: Benchmark, ds: Dataset, sid: str) -> np.ndarray:
    """A foreground mask (0/1) of the instance label image."""
    return (_label(ds, sid, truth_label(bench)) > 0).astype(np.uint8)


def truth_classification(bench: Benchmark, ds: Dataset, sid: str) -> int:
    """A class index."""
    value = ds.sample(sid).class_index
    if value is None:
        raise InvalidInput(f"sample {sid!r} has no class", ds.path / SAMPLES)
    return value


def truth_labelfree(bench: Benchmark, ds: Dataset, sid: str) -> np.ndarray:
    """The target channels, float32 (C, Y, X)."""
    img = ds.image(sid)
    arr = img.read()
    return (arr if "c" in img.axes else arr[None])[target_channels(bench, ds)].astype(np.float32)


def truth_detection(bench: Benchmark, ds: Dataset, sid: str) -> DetectionTruth:
    """The boxes of an image (``targets.boxes``, checked against the image and the card's classes)."""
    boxes = Boxes.of_image(ds.image(sid), len(ds.card.labels.classes or []))
    return DetectionTruth(boxes.xyxy, boxes.classes, boxes.difficult)


def truth_tracking(bench: Benchmark, ds: Dataset, sid: str) -> TrackingTruth:
    """The track masks of a movie with their lineage, and the sparse segmentation truth where there is one."""
    img = ds.image(sid)
    name = truth_label(bench)
    masks = _label(ds, sid, name)
    attrs = img.label_attrs(name)
    if "lineage" not in attrs:
        raise InvalidInput(f"label image {name!r} of sample {sid!r} has no lineage table", img.path)
    seg, frames = None, None
    if bench.seg_label and bench.seg_label in img.label_names:
        seg = _label(ds, sid, bench.seg_label)
        frames = [int(t) for t in img.label_attrs(bench.seg_label).get("annotated_frames", range(len(seg)))]
    return TrackingTruth(masks, lineage_from_attrs(attrs["lineage"]), seg, frames)


def sample_content_sha256(img) -> str:
    """The content hash of a stored sample as the curator computed it (:func:`hub.dataset.sample_sha256`):
    decoded image, every label image with its attributes (lineage, annotated frames) and the targets (class)."""
    labels = {name: np.asarray(img.label(name)[...]) for name in img.label_names}
    attrs = {name: img.label_attrs(name) for name in img.label_names}
    return sample_sha256(img.read(), labels, attrs, img.attrs.get("targets", {}))


def _check_card(bench: Benchmark, ds: Dataset) -> None:
    """The card fields that say what the truth is (channel order, classes, targets), as the benchmark's recipe
    has them: a copy with reordered channels or classes would score another channel or class."""
    from hub.curate.recipe import load_recipe, recipe_names

    name = bench.dataset.partition("@")[0]
    if name not in recipe_names():
        return
    recipe, card, _ = load_recipe(name)
    if card.ref != bench.dataset or recipe.split_manifest_sha256 != bench.split_sha256:
        return  # an ad-hoc benchmark on another version: its own split manifest is all there is to check
    for what, got, want in (
        ("channels", ds.card.acquisition.channels, card.acquisition.channels),
        ("labels", ds.card.labels, card.labels),
    ):
        if got != want:
            raise IntegrityError(
                f"the card's {what} differ from those of the {name} recipe: this copy is not "
                f"{bench.dataset} as benchmark {bench.name} froze it",
                ds.path / "card.yaml",
            )


def verify_truth(bench: Benchmark, ds: Dataset) -> list[str]:
    """The ids ``bench`` scores, once the copy ``ds`` is shown to hold exactly the frozen truth; else a one-line
    :class:`IntegrityError` naming the sample and the file.

    The split manifest must be the frozen one (``bench.split_sha256``); the split in ``samples.csv`` must list the
    manifest's samples; each sample's content hash (decoded image, label images with their lineage and annotated
    frames, class) is recomputed and compared with the manifest's; the class in ``samples.csv`` (what
    classification scores) must be the hashed one; and the card's channels and labels must be the recipe's.
    """
    man = ds.split_manifest
    if manifest_sha256(man) != bench.split_sha256:
        raise IntegrityError(
            f"split manifest {manifest_sha256(man)[:16]}... is not {bench.split_sha256[:16]}... "
            f"frozen for benchmark {bench.name}",
            ds.path / SPLITS,
        )
    _check_card(bench, ds)
    frozen = {e["id"]: e["sha256"] for e in man["splits"].get(bench.split, [])}
    ids = split_ids(bench, ds)
    odd = sorted(set(ids) ^ set(frozen)) or sorted(i for i, n in Counter(ids).items() if n > 1)
    if odd:
        raise IntegrityError(
            f"sample {odd[0]!r}: {SAMPLES} and the frozen split manifest disagree on split "
            f"{bench.split!r} ({len(ids)} and {len(frozen)} samples)",
            ds.path / SAMPLES,
        )
    paths = [ds.image_path(sid) for sid in ids]

    def content(path: Path) -> tuple[str, str]:
        img = open_image(path)
        return sample_content_sha256(img), str(img.attrs.get("targets", {}).get("class"))

    with ThreadPoolExecutor(min(4, len(ids))) as pool:  # zarr's per-read overhead dominates small samples
        found = list(pool.map(content, paths))
    for sid, path, (sha, hashed_class) in zip(ids, paths, found):
        if sha != frozen[sid]:
            raise IntegrityError(
                f"sample {sid!r}: image, labels or lineage differ from the content SHA-256 frozen "
                f"in the split manifest of {bench.dataset}",
                path,
            )
        listed = ds.sample(sid).class_index
        listed_class = "None" if listed is None else str(listed)  # as the targets print "no class"
        if listed_class != hashed_class:  # the class a classification benchmark scores, blanked or changed
            raise IntegrityError(
                f"sample {sid!r}: class {'' if listed is None else listed_class!r} in {SAMPLES} is not the class "
                f"{hashed_class} the content SHA-256 covers",
                ds.path / SAMPLES,
            )
    return ids
