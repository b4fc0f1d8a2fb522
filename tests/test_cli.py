"""The CLI end to end on real data, and every broken input: one clear line, exit 1, nothing left behind."""

from __future__ import annotations

import json
import shutil
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import tifffile

from hub.curate.importers.ctc import clip_lineage
from hub.ome import read_man_track, write_man_track

DSB = "segmentation/dsb2018-fluo/stage1_train"


@pytest.fixture(scope="session")
def cellhub(cli):
    """``cellhub ARGS`` in this process (the ``cli`` fixture); fails the test unless it exits 0 (``check=False``:
    any exit status)."""
    return partial(cli, check=True)


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


def test_schema_dataset_prints_json_schema(cellhub):
    schema = json.loads(cellhub("schema", "show", "dataset").stdout)
    assert schema["title"] == "DatasetCard" and "terms" in schema["properties"]


def test_card_error_names_field_path(tmp_path, data_dir, cellhub):
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


def test_import_kaggle_dsb_then_validate_and_info(data_dir, tmp_path, cellhub):
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


def test_import_ctc_standard_layout_from_other_movie(data_dir, tmp_path, cellhub):
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


def test_man_track_contradicting_masks_is_refused(data_dir, tmp_path, cellhub):
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


def test_float_labels_are_refused(data_dir, tmp_path, cellhub):
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


def test_mask_of_another_shape_is_refused(data_dir, tmp_path, cellhub):
    src = dsb_subset(data_dir, tmp_path, 3)
    d = sorted(src.iterdir())[1]
    mask = sorted((d / "masks").iterdir())[0]
    from PIL import Image

    Image.open(mask).crop((0, 0, 100, 80)).save(mask)
    out = tmp_path / "ds"
    r = cellhub("datasets", "import", "kaggle-dsb", src, "--name", "bad", "--out", out, check=False)
    assert_refused(r, mask.name, "shape (80, 100)", out=out)


@pytest.mark.parametrize("kind", ["png", "tiff"])
def test_truncated_image_is_refused(data_dir, tmp_path, kind, cellhub):
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


def test_same_image_in_two_splits_is_refused(data_dir, tmp_path, cellhub):
    one = sorted((data_dir / DSB).iterdir())[0]
    root = tmp_path / "dups"
    for i in range(10):
        shutil.copytree(one, root / f"copy{i}")
        (root / f"copy{i}/images/{one.name}.png").rename(root / f"copy{i}/images/copy{i}.png")
    out = tmp_path / "ds"
    r = cellhub("datasets", "import", "kaggle-dsb", root, "--name", "dups", "--out", out, check=False)
    assert_refused(r, "identical image on several splits", out=out)


def test_validate_flags_tampered_pixels(built, tmp_path, cellhub):
    import zarr

    path = tmp_path / "isl"
    shutil.copytree(built("isl-condition-b"), path)
    arr = zarr.open_array(str(path / "images/A4_y0000_x0000.ome.zarr/0"), mode="r+")
    arr[0, 0, 0] = arr[0, 0, 0] + 1
    r = cellhub("datasets", "validate", path, "--json", check=False)
    assert r.returncode == 1
    errors = json.loads(r.stdout)["errors"]
    assert any(e["sample"] == "A4_y0000_x0000" and e["check"] == "content" for e in errors)


def test_build_refuses_drifted_split(data_dir, tmp_path, monkeypatch, cellhub):
    recipes = _drifted_recipes(tmp_path)
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


def _drifted_recipes(tmp_path: Path) -> Path:
    """A copy of the isl-condition-b recipe whose split no longer reproduces the frozen one."""
    recipes = tmp_path / "recipes"
    shutil.copytree(Path(__file__).parents[1] / "datasets/isl-condition-b", recipes / "isl-condition-b")
    text = (recipes / "isl-condition-b/recipe.yaml").read_text()
    (recipes / "isl-condition-b/recipe.yaml").write_text(
        text.replace("A4_y0768_x0512]", "A4_y0768_x0768]").replace(
            "[A4_y0000_x0768, A4_y0256_x0768, A4_y0512_x0768, A4_y0768_x0768]",
            "[A4_y0000_x0768, A4_y0256_x0768, A4_y0512_x0768, A4_y0768_x0512]",
        )
    )
    return recipes


