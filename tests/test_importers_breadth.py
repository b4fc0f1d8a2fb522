"""The colour-coded mask (BBBC) and polygon (ImageScope XML) importers: bbbc039 and monuseg built from their
recipes on the real data, and broken copies of a few real source files refused in one line naming the file."""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from hub.curate import create_importer, open_dataset
from hub.curate.importers.polygons import MAX_XML_BYTES
from hub.curate.recipe import load_recipe
from hub.errors import InvalidInput
from hub.ome.files import read_image_file

BBBC = "segmentation/bbbc039"
MONUSEG = "segmentation/monuseg-test"
FIELD = "IXMtest_C14_s8"  # holds the one-pixel stray component of the source


def _one_line(err: pytest.ExceptionInfo, path: Path, *words: str) -> None:
    msg = str(err.value)
    assert "\n" not in msg and path.name in msg, msg
    for w in words:
        assert w in msg, msg


def _splits_by_group(ds) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for r in ds.samples:
        out.setdefault(r.group, set()).add(r.split)
    return out


# --- bbbc039 on the real data --------------------------------------------------------------------------------


def test_bbbc039_nuclei_counts_and_noise_dropped(built):
    path = built("bbbc039")
    ds = open_dataset(path)
    assert len(ds.samples) == 50
    report = json.loads((path / "import_report.json").read_text())
    assert report["components"] == 5678  # the PROVENANCE count: 4-connected components per colour
    assert (report["small_components_dropped"], report["small_pixels_dropped"]) == (2, 3)  # 1 px + 2 px
    assert ds.card.counts.objects == sum(r.objects for r in ds.samples) == 5676
    assert ds.card.acquisition.channels[0].stain == "Hoechst"


def test_bbbc039_instances_are_components_of_one_colour_in_raster_order(built, data_dir):
    ds = open_dataset(built("bbbc039"))
    img = ds.image(FIELD)
    lab = np.asarray(img.label("instances")[...])
    mask = next((data_dir / BBBC / "masks").glob(f"{FIELD}_*.png"))
    colours = read_image_file(mask)[..., 0]
    assert img.axes == "yx" and img.channel_names == ["nuclei"]
    assert lab.max() == ds.samples[[r.id for r in ds.samples].index(FIELD)].objects
    pairs = np.unique(np.stack([lab[lab > 0], colours[lab > 0]]), axis=1)
    assert len(pairs[0]) == len(np.unique(pairs[0]))  # each instance has one colour
    assert len(pairs[0]) > len(np.unique(colours)) * 10  # and one colour holds many instances
    assert colours[129, 54] > 0 and lab[129, 54] == 0  # the stray pixel is dropped
    assert np.array_equal((lab > 0).sum(), (colours > 0).sum() - 1)
    first = lab.ravel()[np.sort(np.unique(lab.ravel(), return_index=True)[1])]
    assert list(first[first > 0]) == list(range(1, lab.max() + 1))  # ids in raster order of first pixel


def test_bbbc039_split_grouped_by_well_and_frozen(built):
    ds = open_dataset(built("bbbc039"))
    for r in ds.samples:
        assert r.group == re.search(r"_([A-P]\d{2})_s", r.id)[1]
    assert all(len(s) == 1 for s in _splits_by_group(ds).values())  # a well never straddles splits
    assert {s: sum(r.split == s for r in ds.samples) for s in ("train", "val", "test")} == {
        "train": 32,
        "val": 8,
        "test": 10,
    }
    recipe, _, _ = load_recipe("bbbc039")
    assert ds.card.splits.manifest_sha256 == recipe.split_manifest_sha256


# --- monuseg on the real data --------------------------------------------------------------------------------


