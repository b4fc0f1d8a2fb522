"""Benchmarks, `cellhub benchmarks eval` (hub models and predictions from any tool), result records and
leaderboards, on the real curated datasets."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest
import tifffile
import yaml

from hub.bench import benchmark_dataset, benchmarks, get_benchmark
from hub.curate import open_dataset
from hub.errors import IntegrityError
from hub.ome import lineage_from_attrs, write_man_track


def evaluate(cli, *args) -> dict:
    """``cellhub benchmarks eval ARGS --json`` (with the ``cli`` fixture), which must succeed: its record."""
    r = cli("benchmarks", "eval", *args, "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def truth_labels(ds, folder, split="test", label="instances", drop=0.0):
    """Write the split's truth as `<id>.tif` label images (optionally dropping a fraction of the objects)."""
    folder.mkdir()
    rng = np.random.default_rng(0)
    for sid in ds.ids(split):
        lab = np.asarray(ds.image(sid).label(label)[...])
        if drop:
            ids = np.unique(lab[lab > 0])
            lab = np.where(np.isin(lab, rng.choice(ids, int(round(drop * len(ids))), replace=False)), 0, lab)
        tifffile.imwrite(folder / f"{sid}.tif", lab)
    return folder


def test_every_dataset_declares_frozen_benchmarks():
    names = {b.name for b in benchmarks()}
    assert names == {
        "dsb2018-fluo/instance",
        "dsb2018-fluo/semantic",
        "ctc-gowt1/tracking",
        "ecoli-lineage/tracking",
        "jurkat-cellcycle/classification",
        "jurkat-cellcycle/label-free",
        "isl-condition-b/label-free",
        "bbbc039/instance",
        "bbbc039/semantic",
        "monuseg/instance",
        "monuseg/semantic",
        "bccd/detection",
    }
    for b in benchmarks():
        recipe = yaml.safe_load(open(f"datasets/{b.dataset.split('@')[0]}/recipe.yaml"))
        assert b.split_sha256 == recipe["split_manifest_sha256"]


def test_instance_predictions_from_any_tool(built, tmp_path, cli):
    path = built("dsb2018-fluo")
    ds = open_dataset(path)
    perfect = evaluate(
        cli,
        "--predictions",
        truth_labels(ds, tmp_path / "p"),
        "--benchmark",
        "dsb2018-fluo/instance",
        "--dataset",
        path,
        "--name",
        "truth",
    )
    assert perfect["value"] == 1.0 and perfect["metrics"]["acc@0.5"] == 1.0 and perfect["ci95"] == [1.0, 1.0]
    assert perfect["source"] == "self-reported" and len(perfect["per_sample"]) == len(ds.ids("test"))
    assert perfect["split_sha256"] == get_benchmark("dsb2018-fluo/instance").split_sha256
    dropped = evaluate(
        cli,
        "--predictions",
        truth_labels(ds, tmp_path / "d", drop=0.1),
        "--benchmark",
        "dsb2018-fluo/instance",
        "--dataset",
        path,
    )
    assert dropped["metrics"]["recall@0.5"] == pytest.approx(0.9, abs=0.02)
    assert dropped["metrics"]["precision@0.5"] == 1.0
    lo, hi = dropped["ci95"]
    assert lo <= dropped["value"] <= hi < 1.0
    semantic = evaluate(
        cli,
        "--predictions",
        _binary(tmp_path / "p", tmp_path / "s"),
        "--benchmark",
        "dsb2018-fluo/semantic",
        "--dataset",
        path,
    )
    assert semantic["metrics"]["dice"] == 1.0


def _binary(src, dst):
    dst.mkdir()
    for p in src.glob("*.tif"):
        tifffile.imwrite(dst / p.name, (tifffile.imread(p) > 0).astype(np.uint8))
    return dst


