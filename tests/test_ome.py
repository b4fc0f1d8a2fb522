"""hub.ome on real images: NGFF 0.5 writes that ome-zarr-models validates and ome-zarr-py reads, bit-identical
read back, label pyramids that match their image, physical scales, omero channels, refusals, and CTC lineage
tables that round-trip byte for byte."""

from __future__ import annotations

import shutil
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import tifffile
import zarr
from ome_zarr.io import parse_url
from ome_zarr.reader import Label, Reader

from hub.curate import validate_dataset
from hub.dataset import open_dataset
from hub.errors import InvalidInput
from hub.ome import (
    Track,
    lineage_from_attrs,
    lineage_to_attrs,
    open_image,
    pyramid_levels,
    read_man_track,
    validate_ngff,
    write_image,
    write_man_track,
)

GOWT1 = "tracking/Fluo-N2DH-GOWT1"
ECOLI = "tracking/ecoli-vanvliet"
DSB_ID = "1400420310c9094361a8a243545187f1d4c2365e081b3bb08c5fa29c7491a55b"  # 512x640, 25 nuclei
JURKAT = "classification/jurkat-cellcycle/jurkat_cellcycle_tiles.npz"
N_FRAMES = 4


# --------------------------------------------------------------------------------------------- sources


@pytest.fixture(scope="module")
def gowt1(data_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """First frames of GOWT1 sequence 01 (t, 1024, 1024) uint8 and their TRA marker labels (uint16)."""
    seq = data_dir / GOWT1
    image = np.stack([tifffile.imread(seq / "01" / f"t{t:03d}.tif") for t in range(N_FRAMES)])
    markers = np.stack([tifffile.imread(seq / "01_GT" / "TRA" / f"man_track{t:03d}.tif") for t in range(N_FRAMES)])
    return image, markers


@pytest.fixture(scope="module")
def dsb(data_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """A DSB2018 fluorescence image (channel 0 of its grey RGBA PNG) and instance labels from its mask PNGs."""
    folder = data_dir / "segmentation/dsb2018-fluo/stage1_train" / DSB_ID
    image = iio.imread(folder / "images" / f"{DSB_ID}.png")[..., 0]
    labels = np.zeros(image.shape, np.uint16)
    for i, mask in enumerate(sorted((folder / "masks").glob("*.png")), 1):
        labels[iio.imread(mask) > 0] = i
    return image, labels


@pytest.fixture(scope="module")
def jurkat(data_dir: Path) -> tuple[np.ndarray, list[str]]:
    """One Jurkat cell: a (3, 40, 40) uint16 crop and the source's channel names."""
    with np.load(data_dir / JURKAT) as z:
        return z["images"][0], [str(c) for c in z["channel_names"]]


@pytest.fixture(scope="module")
def written(tmp_path_factory, gowt1, dsb, jurkat) -> dict[str, Path]:
    """The three real images written once by hub.ome.write_image."""
    root = tmp_path_factory.mktemp("ome")
    frames, markers = gowt1
    write_image(
        root / "gowt1.zarr",
        frames,
        "tyx",
        pixel_size=(0.24, 0.24),
        pixel_unit="micrometer",
        frame_interval=5,
        time_unit="minute",
        labels={"tracks": markers},
        label_attrs={"tracks": {"kind": "markers"}},
        attrs={"sequence": "01"},
    )
    image, labels = dsb
    write_image(root / "dsb.zarr", image, "yx", channel_names=["nuclei"], labels={"nuclei": labels})
    crop, names = jurkat
    write_image(
        root / "jurkat.zarr", crop, "cyx", channel_names=names, pixel_size=(0.33, 0.33), pixel_unit="micrometer"
    )
    return {"gowt1": root / "gowt1.zarr", "dsb": root / "dsb.zarr", "jurkat": root / "jurkat.zarr"}


def _source(name, gowt1, dsb, jurkat) -> tuple[np.ndarray, np.ndarray | None]:
    """(image, labels or None) of the source ``name``."""
    if name == "jurkat":
        return jurkat[0], None
    return {"gowt1": gowt1, "dsb": dsb}[name]


NAMES = ["gowt1", "dsb", "jurkat"]
EXPECTED_LEVELS = {"gowt1": 3, "dsb": 2, "jurkat": 1}  # 1024 -> 512 -> 256; 512x640 -> 256x320; 40x40


# ------------------------------------------------------------------------------------------- the image


@pytest.mark.parametrize("name", NAMES)
def test_written_image_is_valid_ngff(written, name):
    assert validate_ngff(written[name]) == []


@pytest.mark.parametrize("name", NAMES)
def test_ome_zarr_py_reader_opens_it(written, name, gowt1, dsb, jurkat):
    image, _ = _source(name, gowt1, dsb, jurkat)
    nodes = list(Reader(parse_url(str(written[name])))())
    top = nodes[0]
    assert len(top.data) == EXPECTED_LEVELS[name] == pyramid_levels(image.shape[-2:])
    for i, level in enumerate(top.data):
        expected = image.shape[:-2] + tuple(s // 2**i for s in image.shape[-2:])
        assert tuple(level.shape) == expected
    np.testing.assert_array_equal(np.asarray(top.data[0]), image)


@pytest.mark.parametrize("name", NAMES)
def test_read_back_is_bit_identical_in_native_dtype(written, name, gowt1, dsb, jurkat):
    image, _ = _source(name, gowt1, dsb, jurkat)
    img = open_image(written[name])
    back = img.read(0)
    assert back.dtype == image.dtype
    np.testing.assert_array_equal(back, image)
    for level in range(1, len(img.level_paths)):
        assert img.array(level).dtype == image.dtype
    assert img.axes == {"gowt1": "tyx", "dsb": "yx", "jurkat": "cyx"}[name]


def test_chunks_are_256_planes_in_one_shard_per_array(written):
    img = open_image(written["gowt1"])
    arr = img.array(0)
    assert arr.chunks == (1, 256, 256)
    assert arr.shards == arr.shape  # the whole movie: one file, not one per frame
    for level in img.level_paths:
        assert [
            p.relative_to(written["gowt1"] / level) for p in (written["gowt1"] / level / "c").rglob("*") if p.is_file()
        ] == [Path("c/0/0/0")]


@pytest.mark.parametrize("name", ["gowt1", "dsb"])
def test_labels_match_image_geometry_levels_and_are_nearest_neighbour(written, name, gowt1, dsb):
    image, labels = _source(name, gowt1, dsb, None)
    img = open_image(written[name])
    (label_name,) = img.label_names
    n = len(img.level_paths)
    label_group = img.group[f"labels/{label_name}"]
    assert len(label_group.attrs["ome"]["multiscales"][0]["datasets"]) == n
    np.testing.assert_array_equal(img.label(label_name, 0)[...], labels)
    top_values = set(np.unique(labels).tolist())
    assert len(top_values) > 2  # real instances, not just background
    for level in range(n):
        lab = img.label(label_name, level)
        assert lab.shape == img.array(level).shape
        assert np.issubdtype(lab.dtype, np.integer)
        values = lab[...]
        assert set(np.unique(values).tolist()) <= top_values  # no blended label values
        step = 2**level
        np.testing.assert_array_equal(values, labels[..., ::step, ::step][..., : lab.shape[-2], : lab.shape[-1]])
    # ome-zarr-py sees the label image with the same pyramid
    nodes = list(Reader(parse_url(str(written[name] / "labels" / label_name)))())
    assert [tuple(a.shape) for a in nodes[0].data] == [img.array(i).shape for i in range(n)]


@pytest.mark.parametrize("name", ["gowt1", "dsb"])
def test_labels_group_has_version_05_and_lists_labels(written, name):
    attrs = zarr.open_group(str(written[name] / "labels"), mode="r").attrs["ome"]
    assert attrs["version"] == "0.5"
    assert attrs["labels"] == open_image(written[name]).label_names != []


def test_physical_scale_with_unit_doubles_per_level(written):
    img = open_image(written["gowt1"])
    assert img.units() == {"t": "minute", "y": "micrometer", "x": "micrometer"}
    for level in range(len(img.level_paths)):
        s = img.scale(level)
        assert s["y"] == pytest.approx(0.24 * 2**level)
        assert s["x"] == pytest.approx(0.24 * 2**level)
        assert s["t"] == pytest.approx(5.0)  # time is never downsampled
    label_ds = img.group["labels/tracks"].attrs["ome"]["multiscales"][0]["datasets"]
    label_axes = img.group["labels/tracks"].attrs["ome"]["multiscales"][0]["axes"]
    assert {a["name"]: a.get("unit") for a in label_axes} == {"t": "minute", "y": "micrometer", "x": "micrometer"}
    for level, ds in enumerate(label_ds):  # labels inherit the image's pixel size
        assert ds["coordinateTransformations"][0]["scale"] == pytest.approx([5.0] + [0.24 * 2**level] * 2)


def test_unknown_pixel_size_writes_unitless_pixel_scale(written):
    img = open_image(written["dsb"])
    assert img.units() == {}
    assert [img.scale(i) for i in range(2)] == [{"y": 1.0, "x": 1.0}, {"y": 2.0, "x": 2.0}]


def test_channel_names_land_in_omero(written, jurkat):
    crop, names = jurkat
    img = open_image(written["jurkat"])
    assert img.channel_names == names
    channels = img.ome["omero"]["channels"]
    assert [c["label"] for c in channels] == names
    for c, plane in zip(channels, crop):
        assert c["window"]["max"] == 65535
        assert c["window"]["min"] <= c["window"]["start"] < c["window"]["end"] <= plane.max() + 1
    node = next(iter(Reader(parse_url(str(written["jurkat"])))()))
    assert node.metadata.get("channel_names") == names


def test_attrs_are_stored_under_cellhub(written):
    img = open_image(written["gowt1"])
    assert img.attrs == {"sequence": "01"}
    assert img.label_attrs("tracks") == {"kind": "markers"}


def test_open_image_dask_is_lazy(written, gowt1):
    import dask.array as da

    arr = open_image(written["gowt1"]).dask(0)
    assert isinstance(arr, da.Array)
    assert arr.shape == gowt1[0].shape and arr.dtype == np.uint8
    assert arr.chunksize == (1, 256, 256)
    np.testing.assert_array_equal(arr[1, 100:400, 500:900].compute(), gowt1[0][1, 100:400, 500:900])
    assert open_image(written["gowt1"]).dask(2).shape == (N_FRAMES, 256, 256)


# ------------------------------------------------------------------------------------------- refusals


def test_refuses_float_labels(tmp_path, dsb):
    image, labels = dsb
    with pytest.raises(ValueError, match="integer"):
        write_image(tmp_path / "x.zarr", image, "yx", labels={"nuclei": labels.astype(np.float32)})


def test_refuses_labels_of_another_shape(tmp_path, dsb):
    image, labels = dsb
    with pytest.raises(ValueError, match="shape"):
        write_image(tmp_path / "x.zarr", image, "yx", labels={"nuclei": labels[:-1]})


def test_refuses_to_overwrite(tmp_path, dsb):
    image, labels = dsb
    path = tmp_path / "x.zarr"
    write_image(path, image, "yx", labels={"nuclei": labels})
    with pytest.raises(FileExistsError):
        write_image(path, np.zeros_like(image), "yx")
    np.testing.assert_array_equal(open_image(path).read(), image)  # untouched
    assert validate_ngff(path) == []


def test_refused_labels_write_nothing(tmp_path, dsb):
    image, labels = dsb
    with pytest.raises(ValueError):
        write_image(tmp_path / "x.zarr", image, "yx", labels={"nuclei": labels.astype(np.float32)})
    assert not (tmp_path / "x.zarr").exists()


def test_label_levels_match_odd_sized_image(tmp_path, data_dir):
    image = tifffile.imread(data_dir / ECOLI / "img" / "t000000.tif")  # 1305x1009: odd on both axes
    labels = tifffile.imread(data_dir / ECOLI / "TRA" / "man_track000000.tif")
    write_image(tmp_path / "e.zarr", image, "yx", labels={"tracks": labels})
    img = open_image(tmp_path / "e.zarr")
    assert len(img.level_paths) == 2
    for level in range(2):
        assert img.label("tracks", level).shape == img.array(level).shape


# -------------------------------------------------------------------------------------- lineage tables


@pytest.mark.parametrize(
    "rel", [f"{GOWT1}/01_GT/TRA/man_track.txt", f"{GOWT1}/02_GT/TRA/man_track.txt", f"{ECOLI}/TRA/man_track.txt"]
)
def test_man_track_round_trips_byte_for_byte(tmp_path, data_dir, rel):
    src = data_dir / rel
    tracks = read_man_track(src)
    assert tracks and all(isinstance(t, Track) for t in tracks)
    assert len(tracks) == len(src.read_text().splitlines())
    out = tmp_path / "man_track.txt"
    write_man_track(tracks, out)
    assert out.read_bytes() == src.read_bytes()
    assert lineage_from_attrs(lineage_to_attrs(tracks)) == tracks


def test_man_track_semantics_of_gowt1(data_dir):
    tracks = read_man_track(data_dir / GOWT1 / "01_GT/TRA/man_track.txt")
    assert len(tracks) == 27
    assert sum(t.parent > 0 for t in tracks) == 4
    labels = {t.label for t in tracks}
    assert all(t.parent in labels for t in tracks if t.parent)


@pytest.mark.parametrize("bad", ["7 1 4", "7 1 x 2", "7 5 4 0", "0 1 4 0", "7 1 4 -1"])
def test_malformed_man_track_line_names_file_and_line(tmp_path, data_dir, bad):
    lines = (data_dir / ECOLI / "TRA/man_track.txt").read_text().splitlines()
    lines.insert(10, bad)
    path = tmp_path / "man_track.txt"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InvalidInput) as err:
        read_man_track(path)
    assert err.value.path == str(path)
    assert "line 11" in str(err.value) and str(path) in str(err.value)


def test_missing_man_track_is_invalid_input(tmp_path):
    with pytest.raises(InvalidInput, match="not found"):
        read_man_track(tmp_path / "nope.txt")


@pytest.mark.parametrize("name", ["dsb2018-fluo", "ctc-gowt1", "ecoli-lineage", "bbbc039", "monuseg"])
def test_every_label_image_opens_as_labels_in_ome_zarr_py(built, name):
    """ome-zarr-py's reader (napari-ome-zarr's) returns a Label node for each label image: image-label metadata."""
    ds = open_dataset(built(name))
    for row in ds.samples[:3]:
        img = ds.image(row.id)
        nodes = list(Reader(parse_url(str(img.path)))())
        labels = {
            str(n.zarr.path).rstrip("/").rsplit("/", 1)[-1] for n in nodes if any(isinstance(s, Label) for s in n.specs)
        }
        assert img.label_names and labels == set(img.label_names), (row.id, labels)


def test_the_validator_refuses_a_label_image_viewers_would_open_as_an_image(built, tmp_path):
    copy = tmp_path / "bbbc039"
    shutil.copytree(built("bbbc039"), copy)
    sid = open_dataset(copy).samples[0].id
    group = zarr.open_group(str(copy / f"images/{sid}.ome.zarr/labels/instances"), mode="r+")
    ome = dict(group.attrs["ome"])
    del ome["image-label"]
    group.attrs["ome"] = ome
    found = [f for f in validate_dataset(copy).errors if f.sample == sid]
    assert [f.check for f in found] == ["labels"] and "viewers open it as an image" in found[0].message
