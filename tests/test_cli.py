"""The CLI end to end on real data, and every broken input: one clear line, exit 1, nothing left behind."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile

from hub.curate.importers.ctc import clip_lineage
from hub.ome import read_man_track, write_man_track

DSB = "segmentation/dsb2018-fluo/stage1_train"


def cellhub(*args, check=True):
    r = subprocess.run(
        [sys.executable, "-c", "from hub.cli import main; main()", *map(str, args)], capture_output=True, text=True
    )
    if check and r.returncode != 0:
        raise AssertionError(f"cellhub {' '.join(map(str, args))} failed: {r.stderr}")
    return r


def assert_refused(r, *words, out: Path | None = None):
    assert r.returncode == 1, r.stdout + r.stderr
    err = r.stderr.strip()
    assert err.startswith("error:") and len(err.splitlines()) == 1, err
    for w in words:
        assert w in err, err
    if out is not None:
        assert not out.exists()
        assert not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.partial")]


def dsb_subset(data_dir, tmp_path, n=6) -> Path:
    ids = sorted(p.name for p in (data_dir / DSB).iterdir())[:n]
    root = tmp_path / "dsb"
    for i in ids:
        shutil.copytree(data_dir / DSB / i, root / i)
    return root


def test_schema_dataset_prints_json_schema():
    schema = json.loads(cellhub("schema", "dataset").stdout)
    assert schema["title"] == "DatasetCard" and "terms" in schema["properties"]


def test_card_error_names_field_path(tmp_path, data_dir):
    card = tmp_path / "card.yaml"
    card.write_text("version: '1.0'\nacquisition: {pixel_size: {unknown: false, y: 0.2}}\n")
    out = tmp_path / "out"
    r = cellhub(
        "datasets",
        "import",
        "kaggle-dsb",
        dsb_subset(data_dir, tmp_path, 2),
        "--name",
        "x-y",
        "--out",
        out,
        "--card",
        card,
        check=False,
    )
    assert_refused(r, "card.yaml", "version", "acquisition.pixel_size", out=out)


def test_import_kaggle_dsb_then_validate_and_info(data_dir, tmp_path):
    src = dsb_subset(data_dir, tmp_path, 8)
    out = tmp_path / "ds"
    r = cellhub("datasets", "import", "kaggle-dsb", src, "--name", "dsb-mini", "--out", out, "--json")
    summary = json.loads(r.stdout)
    assert summary["samples"] == 8
    assert summary["objects"] == sum(len(list((src / i / "masks").iterdir())) for i in [p.name for p in src.iterdir()])
    v = json.loads(cellhub("datasets", "validate", out, "--json").stdout)
    assert v["errors"] == [] and any("not recorded" in w["message"] for w in v["warnings"])
    info = json.loads(cellhub("datasets", "info", out, "--json").stdout)
    assert info["card"]["name"] == "dsb-mini"


def test_import_ctc_standard_layout_from_other_movie(data_dir, tmp_path):
    """The E. coli movie rearranged into the standard CTC layout (01/, 01_GT/TRA) imports and exports back."""
    root = _mini_ctc(data_dir, tmp_path / "ctc", 6)
    out = tmp_path / "ds"
    cellhub("datasets", "import", "ctc", root, "--name", "ecoli-mini", "--out", out, "--val", "0", "--test", "0")
    cellhub("datasets", "validate", out)
    back = tmp_path / "back"
    cellhub("datasets", "export", "ctc", out, "--out", back)
    assert (back / "01_GT/TRA/man_track.txt").read_text() == (root / "01_GT/TRA/man_track.txt").read_text()
    np.testing.assert_array_equal(
        tifffile.imread(back / "01_GT/TRA/man_track005.tif"), tifffile.imread(root / "01_GT/TRA/man_track005.tif")
    )


def test_man_track_contradicting_masks_is_refused(data_dir, tmp_path):
    src = data_dir / "tracking/ecoli-vanvliet"
    root = tmp_path / "ctc"
    (root / "img").mkdir(parents=True)
    (root / "TRA").mkdir()
    for t in range(4):
        shutil.copy(src / f"img/t{t:06d}.tif", root / "img")
        shutil.copy(src / f"TRA/man_track{t:06d}.tif", root / "TRA")
    tracks = clip_lineage(read_man_track(src / "TRA/man_track.txt"), 0, 3)
    parents = {t.parent for t in tracks}
    i = next(i for i, t in enumerate(tracks) if t.label not in parents and t.begin < t.end == 3)
    tracks[i] = tracks[i]._replace(end=2)  # the table says a cell ends early; the masks disagree
    write_man_track(tracks, root / "TRA/man_track.txt")
    out = tmp_path / "ds"
    r = cellhub(
        "datasets",
        "import",
        "ctc",
        root,
        "--name",
        "bad",
        "--out",
        out,
        "-o",
        "images=img",
        "-o",
        "tracks=TRA",
        check=False,
    )
    assert_refused(r, "man_track.txt", "contradicts the masks", out=out)


def test_float_labels_are_refused(data_dir, tmp_path):
    src = dsb_subset(data_dir, tmp_path, 3)
    folder, masks = tmp_path / "folder", tmp_path / "folder/masks"
    masks.mkdir(parents=True)
    from hub.ome.files import read_image_file

    for d in src.iterdir():
        img = read_image_file(d / "images" / f"{d.name}.png")[..., 0]
        tifffile.imwrite(folder / f"{d.name}.tif", img)
        tifffile.imwrite(masks / f"{d.name}.tif", (img > 40).astype(np.float32))
    out = tmp_path / "ds"
    r = cellhub("datasets", "import", "folder", folder, "--name", "bad", "--out", out, "-o", "masks=masks", check=False)
    assert_refused(r, "masks", ".tif", "float32", "integers", out=out)


def test_mask_of_another_shape_is_refused(data_dir, tmp_path):
    src = dsb_subset(data_dir, tmp_path, 3)
    d = sorted(src.iterdir())[1]
    mask = sorted((d / "masks").iterdir())[0]
    from PIL import Image

    Image.open(mask).crop((0, 0, 100, 80)).save(mask)
    out = tmp_path / "ds"
    r = cellhub("datasets", "import", "kaggle-dsb", src, "--name", "bad", "--out", out, check=False)
    assert_refused(r, mask.name, "shape (80, 100)", out=out)


@pytest.mark.parametrize("kind", ["png", "tiff"])
def test_truncated_image_is_refused(data_dir, tmp_path, kind):
    src = dsb_subset(data_dir, tmp_path, 3)
    if kind == "png":
        victim = sorted(src.iterdir())[2] / "images" / f"{sorted(src.iterdir())[2].name}.png"
        fmt, root = "kaggle-dsb", src
    else:
        root = tmp_path / "tiffs"
        root.mkdir()
        for t in range(3):
            shutil.copy(data_dir / f"tracking/Fluo-N2DH-GOWT1/01/t{t:03d}.tif", root)
        victim, fmt = root / "t001.tif", "folder"
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) // 2])
    out = tmp_path / "ds"
    r = cellhub("datasets", "import", fmt, root, "--name", "bad", "--out", out, check=False)
    assert_refused(r, victim.name, "cannot decode", out=out)


def test_same_image_in_two_splits_is_refused(data_dir, tmp_path):
    one = sorted((data_dir / DSB).iterdir())[0]
    root = tmp_path / "dups"
    for i in range(10):
        shutil.copytree(one, root / f"copy{i}")
        (root / f"copy{i}/images/{one.name}.png").rename(root / f"copy{i}/images/copy{i}.png")
    out = tmp_path / "ds"
    r = cellhub("datasets", "import", "kaggle-dsb", root, "--name", "dups", "--out", out, check=False)
    assert_refused(r, "identical image on several splits", out=out)


def test_validate_flags_tampered_pixels(built, tmp_path):
    import zarr

    path = tmp_path / "isl"
    shutil.copytree(built("isl-condition-b"), path)
    arr = zarr.open_array(str(path / "images/A4_y0000_x0000.ome.zarr/0"), mode="r+")
    arr[0, 0, 0] = arr[0, 0, 0] + 1
    r = cellhub("datasets", "validate", path, "--json", check=False)
    assert r.returncode == 1
    errors = json.loads(r.stdout)["errors"]
    assert any(e["sample"] == "A4_y0000_x0000" and e["check"] == "content" for e in errors)


def test_build_refuses_drifted_split(data_dir, tmp_path, monkeypatch):
    recipes = tmp_path / "recipes"
    shutil.copytree(Path(__file__).parents[1] / "datasets/isl-condition-b", recipes / "isl-condition-b")
    text = (recipes / "isl-condition-b/recipe.yaml").read_text()
    (recipes / "isl-condition-b/recipe.yaml").write_text(
        text.replace("A4_y0768_x0512]", "A4_y0768_x0768]").replace(
            "[A4_y0000_x0768, A4_y0256_x0768, A4_y0512_x0768, A4_y0768_x0768]",
            "[A4_y0000_x0768, A4_y0256_x0768, A4_y0512_x0768, A4_y0768_x0512]",
        )
    )
    out = tmp_path / "out"
    good = json.loads(
        cellhub("datasets", "build", "isl-condition-b", "--source", data_dir, "--out", out, "--json").stdout
    )
    monkeypatch.setenv("CELLHUB_RECIPES", str(recipes))
    r = cellhub("datasets", "build", "isl-condition-b", "--source", data_dir, "--out", out, "--overwrite", check=False)
    assert_refused(r, "recipe.yaml", "does not reproduce the frozen split")
    kept = json.loads(cellhub("datasets", "info", out, "--json").stdout)  # the good build is still there
    assert kept["split_manifest_sha256"] == good["split_manifest_sha256"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "recipes"]


def test_build_without_sources_says_where_data_comes_from(tmp_path):
    r = cellhub("datasets", "build", "dsb2018-fluo", "--source", tmp_path / "nowhere", check=False)
    assert_refused(r, "source data for dsb2018-fluo not found", "kaggle")


def test_near_duplicate_across_splits_is_a_warning(data_dir, tmp_path):
    """A real image and a slightly altered copy of it on two sides of a split: reported, not refused."""
    from hub.cards import DatasetCard
    from hub.curate import SplitSpec, create_importer, import_dataset, validate_dataset
    from hub.ome.files import read_image_file

    folder = tmp_path / "imgs"
    folder.mkdir()
    ids = sorted(p.name for p in (data_dir / DSB).iterdir())[:4]
    for i in ids:
        tifffile.imwrite(folder / f"{i[:8]}.tif", read_image_file(data_dir / DSB / i / "images" / f"{i}.png")[..., 0])
    near = tifffile.imread(folder / f"{ids[0][:8]}.tif").copy()
    near[::7, ::5] = np.clip(near[::7, ::5].astype(int) + 3, 0, 255).astype(np.uint8)
    tifffile.imwrite(folder / "nearcopy.tif", near)
    card = DatasetCard.model_validate(yaml_card("near"))
    spec = SplitSpec(method="assign", assign={"train": [i[:8] for i in ids[:3]], "test": [ids[3][:8], "nearcopy"]})
    out = tmp_path / "ds"
    import_dataset(create_importer("folder", folder), out, card, spec, workers=1)
    findings = validate_dataset(out, workers=1)
    assert findings.errors == []
    dup = [w for w in findings.warnings if w.check == "near-duplicate"]
    assert len(dup) == 1 and {ids[0][:8], "nearcopy"} <= set(dup[0].message.replace("(", " ").split())


def yaml_card(name: str) -> dict:
    return {
        "name": name,
        "version": "0.1.0",
        "title": name,
        "description": "test",
        "tasks": ["instance-segmentation"],
        "terms": {"license": "CC0-1.0", "redistribution": True, "citations": ["DSB2018"], "sources": ["DSB2018"]},
        "acquisition": {
            "organism": "mixed",
            "cell_type": "nuclei",
            "channels": [{"name": "grey", "modality": "fluorescence"}],
            "pixel_size": {"unknown": True},
        },
        "labels": {},
    }


def test_kaggle_layout_with_a_colour_image_keeps_three_channels(data_dir, tmp_path):
    """A Kaggle-layout folder the tests never built: two DSB images plus a real colour composite (the
    in-silico-labeling DAPI/MAP2/NFH field as RGB) with masks from its nuclei."""
    from PIL import Image
    from skimage.measure import label as connected

    from hub.curate import open_dataset
    from hub.ome.files import read_image_file

    root = dsb_subset(data_dir, tmp_path, 2)
    isl = data_dir / "labelfree/in-silico-labeling/condition_blue_sample"
    planes = [
        read_image_file(next(isl.glob(f"*channel-{c}_CONFOCAL*")))[:256, :256].astype(float)
        for c in ("DAPI", "MAP2", "NFH")
    ]
    rgb = np.stack([np.clip(255 * (p - np.percentile(p, 1)) / np.ptp(p), 0, 255) for p in planes], -1)
    sid = "isl-colour"
    (root / sid / "images").mkdir(parents=True)
    (root / sid / "masks").mkdir()
    Image.fromarray(rgb.astype(np.uint8)).save(root / sid / "images" / f"{sid}.png")
    nuclei = connected(planes[0] > np.percentile(planes[0], 90))
    for k in range(1, nuclei.max() + 1):
        Image.fromarray(((nuclei == k) * 255).astype(np.uint8)).save(root / sid / "masks" / f"m{k:04d}.png")
    out = tmp_path / "ds"
    cellhub("datasets", "import", "kaggle-dsb", root, "--name", "mixed", "--out", out, "--val", "0")
    ds = open_dataset(out)
    colour = ds.image(sid)
    assert colour.axes == "cyx" and colour.channel_names == ["red", "green", "blue"]
    np.testing.assert_array_equal(colour.read(), np.moveaxis(rgb.astype(np.uint8), -1, 0))
    assert ds.sample(sid).objects == nuclei.max()
    grey = ds.image(sorted(p.name for p in root.iterdir() if p.name != sid)[0])
    assert grey.axes == "yx"
    cellhub("datasets", "validate", out)


def test_validate_reports_a_corrupt_chunk_as_an_error(built, tmp_path):
    path = tmp_path / "isl"
    shutil.copytree(built("isl-condition-b"), path)
    shard = next((path / "images/A4_y0256_x0256.ome.zarr/0/c").rglob("*"))
    while shard.is_dir():
        shard = next(shard.iterdir())
    shard.write_bytes(b"\0garbage" * 10)
    r = cellhub("datasets", "validate", path, "--json", check=False)
    assert r.returncode == 1
    errors = json.loads(r.stdout)["errors"]
    assert any(e["sample"] == "A4_y0256_x0256" for e in errors), errors


def _mini_ctc(data_dir, root: Path, frames: int) -> Path:
    src = data_dir / "tracking/ecoli-vanvliet"
    (root / "01").mkdir(parents=True)
    (root / "01_GT/TRA").mkdir(parents=True)
    for t in range(frames):
        shutil.copy(src / f"img/t{t:06d}.tif", root / f"01/t{t:03d}.tif")
        shutil.copy(src / f"TRA/man_track{t:06d}.tif", root / f"01_GT/TRA/man_track{t:03d}.tif")
    write_man_track(
        clip_lineage(read_man_track(src / "TRA/man_track.txt"), 0, frames - 1), root / "01_GT/TRA/man_track.txt"
    )
    return root


def test_ctc_frame_of_another_shape_is_refused(data_dir, tmp_path):
    root = _mini_ctc(data_dir, tmp_path / "ctc", 4)
    victim = root / "01_GT/TRA/man_track002.tif"
    tifffile.imwrite(victim, tifffile.imread(victim)[:600])
    out = tmp_path / "ds"
    r = cellhub("datasets", "import", "ctc", root, "--name", "bad", "--out", out, check=False)
    assert_refused(r, "man_track002.tif", "(600, 1009)", out=out)


def test_touching_time_windows_on_two_splits_are_leakage(data_dir, tmp_path):
    root = _mini_ctc(data_dir, tmp_path / "ctc", 4)
    out = tmp_path / "ds"
    r = cellhub(
        "datasets",
        "import",
        "ctc",
        root,
        "--name",
        "leak",
        "--out",
        out,
        "-o",
        "windows=[[0,1],[2,3]]",
        "--val",
        "0",
        "--test",
        "0.5",
        check=False,
    )
    assert_refused(r, "leakage", "guard band", out=out)


def test_error_text_with_brackets_is_printed_verbatim(tmp_path):
    missing = tmp_path / "a[/b]c"
    r = cellhub("datasets", "import", "folder", missing, "--name", "x-y", "--out", tmp_path / "o", check=False)
    assert_refused(r, "a[/b]c", "source not found")
