"""Predictions from any tool, in the benchmark formats, checked against the split before scoring.

- instance / semantic: one integer label image per sample, ``<id>.tif|.tiff|.png`` or ``<id>.ome.zarr``;
- label-free: one image per sample (``(Y, X)`` for one target channel, else ``(C, Y, X)``), same names;
- classification: one ``*.csv`` with an ``id`` column and either one probability column per class name or a
  ``predicted`` column of class names;
- tracking: one CTC ``<sequence id>_RES/`` folder per sequence: ``maskTTT.tif`` per frame + ``res_track.txt``;
- detection: one COCO results ``*.json`` (``[{"image_id": i, "category_id": k, "bbox": [x, y, w, h], "score":
  s}, ...]``, where ``image_id`` is the sample id or the image id and ``category_id`` the category id that
  ``cellhub datasets export coco`` gives it: :func:`hub.curate.export.coco_ids`) or one ``*.csv`` with the
  columns ``id, class, x0, y0, x1, y1, score`` (``class``: a class name); pixel coordinates as in
  :mod:`hub.dataset._boxes`. Samples without a box simply have no row.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from hub._readers import is_number, parse_json, read_csv_lines
from hub.curate.export import coco_ids
from hub.dataset import Dataset
from hub.errors import InvalidInput
from hub.metrics import Detections, TrackingPrediction
from hub.ome import ctc, open_image
from hub.ome.files import IMAGE_SUFFIXES, image_shape, read_image_file
from hub.safety import read_capped

IMAGE_EXTS = (*IMAGE_SUFFIXES, ".ome.zarr")  # the image files a tool writes, or OME-Zarr


def _stem(p: Path) -> str | None:
    for ext in IMAGE_EXTS:
        if p.name.lower().endswith(ext):
            return p.name[: -len(ext)]
    return None


def prediction_files(folder: Path, ids: list[str], tracking: bool = False) -> dict[str, Path]:
    """Sample id -> its prediction file or folder; missing and unexpected samples are errors."""
    if not folder.is_dir():
        raise InvalidInput("predictions folder not found", folder)
    found: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        if p.name.startswith("."):
            continue
        sid = p.name[:-4] if tracking and p.is_dir() and p.name.endswith("_RES") else (None if tracking else _stem(p))
        if sid is None:
            continue
        if sid in found:
            raise InvalidInput(f"two predictions for sample {sid!r}: {found[sid].name} and {p.name}", folder)
        found[sid] = p
    missing = [i for i in ids if i not in found]
    extra = sorted(set(found) - set(ids))
    what = "<id>_RES folder" if tracking else "prediction"
    if missing:
        raise InvalidInput(f"no {what} for {len(missing)} of {len(ids)} samples (first: {missing[0]!r})", folder)
    if extra:
        raise InvalidInput(f"{len(extra)} prediction(s) for samples not in the split (first: {extra[0]!r})", folder)
    return found


def _is_zarr(path: Path) -> bool:
    return path.name.lower().endswith(".ome.zarr")


def _zarr_array(path: Path):
    """Level 0 of an OME-Zarr prediction, opened (metadata only: its shape and chunks are checked against the
    pixel budget by :meth:`hub.ome.OmeImage.array`)."""
    try:
        return open_image(path).array(0)
    except InvalidInput:
        raise
    except Exception as err:
        raise InvalidInput(
            f"cannot read OME-Zarr ({err.__class__.__name__}: {' '.join(str(err).split())[:120]})", path
        ) from None


def declared_shape(path: Path) -> tuple[int, ...]:
    """The shape of a prediction image from its header or array metadata only (no pixel is read)."""
    return tuple(int(n) for n in _zarr_array(path).shape) if _is_zarr(path) else image_shape(path)


def read_image(path: Path) -> np.ndarray:
    return np.asarray(_zarr_array(path)[...]) if _is_zarr(path) else read_image_file(path)


def _check_shape(path: Path, declared: tuple[int, ...], shape: tuple[int, ...]) -> None:
    if declared != tuple(shape):
        raise InvalidInput(f"prediction has shape {declared}, the truth {tuple(shape)}", path)


def read_label_image(path: Path, shape: tuple[int, ...]) -> np.ndarray:
    """A label image of exactly the truth's ``shape`` (singleton axes dropped); the shape the file declares is
    compared before any pixel is read, so a few bytes declaring a huge image cost nothing."""
    _check_shape(path, tuple(n for n in declared_shape(path) if n != 1), shape)
    arr = np.squeeze(read_image(path))
    _check_shape(path, arr.shape, shape)
    if not (np.issubdtype(arr.dtype, np.integer) or arr.dtype == bool):
        raise InvalidInput(f"labels must be integers, got {arr.dtype}", path)
    if np.issubdtype(arr.dtype, np.signedinteger) and arr.size and arr.min() < 0:
        raise InvalidInput("labels must not be negative", path)
    return arr


def read_channels(path: Path, shape: tuple[int, ...]) -> np.ndarray:
    """Predicted channels (C, Y, X) of exactly the truth's ``shape`` ((Y, X) for one channel), checked on the
    declared shape before any pixel is read."""
    declared = declared_shape(path)
    _check_shape(path, (1, *declared) if len(declared) == 2 and shape[0] == 1 else declared, shape)
    arr = read_image(path).astype(np.float32)
    if arr.ndim == 2 and shape[0] == 1:
        arr = arr[None]
    _check_shape(path, arr.shape, shape)
    if not np.isfinite(arr).all():
        raise InvalidInput("prediction contains NaN or infinity", path)
    return arr


def read_class_csv(folder: Path, ids: list[str], classes: list[str]) -> tuple[np.ndarray, bool]:
    """(N, K) probabilities (True) or (N,) class indices (False), rows in ``ids`` order."""
    files = sorted(folder.glob("*.csv")) if folder.is_dir() else [folder]
    if len(files) != 1 or not files[0].is_file():
        raise InvalidInput("expected one CSV of class predictions", folder)
    path = files[0]
    rows = [r for _, r in read_csv_lines(path, "class-prediction CSV")]
    cols = set(rows[0]) if rows else set()
    if "id" not in cols:
        raise InvalidInput("the CSV needs an 'id' column", path)
    by_id = {}
    for r in rows:
        if r["id"] in by_id:
            raise InvalidInput(f"sample {r['id']!r} appears twice", path)
        by_id[r["id"]] = r
    missing = [i for i in ids if i not in by_id]
    extra = sorted(set(by_id) - set(ids))
    if missing:
        raise InvalidInput(f"no prediction for {len(missing)} of {len(ids)} samples (first: {missing[0]!r})", path)
    if extra:
        raise InvalidInput(f"{len(extra)} prediction(s) for samples not in the split (first: {extra[0]!r})", path)
    try:
        if set(classes) <= cols:
            return np.array([[float(by_id[i][c]) for c in classes] for i in ids]), True
        if "predicted" in cols:
            index = {c: k for k, c in enumerate(classes)}
            bad = next((by_id[i]["predicted"] for i in ids if by_id[i]["predicted"] not in index), None)
            if bad is not None:
                raise InvalidInput(f"unknown class {bad!r} (classes: {', '.join(classes)})", path)
            return np.array([index[by_id[i]["predicted"]] for i in ids]), False
    except ValueError as err:
        raise InvalidInput(f"not a number: {err}", path) from None
    raise InvalidInput(f"needs one probability column per class ({', '.join(classes)}) or a 'predicted' column", path)


def read_ctc_result(folder: Path, shape: tuple[int, ...]) -> TrackingPrediction:
    """A CTC ``<seq>_RES`` folder as (masks (T, Y, X), lineage); every frame of the truth needs a mask, each read
    as a prediction label image (:func:`read_label_image`). The metrics check the lineage against the masks."""
    return TrackingPrediction(*ctc.read_ctc_result(folder, shape, read_label_image))


def predictions_sha256(folder: Path) -> str:
    """SHA-256 over every file under ``folder``: its relative path and its bytes' SHA-256, in path order."""
    h = hashlib.sha256()
    files = [folder] if folder.is_file() else sorted(p for p in folder.rglob("*") if p.is_file())
    for p in files:
        rel = p.name if folder.is_file() else p.relative_to(folder).as_posix()
        h.update(f"{rel}\0{hashlib.sha256(p.read_bytes()).hexdigest()}\n".encode())
    return h.hexdigest()