def test_monuseg_keeps_rgb_and_every_region(built, data_dir):
    path = built("monuseg")
    ds = open_dataset(path)
    assert len(ds.samples) == 14 and ds.card.counts.objects == 6697
    report = json.loads((path / "import_report.json").read_text())
    assert report["regions"] == 6697 and report["overlap_pixels"] > 0
    assert report["degenerate_polygons"] == report["empty_polygons"] == report["objects_lost_to_overlap"] == 0
    sid = "TCGA-HT-8564-01Z-00-DX1"
    img = ds.image(sid)
    assert img.axes == "cyx" and img.channel_names == ["red", "green", "blue"]
    pixels = img.read()
    assert pixels.shape == (3, 1000, 1000) and pixels.dtype == np.uint8
    np.testing.assert_array_equal(pixels, np.moveaxis(read_image_file(data_dir / MONUSEG / f"{sid}.tif"), -1, 0))
    assert [c.modality for c in ds.card.acquisition.channels] == ["bright-field"] * 3
    assert ds.card.terms.license == "CC-BY-NC-SA-4.0" and ds.card.terms.redistribution is False


def test_monuseg_polygons_land_on_their_vertices(built, data_dir):
    from hub.curate.importers.polygons import read_imagescope

    sid = "TCGA-2Z-A9J9-01A-01-TS1"
    lab = np.asarray(open_dataset(built("monuseg")).image(sid).label("instances")[...])
    polygons, meta = read_imagescope(data_dir / MONUSEG / f"{sid}.xml")
    assert lab.max() == len(polygons) == 575 and meta["MicronsPerPixel"] == "0.252700"
    for k in (1, 100, 575):
        ys, xs = np.nonzero(lab == k)
        y, x = polygons[k - 1].mean(0)
        assert abs(ys.mean() - y) < 2 and abs(xs.mean() - x) < 2  # X is the column, Y the row
    # a pixel whose centre lies inside or on an edge: for integer vertices Pick's theorem counts them as
    # area + boundary lattice points / 2 + 1 (centres strictly inside alone would be area - boundary / 2 + 1)
    p = np.vstack([polygons[0], polygons[0][:1]])
    area = 0.5 * abs(np.sum(p[:-1, 1] * p[1:, 0] - p[1:, 1] * p[:-1, 0]))
    boundary = sum(math.gcd(int(abs(dy)), int(abs(dx))) for dy, dx in np.diff(p, axis=0))
    assert (p == np.round(p)).all() and (lab == 1).sum() == area + boundary / 2 + 1 == 669


def test_monuseg_split_keeps_patients_whole(built):
    ds = open_dataset(built("monuseg"))
    groups = _splits_by_group(ds)
    assert len(groups) == 14 and all(len(s) == 1 for s in groups.values())
    assert all(r.id.startswith(r.group) for r in ds.samples)
    by = {s: sorted(g for g, ss in groups.items() if s in ss) for s in ("train", "val", "test")}
    assert [len(by[s]) for s in ("train", "val", "test")] == [8, 2, 4]
    assert by["test"] == ["TCGA-69-7764", "TCGA-AO-A0J2", "TCGA-HT-8564", "TCGA-IZ-8196"]
    recipe, _, _ = load_recipe("monuseg")
    assert ds.card.splits.manifest_sha256 == recipe.split_manifest_sha256


# --- broken colour-coded masks ---------------------------------------------------------------------------------


@pytest.fixture
def bbbc_copy(data_dir, tmp_path) -> Path:
    """Two real fields (image + mask) in the BBBC layout."""
    root = tmp_path / "bbbc"
    for sub in ("images", "masks"):
        (root / sub).mkdir(parents=True)
        for f in sorted((data_dir / BBBC / sub).iterdir())[:2]:
            shutil.copy(f, root / sub / f.name)
    return root


def _bbbc(root: Path):
    return create_importer("bbbc", root)


def test_bbbc_copy_loads_with_short_mask_names(bbbc_copy):
    mask = sorted((bbbc_copy / "masks").iterdir())[0]
    mask.rename(mask.with_name("IXMtest_A02_s1.png"))  # masks may lack the channel suffix of the image names
    items = _bbbc(bbbc_copy).scan()
    assert [i[0] for i in items] == ["IXMtest_A02_s1", "IXMtest_A12_s7"]
    s = _bbbc(bbbc_copy).load(items[0])
    assert s.group == "A02" and s.labels["instances"].max() == s.report["components"] > 50


