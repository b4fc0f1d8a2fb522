"""Run a model over an image file, a folder of images or a curated dataset; one output per sample.

Outputs, named by sample id (file stem for image files): ``<id>.tif`` label images (segmentation) or
float32 images (label-free), a CTC ``<id>_RES/`` folder (tracking), one ``predictions.csv`` of class
probabilities (classification) or one ``boxes.csv`` of scored boxes (detection). The output folder appears
complete or not at all.
"""

from __future__ import annotations

import csv
import functools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tifffile

from hub._atomic import new_folder
from hub._progress import progress_bar
from hub.dataset import Dataset, open_dataset
from hub.errors import InvalidInput
from hub.executor import ExecutorLike, map_samples, use_executor
from hub.metrics import Detections
from hub.models.model import Model
from hub.ome.files import IMAGE_SUFFIXES, grey_or_colour, image_files, read_image_file
from hub.tasks import get_task


def _as_model_input(model: Model, image: np.ndarray, axes: str, source: Path) -> np.ndarray:
    """A decoded file's pixels as the (C, Y, X) the model wants (true colour becomes grey for 1-channel models)."""
    n = len(model.card.inputs.channels)
    if axes == "yx":
        return image[None]
    if n == 1 and image.shape[0] == 3:
        return image.astype(np.float32).mean(0, keepdims=True)
    return model.channels_first(image, str(source))


@dataclass(frozen=True)
class SampleInput:
    """One sample to predict, read where the prediction runs (a worker of a cluster reads its own): an image file,
    a folder of frames (a movie), or a sample of a curated dataset with the model's channels."""

    id: str
    path: Path
    frames: tuple[Path, ...] = ()
    channels: tuple[int, ...] | None = None  # a dataset's sample: the indices of the model's channels

    def read(self, model: Model) -> np.ndarray:
        if self.channels is not None:
            img = _dataset(self.path, (self.path / "samples.csv").stat().st_mtime_ns).image(self.id)
            arr = img.read()
            if "c" not in img.axes:
                arr = arr[..., None, :, :]
            return arr[..., list(self.channels), :, :]
        if self.frames:
            return np.stack([_frame(model, f) for f in self.frames])
        if get_task(model.card.task).sequences:  # one multi-page TIFF movie (T, Y, X) or (T, C, Y, X)
            return read_image_file(self.path)
        return _frame(model, self.path)


@functools.lru_cache(maxsize=4)
def _dataset(path: Path, stamp: int) -> Dataset:
    """A dataset opened once per process (and again once its ``samples.csv`` changed: ``stamp``)."""
    return open_dataset(path)


def _from_files(model: Model, path: Path) -> list[SampleInput]:
    files = [path] if path.is_file() else image_files(path)
    if not files:
        raise InvalidInput(f"no image files ({', '.join(IMAGE_SUFFIXES)}) in the folder", path)
    if get_task(model.card.task).sequences and not path.is_file():  # a folder of frames, e.g. CTC's t000.tif ...
        return [SampleInput(path.name, path, frames=tuple(files))]
    return [SampleInput(f.stem, f) for f in files]


def _read(f: Path) -> np.ndarray:
    img = read_image_file(f)
    if img.ndim not in (2, 3):
        raise InvalidInput(f"expected a 2-D image, got shape {img.shape}", f)
    return img


def _frame(model: Model, f: Path) -> np.ndarray:
    img, axes = grey_or_colour(_read(f))
    return _as_model_input(model, img, axes, f)


def _from_dataset(model: Model, path: Path, split: str | None) -> list[SampleInput]:
    ds = open_dataset(path)
    names = ds.card.channel_names
    missing = [c for c in model.card.channel_names if c not in names]
    if missing:
        raise InvalidInput(
            f"model {model.card.ref} needs channel {missing[0]!r}; the dataset has {', '.join(names)}",
            path / "card.yaml",
        )
    index = tuple(names.index(c) for c in model.card.channel_names)
    sequences = get_task(model.card.task).sequences
    return [
        SampleInput(row.id, ds.path, channels=index)
        for row in ds.samples
        if (not split or row.split == split) and sequences == row.is_timelapse
    ]


def sample_inputs(model: Model, path: str | Path, split: str | None = None) -> list[SampleInput]:
    """The samples of an image file, a folder of images, or a curated dataset (its ``split``), unread."""
    path = Path(path)
    if not path.exists():
        raise InvalidInput("input not found", path)
    if (path / "card.yaml").is_file() and (path / "samples.csv").is_file():
        return _from_dataset(model, path, split)
    return _from_files(model, path)


def samples(model: Model, path: str | Path, split: str | None = None) -> Iterator[tuple[str, np.ndarray]]:
    """``(sample id, raw image)`` pairs of an image file, a folder of images, or a curated dataset, read one at
    a time."""
    for s in sample_inputs(model, path, split):
        yield s.id, s.read(model)