MAX_TABLE_BYTES = 256 * 2**20  # a prediction table (CSV or COCO results JSON)
BOX_COLUMNS = ("id", "class", "x0", "y0", "x1", "y1", "score")


def _box_table(folder: Path) -> Path:
    files = [folder] if folder.is_file() else sorted([*folder.glob("*.json"), *folder.glob("*.csv")])
    if len(files) != 1 or not files[0].is_file():
        raise InvalidInput("expected one COCO results .json or one .csv of boxes", folder)
    size = files[0].stat().st_size
    if size > MAX_TABLE_BYTES:
        raise InvalidInput(f"{size} bytes, more than the {MAX_TABLE_BYTES} a prediction table may have", files[0])
    return files[0]


def _coco_rows(path: Path, ds: Dataset) -> list[tuple[str, int, list[float], float]]:
    image_ids, category_ids = coco_ids(ds)
    sample_of = {v: k for k, v in image_ids.items()}
    class_of = {c: k for k, c in enumerate(category_ids)}
    data = parse_json(read_capped(path, MAX_TABLE_BYTES, "COCO results JSON"), path, "COCO results JSON")
    if not isinstance(data, list):
        raise InvalidInput("a COCO results file is a list of detections", path)
    rows = []
    for i, d in enumerate(data):
        if not isinstance(d, dict) or not {"image_id", "category_id", "bbox", "score"} <= set(d):
            raise InvalidInput(f"detection {i}: needs image_id, category_id, bbox and score", path)
        cat, bbox, score, image = d["category_id"], d["bbox"], d["score"], d["image_id"]
        if isinstance(cat, bool) or cat not in class_of:
            raise InvalidInput(f"detection {i}: category_id {cat!r} is not one of {category_ids}", path)
        sid = image if isinstance(image, str) else sample_of.get(image) if isinstance(image, int) else None
        if sid is None or isinstance(image, bool):
            raise InvalidInput(f"detection {i}: image_id {image!r} is neither a sample id nor an image id", path)
        if not (isinstance(bbox, list) and len(bbox) == 4 and all(is_number(v) for v in bbox)) or not is_number(score):
            raise InvalidInput(f"detection {i}: bbox is not [x, y, w, h] or score is not a number", path)
        x, y, w, h = (float(v) for v in bbox)
        rows.append((sid, class_of[cat], [x, y, x + w, y + h], float(score)))
    return rows


