"""COCO JSON in and out, on real data: BCCD's VOC boxes and DSB 2018 nuclei (as polygons and as RLE) converted to
COCO files here; the RLE codec checked against pycocotools where it is installed; import -> export -> import
reproduces boxes and masks exactly; every kind of broken file is refused in one line naming it."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import yaml

from hub.curate import create_importer, open_dataset, rle
from hub.curate.coco import xywh
from hub.curate.export import COCO_JSON, export_coco
from hub.errors import InvalidInput
from hub.ome.files import read_image_file

BCCD = "detection/bccd/BCCD"
DSB = "segmentation/dsb2018-fluo"
BCCD_STEMS = ["BloodImage_00000", "BloodImage_00001", "BloodImage_00002", "BloodImage_00003"]
BCCD_CATEGORIES = [{"id": 7, "name": "WBC"}, {"id": 3, "name": "RBC"}, {"id": 5, "name": "Platelets"}]
BCCD_CLASSES = ["RBC", "Platelets", "WBC"]  # sorted by category id: 3, 5, 7


# --- real data converted to COCO -----------------------------------------------------------------------------


def voc_boxes(xml: Path) -> list[tuple[str, list[int], int]]:
    """(name, [x0, y0, x1, y1], difficult) per VOC object: 1-based inclusive xmin..xmax is x0 = xmin - 1, x1 = xmax."""
    out = []
    for o in ET.parse(xml).getroot().iter("object"):
        b = o.find("bndbox")
        xmin, ymin, xmax, ymax = (int(b.find(k).text) for k in ("xmin", "ymin", "xmax", "ymax"))
        out.append((o.find("name").text.strip(), [xmin - 1, ymin - 1, xmax, ymax], int(o.find("difficult").text)))
    return out


def bccd_coco(data_dir: Path, root: Path, stems=BCCD_STEMS) -> dict:
    """A COCO folder (``coco.json`` + ``img/``) of BCCD images and their VOC boxes; returns the JSON document."""
    (root / "img").mkdir(parents=True)
    ids = {c["name"]: c["id"] for c in BCCD_CATEGORIES}
    images, annotations = [], []
    for i, stem in enumerate(stems, 1):
        shutil.copy(data_dir / BCCD / "JPEGImages" / f"{stem}.jpg", root / "img")
        images.append({"id": 100 + i, "file_name": f"{stem}.jpg", "width": 640, "height": 480})
        for name, (x0, y0, x1, y1), difficult in voc_boxes(data_dir / BCCD / "Annotations" / f"{stem}.xml"):
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": 100 + i,
                    "category_id": ids[name],
                    "bbox": [x0, y0, x1 - x0, y1 - y0],
                    "area": (x1 - x0) * (y1 - y0),
                    "iscrowd": difficult,
                }
            )
    doc = {"images": images, "annotations": annotations, "categories": BCCD_CATEGORIES}
    (root / "coco.json").write_text(json.dumps(doc))
    return doc


def dsb_ids(data_dir: Path, n: int) -> list[str]:
    lines = (data_dir / DSB / "selected_ids.tsv").read_text().splitlines()[1:]
    return [ln.split("\t")[0] for ln in lines[:n]]


def dsb_masks(data_dir: Path, sid: str) -> list[np.ndarray]:
    """The nuclei of one DSB image, one boolean mask each, in file-name order."""
    files = sorted((data_dir / DSB / "stage1_train" / sid / "masks").glob("*.png"))
    return [read_image_file(f) > 0 for f in files]


def polygons(mask: np.ndarray) -> list[list[float]]:
    """The outline of a mask as COCO polygons (continuous coordinates: a pixel centre is at +0.5)."""
    from skimage.measure import find_contours

    out = []
    for c in find_contours(np.pad(mask, 1).astype(float), 0.5):
        if len(c) >= 3:
            out.append([float(v) for r, col in c - 1 for v in (col + 0.5, r + 0.5)])
    if not out:  # a nucleus of a pixel or two: its pixels' extent
        ys, xs = np.nonzero(mask)
        x0, y0, x1, y1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
        out.append([float(v) for v in (x0, y0, x1, y0, x1, y1, x0, y1)])
    return out


def extent(mask: np.ndarray) -> list[int]:
    ys, xs = np.nonzero(mask)
    return [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1]


def dsb_coco(data_dir: Path, root: Path, ids: list[str], form: str) -> tuple[dict, dict[str, list[np.ndarray]]]:
    """A COCO folder (``coco.json`` + ``img/``) of DSB images, one annotation per nucleus with its segmentation as
    ``form`` ('polygon' or 'rle', compressed by our encoder); returns the document and the masks per sample id."""
    (root / "img").mkdir(parents=True)
    images, annotations, masks = [], [], {}
    for i, sid in enumerate(ids, 1):
        src = data_dir / DSB / "stage1_train" / sid / "images" / f"{sid}.png"
        shutil.copy(src, root / "img")
        h, w = read_image_file(src).shape[:2]
        images.append({"id": i, "file_name": f"{sid}.png", "width": w, "height": h})
        masks[sid] = dsb_masks(data_dir, sid)
        for m in masks[sid]:
            seg = polygons(m) if form == "polygon" else rle.encode(m)
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": i,
                    "category_id": 1,
                    "bbox": xywh(extent(m)),
                    "area": int(m.sum()),
                    "iscrowd": 0,
                    "segmentation": seg,
                }
            )
    doc = {"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "nucleus"}]}
    (root / "coco.json").write_text(json.dumps(doc))
    return doc, masks


def overlap_pixels(masks: list[np.ndarray]) -> int:
    """Pixels of each mask that earlier masks hold."""
    taken, n = np.zeros(masks[0].shape, bool), 0
    for m in masks:
        n += int((m & taken).sum())
        taken |= m
    return n


def expected_labels(masks: list[np.ndarray]) -> np.ndarray:
    """Label k = the k-th mask; an earlier mask keeps a pixel two claim."""
    out = np.zeros(masks[0].shape if masks else (0, 0), np.int64)
    for k, m in enumerate(masks, 1):
        out[m & (out == 0)] = k
    return out


def load_all(root: Path, **options) -> dict:
    imp = create_importer("coco", root, **options)
    return {s.id: s for s in (imp.load(item) for item in imp.scan())}


# --- the RLE codec ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_masks(data_dir) -> list[np.ndarray]:
    return [m for sid in dsb_ids(data_dir, 3) for m in dsb_masks(data_dir, sid)]


def edge_masks() -> list[np.ndarray]:
    full, empty, first, last = np.ones((5, 7), bool), np.zeros((5, 7), bool), np.zeros((4, 4), bool), None
    first[0, 0] = True
    last = np.zeros((3, 1), bool)
    last[-1, 0] = True
    big = np.zeros((2000, 3000), bool)
    big[1:1999, 2:2999] = True  # run lengths beyond 2**20: numbers of several 5-bit groups
    return [full, empty, first, last, big, np.eye(9, dtype=bool)]


def test_rle_round_trip_on_real_masks(real_masks):
    for m in [*real_masks, *edge_masks()]:
        r = rle.encode(m)
        assert r["size"] == list(m.shape) and isinstance(r["counts"], str)
        np.testing.assert_array_equal(rle.decode(r), m)
        assert rle.area(r) == int(m.sum())
        counts = rle.mask_counts(m)
        assert rle.string_to_counts(r["counts"]) == counts
        np.testing.assert_array_equal(rle.decode({"size": list(m.shape), "counts": counts}), m)


def test_rle_agrees_with_pycocotools(real_masks):
    import pycocotools.mask as pycoco  # a dev dependency: the cross-check always runs

    for m in [*real_masks, *edge_masks()]:
        theirs = pycoco.encode(np.asfortranarray(m.astype(np.uint8)))
        assert rle.encode(m)["counts"] == theirs["counts"].decode()
        np.testing.assert_array_equal(rle.decode({"size": theirs["size"], "counts": theirs["counts"].decode()}), m)
        uncompressed = {"size": list(m.shape), "counts": rle.mask_counts(m)}
        assert pycoco.frPyObjects(uncompressed, *m.shape)["counts"].decode() == rle.encode(m)["counts"]


@pytest.mark.parametrize(
    ("counts", "problem"),
    [
        ("1 2", "character ' '"),
        ("0P", "ends in the middle"),  # 'P' = 0x20: another group follows, none does
        ("oooooooo1", "longer than 7"),
        ("2O", "run length -1"),  # 2, then -1 ('O' = 0x1f: the sign bit set)
    ],
)
def test_corrupt_rle_counts_are_one_line(counts, problem):
    with pytest.raises(InvalidInput, match=problem) as err:
        rle.string_to_counts(counts, "x.json", "annotation 3: RLE")
    assert "x.json" in str(err.value) and "\n" not in str(err.value)


def test_rle_that_does_not_cover_the_mask_is_refused():
    with pytest.raises(InvalidInput, match="add up to 5 pixels, the mask has 2x3"):
        rle.decode({"size": [2, 3], "counts": [1, 4]})


def test_xywh_adds_back_exactly():
    """A stored corner is x + w of a COCO box (or the image's edge): the width written adds back to it exactly."""
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 2000, 50000)
    w = rng.uniform(0, 3000, 50000) * rng.choice([1e-3, 1, 1e3], 50000)
    x[::2], w[::2] = x[::2].round(2), w[::2].round(2)  # decimals, as COCO files write them
    for x0, x1 in zip(x.tolist(), (x + w).tolist()):
        bx, by, bw, bh = xywh([x0, x0, x1, 640])
        assert bx + bw == x1 and by + bh == 640
    assert xywh([1, 2, 4, 8]) == [1, 2, 3, 6] and all(isinstance(v, int) for v in xywh([1, 2, 4, 8]))