def test_bad_predictions_are_one_line_errors(built, tmp_path, cli):
    path = built("dsb2018-fluo")
    ds = open_dataset(path)
    good = truth_labels(ds, tmp_path / "p")
    first = sorted(good.iterdir())[0]

    def err(folder, *more):
        r = cli(
            "benchmarks",
            "eval",
            "--predictions",
            folder,
            "--benchmark",
            "dsb2018-fluo/instance",
            "--dataset",
            path,
            *more,
        )
        assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1, r.stderr
        return r.stderr

    bad = tmp_path / "bad"
    shutil.copytree(good, bad)
    (bad / first.name).unlink()
    assert "no prediction for 1 of 64 samples" in err(bad)
    shutil.copy(good / first.name, bad / first.name)
    tifffile.imwrite(bad / "not-a-sample.tif", np.zeros((4, 4), np.uint16))
    assert "not in the split" in err(bad)
    (bad / "not-a-sample.tif").unlink()
    tifffile.imwrite(bad / first.name, np.zeros((5, 5), np.uint16))
    assert f"{first.name}: prediction has shape (5, 5)" in err(bad)
    tifffile.imwrite(bad / first.name, tifffile.imread(good / first.name).astype(np.float32))
    assert "labels must be integers" in err(bad)
    other = built("isl-condition-b")
    assert "frozen on dsb2018-fluo@1.0.1" in err(good, "--dataset", other).replace(str(other) + ": ", "")


def test_tracking_predictions_in_ctc_layout(built, tmp_path, cli):
    """The truth re-submitted as CTC results scores 1; dropping a cell from one frame lowers DET and TRA."""
    path = built("ecoli-lineage")
    ds = open_dataset(path)
    (sid,) = ds.ids("test")
    img = ds.image(sid)
    masks = np.asarray(img.label("tracks")[...])
    tracks = lineage_from_attrs(img.label_attrs("tracks")["lineage"])
    res = tmp_path / "p" / f"{sid}_RES"
    res.mkdir(parents=True)
    for t, m in enumerate(masks):
        tifffile.imwrite(res / f"mask{t:03d}.tif", m.astype(np.uint16))
    write_man_track(tracks, res / "res_track.txt")
    perfect = evaluate(cli, "--predictions", tmp_path / "p", "--benchmark", "ecoli-lineage/tracking", "--dataset", path)
    assert perfect["metrics"]["TRA"] == 1.0 and perfect["metrics"]["DET"] == 1.0
    assert perfect["per_sample"][0]["id"] == sid
    # a track present in one frame only, removed: its lineage row must go too
    lonely = next(t for t in tracks if t.begin == t.end and not any(c.parent == t.label for c in tracks))
    m = masks[lonely.begin].copy()
    m[m == lonely.label] = 0
    tifffile.imwrite(res / f"mask{lonely.begin:03d}.tif", m.astype(np.uint16))
    write_man_track([t for t in tracks if t.label != lonely.label], res / "res_track.txt")
    worse = evaluate(cli, "--predictions", tmp_path / "p", "--benchmark", "ecoli-lineage/tracking", "--dataset", path)
    assert worse["metrics"]["DET"] < 1.0 and worse["metrics"]["TRA"] < 1.0
    # one test movie, yet an interval: blocks of its frames resampled (the record says how many), one of them worse
    lo, hi = worse["ci95"]
    assert lo <= worse["metrics"]["TRA"] < hi == 1.0 and worse["parameters"]["interval_blocks"] == 10
    assert "frame_counts" not in worse["per_sample"][0] and perfect["ci95"] == [1.0, 1.0]