def test_build_publish_goes_into_the_registry_only_when_it_validates(data_dir, tmp_path, monkeypatch, cellhub):
    """``cellhub datasets build NAME --publish --registry R``: no folder, the version a built folder publishes; a
    refused build (terms, drifted split) leaves the registry as it was; a version is never published twice."""
    from hub.registry import Registry

    reg = tmp_path / "reg"
    build = ("datasets", "build", "isl-condition-b", "--source", data_dir, "--publish", "--registry", reg)
    r = cellhub("datasets", "build", "ctc-gowt1", "--source", data_dir, "--publish", "--registry", reg, check=False)
    assert_refused(r, "redistribution is not allowed", "--accept-terms")
    monkeypatch.setenv("CELLHUB_RECIPES", str(_drifted_recipes(tmp_path)))
    assert_refused(cellhub(*build, check=False), "recipe.yaml", "does not reproduce the frozen split")
    assert [p for p in reg.rglob("*") if p.is_file()] == []  # converted and uploaded, then removed
    monkeypatch.delenv("CELLHUB_RECIPES")
    got = json.loads(cellhub(*build, "--json").stdout)
    cellhub("datasets", "build", "isl-condition-b", "--source", data_dir, "--out", tmp_path / "folder")
    cellhub("datasets", "publish", tmp_path / "folder", "--registry", tmp_path / "other")
    mine, theirs = (Registry(r).manifest("datasets", got["ref"])[0] for r in (reg, tmp_path / "other"))
    assert mine["files"] == theirs["files"] and mine["card"] == theirs["card"]
    assert got["card"]["counts"]["samples"] == mine["card"]["counts"]["samples"] == 16
    assert_refused(cellhub(*build, check=False), "already published", "immutable")
    assert_refused(cellhub(*build, "--out", tmp_path / "x", check=False), "--publish writes no folder")


def test_build_without_sources_says_where_data_comes_from(tmp_path, cellhub):
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


def test_kaggle_layout_with_a_colour_image_keeps_three_channels(data_dir, tmp_path, cellhub):
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


def test_validate_reports_a_corrupt_chunk_as_an_error(built, tmp_path, cellhub):
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


def test_ctc_frame_of_another_shape_is_refused(data_dir, tmp_path, cellhub):
    root = _mini_ctc(data_dir, tmp_path / "ctc", 4)
    victim = root / "01_GT/TRA/man_track002.tif"
    tifffile.imwrite(victim, tifffile.imread(victim)[:600])
    out = tmp_path / "ds"
    r = cellhub("datasets", "import", "ctc", root, "--name", "bad", "--out", out, check=False)
    assert_refused(r, "man_track002.tif", "(600, 1009)", out=out)


def test_touching_time_windows_on_two_splits_are_leakage(data_dir, tmp_path, cellhub):
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


def test_error_text_with_brackets_is_printed_verbatim(tmp_path, cellhub):
    missing = tmp_path / "a[/b]c"
    r = cellhub("datasets", "import", "folder", missing, "--name", "x-y", "--out", tmp_path / "o", check=False)
    assert_refused(r, "a[/b]c", "source not found")


# --- the grammar: cellhub NOUN VERB, and the old spellings for one version ----------------------------------------

DS = "isl-condition-b"


@pytest.fixture(scope="module")
def published(built, tmp_path_factory) -> Path:
    """A local registry holding the real isl-condition-b build."""
    from hub.curate import publish_dataset
    from hub.registry import Registry

    root = tmp_path_factory.mktemp("grammar") / "registry"
    publish_dataset(Registry(root), built(DS))
    return root


def names(r) -> list[str]:
    assert r.returncode == 0, r.stderr
    return [row["name"] for row in json.loads(r.stdout)]


def test_datasets_list_and_models_list_list_a_registry(published, cli):
    reg = ("--registry", published)
    assert names(cli("datasets", "list", *reg, "--json")) == [DS] == names(cli("registry", "list", *reg, "--json"))
    assert names(cli("models", "list", *reg, "--json")) == []
    assert names(cli("datasets", "list", "--json", env={"CELLHUB_REGISTRY": str(published)})) == [DS]
    assert names(cli("datasets", "list", "--search", "neurons", *reg, "--json")) == [DS]
    assert names(cli("datasets", "list", "--search", "zebrafish", *reg, "--json")) == []
    assert names(cli("models", "list", "--search", "neurons", *reg, "--json")) == []
    r = cli("datasets", "list", *reg, check=True)
    assert f"{DS}@1.0.0" in r.stdout and r.stderr == ""
    r = cli("datasets", "list", "--local", "--json", check=True)  # the (empty) build folder, and the recipes
    local = json.loads(r.stdout)
    assert local["datasets"] == [] and DS in local["recipes"]


def test_info_shows_a_folder_or_a_published_version(published, built, cli):
    r = cli("datasets", "info", DS, "--registry", published, "--json", check=True)
    manifest = json.loads(r.stdout)  # the published manifest: nothing is downloaded
    assert (manifest["name"], manifest["version"]) == (DS, "1.0.0") and manifest["files"] and manifest["card"]
    r = cli("datasets", "info", f"{DS}@1.0.0", "--registry", published, check=True)
    assert f"cellhub datasets pull {DS}@1.0.0 --registry {published}" in r.stdout
    r = cli("datasets", "info", built(DS), "--json", check=True)  # a folder: its card and counts
    assert json.loads(r.stdout)["card"]["name"] == DS
    r = cli("datasets", "info", "no-such-dataset", "--registry", published)
    assert r.returncode == 1 and r.stderr.startswith("error: no dataset 'no-such-dataset'")