# --- the importer -----------------------------------------------------------------------------------------------


def test_bccd_boxes_import_exactly(data_dir, tmp_path):
    root = tmp_path / "bccd"
    bccd_coco(data_dir, root)
    imp = create_importer("coco", root, annotations="coco.json", images="img")
    assert [i.sample_id for i in imp.scan()] == BCCD_STEMS
    card = imp.card_defaults()
    assert card["tasks"] == ["object-detection"] and card["labels"] == {"classes": BCCD_CLASSES}
    assert [c["name"] for c in card["channels"]] == ["red", "green", "blue"]
    for item in imp.scan():
        s = imp.load(item)
        assert (
            s.axes == "cyx" and s.image.shape == (3, 480, 640) and s.attrs["channel_names"] == ["red", "green", "blue"]
        )
        assert s.labels == {} and s.report == {}
        want = [
            {"box": box, "class": BCCD_CLASSES.index(name), "difficult": bool(d)}
            for name, box, d in voc_boxes(data_dir / BCCD / "Annotations" / f"{s.id}.xml")
        ]
        assert s.targets == {"boxes": want} and len(want) > 5
        assert s.attrs["coco"]["category_ids"] == [3, 5, 7] and s.attrs["coco"]["file_name"] == f"{s.id}.jpg"


