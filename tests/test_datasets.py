"""The five curated datasets, built from their recipes on the real data, round-trip their sources."""

from __future__ import annotations

import csv
import filecmp
from collections import Counter

import numpy as np
import pytest
import tifffile

from hub.curate import open_dataset
from hub.curate.export import export_ctc
from hub.curate.recipe import load_recipe, recipe_names
from hub.ome import lineage_from_attrs, read_man_track


def test_dsb_objects_equal_mask_files(built, data_dir):
    ds = open_dataset(built("dsb2018-fluo"))
    src = data_dir / "segmentation/dsb2018-fluo/stage1_train"
    rows = ds.samples
    assert len(rows) == 444
    for r in rows[::37]:
        assert r.objects == len(list((src / r.id / "masks").glob("*.png")))
    assert ds.card.counts.objects == 12528
    img = ds.image(rows[0].id)
    assert img.axes == "yx" and img.channel_names == ["nuclei"]  # grey RGBA stays one channel
    lab = img.label("instances")[...]
    masks = sorted((src / rows[0].id / "masks").glob("*.png"))
    from hub.ome.files import read_image_file

    np.testing.assert_array_equal(lab == 1, read_image_file(masks[0]) > 0)


def test_dsb_overlaps_resolved_and_reported(built):
    import json

    report = json.loads((built("dsb2018-fluo") / "import_report.json").read_text())
    assert report["overlap_pixels"] > 0
    assert 1 <= len(report["samples_with_findings"]) <= 10  # the source has overlaps in 4 images


@pytest.mark.parametrize("seq,tracks,children", [("01", 27, 4), ("02", 50, 2)])
def test_ctc_lineage_equals_man_track(built, data_dir, seq, tracks, children):
    ds = open_dataset(built("ctc-gowt1"))
    img = ds.image(seq)
    lineage = lineage_from_attrs(img.label_attrs("tracks")["lineage"])
    source = read_man_track(data_dir / f"tracking/Fluo-N2DH-GOWT1/{seq}_GT/TRA/man_track.txt")
    assert lineage == source
    assert len(lineage) == tracks and sum(t.parent > 0 for t in lineage) == children
    assert img.axes == "tyx" and img.array().shape == (92, 1024, 1024)
    assert img.scale() == {"t": 5.0, "y": 0.24, "x": 0.24}


def test_ctc_export_is_lossless(built, data_dir, tmp_path):
    out = tmp_path / "ctc"
    export_ctc(built("ctc-gowt1"), out)
    src = data_dir / "tracking/Fluo-N2DH-GOWT1"
    for seq in ("01", "02"):
        assert filecmp.cmp(out / f"{seq}_GT/TRA/man_track.txt", src / f"{seq}_GT/TRA/man_track.txt", shallow=False)
        for t in (0, 45, 91):
            np.testing.assert_array_equal(
                tifffile.imread(out / seq / f"t{t:03d}.tif"), tifffile.imread(src / seq / f"t{t:03d}.tif")
            )
            a, b = (tifffile.imread(p / f"{seq}_GT/TRA/man_track{t:03d}.tif") for p in (out, src))
            assert a.dtype == b.dtype
            np.testing.assert_array_equal(a, b)
        seg_src = sorted(p.name for p in (src / f"{seq}_GT/SEG").glob("man_seg*.tif"))
        assert sorted(p.name for p in (out / f"{seq}_GT/SEG").iterdir()) == seg_src
        np.testing.assert_array_equal(
            tifffile.imread(out / f"{seq}_GT/SEG" / seg_src[0]), tifffile.imread(src / f"{seq}_GT/SEG" / seg_src[0])
        )


def test_ecoli_windows_keep_lineage_and_never_share_frames(built, data_dir):
    ds = open_dataset(built("ecoli-lineage"))
    source = read_man_track(data_dir / "tracking/ecoli-vanvliet/TRA/man_track.txt")
    assert len(source) == 714 and sum(t.parent > 0 for t in source) == 712
    windows = []
    for r in ds.samples:
        img = ds.image(r.id)
        t0, t1 = img.attrs["source_frames"]
        windows.append((t0, t1, r.split))
        lineage = lineage_from_attrs(img.label_attrs("tracks")["lineage"])
        alive = {t.label for t in source if t.begin <= t1 and t.end >= t0}
        assert {t.label for t in lineage} == alive
        by = {t.label: t for t in lineage}
        for t in lineage:  # a parent kept in a window is the source's parent, and it ends before the child
            if t.parent:
                assert t.parent == next(s.parent for s in source if s.label == t.label)
                assert by[t.parent].end < t.begin
    windows.sort()
    assert [w[2] for w in windows] == ["train", "val", "test"]
    assert all(a[1] < b[0] - 1 for a, b in zip(windows, windows[1:]))  # guard frames between windows


