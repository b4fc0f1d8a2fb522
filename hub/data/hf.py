"""Export a curated dataset split to a Hugging Face ``datasets.Dataset`` with pixel values in their native dtype."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

import datasets
from hub.dataset import Boxes, Sample, detects, open_dataset
from hub.errors import InvalidInput
from hub.ome import lineage_from_attrs, open_image

ARRAY_FEATURES = {2: datasets.Array2D, 3: datasets.Array3D, 4: datasets.Array4D, 5: datasets.Array5D}
WRITER_BATCH_BYTES = 256 << 20  # rows buffered before each Arrow write, so whole movies do not pile up


def _array_feature(shapes: list[tuple[int, ...]], dtype: str):
    """``ArrayND`` of the native dtype when all shapes agree beyond the first axis (the only one
    ``datasets`` lets vary); otherwise nested lists of the native dtype."""
    if len({s[1:] for s in shapes}) == 1 and len(shapes[0]) in ARRAY_FEATURES:
        first = shapes[0][0] if len(set(s[0] for s in shapes)) == 1 else None
        return ARRAY_FEATURES[len(shapes[0])](shape=(first, *shapes[0][1:]), dtype=dtype)
    feature = datasets.Value(dtype)
    for _ in shapes[0]:
        feature = datasets.List(feature)
    return feature


def _generate(
    path: str, rows: list[Sample], labels: tuple[str, ...], classes: tuple[str, ...], lineage: bool, boxes: bool
):
    """Rows of the HF dataset. ``rows`` is the only list: ``datasets`` shards over it (and may call this once
    per row), so nothing dataset-wide is opened here."""
    for row in rows:
        img = open_image(Path(path) / row.path)
        out: dict[str, Any] = {"id": row.id, "split": row.split, "image": img.read()}
        for name in labels:
            out[name] = img.label(name)[...]
        if boxes:  # Hugging Face's object-detection layout: COCO [x, y, w, h] boxes and their categories
            b = Boxes.of_image(img, len(classes))
            xywh = np.concatenate([b.xyxy[:, :2], b.xyxy[:, 2:] - b.xyxy[:, :2]], 1)
            out["objects"] = {"bbox": xywh.tolist(), "category": b.classes.tolist(), "difficult": b.difficult.tolist()}
        elif classes:  # -1: no class (ClassLabel's missing value)
            index = row.class_index if row.class_index is not None else -1
            out["class"], out["class_name"] = index, classes[index] if index >= 0 else ""
        if lineage:
            table: list[list[int]] = next((a["lineage"] for a in map(img.label_attrs, labels) if "lineage" in a), [])
            out["lineage"] = [list(t) for t in lineage_from_attrs(table)]
        yield out


def to_hf_dataset(
    path: str | Path, split: str | None = None, *, cache_dir: str | Path | None = None
) -> datasets.Dataset:
    """One row per sample of ``split`` (all when None): id, split, image, each label image, and class /
    class_name, lineage or the boxes (``objects``: COCO ``bbox`` [x, y, w, h], ``category``, ``difficult``, the
    layout of Hugging Face's object-detection datasets) where the dataset has them.

    Pixel columns keep the stored dtype (uint16 stays uint16); the result is formatted as numpy with no
    dtype cast (``datasets`` would otherwise widen integers to int64). The Arrow cache is keyed by the
    samples' content hashes, so a rebuilt dataset is never served stale.
    """
    ds = open_dataset(path)
    rows = [r for r in ds.samples if split is None or r.split == split]
    if not rows:
        raise InvalidInput(f"no samples in split {split!r}", ds.path / "samples.csv")
    first = ds.image(rows[0].id)
    shapes = [r.shape for r in rows]
    dtypes = {r.dtype for r in rows}
    if len(dtypes) != 1:
        raise InvalidInput(f"samples of split {split!r} mix dtypes {sorted(dtypes)}", ds.path / "samples.csv")
    features = {
        "id": datasets.Value("string"),
        "split": datasets.Value("string"),
        "image": _array_feature(shapes, dtypes.pop()),
    }
    cidx = first.axes.find("c")
    label_shapes = [s[:cidx] + s[cidx + 1 :] if cidx >= 0 else s for s in shapes]
    labels = list(first.label_names)
    for name in labels:
        features[name] = _array_feature(label_shapes, str(first.label(name).dtype))
    classes = list(ds.card.labels.classes or [])
    boxes = detects(ds.card)
    if boxes:
        features["objects"] = {
            "bbox": datasets.List(datasets.List(datasets.Value("float32"), length=4)),
            "category": datasets.List(datasets.ClassLabel(names=classes)),
            "difficult": datasets.List(datasets.Value("bool")),
        }
    elif classes:
        features["class"] = datasets.ClassLabel(names=classes)
        features["class_name"] = datasets.Value("string")
    lineage = any("lineage" in first.label_attrs(n) for n in labels)
    if lineage:
        features["lineage"] = datasets.List(datasets.List(datasets.Value("int64")))
    label_itemsize = sum(first.label(n).dtype.itemsize for n in labels)
    row_bytes = max(
        int(np.prod(s)) * first.array(0).dtype.itemsize + int(np.prod(ls)) * label_itemsize
        for s, ls in zip(shapes, label_shapes)
    )
    hf = datasets.Dataset.from_generator(
        _generate,
        features=datasets.Features(features),
        cache_dir=str(cache_dir) if cache_dir else None,
        gen_kwargs={
            "path": str(ds.path),
            "rows": rows,
            "labels": tuple(labels),
            "classes": tuple(classes),
            "lineage": lineage,
            "boxes": boxes,
        },
        writer_batch_size=max(1, WRITER_BATCH_BYTES // row_bytes),
    )
    return hf.with_format("numpy", columns=["image", *labels], output_all_columns=True, dtype=None)