def test_boxes_are_cleaned_and_reported(data_dir, tmp_path):
    """Boxes beyond the image are clipped, empty ones dropped, exact duplicates kept once (clean_boxes' rules)."""
    root = tmp_path / "bccd"
    doc = bccd_coco(data_dir, root, BCCD_STEMS[:1])
    first = doc["annotations"][0]
    more = [
        {**first, "id": 1001, "bbox": [600.5, 400.25, 80, 100], "iscrowd": 1},  # reaches beyond 640x480
        {**first, "id": 1002},  # a duplicate of the first
        {**first, "id": 1003, "bbox": [10, 10, 0, 5]},  # empty
    ]
    doc["annotations"] += more
    (root / "coco.json").write_text(json.dumps(doc))
    (s,) = load_all(root, annotations="coco.json", images="img").values()
    assert s.report == {"boxes_clipped": 1, "boxes_empty": 1, "boxes_duplicate": 1}
    assert len(s.targets["boxes"]) == len(doc["annotations"]) - 2
    assert s.targets["boxes"][-1] == {"box": [600.5, 400.25, 640, 480], "class": 2, "difficult": True}


def test_dsb_rle_masks_import_exactly(data_dir, tmp_path):
    root = tmp_path / "dsb"
    _, masks = dsb_coco(data_dir, root, dsb_ids(data_dir, 4), "rle")
    imp = create_importer("coco", root, annotations="coco.json", images="img")
    card = imp.card_defaults()
    assert card["tasks"] == ["object-detection", "instance-segmentation", "semantic-segmentation"]
    assert [c["name"] for c in card["channels"]] == ["grey"]
    assert card["labels"]["classes"] == ["nucleus"] and card["labels"]["semantic"] == {0: "background", 1: "foreground"}
    for item in imp.scan():
        s = imp.load(item)
        ms = masks[s.id]
        assert s.axes == "yx"  # the RGBA PNG holds grey in R, G and B
        lab = s.labels["instances"]
        assert lab.dtype == np.uint16
        np.testing.assert_array_equal(lab, expected_labels(ms))
        assert s.targets["boxes"] == [{"box": extent(m), "class": 0, "difficult": False} for m in ms]
        attrs = s.label_attrs["instances"]
        assert (
            attrs["objects"] == len(ms) and attrs["boxes"] == list(range(len(ms))) and attrs["classes"] == [0] * len(ms)
        )
        props = s.label_properties["instances"]  # NGFF image-label properties: what a viewer shows per label
        assert [(p["label-value"], p["class"]) for p in props] == [(k, "nucleus") for k in range(1, len(ms) + 1)]