@pytest.mark.parametrize(
    "old, new, line",
    [
        (["list", "datasets"], ["datasets", "list"], "cellhub list datasets is deprecated; use cellhub datasets list"),
        (["list", "models"], ["models", "list"], "cellhub list models is deprecated; use cellhub models list"),
        (["list"], ["registry", "list"], "cellhub list is deprecated; use cellhub registry list"),
        (
            ["search", "neurons"],
            ["registry", "list", "--search", "neurons"],
            "cellhub search is deprecated; use cellhub registry list --search",
        ),
        (["info", DS], ["datasets", "info", DS], "cellhub info is deprecated; use cellhub datasets info"),
        (
            ["info", "--kind", "models", "nothing"],
            ["models", "info", "nothing"],
            "cellhub info --kind models is deprecated; use cellhub models info",
        ),
        (["reindex"], ["registry", "reindex"], "cellhub reindex is deprecated; use cellhub registry reindex"),
        (["lock", DS], ["registry", "lock", DS], "cellhub lock is deprecated; use cellhub registry lock"),
        (
            ["leaderboard", f"{DS}/label-free"],
            ["benchmarks", "leaderboard", f"{DS}/label-free"],
            "cellhub leaderboard is deprecated; use cellhub benchmarks leaderboard",
        ),
        (["eval", "--task", "x"], ["benchmarks", "eval", "--task", "x"], None),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else None,
)
def test_an_old_spelling_runs_the_new_command_after_one_deprecation_line(published, tmp_path, cli, old, new, line):
    line = line or f"cellhub {old[0]} is deprecated; use cellhub {' '.join(new[:2])}"
    more = ["--registry", str(published)] + (["--out", str(tmp_path / "cellhub.lock")] if "lock" in old else [])
    before, after = cli(*old, *more), cli(*new, *more)
    assert (before.returncode, before.stdout) == (after.returncode, after.stdout)
    assert before.stderr == line + "\n" + after.stderr and line not in after.stderr


@pytest.mark.parametrize(
    "old, new, line",
    [
        (["benchmarks", "--json"], ["benchmarks", "list", "--json"], "cellhub benchmarks is deprecated"),
        (["schema", "dataset"], ["schema", "show", "dataset"], "cellhub schema KIND is deprecated"),
    ],
    ids=["benchmarks", "schema"],
)
def test_an_old_spelling_without_a_registry(cli, old, new, line):
    before, after = cli(*old, check=True), cli(*new, check=True)
    assert before.stdout == after.stdout and before.stderr.startswith(line) and after.stderr == ""
    assert before.stderr.count("\n") == 1


def test_help_shows_only_the_nouns(cli):
    r = cli("--help", check=True)
    commands = {line.split()[1] for line in r.stdout.splitlines() if line.startswith("│ ") and line[2] != " "}
    nouns = {"datasets", "models", "benchmarks", "registry", "cache", "site", "schema"}
    assert nouns <= commands and not commands & {"list", "info", "search", "lock", "reindex", "leaderboard", "eval"}


@pytest.mark.parametrize(
    "args, words",
    [
        (["benchmarks", "eval", "--no-such-option"], ["No such option: --no-such-option", "cellhub benchmarks eval"]),
        (["datasets", "info"], ["Missing argument", "cellhub datasets info --help"]),
        (["datasets", "no-such-verb"], ["No such command", "no-such-verb"]),
        (["benchmarks", "eval"], ["give a model REF or --predictions DIR"]),
        (["cache", "verify", "--kind", "images"], ["kind must be one of datasets, models"]),
        (["info", "x", "--kind", "images"], ["kind must be one of datasets, models"]),
        (["datasets", "list", "--local", "--registry", "x"], ["--local lists the build folder"]),
    ],
    ids=[
        "unknown-option",
        "missing-argument",
        "unknown-command",
        "bad-parameter",
        "bad-choice",
        "old-spelling",
        "--local",
    ],
)
def test_a_usage_error_is_one_line_and_exit_1(cli, args, words):
    r = cli(*args)
    assert r.returncode == 1 and r.stdout == ""
    err = r.stderr.removeprefix("cellhub info is deprecated; use cellhub datasets info\n").strip()
    assert err.startswith("error: ") and len(err.splitlines()) == 1, r.stderr
    for w in words:
        assert w in err, err


def test_a_noun_alone_shows_its_verbs_and_exits_1(cli):
    r = cli("models")
    assert r.returncode == 1 and "list" in r.stdout and "info" in r.stdout and "train" in r.stdout