def _csv_rows(path: Path, classes: list[str]) -> list[tuple[str, int, list[float], float]]:
    lines = read_csv_lines(path, "box-prediction CSV")  # the file's size is checked by _box_table
    if lines and set(BOX_COLUMNS) - set(lines[0][1]):
        raise InvalidInput(f"the CSV needs the columns {', '.join(BOX_COLUMNS)}", path)
    index = {c: k for k, c in enumerate(classes)}
    rows = []
    for n, r in lines:
        if r["class"] not in index:
            raise InvalidInput(f"line {n}: unknown class {r['class']!r} (classes: {', '.join(classes)})", path)
        try:
            x0, y0, x1, y1, score = (float(r[k]) for k in BOX_COLUMNS[2:])
        except ValueError:
            x0 = float("nan")
        if not all(map(np.isfinite, (x0, y0, x1, y1, score))):
            raise InvalidInput(f"line {n}: a coordinate or the score is not a finite number", path)
        rows.append((r["id"], index[r["class"]], [x0, y0, x1, y1], score))
    return rows


def read_boxes(folder: Path, ids: list[str], ds: Dataset) -> dict[str, Detections]:
    """The predicted boxes of every sample of ``ids`` of ``ds`` from a COCO results JSON or a CSV (see the module
    docstring): boxes must have ``x1 >= x0`` and ``y1 >= y0``; a sample outside the split is an error, a sample
    without a row has no detections."""
    path = _box_table(folder)
    classes = list(ds.card.labels.classes or [])
    rows = _coco_rows(path, ds) if path.suffix.lower() == ".json" else _csv_rows(path, classes)
    known = set(ids)
    stray = next((r[0] for r in rows if r[0] not in known), None)
    if stray is not None:
        raise InvalidInput(f"a box for sample {stray!r}, which is not in the split", path)
    bad = next((r for r in rows if r[2][2] < r[2][0] or r[2][3] < r[2][1]), None)
    if bad is not None:
        raise InvalidInput(f"sample {bad[0]!r}: box {bad[2]} has x1 < x0 or y1 < y0", path)
    by_id: dict[str, list] = {sid: [] for sid in ids}
    for r in rows:
        by_id[r[0]].append(r)
    return {
        sid: Detections(
            np.array([r[2] for r in mine], float).reshape(-1, 4),
            np.array([r[1] for r in mine], np.int64),
            np.array([r[3] for r in mine], float),
        )
        for sid, mine in by_id.items()
    }