def test_dsb_polygons_rasterise_to_the_nuclei(data_dir, tmp_path):
    root = tmp_path / "dsb"
    doc, masks = dsb_coco(data_dir, root, dsb_ids(data_dir, 3), "polygon")
    ious = []
    for sid, s in load_all(root, annotations="coco.json", images="img").items():
        lab = s.labels["instances"]
        for k, m in enumerate(masks[sid], 1):
            got = lab == k
            ious.append((got & m).sum() / (got | m).sum())
    assert len(ious) == len(doc["annotations"]) > 50
    assert np.median(ious) > 0.97 and np.mean(ious) > 0.9


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # pycocotools on numpy 2
def test_polygons_agree_with_pycocotools(data_dir, tmp_path):
    import pycocotools.mask as pycoco  # a dev dependency: the cross-check always runs

    root = tmp_path / "dsb"
    doc, _ = dsb_coco(data_dir, root, dsb_ids(data_dir, 2), "polygon")
    samples = load_all(root, annotations="coco.json", images="img")
    sizes = {im["id"]: (im["height"], im["width"], Path(im["file_name"]).stem) for im in doc["images"]}
    counters = {}
    agree = []
    for a in doc["annotations"]:
        h, w, sid = sizes[a["image_id"]]
        k = counters[sid] = counters.get(sid, 0) + 1
        theirs = pycoco.decode(pycoco.merge(pycoco.frPyObjects(a["segmentation"], h, w))).astype(bool)
        ours = samples[sid].labels["instances"] == k
        agree.append((theirs & ours).sum() / max(1, (theirs | ours).sum()))
    assert np.median(agree) > 0.8  # both rasterise the same outlines; the rules for edge pixels differ


