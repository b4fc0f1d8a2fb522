"""The detection task end to end on the real BCCD data: the VOC importer and its broken inputs, boxes stored with
the images and checked by the validator, predictions from any tool (COCO results JSON or CSV) scored like
pycocotools, a hub Faster R-CNN predicting and scored through the same harness, previews with boxes."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import zarr

from hub.bench import get_benchmark, score_predictions
from hub.curate import validate_dataset
from hub.curate._importer import create_importer
from hub.curate.export import coco_ids
from hub.dataset import Boxes, clean_boxes, open_dataset
from hub.errors import InvalidInput
from hub.metrics import detection_metrics
from hub.tasks import get_task

CLASSES = ["RBC", "WBC", "Platelets"]
TINY = {"fpn_channels": 16, "head_size": 32, "anchor_sizes": [8, 16, 32, 64], "proposals": 20, "roi_samples": 8}


def _boxes(ds, sid: str) -> Boxes:
    img = ds.image(sid)
    return Boxes.from_targets(img.attrs["targets"]["boxes"], img.shape[-2:], len(CLASSES), img.path)


def test_bccd_builds_with_its_own_split_and_every_box(built):
    ds = open_dataset(built("bccd"))
    card = ds.card
    assert card.tasks == ["object-detection"] and card.labels.classes == CLASSES
    assert card.splits.method == "source" and card.splits.counts == {"train": 205, "val": 87, "test": 72}
    assert card.channel_names == ["red", "green", "blue"]  # colour stays colour
    assert card.counts.objects == 4886 and card.counts.per_class == {"RBC": 4153, "WBC": 372, "Platelets": 361}
    report = json.loads((ds.path / "import_report.json").read_text())
    assert report["boxes_too_small"] == 2  # two 1x1 px "boxes" (annotation clicks) in images 338 and 343
    assert ds.sample("BloodImage_00007").split == "test"  # the source's own lists are kept
    first = _boxes(ds, "BloodImage_00000")
    assert first.xyxy[0].tolist() == [259, 176, 491, 376] and first.classes[0] == 1  # VOC 260..491 (1-based) -> WBC
    assert sum(r.objects for r in ds.samples) == 4886
    assert not validate_dataset(ds.path).errors


def _voc_copy(data_dir: Path, tmp_path: Path, ids=("BloodImage_00000", "BloodImage_00001")) -> Path:
    src = data_dir / "detection/bccd/BCCD"
    root = tmp_path / "voc"
    for sub in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (root / sub).mkdir(parents=True)
    for i in ids:
        shutil.copy(src / "Annotations" / f"{i}.xml", root / "Annotations")
        shutil.copy(src / "JPEGImages" / f"{i}.jpg", root / "JPEGImages")
    for split, members in (("train", ids[:1]), ("val", ids[1:]), ("test", ())):
        (root / "ImageSets/Main" / f"{split}.txt").write_text("".join(f"{i}\n" for i in members))
    return root


def _load_all(root: Path, **options):
    importer = create_importer("voc", root, **{"classes": CLASSES, **options})
    return [importer.load(item) for item in importer.scan()]


@pytest.mark.parametrize(
    "edit, words",
    [
        (lambda t: t.replace("<name>WBC</name>", "<name>Neutrophil</name>"), "class 'Neutrophil' is not one of"),
        (lambda t: t.replace("<xmin>260</xmin>", "<xmin>2x0</xmin>"), "<xmin> '2x0' is not a number"),
        (lambda t: t.replace("<xmin>260</xmin>", "<xmin>nan</xmin>"), "<xmin> 'nan' is not a number"),
        (lambda t: '<!DOCTYPE a [<!ENTITY x "y">]>' + t, "declares a DOCTYPE"),
        (lambda t: t.replace("<width>640</width>", "<width>641</width>"), "<size> says 641x480, the image is 640x480"),
        (lambda t: t.replace("<annotation>", "<annotations>").replace("</annotation>", "</annotations>"), "not a VOC"),
        (lambda t: t[: len(t) // 2], "not well-formed XML"),
        (lambda t: t.replace("BloodImage_00000.jpg", "BloodImage_00001.jpg"), "does not match the annotation"),
    ],
)
def test_broken_voc_annotations_are_one_line_errors(data_dir, tmp_path, edit, words):
    root = _voc_copy(data_dir, tmp_path)
    xml = root / "Annotations/BloodImage_00000.xml"
    xml.write_text(edit(xml.read_text()))
    with pytest.raises(InvalidInput) as err:
        _load_all(root)
    assert words in str(err.value) and "\n" not in str(err.value)
    assert "BloodImage_00000.xml" in str(err.value)


def test_broken_voc_layouts_are_one_line_errors(data_dir, tmp_path):
    root = _voc_copy(data_dir, tmp_path)
    with pytest.raises(InvalidInput, match="needs its 'classes' option"):
        create_importer("voc", root).scan()
    (root / "ImageSets/Main/test.txt").write_text("BloodImage_09999\n")
    with pytest.raises(InvalidInput, match="without annotation .first: 'BloodImage_09999'"):
        _load_all(root)
    (root / "ImageSets/Main/test.txt").write_text("BloodImage_00000\n")
    with pytest.raises(InvalidInput, match="already in the train list"):
        _load_all(root)
    (root / "ImageSets/Main/test.txt").write_text("")
    (root / "JPEGImages/BloodImage_00001.jpg").unlink()
    with pytest.raises(InvalidInput, match="no image BloodImage_00001.jpg"):
        _load_all(root)


def test_boxes_beyond_the_image_are_clipped_and_duplicates_kept_once():
    xyxy = np.array([[-5, 10, 30, 40], [600, 400, 700, 500], [1, 1, 1.5, 9], [10, 10, 20, 20], [10, 10, 20, 20]])
    boxes, report = clean_boxes(xyxy, np.array([0, 1, 2, 0, 0]), np.zeros(5, bool), (480, 640), min_size=2)
    assert boxes.xyxy.tolist() == [[0, 10, 30, 40], [600, 400, 640, 480], [10, 10, 20, 20]]
    assert report == {"boxes_clipped": 2, "boxes_too_small": 1, "boxes_duplicate": 1}
    assert Boxes.from_targets(boxes.to_targets(), (480, 640), 3).xyxy.tolist() == boxes.xyxy.tolist()


@pytest.mark.parametrize(
    "row, words",
    [
        ({"box": [0, 0, 700, 10], "class": 0, "difficult": False}, "outside the 640x480 image"),
        ({"box": [5, 5, 5, 9], "class": 0, "difficult": False}, "is empty"),
        ({"box": [0, 0, 1, 1], "class": 3, "difficult": False}, "class 3 is not one of 0..2"),
        ({"box": [0, 0, 1, 1], "class": 0}, "not an object with the keys"),
        ({"box": [0, 0, 1], "class": 0, "difficult": False}, "not four finite numbers"),
        ({"box": [0, 0, 1, 1], "class": 0, "difficult": "no"}, "'difficult' is not true or false"),
    ],
)
def test_stored_boxes_are_checked(row, words):
    with pytest.raises(InvalidInput, match=words):
        Boxes.from_targets([row], (480, 640), 3, "x.ome.zarr")


def test_the_validator_refuses_a_tampered_box(built, tmp_path):
    copy = tmp_path / "bccd"
    shutil.copytree(built("bccd"), copy)
    group = zarr.open_group(str(copy / "images/BloodImage_00000.ome.zarr"), mode="r+")
    attrs = dict(group.attrs["cellhub"])
    attrs["targets"] = {"boxes": [{**attrs["targets"]["boxes"][0], "box": [0, 0, 900, 10]}]}
    group.attrs["cellhub"] = attrs
    found = {(f.check, f.sample) for f in validate_dataset(copy).errors}
    assert ("boxes", "BloodImage_00000") in found and ("content", "BloodImage_00000") in found


def _truth_and_jittered(ds, ids, seed=0):
    rng = np.random.default_rng(seed)
    truths, preds, rows = [], [], []
    for sid in ids:
        b = _boxes(ds, sid)
        keep = rng.random(len(b)) > 0.1  # some objects missed
        xyxy = b.xyxy[keep] + rng.normal(0, 4, (int(keep.sum()), 4))
        xyxy[:, 2:] = np.maximum(xyxy[:, 2:], xyxy[:, :2] + 1)
        scores = rng.random(len(xyxy))
        classes = b.classes[keep]
        truths.append((b.xyxy, b.classes, b.difficult))
        preds.append((xyxy, classes, scores))
        rows += [(sid, CLASSES[k], *map(float, box), float(s)) for box, k, s in zip(xyxy, classes, scores)]
    return truths, preds, rows


def test_predictions_from_any_tool_as_csv_or_coco_json(built, tmp_path):
    path = built("bccd")
    ds = open_dataset(path)
    bench = get_benchmark("bccd/detection")
    ids = ds.ids("test")
    truths, preds, rows = _truth_and_jittered(ds, ids)
    want = detection_metrics(truths, preds, CLASSES)["metrics"]

    (tmp_path / "csv").mkdir()
    with open(tmp_path / "csv/boxes.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "class", "x0", "y0", "x1", "y1", "score"])
        w.writerows(rows)
    image_ids, category_ids = coco_ids(ds)  # what `cellhub datasets export coco` numbers them (1..N, 1..K here)
    assert category_ids == [1, 2, 3] and image_ids[ids[0]] == [s.id for s in ds.samples].index(ids[0]) + 1
    coco = [  # half the images named by sample id, half by the export's image id
        {
            "image_id": r[0] if n % 2 else image_ids[r[0]],
            "category_id": category_ids[CLASSES.index(r[1])],
            "bbox": [r[2], r[3], r[4] - r[2], r[5] - r[3]],
            "score": r[6],
        }
        for n, r in enumerate(rows)
    ]
    (tmp_path / "json").mkdir()
    (tmp_path / "json/results.json").write_text(json.dumps(coco))
    for folder in ("csv", "json"):
        result = score_predictions(bench, path, tmp_path / folder, model="jitter")
        for k, v in want.items():
            assert result.metrics[k] == pytest.approx(v, abs=1e-9), (folder, k)
        lo, hi = result.ci95
        assert lo <= result.metrics[get_task("detection").primary] <= hi and lo < hi


@pytest.mark.parametrize(
    "content, words",
    [
        ("id,class,x0,y0,x1,y1,score\nBloodImage_00007,Monocyte,1,1,5,5,0.5\n", "unknown class 'Monocyte'"),
        ("id,class,x0,y0,x1,y1,score\nBloodImage_00000,RBC,1,1,5,5,0.5\n", "'BloodImage_00000', which is not in"),
        ("id,class,x0,y0,x1,y1,score\nBloodImage_00007,RBC,1,1,nan,5,0.5\n", "not a finite number"),
        ("id,class,x0,y0,x1,y1,score\nBloodImage_00007,RBC,9,1,5,5,0.5\n", "has x1 < x0"),
        ("id,class,x0,y0,x1\nBloodImage_00007,RBC,9,1,5\n", "needs the columns"),
    ],
)
def test_bad_box_predictions_are_one_line_errors(built, tmp_path, content, words):
    path = built("bccd")
    (tmp_path / "boxes.csv").write_text(content)
    with pytest.raises(InvalidInput) as err:
        score_predictions(get_benchmark("bccd/detection"), path, tmp_path)
    assert words in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize(
    "results, words",
    [
        ({"image_id": "BloodImage_00007"}, "needs image_id, category_id, bbox and score"),
        ({"image_id": "BloodImage_00007", "category_id": 4, "bbox": [1, 1, 2, 2], "score": 1}, "not one of [1, 2, 3]"),
        ({"image_id": 9999, "category_id": 1, "bbox": [1, 1, 2, 2], "score": 1}, "neither a sample id nor an image id"),
        ({"image_id": "BloodImage_00007", "category_id": 1, "bbox": [1, 1, 2], "score": 1}, "bbox is not [x, y, w, h]"),
    ],
)
def test_bad_coco_results_are_one_line_errors(built, tmp_path, results, words):
    path = built("bccd")
    (tmp_path / "r.json").write_text(json.dumps([results]))
    with pytest.raises(InvalidInput) as err:
        score_predictions(get_benchmark("bccd/detection"), path, tmp_path)
    assert words in str(err.value) and "r.json" in str(err.value)


def test_a_hub_detector_predicts_box_tables_scored_by_the_harness(built, tmp_path, cli):
    path = built("bccd")
    model = tmp_path / "frcnn"
    args = ["--task", "object-detection", "--dataset", str(path), "--name", "tiny-frcnn", "--backbone", "test_resnet"]
    args += ["--epochs", "1", "--steps-per-epoch", "1", "--batch-size", "2", "--patch", "128", "--out", str(model)]
    options = json.dumps(TINY)
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        f"name: tiny-frcnn\ntask: object-detection\ndataset: {path}\nval_batches: 1\noptions: {options}\n"
    )
    cli("models", "train", "--recipe", str(recipe), *args[4:])
    out = tmp_path / "pred"
    cli("models", "predict", str(model), str(path), "--split", "test", "--out", str(out))
    with open(out / "boxes.csv") as fh:
        table = list(csv.DictReader(fh))
    assert table and {r["class"] for r in table} <= set(CLASSES)
    assert {r["id"] for r in table} <= set(open_dataset(path).ids("test"))
    r = cli("benchmarks", "eval", str(model), "--benchmark", "bccd/detection", "--dataset", str(path), "--json")
    record = json.loads(r.stdout)
    assert record["task"] == "detection" and 0 <= record["metrics"]["mAP@0.5"] <= 1
    assert set(record["metrics"]) >= {"mAP@[.5:.95]", "mAP@0.75", "AR@100", "AP/RBC", "AP50/Platelets"}


def test_preview_draws_the_boxes_in_colour(built, tmp_path, cli):
    from PIL import Image

    from hub.viz.preview import BOX_COLOURS

    cli("datasets", "preview", str(built("bccd")), "--out", str(tmp_path / "p.png"), "--n", "4", check=True)
    pixels = np.asarray(Image.open(tmp_path / "p.png").convert("RGB")).reshape(-1, 3)
    for colour in BOX_COLOURS[:2]:  # RBC and WBC boxes are in every picture
        assert (pixels == colour).all(1).any()


def test_site_examples_draw_predicted_and_true_boxes(built, tmp_path):
    from hub.models import Model, TrainConfig, train
    from hub.site.examples import model_examples

    path = built("bccd")
    cfg = TrainConfig(
        name="tiny-frcnn",
        task="object-detection",
        dataset=str(path),
        backbone="test_resnet",
        options=TINY,
        epochs=1,
        steps_per_epoch=1,
        batch_size=2,
        patch=128,
        val_batches=1,
    )
    train(cfg, tmp_path / "m")
    groups = model_examples(
        Model.load(tmp_path / "m"), open_dataset(path), get_benchmark("bccd/detection"), tmp_path / "site", "m"
    )
    pictures = [p for g in groups for p in g.pictures]
    assert len(groups) == 2 and len(pictures) == 4
    assert all((tmp_path / "site" / p.src).is_file() for p in pictures)
    assert any("ground truth (" in p.caption and " boxes)" in p.caption for p in pictures)


def test_hugging_face_export_has_the_boxes_in_its_object_detection_layout(built, tmp_path):
    from hub.data import to_hf_dataset

    path = built("bccd")
    hf = to_hf_dataset(path, "test", cache_dir=tmp_path)
    row = hf[0]
    b = _boxes(open_dataset(path), row["id"])
    assert row["image"].shape == (3, 480, 640) and hf.features["objects"]["category"].feature.names == CLASSES
    x, y, w, h = row["objects"]["bbox"][0]
    assert [x, y, x + w, y + h] == pytest.approx(b.xyxy[0].tolist()) and row["objects"][
        "category"
    ] == b.classes.tolist()


@pytest.mark.parametrize("shape", [(6, 6), (5, 7)])
def test_boxes_follow_the_pixels_through_every_flip_and_quarter_turn(shape):
    from hub.data._transforms import dihedral, dihedral_boxes

    image = np.zeros(shape)
    image[1:3, 2:5] = 1  # rows 1-2, columns 2-4: the box [2, 1, 5, 3]
    for k in range(4) if shape[0] == shape[1] else (0, 2):
        for flip in (False, True):
            ys, xs = np.nonzero(dihedral(image, k, flip))
            want = [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
            assert dihedral_boxes(np.array([[2, 1, 5, 3]]), k, flip, shape)[0].tolist() == want, (k, flip)


def test_few_shot_sample_lists_reach_the_detection_windows(built):
    from hub.models import TrainConfig, create_family

    path = built("bccd")
    few = open_dataset(path).ids("train")[:3]
    cfg = TrainConfig(name="few", task="object-detection", dataset=str(path), samples=few, patch=128)
    train_set, val_set = create_family("faster-rcnn").datasets(cfg, path, ["red", "green", "blue"], [], "image")
    assert {p[0] for p in train_set.planes} == set(few)
    assert val_set is not None and len({p[0] for p in val_set.planes}) == 87  # validation keeps its whole split