def test_classification_and_label_free_predictions(built, tmp_path, cli):
    path = built("jurkat-cellcycle")
    ds = open_dataset(path)
    classes = ds.card.labels.classes
    ids = ds.ids("test")
    with open(tmp_path / "probs.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", *classes])
        for sid in ids:
            k = ds.sample(sid).class_index
            w.writerow([sid, *[1.0 if j == k else 0.0 for j in range(len(classes))]])
    out = evaluate(
        cli,
        "--predictions",
        tmp_path / "probs.csv",
        "--benchmark",
        "jurkat-cellcycle/classification",
        "--dataset",
        path,
    )
    assert out["metrics"]["macro_f1"] == 1.0 and out["metrics"]["accuracy"] == 1.0
    assert out["metrics"]["macro_auroc"] == 1.0 and out["metrics"]["recall/G1"] == 1.0
    assert out["metrics"]["merged_accuracy"] == 1.0 and out["intervals"]["merged_accuracy"] == [1.0, 1.0]
    assert out["metrics"]["population_accuracy"] == 1.0 and out["intervals"]["population_accuracy"] == [1.0, 1.0]
    swap = {"G1": "S_phase", "S_phase": "G2", "G2": "G1"}  # wrong phase of interphase: right in the 5-class view
    with open(tmp_path / "swapped.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", *classes])
        for sid in ids:
            k = classes.index(swap.get(classes[ds.sample(sid).class_index], classes[ds.sample(sid).class_index]))
            w.writerow([sid, *[1.0 if j == k else 0.0 for j in range(len(classes))]])
    args = ["--benchmark", "jurkat-cellcycle/classification", "--dataset", path]
    out = evaluate(cli, "--predictions", tmp_path / "swapped.csv", *args)
    mitotic = np.mean([classes[ds.sample(sid).class_index] not in swap for sid in ids])  # the only ones right
    assert out["metrics"]["accuracy"] == pytest.approx(mitotic) and out["metrics"]["merged_accuracy"] == 1.0
    population = get_benchmark("jurkat-cellcycle/classification").population  # 97.8% interphase, all wrong here
    assert out["metrics"]["population_accuracy"] == pytest.approx(716 / 32266)
    assert out["metrics"]["merged_population_accuracy"] == 1.0 and sum(population.values()) == 32266

    lf = tmp_path / "jurkat-dna"
    lf.mkdir()
    dna = ds.card.channel_names.index("DNA")
    for sid in ids:  # an affine copy of the truth: every crop's integrated DNA content is predicted exactly
        tifffile.imwrite(lf / f"{sid}.tif", ds.image(sid).read()[dna : dna + 1] * 3.0 + 7)
    out = evaluate(cli, "--predictions", lf, "--benchmark", "jurkat-cellcycle/label-free", "--dataset", path)
    assert out["metrics"]["object_pearson_r"] == pytest.approx(1.0)
    assert out["intervals"]["object_pearson_r"] == pytest.approx([1.0, 1.0])
    assert {"sum_true", "sum_pred"} <= set(out["per_sample"][0])

    isl = built("isl-condition-b")
    ids = open_dataset(isl).ids("test")
    (tmp_path / "lf").mkdir()
    dapi = open_dataset(isl).card.channel_names.index("DAPI")
    for sid in ids:
        tifffile.imwrite(tmp_path / "lf" / f"{sid}.tif", open_dataset(isl).image(sid).read()[dapi] * 3.0 + 7)
    out = evaluate(cli, "--predictions", tmp_path / "lf", "--truth", isl, "--task", "label-free")
    assert out["metrics"]["pearson_r"] == pytest.approx(1.0) and out["benchmark"] == "isl-condition-b/label-free"


def test_eval_a_hub_model_publish_and_leaderboard(built, tmp_path, monkeypatch, cli):
    from hub.models import Model, TrainConfig, train

    monkeypatch.setenv("CELLHUB_REGISTRY", str(tmp_path / "reg"))
    path = built("dsb2018-fluo")
    train(
        TrainConfig(
            name="tiny-dw",
            task="instance-segmentation",
            dataset=str(path),
            backbone="test_resnet",
            options={"depth": 3, "decoder_channels": 8},
            patch=64,
            batch_size=2,
            steps_per_epoch=1,
            epochs=1,
            val_batches=1,
        ),
        tmp_path / "m",
    )
    hub_row = evaluate(
        cli,
        tmp_path / "m",
        "--benchmark",
        "dsb2018-fluo/instance",
        "--dataset",
        path,
        "--publish",
        "--out",
        tmp_path / "result.json",
    )
    card = Model.load(tmp_path / "m").card
    assert hub_row["source"] == "hub" and hub_row["weights_sha256"] == card.weights.sha256
    assert hub_row["runtime_s"]["predict_s"] > 0 and hub_row["inputs"] == ["nuclei"]
    assert [r.benchmark for r in card.results] == ["dsb2018-fluo/instance"]  # mirrored into the card
    assert json.loads((tmp_path / "result.json").read_text())["value"] == hub_row["value"]
    ds = open_dataset(path)
    evaluate(
        cli,
        "--predictions",
        truth_labels(ds, tmp_path / "p"),
        "--benchmark",
        "dsb2018-fluo/instance",
        "--dataset",
        path,
        "--name",
        "ground-truth",
        "--publish",
    )
    r = cli("benchmarks", "leaderboard", "dsb2018-fluo/instance", "--json")
    assert r.returncode == 0, r.stderr
    board = json.loads(r.stdout)
    assert board["benchmark"] == "dsb2018-fluo/instance" and board["primary_metric"] == "acc@[.5:.95]"
    assert [row["model"] for row in board["rows"]] == ["ground-truth", "tiny-dw@0.1.0"]
    top = board["rows"][0]
    assert top["value"] == 1.0 and top["ci95"] == [1.0, 1.0] and top["source"] == "self-reported"
    for key in ("model", "value", "ci95", "metrics", "weights_sha256", "split_sha256"):
        assert key in board["rows"][1]
    assert board["rows"][1]["weights_sha256"] == card.weights.sha256
    r = cli("benchmarks", "leaderboard", "dsb2018-fluo/instance")
    assert r.returncode == 0 and "ground-truth" in r.stdout
    r = cli("registry", "list", "--json")  # results in the catalog do not disturb the listing of versions
    assert r.returncode == 0 and json.loads(r.stdout) == []