def test_overlaps_go_to_the_earlier_annotation(data_dir, tmp_path):
    from skimage.morphology import dilation, disk

    root = tmp_path / "dsb"
    doc, masks = dsb_coco(data_dir, root, dsb_ids(data_dir, 1), "rle")
    ((sid, ms),) = masks.items()
    grown = dilation(ms[0], disk(3))
    doc["annotations"] += [
        {**doc["annotations"][0], "id": 9001, "segmentation": rle.encode(grown)},  # overlaps nucleus 1 and more
        {**doc["annotations"][0], "id": 9002, "segmentation": rle.encode(ms[0])},  # wholly inside nucleus 1
    ]
    (root / "coco.json").write_text(json.dumps(doc))
    s = load_all(root, annotations="coco.json", images="img")[sid]
    lab = s.labels["instances"]
    np.testing.assert_array_equal(lab, expected_labels([*ms, grown, ms[0]]))
    assert s.report["overlap_pixels"] == overlap_pixels([*ms, grown, ms[0]]) > overlap_pixels(ms) + ms[0].sum()
    assert s.report["objects_lost_to_overlap"] == 1
    assert s.report["boxes_duplicate"] == 2  # same class and bbox as the first annotation


# --- import -> export -> import --------------------------------------------------------------------------------


def import_cli(cli, src: Path, out: Path, tasks: list[str], *options: str, workers: int = 1):
    card = src.parent / f"{src.name}-card.yaml"
    card.write_text(yaml.safe_dump({"tasks": tasks}))
    opts = [x for o in options for x in ("--option", o)]
    args = ["datasets", "import", "coco", src, "--name", "coco-test", "--out", out, "--card", card, *opts]
    cli(*args, "--workers", str(workers), "--val", "0.25", "--test", "0.25", check=True)
    assert json.loads(cli("datasets", "validate", out, "--json", check=True).stdout)["errors"] == []


def assert_same_samples(a: dict, b: dict) -> None:
    assert sorted(a) == sorted(b)
    for sid in a:
        assert a[sid].targets == b[sid].targets  # exact numbers, in order
        assert a[sid].label_attrs == b[sid].label_attrs
        assert a[sid].labels.keys() == b[sid].labels.keys()
        for name in a[sid].labels:
            np.testing.assert_array_equal(a[sid].labels[name], b[sid].labels[name])
        np.testing.assert_array_equal(a[sid].image, b[sid].image)


def test_masks_and_boxes_survive_import_export_import(data_dir, tmp_path, cli):
    """Segmentation COCO (the card's tasks: instance and semantic segmentation), with float boxes, a box beyond the
    image, a duplicate box and an empty box among real nuclei; exported with the CLI, read back identically."""
    src = tmp_path / "dsb"
    doc, _ = dsb_coco(data_dir, src, dsb_ids(data_dir, 4), "rle")
    anns = doc["annotations"]
    anns[0]["bbox"] = [anns[0]["bbox"][0] - 0.3, anns[0]["bbox"][1] + 0.1, 7.77, 3.1]
    anns[1]["bbox"] = [-4.5, -2, 30.25, 12]
    anns[3]["bbox"] = list(anns[2]["bbox"])
    anns[4]["bbox"] = [5, 5, 0, 3]
    (src / "coco.json").write_text(json.dumps(doc))
    first = load_all(src, annotations="coco.json", images="img")
    out = tmp_path / "ds"
    import_cli(cli, src, out, ["instance-segmentation", "semantic-segmentation"], "annotations=coco.json", "images=img")
    back = tmp_path / "back"
    r = cli("datasets", "export", "coco", out, "--out", back, check=True)
    assert "4 sample(s)" in r.stdout
    exported = json.loads((back / COCO_JSON).read_text())
    assert exported["categories"] == [{"id": 1, "name": "nucleus"}]
    assert sorted(i["id"] for i in exported["images"]) == [1, 2, 3, 4]
    assert sorted(a["segmentation"]["counts"] for a in exported["annotations"]) == sorted(
        a["segmentation"]["counts"] for a in anns
    )
    again = load_all(back, images="images")
    assert_same_samples(first, again)
    assert first[next(iter(first))].report["boxes_empty"] == 1


