"""The dataset read model (typed, frozen sample rows; typed split info) and the one CTC lineage check."""

from __future__ import annotations

import csv
import dataclasses
import subprocess
import sys

import numpy as np
import pytest
from pydantic import ValidationError

from hub.cards import Guard, SplitInfo
from hub.curate.splits import SplitSpec, split_manifest
from hub.dataset import COLUMNS, Dataset, Sample, open_dataset
from hub.errors import InvalidInput
from hub.metrics import sequence_metrics
from hub.ome.ctc import Track, check_lineage, frame_labels, write_ctc_result

ROW = {
    "id": "A4_y0256_x0512",
    "path": "images/A4_y0256_x0512.ome.zarr",
    "split": "test",
    "group": "A4_y0256_x0512",
    "source": "A4",
    "region": "256 512 480 736",
    "shape": "8x224x224",
    "dtype": "uint16",
    "class": "",
    "class_name": "",
    "objects": "0",
    "tracks": "0",
    "divisions": "0",
    "frames": "0",
    "sha256": "a" * 64,
    "image_sha256": "b" * 64,
    "phash": "0123456789abcdef",
}


def _table(tmp_path, *rows: dict) -> Dataset:
    with open(tmp_path / "samples.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return Dataset(tmp_path)


# ---- samples -------------------------------------------------------------------------------------------------


def test_a_row_is_parsed_into_typed_fields():
    s = Sample.from_row(ROW)
    assert (s.id, s.split, s.source, s.region, s.shape, s.dtype) == (
        "A4_y0256_x0512",
        "test",
        "A4",
        (256, 512, 480, 736),
        (8, 224, 224),
        "uint16",
    )
    assert s.class_index is None and s.class_name is None and s.objects == 0 and not s.is_timelapse
    assert s.to_row() == ROW  # lossless: the text the writer wrote comes back
    movie = Sample.from_row(ROW | {"region": "0 30", "frames": "31", "class": "2", "class_name": "M"})
    assert movie.region == (0, 30) and movie.is_timelapse and (movie.class_index, movie.class_name) == (2, "M")


def test_rows_are_frozen_and_optional_columns_default():
    s = Sample.from_row({"id": "a", "path": "images/a.ome.zarr", "split": "train"})
    assert (s.group, s.source, s.region, s.shape, s.frames, s.class_index) == ("a", "a", None, (), 0, None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.split = "test"  # type: ignore[misc]
    assert dataclasses.replace(s, split="test").split == "test"


@pytest.mark.parametrize(
    "column,value,expected",
    [
        ("objects", "x", "objects 'x' is not a count"),
        ("frames", "-1", "frames '-1' is not a count"),
        ("class", "03", "class '03' is not a class index"),
        ("region", "1 2 3", "region '1 2 3' is not 'y0 x0 y1 x1' or 't0 t1'"),
        ("shape", "8x2.5", "shape '8x2.5' is not 'NxM...'"),
        ("sha256", "abc", "sha256 'abc' is not a SHA-256"),
        ("phash", "zz", "phash 'zz' is not a 64-bit hash"),
        ("id", "../x", "id '../x' is not a safe name"),
        ("split", "", "split is empty"),
    ],
)
def test_a_bad_row_is_one_line_naming_the_file_and_line(tmp_path, column, value, expected):
    ds = _table(tmp_path, ROW | {"id": "first"}, ROW | {column: value})
    with pytest.raises(InvalidInput) as err:
        _ = ds.samples
    line = str(err.value)
    assert "\n" not in line and line.startswith(str(tmp_path / "samples.csv"))
    assert f"samples table: line 3: {expected}" in line


def test_samples_index_by_id(tmp_path):
    ds = _table(tmp_path, ROW | {"id": "a", "split": "train"}, ROW | {"id": "b"})
    assert isinstance(ds.samples, tuple) and ds.ids("test") == ["b"] and ds.sample("a").split == "train"
    with pytest.raises(InvalidInput, match="no sample 'c'"):
        ds.sample("c")


def test_every_written_row_round_trips(built):
    path = built("isl-condition-b")
    with open(path / "samples.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == COLUMNS
    assert [s.to_row() for s in open_dataset(path).samples] == rows


def test_reading_a_dataset_imports_no_curation(built):
    path = built("isl-condition-b")
    code = (
        "import sys; from hub.dataset import open_dataset; "
        f"ds = open_dataset({str(path)!r}); ds.samples; ds.card; ds.image(ds.ids()[0]).read(); "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'sklearn', 'skimage', 'scipy', 'torch', 'dask'}), "
        "sorted(m for m in sys.modules if m.startswith('hub.curate')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[] []"


def test_cards_and_the_lineage_check_import_no_heavy_package():
    """The task registry imports the metric suites and they import the CTC lineage check: none of them may pull
    zarr, scikit-learn, scikit-image, scipy or torch in (they load when a suite or a reader first runs)."""
    code = (
        "import sys, hub.cards, hub.tasks, hub.metrics, hub.ome.ctc; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'zarr', 'sklearn', 'skimage', 'scipy', 'torch'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# ---- split info ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text,size,unit", [("32 px", 32, "px"), ("2 frames", 2, "frames"), ("0 px", 0, "px")])
def test_guard_text_is_typed_and_written_back_unchanged(text, size, unit):
    info = SplitInfo(method="assign", seed=0, guard=text)
    assert info.guard == Guard(size=size, unit=unit)
    assert info.model_dump()["guard"] == text and SplitInfo.model_validate(info.model_dump()) == info
    spec = SplitSpec(method="assign", assign={"train": []}, guard=text)
    assert split_manifest([], spec)["guard"] == text  # the frozen manifest (and its hash) keeps the recipe's text


@pytest.mark.parametrize("text", ["32", "32px", "wide", "-2 frames", "2 Frames"])
def test_a_guard_that_is_not_a_size_and_unit_is_refused(text):
    with pytest.raises(ValidationError, match="'<n> px' or '<n> frames'"):
        SplitInfo(method="assign", seed=0, guard=text)


def test_guard_schema_is_text():
    schema = SplitInfo.model_json_schema()["properties"]["guard"]["anyOf"][0]
    assert schema["type"] == "string" and "px|frames" in schema["pattern"]


# ---- the lineage check ---------------------------------------------------------------------------------------


def _movie() -> tuple[np.ndarray, list[Track]]:
    """Five frames: cell 1 lives in frames 0-2 and divides into 2 and 3 (frames 3-4); cell 4 lives throughout."""
    m = np.zeros((5, 16, 16), np.uint16)
    m[:3, 2:6, 2:6] = 1
    m[3:, 2:4, 2:6] = 2
    m[3:, 4:6, 2:6] = 3
    m[:, 10:14, 10:14] = 4
    return m, [Track(1, 0, 2, 0), Track(2, 3, 4, 1), Track(3, 3, 4, 1), Track(4, 0, 4, 0)]


def test_a_valid_lineage_passes_and_comes_back_as_rows():
    masks, tracks = _movie()
    rows = check_lineage(tracks, frame_labels(masks))
    assert rows.dtype == np.int64 and rows.tolist() == [list(t) for t in tracks]


def _holed():
    masks, tracks = _movie()
    masks[2][masks[2] == 4] = 0
    return masks, tracks


@pytest.mark.parametrize(
    "case,expected",
    [
        (lambda m, t: (m, [*t, t[0]]), "lineage: track 1 is listed twice"),
        (lambda m, t: (m, [*t[:3], Track(4, 0, 5, 0)]), "lineage: impossible track '4 0 5 0' for 5 frames"),
        (lambda m, t: (m, [t[0], Track(2, 3, 4, 9), *t[2:]]), "lineage: track 2 has parent 9, which is not a track"),
        (
            lambda m, t: (m, [*t[:3], Track(4, 0, 4, 1)]),
            "lineage: track 4 begins at frame 0, not after its parent 1 ends (frame 2)",
        ),
        (
            lambda m, t: (m, [Track(1, 0, 3, 0), *t[1:]]),
            "lineage contradicts the masks: track 1 spans frames 0-3 in the lineage but 0-2 in the masks",
        ),
        (
            lambda m, t: (m, t[:3]),
            "lineage contradicts the masks: label 4 is in the mask of frame 0 but not in the lineage",
        ),
        (
            lambda m, t: (m, [*t[:3], Track(4, 0, 3, 0)]),
            "lineage contradicts the masks: track 4 spans frames 0-3 in the lineage but 0-4 in the masks",
        ),
        (
            lambda m, t: (m, [*t, Track(7, 1, 2, 0)]),
            "lineage contradicts the masks: track 7 of the lineage (frames 1-2) is absent from the masks",
        ),
        (
            lambda m, t: _holed(),
            "lineage contradicts the masks: label 4 is missing from frame 2 between its first and last frames (0-4)",
        ),
    ],
)
def test_a_bad_lineage_is_refused_with_one_line(tmp_path, case, expected):
    masks, tracks = case(*_movie())
    with pytest.raises(InvalidInput) as err:
        check_lineage(tracks, frame_labels(masks), tmp_path / "man_track.txt")
    assert "\n" not in str(err.value) and str(err.value).startswith(f"{tmp_path / 'man_track.txt'}: {expected}")
    # the writer of CTC results and the tracking metrics apply the same check, with the same words
    with pytest.raises(InvalidInput, match="^[^\n]*$") as written:
        write_ctc_result(masks, tracks, tmp_path / "01_RES")
    assert expected in str(written.value) and not (tmp_path / "01_RES").exists()
    good = _movie()
    with pytest.raises(InvalidInput) as scored:
        sequence_metrics(good, (masks, tracks))
    assert str(scored.value).startswith(expected.replace("lineage", "prediction lineage", 1))


def test_labels_beyond_int64_have_no_row():
    labels = [np.array([2**63 + 5], np.uint64)]
    with pytest.raises(InvalidInput, match=f"label {2**63 + 5} is in the mask of frame 0 but not in the lineage"):
        check_lineage([], labels)