def test_another_split_of_a_benchmark_dataset_is_scored_like_it_but_never_ranked(built, tmp_path, monkeypatch, cli):
    monkeypatch.setenv("CELLHUB_REGISTRY", str(tmp_path / "reg"))
    isl = built("isl-condition-b")
    ds = open_dataset(isl)
    dapi = ds.card.channel_names.index("DAPI")  # the benchmark scores DAPI only, of the card's three targets
    (tmp_path / "val").mkdir()
    for sid in ds.ids("val"):
        tifffile.imwrite(tmp_path / "val" / f"{sid}.tif", ds.image(sid).read()[dapi] * 2.0)
    out = evaluate(
        cli,
        "--predictions",
        tmp_path / "val",
        "--truth",
        isl,
        "--task",
        "label-free",
        "--split",
        "val",
        "--name",
        "val-truth",
        "--publish",
    )
    assert out["split"] == "val" and out["metrics"]["pearson_r"] == pytest.approx(1.0)
    assert len(out["per_sample"]) == len(ds.ids("val"))
    r = cli("benchmarks", "leaderboard", "isl-condition-b/label-free", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["rows"] == []  # a val result is not a test-split result


def test_benchmark_dataset_refuses_split_drift(built):
    with pytest.raises(IntegrityError, match="frozen on"):
        benchmark_dataset(get_benchmark("ctc-gowt1/tracking"), built("ecoli-lineage"))


def test_a_result_using_channels_beyond_the_benchmark_is_an_unranked_reference(built, tmp_path, monkeypatch):
    from hub.bench import leaderboard, score_predictions
    from hub.registry import Registry

    path = built("jurkat-cellcycle")
    ds = open_dataset(path)
    classes = ds.card.labels.classes
    bench = get_benchmark("jurkat-cellcycle/classification")
    reg = Registry(tmp_path / "reg")
    for name, inputs, wrong in (
        ("label-free", ["bright-field", "dark-field"], 3),
        ("with-dna", None, 0),
        ("stain-peeking", ["bright-field", "dark-field", "DNA"], 0),
    ):
        with open(tmp_path / f"{name}.csv", "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["id", "predicted"])
            for i, sid in enumerate(ds.ids("test")):
                k = ds.sample(sid).class_index
                w.writerow([sid, classes[(k + 1) % len(classes)] if i < wrong else classes[k]])
        reg.publish_result(
            score_predictions(bench, path, tmp_path / f"{name}.csv", model=name, inputs=inputs).model_dump(mode="json")
        )
    board = leaderboard(bench, reg)
    assert board["inputs"] == ["bright-field", "dark-field"]
    assert [(r["model"], r["rank"], r["reference"]) for r in board["rows"]] == [
        ("with-dna", 1, None),
        ("label-free", 2, None),
        ("stain-peeking", None, "also uses DNA"),
    ]