def test_boxes_survive_export_import_with_recorded_ids(data_dir, tmp_path):
    """A dataset folder made from a BCCD COCO file through the writer (card tasks: instance segmentation, so that
    it builds before the detection task exists), exported and read back: the same boxes, image and category ids."""
    from hub.cards import DatasetCard, parse_card
    from hub.curate import SplitSpec, import_dataset

    src = tmp_path / "bccd"
    doc = bccd_coco(data_dir, src)
    doc["annotations"][0]["bbox"] = [0.1, 0.2, 3.3, 0.30000000000000004]
    (src / "coco.json").write_text(json.dumps(doc))
    imp = create_importer("coco", src, annotations="coco.json", images="img")
    card = parse_card(DatasetCard, _card("bccd-coco", ["instance-segmentation"], BCCD_CLASSES), "test")
    out = tmp_path / "ds"
    import_dataset(imp, out, card, SplitSpec(method="stratified-group", seed=0), workers=1)
    assert json.loads((out / "import_report.json").read_text())["samples_with_findings"] == {}
    back = tmp_path / "back"
    assert export_coco(out, back) == [s.id for s in open_dataset(out).samples]
    exported = json.loads((back / COCO_JSON).read_text())
    assert sorted(exported["categories"], key=lambda c: c["name"]) == sorted(BCCD_CATEGORIES, key=lambda c: c["name"])
    assert sorted((i["id"], i["file_name"]) for i in exported["images"]) == [
        (100 + i, f"{s}.png") for i, s in enumerate(BCCD_STEMS, 1)
    ]
    first = load_all(src, annotations="coco.json", images="img")
    again = load_all(back, images="images")
    assert {k: v.targets for k, v in first.items()} == {k: v.targets for k, v in again.items()}
    for sid, s in again.items():  # the JPEG's decoded pixels, written losslessly as PNG
        np.testing.assert_array_equal(s.image, first[sid].image)


def test_kaggle_dsb_dataset_exports_masks_with_their_extents(data_dir, tmp_path, cli):
    """A dataset of another importer (instance masks, no boxes) exports one annotation per nucleus."""
    src = tmp_path / "kaggle"
    ids = dsb_ids(data_dir, 3)
    for sid in ids:
        shutil.copytree(data_dir / DSB / "stage1_train" / sid, src / sid)
    out = tmp_path / "ds"
    cli("datasets", "import", "kaggle-dsb", src, "--name", "dsb-mini", "--out", out, "--workers", "1", check=True)
    back = tmp_path / "back"
    export_coco(out, back, ids=ids[:2])
    again = load_all(back, images="images")
    assert sorted(again) == sorted(ids[:2])
    for sid, s in again.items():
        ms = dsb_masks(data_dir, sid)
        np.testing.assert_array_equal(s.labels["instances"] > 0, expected_labels(ms) > 0)
        assert len(s.targets["boxes"]) == len(np.unique(expected_labels(ms))) - 1
        assert all(b["class"] == 0 and not b["difficult"] for b in s.targets["boxes"])


def test_export_refuses_unknown_format_and_sample(data_dir, tmp_path, cli):
    r = cli("datasets", "export", "voc2", tmp_path, "--out", tmp_path / "x")
    assert r.returncode == 1 and "no exporter 'voc2'; known: ctc, coco" in r.stderr
    src = tmp_path / "bccd"
    bccd_coco(data_dir, src, BCCD_STEMS[:1])
    out = tmp_path / "ds"
    import_cli(cli, src, out, ["instance-segmentation"], "annotations=coco.json", "images=img")
    with pytest.raises(InvalidInput, match="no sample 'nope'"):
        export_coco(out, tmp_path / "back", ids=["nope"])
    assert not (tmp_path / "back").exists()


def test_detection_dataset_builds_with_the_card_defaults(data_dir, tmp_path, cli):
    """Enabled once ``object-detection`` is a registered task: BCCD boxes through the CLI with the importer's own
    card (tasks: object-detection), validated, exported and read back to the same boxes."""
    src = tmp_path / "bccd"
    bccd_coco(data_dir, src)
    out = tmp_path / "ds"
    args = ["datasets", "import", "coco", src, "--name", "bccd-coco", "--out", out, "--workers", "2"]
    cli(*args, "--option", "annotations=coco.json", "--option", "images=img", check=True)
    assert json.loads(cli("datasets", "validate", out, "--json", check=True).stdout)["errors"] == []
    assert open_dataset(out).card.tasks == ["object-detection"]
    back = tmp_path / "back"
    cli("datasets", "export", "coco", out, "--out", back, check=True)
    first = load_all(src, annotations="coco.json", images="img")
    assert {k: v.targets for k, v in first.items()} == {
        k: v.targets for k, v in load_all(back, images="images").items()
    }