def write_label_image(pred: np.ndarray, sid: str, folder: Path, rows: list) -> None:
    """``<id>.tif``: an integer label image (uint16, or uint32 past 65535 labels)."""
    _write_tif(pred.astype(np.uint16 if pred.max() < 2**16 else np.uint32), folder / f"{sid}.tif")


def write_float_image(pred: np.ndarray, sid: str, folder: Path, rows: list) -> None:
    """``<id>.tif``: float32 channels, ``(Y, X)`` for one."""
    _write_tif(pred, folder / f"{sid}.tif")


def _write_tif(pred: np.ndarray, path: Path) -> None:
    tifffile.imwrite(path, pred[0] if pred.ndim == 3 and len(pred) == 1 else pred, compression="zlib")


def write_ctc_tracks(pred: tuple, sid: str, folder: Path, rows: list) -> None:
    """``<id>_RES/``: a CTC result folder (masks and ``res_track.txt``)."""
    from hub.ome.ctc import write_ctc_result

    masks, tracks = pred
    write_ctc_result(masks, tracks, folder / f"{sid}_RES")


def write_row(pred: Any, sid: str, folder: Path, rows: list) -> None:
    """A row of the task's table (written by its ``table`` hook once every sample is predicted)."""
    rows.append((sid, pred))


def write_class_table(model: Model, folder: Path, rows: list[tuple[str, np.ndarray]]) -> None:
    """``predictions.csv``: per sample the predicted class and the probability of each class."""
    classes = model.card.outputs.classes or []
    with open(folder / "predictions.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "predicted", *classes])
        for sid, prob in rows:
            w.writerow([sid, classes[int(np.argmax(prob))], *(f"{p:.6g}" for p in prob)])


def write_box_table(model: Model, folder: Path, rows: list[tuple[str, Detections]]) -> None:
    """``boxes.csv``: one row per predicted box, ``id, class, x0, y0, x1, y1, score`` (see
    :mod:`hub.bench.predictions`)."""
    classes = model.card.outputs.classes or []
    with open(folder / "boxes.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "class", "x0", "y0", "x1", "y1", "score"])
        for sid, det in rows:
            for box, k, score in zip(det.xyxy.tolist(), det.classes.tolist(), det.scores.tolist()):
                w.writerow([sid, classes[k], *(f"{v:.2f}" for v in box), f"{score:.6g}"])


def predict_to(
    model: Model,
    source: str | Path,
    out: str | Path,
    split: str | None = None,
    scale: float = 1.0,
    executor: ExecutorLike | None = None,
) -> list[str]:
    """Predict every sample of ``source`` into the new folder ``out``; returns the sample ids. ``scale``
    resizes each image before the network (outputs keep the image's size). Each prediction is written by its
    task's writer (:attr:`hub.tasks.TaskSpec.write`).

    ``executor`` (or the enclosing :func:`hub.executor.use_executor` block): predict on a cluster's workers, each
    loading the model from its folder and reading its own samples (paths every worker reaches); without one, here,
    one image in memory at a time."""
    inputs = sample_inputs(model, source, split)
    if not inputs:
        raise InvalidInput(f"no samples to predict{f' in split {split!r}' if split else ''}", source)
    spec = get_task(model.card.task)
    rows: list[tuple[str, Any]] = []
    with new_folder(out) as tmp, use_executor(executor) as pool:
        if pool is None:
            with progress_bar() as bar:
                job = bar.add_task(f"predicting with {model.card.ref}", total=len(inputs))
                for s in inputs:
                    spec.write(model.predict(s.read(model), scale), s.id, tmp, rows)
                    bar.advance(job)
        else:
            if model.folder is None:
                raise InvalidInput(f"model {model.card.ref} was not loaded from a folder; a cluster cannot load it")
            jobs = [(str(model.folder), str(model.device), s, scale, str(tmp)) for s in inputs]
            for done in map_samples(_predict_one, jobs, description=f"predicting with {model.card.ref}"):
                rows += done
        if spec.table is not None:
            spec.table(model, tmp, rows)
    return [s.id for s in inputs]


@functools.lru_cache(maxsize=2)
def _worker_model(folder: str, device: str, weights_sha256: str) -> Model:
    """The model a worker loaded (once per worker process and weights)."""
    return Model.load(folder, device)


def _predict_one(job: tuple) -> list[tuple[str, Any]]:
    """On a worker: load the model (cached), read the sample, write its prediction; returns its table rows."""
    folder, device, sample, scale, out = job
    from hub.cards import ModelCard, load_card

    sha = load_card(ModelCard, Path(folder) / "card.yaml").weights.sha256
    model = _worker_model(folder, device, sha)
    rows: list[tuple[str, Any]] = []
    get_task(model.card.task).write(model.predict(sample.read(model), scale), sample.id, Path(out), rows)
    return rows