def test_bbbc_mask_missing(bbbc_copy):
    mask = sorted((bbbc_copy / "masks").iterdir())[1]
    mask.unlink()
    image = sorted((bbbc_copy / "images").iterdir())[1]
    with pytest.raises(InvalidInput) as err:
        _bbbc(bbbc_copy).scan()
    _one_line(err, image, "no mask")


def test_bbbc_two_masks_for_one_image_are_ambiguous(bbbc_copy):
    mask = sorted((bbbc_copy / "masks").iterdir())[0]
    shutil.copy(mask, mask.with_name("IXMtest_A02_s1.tif"))
    with pytest.raises(InvalidInput) as err:
        _bbbc(bbbc_copy).scan()
    _one_line(err, mask, "ambiguous")


def test_bbbc_mask_with_the_wrong_shape(bbbc_copy):
    mask = sorted((bbbc_copy / "masks").iterdir())[0]
    Image.fromarray(read_image_file(mask)[:100, :200]).save(mask)
    importer = _bbbc(bbbc_copy)
    with pytest.raises(InvalidInput) as err:
        importer.load(importer.scan()[0])
    _one_line(err, mask, "(100, 200)", "(520, 696)")


def test_bbbc_float_mask(bbbc_copy):
    mask = sorted((bbbc_copy / "masks").iterdir())[0]
    float_mask = mask.with_suffix(".tif")
    tifffile.imwrite(float_mask, read_image_file(mask)[..., 0].astype(np.float32))
    mask.unlink()
    importer = _bbbc(bbbc_copy)
    with pytest.raises(InvalidInput) as err:
        importer.load(importer.scan()[0])
    _one_line(err, float_mask, "float32")


def test_bbbc_mask_coloured_in_green(bbbc_copy):
    mask = sorted((bbbc_copy / "masks").iterdir())[0]
    rgba = read_image_file(mask).copy()
    rgba[..., 1] = 255 - rgba[..., 0]  # a true colour picture, not a label map in red
    Image.fromarray(rgba).save(mask)
    importer = _bbbc(bbbc_copy)
    with pytest.raises(InvalidInput) as err:
        importer.load(importer.scan()[0])
    _one_line(err, mask, "green")


def test_bbbc_file_name_without_a_well(bbbc_copy):
    for sub in ("images", "masks"):
        f = sorted((bbbc_copy / sub).iterdir())[0]
        f.rename(f.with_name("field1" + f.suffix))
    importer = _bbbc(bbbc_copy)
    with pytest.raises(InvalidInput) as err:
        importer.load(importer.scan()[-1])
    _one_line(err, bbbc_copy / "images" / "field1.tif", "split group")


# --- broken ImageScope XML -------------------------------------------------------------------------------------


@pytest.fixture
def monuseg_copy(data_dir, tmp_path) -> Path:
    """One real image with its annotation."""
    root = tmp_path / "monuseg"
    root.mkdir()
    for suffix in (".tif", ".xml"):
        shutil.copy(data_dir / MONUSEG / f"TCGA-HT-8564-01Z-00-DX1{suffix}", root)
    return root


def _load_polygons(root: Path):
    importer = create_importer("polygons", root)
    return importer.load(importer.scan()[0])


def _xml(root: Path) -> Path:
    return root / "TCGA-HT-8564-01Z-00-DX1.xml"


def test_polygon_copy_loads(monuseg_copy):
    s = _load_polygons(monuseg_copy)
    assert s.axes == "cyx" and s.image.shape == (3, 1000, 1000) and s.labels["instances"].max() == 249
    assert s.group is None and s.attrs["microns_per_pixel"] == 0.2525