def _card(name: str, tasks: list[str], classes: list[str]) -> dict:
    return {
        "name": name,
        "version": "0.1.0",
        "title": name,
        "description": "COCO test data",
        "tasks": tasks,
        "terms": {"license": "MIT", "terms": "test", "redistribution": False, "citations": ["test"], "sources": ["t"]},
        "acquisition": {
            "organism": "human",
            "cell_type": "blood cells",
            "channels": [{"name": "red", "modality": "other"}],
            "pixel_size": {"unknown": True, "note": "test"},
        },
        "labels": {"classes": classes, "instance": "0 background; 1..N one object each"},
    }


# --- broken files -----------------------------------------------------------------------------------------------


BROKEN = {
    # name: (an edit of the JSON document in place, or a function giving the new document or the file's text;
    # the problem the one line names)
    "not JSON": (lambda d: "{images: [", "is not valid JSON"),
    "not an object": (lambda d: [d], "holds a list, not an object"),
    "missing images": (lambda d: {k: v for k, v in d.items() if k != "images"}, "no list 'images'"),
    "duplicate image id": (lambda d: d["images"].append({**d["images"][0]}), "image id 1 occurs twice"),
    "image without size": (lambda d: d["images"][0].__delitem__("width"), "image 1: 'width' and 'height'"),
    "duplicate annotation id": (lambda d: d["annotations"].append(dict(d["annotations"][0])), "id 1 occurs twice"),
    "annotation to unknown image": (lambda d: d["annotations"][2].update(image_id=99), "annotation 3: image_id 99"),
    "unknown category": (lambda d: d["annotations"][1].update(category_id=4), "annotation 2: category_id 4"),
    "duplicate category name": (lambda d: d["categories"].append({"id": 2, "name": "nucleus"}), "'nucleus' occurs"),
    "bbox of 3 numbers": (lambda d: d["annotations"][0].update(bbox=[1, 2, 3]), "annotation 1: bbox is not four"),
    "bbox with a string": (lambda d: d["annotations"][0].update(bbox=[1, 2, "3", 4]), "annotation 1: bbox is not"),
    "NaN in bbox": (lambda d: d["annotations"][0].update(bbox=[1, float("nan"), 3, 4]), "annotation 1: bbox is not"),
    "negative bbox width": (lambda d: d["annotations"][0].update(bbox=[1, 2, -3, 4]), "negative width"),
    "iscrowd 2": (lambda d: d["annotations"][0].update(iscrowd=2), "annotation 1: iscrowd 2"),
    "odd polygon": (lambda d: d["annotations"][0].update(segmentation=[[1, 2, 3, 4, 5, 6, 7]]), "annotation 1: seg"),
    "short polygon": (lambda d: d["annotations"][0].update(segmentation=[[1, 2, 3, 4]]), "at least 6"),
    "RLE size mismatch": (
        lambda d: d["annotations"][0]["segmentation"].update(size=[10, 10]),
        "annotation 1: RLE size [10, 10] is not the image's",
    ),
    "corrupt RLE counts": (
        lambda d: d["annotations"][0]["segmentation"].update(counts="ab\x7f"),
        "annotation 1: RLE: counts has the character",
    ),
    "RLE counts too short": (
        lambda d: d["annotations"][0]["segmentation"].update(counts=rle.counts_to_string([5, 6])),
        "annotation 1: RLE run lengths add up to 11 pixels",
    ),
    "mixed segmentations": (lambda d: d["annotations"][1].__delitem__("segmentation"), "annotation 2: no segmentation"),
    "file_name with ..": (lambda d: d["images"][0].update(file_name="../img/x.png"), "image 1: unsafe file_name"),
    "absolute file_name": (lambda d: d["images"][0].update(file_name="/etc/passwd"), "is absolute"),
    "file_name not a string": (lambda d: d["images"][0].update(file_name=7), "file_name 7 is not a non-empty"),
    "unsafe sample id": (lambda d: d["images"][0].update(file_name="a b.png"), "is not a safe sample id"),
}