def test_jurkat_counts_and_stratified_splits(built, data_dir):
    ds = open_dataset(built("jurkat-cellcycle"))
    z = np.load(data_dir / "classification/jurkat-cellcycle/jurkat_cellcycle_tiles.npz")
    names = list(z["class_names"])
    assert ds.card.counts.per_class == {n: int(c) for n, c in zip(names, np.bincount(z["labels"]))}
    per_split = Counter((r.split, r.class_name) for r in ds.samples)
    for name in names:  # even the 15 anaphase cells appear in every split
        assert all(per_split[(s, name)] >= 1 for s in ("train", "val", "test"))
    r = ds.samples[123]
    np.testing.assert_array_equal(ds.image(r.id).read(), z["images"][int(r.id)])
    assert ds.image(r.id).read().dtype == np.uint16
    assert ds.card.statistics.split == "train"


def test_isl_tiles_are_disjoint_with_guard(built, data_dir):
    ds = open_dataset(built("isl-condition-b"))
    assert len(ds.samples) == 16
    regions = {r.id: (r.region, r.split) for r in ds.samples}
    for a, (ra, _sa) in regions.items():
        for b, (rb, _sb) in regions.items():
            if a < b:
                gap = max(rb[0] - ra[2], ra[0] - rb[2], rb[1] - ra[3], ra[1] - rb[3])
                assert gap >= 32
    dapi = next((data_dir / "labelfree/in-silico-labeling/condition_blue_sample").glob("*DAPI*"))
    from hub.ome.files import read_image_file

    tile = ds.image("A4_y0256_x0512").read()
    np.testing.assert_array_equal(tile[5], read_image_file(dapi)[256:480, 512:736])


@pytest.mark.parametrize("name", recipe_names())
def test_split_is_frozen(built, name):
    path = built(name)  # the build itself runs the validator and refuses any error
    recipe, _, _ = load_recipe(name)
    assert open_dataset(path).card.splits.manifest_sha256 == recipe.split_manifest_sha256
    with open(path / "samples.csv") as f:
        rows = list(csv.DictReader(f))
    assert len({r["id"] for r in rows}) == len(rows)


def test_near_duplicate_index_finds_what_comparing_every_pair_finds(built):
    """The multi-index scan against the quadratic one, on dsb2018-fluo's real perceptual hashes plus copies of them
    1, 2 and 3 bits away (3 is beyond the threshold) on random splits."""
    from hub.curate.validate import NEAR_DUPLICATE_BITS, near_duplicate_pairs

    rows = open_dataset(built("dsb2018-fluo")).samples
    real = np.array([int(r.phash, 16) for r in rows], dtype=np.uint64)
    rng = np.random.default_rng(0)
    copies = []
    for flips in (1, 2, 3):
        picked = real[rng.choice(len(real), 60, replace=False)]
        for bits in rng.permuted(np.tile(np.arange(64), (60, 1)), axis=1)[:, :flips].T:
            picked = picked ^ (np.uint64(1) << bits.astype(np.uint64))
        copies.append(picked)
    hashes = np.concatenate([real, *copies])
    groups = rng.choice(["train", "val", "test"], len(hashes))
    dist = np.bitwise_count(hashes[:, None] ^ hashes[None, :])
    i, j = np.nonzero(np.triu(dist <= NEAR_DUPLICATE_BITS, 1) & (groups[:, None] != groups[None, :]))
    brute = [(int(a), int(b), int(dist[a, b])) for a, b in zip(i, j)]
    assert len(brute) > 60  # the planted copies at distance 1 and 2, across splits for about two thirds of them
    assert near_duplicate_pairs(hashes, groups) == brute