def test_polygons_overlap_and_degenerate_resolved_and_reported(tmp_path):
    tifffile.imwrite(tmp_path / "a.tif", np.full((20, 30, 3), 200, np.uint8))
    regions = [
        [(2, 2), (2, 10), (10, 10), (10, 2)],  # 1: a square
        [(6, 6), (6, 14), (14, 14), (14, 6)],  # 2: overlaps 1; 1 keeps the shared pixels
        [(3, 3), (3, 5), (5, 5), (5, 3)],  # 3: inside 1: every pixel taken
        [(1, 20), (1, 25), (1, 20)],  # 4: two distinct vertices
        [(40, 40), (40, 50), (50, 50)],  # 5: outside the image
        [(15, 25), (15, 35), (19, 35), (19, 25)],  # 6: reaches past the right edge, clipped
    ]
    vertices = ["".join(f'<Vertex X="{x}" Y="{y}"/>' for y, x in r) for r in regions]
    body = "".join(f'<Region Id="{i}"><Vertices>{v}</Vertices></Region>' for i, v in enumerate(vertices, 1))
    (tmp_path / "a.xml").write_text(f"<Annotations><Annotation><Regions>{body}</Regions></Annotation></Annotations>")
    s = _load_polygons(tmp_path)
    lab = s.labels["instances"]
    assert s.report == {
        "regions": 6,
        "degenerate_polygons": 1,
        "empty_polygons": 1,
        "clipped_polygons": 2,
        "objects_lost_to_overlap": 1,
        "overlap_pixels": 34,  # 3x3 of region 3 and 5x5 of region 2
    }
    assert lab.max() == 3 and lab[2, 2] == lab[10, 10] == 1 and lab[14, 14] == 2 and lab[15, 29] == 3
    assert (lab == 1).sum() == 81 and (lab == 2).sum() == 81 - 25 and (lab == 3).sum() == 5 * 5


def test_xml_that_is_not_imagescope(monuseg_copy):
    _xml(monuseg_copy).write_text("<annotation><object><name>cell</name></object></annotation>")
    with pytest.raises(InvalidInput) as err:
        _load_polygons(monuseg_copy)
    _one_line(err, _xml(monuseg_copy), "not an Aperio ImageScope annotation")


def test_xml_with_a_doctype_and_entities(monuseg_copy):
    text = _xml(monuseg_copy).read_text()
    bomb = '<!DOCTYPE Annotations [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>\n'
    _xml(monuseg_copy).write_text(bomb + text.replace('Text=""', 'Text="&b;"', 1))
    with pytest.raises(InvalidInput) as err:
        _load_polygons(monuseg_copy)
    _one_line(err, _xml(monuseg_copy), "DOCTYPE")


def test_region_with_a_non_numeric_vertex(monuseg_copy):
    text = _xml(monuseg_copy).read_text()
    _xml(monuseg_copy).write_text(re.sub(r'<Vertex X="[^"]*"', '<Vertex X="12,5px"', text, count=1))
    with pytest.raises(InvalidInput) as err:
        _load_polygons(monuseg_copy)
    _one_line(err, _xml(monuseg_copy), "Region 1", "vertex 1 X is not a number", "12,5px")


def test_xml_not_well_formed(monuseg_copy):
    data = _xml(monuseg_copy).read_bytes()
    _xml(monuseg_copy).write_bytes(data[: len(data) // 2])
    with pytest.raises(InvalidInput) as err:
        _load_polygons(monuseg_copy)
    _one_line(err, _xml(monuseg_copy), "not well-formed")


def test_oversized_xml(monuseg_copy):
    with open(_xml(monuseg_copy), "a") as f:
        f.write("<!--" + " " * MAX_XML_BYTES + "-->")
    with pytest.raises(InvalidInput) as err:
        _load_polygons(monuseg_copy)
    _one_line(err, _xml(monuseg_copy), "larger than")


def test_polygon_file_whose_image_is_missing(monuseg_copy):
    (monuseg_copy / "TCGA-HT-8564-01Z-00-DX1.tif").unlink()
    with pytest.raises(InvalidInput) as err:
        create_importer("polygons", monuseg_copy).scan()
    _one_line(err, _xml(monuseg_copy), "no image")


def test_cli_import_of_a_broken_annotation_is_one_line_and_exit_1(cli, monuseg_copy, tmp_path):
    text = _xml(monuseg_copy).read_text()
    _xml(monuseg_copy).write_text('<!DOCTYPE Annotations SYSTEM "file:///etc/passwd">\n' + text)
    out = tmp_path / "out"
    r = cli("datasets", "import", "polygons", monuseg_copy, "--name", "monuseg-copy", "--out", out, "--workers", "1")
    assert r.returncode == 1 and not out.exists()
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and _xml(monuseg_copy).name in lines[0] and "DOCTYPE" in lines[0], r.stderr