@pytest.fixture(scope="module")
def small_doc(data_dir, tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("coco-small")
    doc, _ = dsb_coco(data_dir, root, dsb_ids(data_dir, 2), "rle")
    return root, doc


def refused(root: Path, doc, tmp_path: Path, **options) -> InvalidInput:
    """The error of importing ``doc`` (a document, or the file's text) next to a copy of ``root``'s images."""
    src = tmp_path / "src"
    shutil.copytree(root / "img", src / "img")
    (src / "coco.json").write_text(doc if isinstance(doc, str) else json.dumps(doc))
    with pytest.raises(InvalidInput) as err:
        imp = create_importer("coco", src, annotations="coco.json", images="img", **options)
        for item in imp.scan():
            imp.load(item)
    assert "\n" not in str(err.value)
    return err.value


@pytest.mark.parametrize("case", list(BROKEN))
def test_broken_coco_is_refused_in_one_line(small_doc, tmp_path, case):
    root, doc = small_doc
    edit, problem = BROKEN[case]
    doc = json.loads(json.dumps(doc))
    changed = edit(doc)
    err = refused(root, changed if changed is not None else doc, tmp_path)
    assert problem in err.problem, err
    assert err.path == str(tmp_path / "src" / "coco.json")


def test_file_over_the_size_limit_is_refused_before_reading(small_doc, tmp_path, monkeypatch):
    import hub.curate.coco as coco

    root, doc = small_doc
    monkeypatch.setattr(coco, "MAX_COCO_BYTES", 1000)
    err = refused(root, doc, tmp_path)
    assert "more than the 1,000 allowed" in err.problem and err.path.endswith("coco.json")


def test_missing_and_escaping_image_files_are_refused(small_doc, tmp_path):
    root, doc = small_doc
    gone = json.loads(json.dumps(doc))
    gone["images"][1]["file_name"] = "missing.png"
    err = refused(root, gone, tmp_path / "a")
    assert err.problem == "image 2 of coco.json: image file not found" and err.path.endswith("img/missing.png")
    outside = tmp_path / "outside.png"
    shutil.copy(root / "img" / doc["images"][0]["file_name"], outside)
    src = tmp_path / "b" / "src"
    shutil.copytree(root / "img", src / "img")
    (src / "img" / "link.png").symlink_to(outside)
    doc = json.loads(json.dumps(doc))
    doc["images"][0]["file_name"] = "link.png"
    (src / "coco.json").write_text(json.dumps(doc))
    with pytest.raises(InvalidInput, match="image 1: unsafe file_name 'link.png': it resolves outside"):
        create_importer("coco", src, annotations="coco.json", images="img").scan()


def test_image_whose_size_differs_from_its_entry_is_refused(small_doc, tmp_path):
    root, doc = small_doc
    doc = json.loads(json.dumps(doc))
    doc["images"][0]["width"] += 1
    for a in doc["annotations"]:
        if a["image_id"] == 1:
            a["segmentation"] = rle.encode(np.zeros((doc["images"][0]["height"], doc["images"][0]["width"]), bool))
    err = refused(root, doc, tmp_path)
    assert "its COCO entry 1 says" in err.problem and err.path.endswith(".png")


def test_unknown_option_and_missing_folders(small_doc, tmp_path):
    root, _ = small_doc
    with pytest.raises(InvalidInput, match="has no option"):
        create_importer("coco", root, masks="x")
    with pytest.raises(InvalidInput, match="image folder not found"):
        create_importer("coco", root, annotations="coco.json", images="nope").scan()
    with pytest.raises(InvalidInput, match="COCO file not found"):
        create_importer("coco", root, annotations="nope.json", images="img").scan()
