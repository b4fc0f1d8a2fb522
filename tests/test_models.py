"""Model families on the real curated datasets: train a few steps, save, reload bit-identical, predict on real
images of sizes not seen in training; tiled inference; the CLI; weights safety; registry round trip."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from scipy import ndimage as ndi

from hub.cards import ModelCard, load_card
from hub.curate import open_dataset
from hub.errors import CardError, IntegrityError, InvalidInput, RegistryError
from hub.models import Model, TrainConfig, create_family, families, load_model, publish_model, train
from hub.models._tiling import predict_tiled
from hub.ome import read_man_track
from hub.registry import Registry
from hub.tasks import tasks

TINY = dict(
    backbone="test_resnet",
    options={"depth": 3, "decoder_channels": 8},
    patch=64,
    batch_size=2,
    steps_per_epoch=2,
    epochs=2,
    val_batches=1,
)

RCNN = {"fpn_channels": 16, "head_size": 32, "anchor_sizes": [8, 16, 32, 64], "proposals": 50, "roi_samples": 16}

# family -> (dataset, task, extra config)
CASES = {
    "classifier": (
        "jurkat-cellcycle",
        "classification",
        dict(channels=["bright-field", "dark-field"], class_weighting="balanced", options={"output_stride": 8}),
    ),
    "unet": ("dsb2018-fluo", "semantic-segmentation", {}),
    "deep-watershed": ("dsb2018-fluo", "instance-segmentation", {}),
    "embeddings": ("dsb2018-fluo", "instance-segmentation", {}),
    "spatial-embeddings": ("dsb2018-fluo", "instance-segmentation", {}),
    "detect-link": (
        "ctc-gowt1",
        "tracking",
        dict(
            foreground=0.5,
            lr_schedule="one-cycle",
            intensity={"scale": [0.6, 2], "shift": [-0.2, 0.2], "gamma": [0.7, 1.4]},
            options={"depth": 3, "decoder_channels": 8, "boundary_width": 2},
        ),
    ),
    "unet-regression": ("isl-condition-b", "label-free", dict(targets=["DAPI"])),
    "faster-rcnn": ("bccd", "object-detection", dict(patch=128, options=RCNN)),
    "mask-rcnn": ("dsb2018-fluo", "instance-segmentation", dict(options=RCNN)),
}


def tiny(name: str, family: str, path, **extra) -> TrainConfig:
    ds, task, more = CASES[family]
    return TrainConfig(**{**TINY, **more, **extra, "name": name, "task": task, "family": family, "dataset": str(path)})


def test_every_task_has_a_family():
    assert set(families().values()) == {
        "classification",
        "semantic-segmentation",
        "instance-segmentation",
        "tracking",
        "label-free",
        "object-detection",
    }
    assert set(CASES) == set(families())


@pytest.mark.parametrize("family", sorted(CASES))
def test_family_trains_saves_reloads_and_predicts(family, built, tmp_path):
    path = built(CASES[family][0])
    model = train(tiny(f"t-{family}", family, path), tmp_path / "m")
    card = model.card
    assert card.training.dataset == open_dataset(path).card.ref
    assert card.training.dataset_manifest_sha256 == open_dataset(path).card.splits.manifest_sha256
    assert card.weights.parameters == sum(p.numel() for p in model.net.parameters())
    assert card.training.packages["torch"] == torch.__version__

    again = Model.load(tmp_path / "m")
    for (k, a), (k2, b) in zip(model.net.state_dict().items(), again.net.state_dict().items()):
        assert k == k2 and torch.equal(a, b), k

    ds = open_dataset(path)
    test_id = ds.ids("test")[0]
    img = ds.image(test_id)
    arr = img.read()
    if family == "detect-link":  # 4 frames, cropped to a size never seen in training
        movie = arr[:4, 100:433, 50:390]
        masks, tracks = again.predict(movie)
        assert masks.shape == movie.shape
        present = {int(v) for v in np.unique(masks) if v}
        assert present == {t.label for t in tracks}
        assert card.training.hyperparameters["foreground"] == 0.5 and "one-cycle" in card.training.optimizer
        assert card.training.hyperparameters["intensity"] == {
            "scale": [0.6, 2],
            "shift": [-0.2, 0.2],
            "gamma": [0.7, 1.4],
        }
        assert card.training.augmentation == (
            "random flips and 90-degree rotations; random intensity x -> scale * x ** gamma + shift "
            "(gamma in [0.7, 1.4], scale in [0.6, 2], shift in [-0.2, 0.2])"
        )
        return
    index = [ds.card.channel_names.index(c) for c in card.channel_names]
    raw = (arr if "c" in img.axes else arr[None])[index]
    if family == "classifier":
        prob = again.predict(raw[:, 3:-2, 1:])  # the crop, trimmed to an unseen size
        assert prob.shape == (7,) and abs(prob.sum() - 1) < 1e-5
        np.testing.assert_allclose(prob, model.predict(raw[:, 3:-2, 1:]), rtol=1e-5, atol=1e-6)  # same dilation
        assert set(card.training.per_class_recall) == set(ds.card.labels.classes)
        return
    cut = raw[:, : raw.shape[1] - 27, : raw.shape[2] - 13]  # not a multiple of the network stride
    pred = again.predict(cut)
    if family == "faster-rcnn":  # scored boxes inside the image, classes of the card
        h, w = cut.shape[1:]
        assert pred.xyxy.shape == (len(pred.scores), 4) and len(pred.classes) == len(pred.scores) <= 100
        assert (pred.xyxy >= 0).all() and (pred.xyxy[:, [0, 2]] <= w).all() and (pred.xyxy[:, [1, 3]] <= h).all()
        assert set(pred.classes.tolist()) <= {0, 1, 2} and card.outputs.classes == ["RBC", "WBC", "Platelets"]
        np.testing.assert_allclose(pred.xyxy, model.predict(cut).xyxy, atol=1e-4)
        return
    if family == "unet-regression":
        assert pred.shape == (1, *cut.shape[1:]) and pred.dtype == np.float32 and np.isfinite(pred).all()
    else:
        assert pred.shape == cut.shape[1:] and pred.dtype.kind in "iu"
    assert np.array_equal(pred, model.predict(cut))  # the reloaded model predicts what the trained one did


def _same(a, b) -> bool:
    """Equal training targets: tensors, numbers, or dicts of them (the detectors' boxes)."""
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return torch.equal(a, b) if isinstance(a, torch.Tensor) else a == b


@pytest.mark.parametrize("family", ["classifier", "deep-watershed", "unet-regression", "faster-rcnn"])
def test_intensity_changes_the_training_inputs_of_every_family_only(family, built):
    from hub.models.train import _datasets

    path = built(CASES[family][0])
    fixed = {"scale": [2, 2], "shift": [0.1, 0.1]}
    plain, varied = (tiny("t", family, path, augment=False, intensity=i) for i in (None, fixed))
    fam = create_family(family, plain.options)
    channels, targets = fam.channels(plain, open_dataset(path).card)
    (train, val), (train_varied, val_varied) = (_datasets(c, path, fam, channels, targets) for c in (plain, varied))
    for i in range(2):
        (x, y), (xv, yv) = train[i], train_varied[i]
        torch.testing.assert_close(xv, 2 * x + 0.1)
        assert _same(y, yv), "the intensity change reached the training targets"
        assert all(_same(a, b) for a, b in zip(val[i], val_varied[i])), "the intensity change reached validation"


def test_an_ensemble_is_its_members_trained_alone_and_averages_their_logits(built, tmp_path):
    """Member i of a deep ensemble is exactly the network the recipe trains with seed + i; the ensemble's
    prediction is the softmax of the members' mean logits; it saves, reloads and scores validation as a whole."""
    path = built("jurkat-cellcycle")
    ensemble = train(tiny("ens", "classifier", path, seed=3, members=2), tmp_path / "ens")
    alone = [train(tiny("one", "classifier", path, seed=s), tmp_path / f"seed{s}") for s in (3, 4)]
    card = ensemble.card
    assert card.architecture.members == 2 and card.training.seed == 3
    assert [t.hyperparameters for t in card.training.trials] == [{"seed": 3}, {"seed": 4}]
    assert card.weights.parameters == sum(m.card.weights.parameters for m in alone)
    again = Model.load(tmp_path / "ens")
    for i, member in enumerate(alone):
        for (k, a), b in zip(member.net.state_dict().items(), again.net.members[i].state_dict().values()):
            assert torch.equal(a, b), (i, k)
    ds = open_dataset(path)
    index = [ds.card.channel_names.index(c) for c in card.channel_names]  # bright-field and dark-field
    crops = [ds.image(i).read()[index] for i in ds.ids("test")[:5]]
    for crop in crops:
        x = torch.from_numpy(again.normalize(crop))[None]
        with torch.no_grad():
            logits = torch.stack([m.net(x) for m in alone]).mean(0)
        np.testing.assert_allclose(again.predict(crop), torch.softmax(logits, 1)[0].numpy(), rtol=1e-5, atol=1e-6)
    assert set(card.training.per_class_recall) == set(ds.card.labels.classes)
    with pytest.raises(InvalidInput, match=r"base_model: ens@0\.1\.0 is an ensemble of 2 networks"):
        train(tiny("ft", "classifier", path, base_model=str(tmp_path / "ens")), tmp_path / "ft")
    assert not (tmp_path / "ft").exists()


def test_an_ensemble_needs_one_tensor_out_and_one_configuration(built, tmp_path):
    path = built("bccd")
    with pytest.raises(InvalidInput, match="members: a faster-rcnn network cannot be an ensemble"):
        train(tiny("ens", "faster-rcnn", path, members=2), tmp_path / "out")
    assert not (tmp_path / "out").exists()
    with pytest.raises(ValueError, match="an ensemble trains one configuration, not a grid"):
        tiny("ens", "classifier", path, members=2, grid={"lr": [0.1, 0.01]})
    with pytest.raises(ValueError, match="greater than or equal to 2"):
        tiny("ens", "classifier", path, members=1)
    with pytest.raises(ValueError, match=r"seed \+ 2, which must be below 2\*\*32"):
        tiny("ens", "classifier", path, members=3, seed=2**32 - 2)


@pytest.mark.parametrize(
    "model, members, problem",
    [
        ("bccd-faster-rcnn/1.0.0", 2, "architecture.members: a faster-rcnn network cannot be an ensemble"),
        # one network's weights, a card asking for two: refused before the second is built
        ("jurkat-phase/1.2.0", 2, "architecture.members: 2 networks need at least 19,"),
        ("jurkat-phase/1.2.0", 17, "architecture.members: Input should be less than or equal to 16"),
    ],
)
def test_a_card_naming_an_ensemble_it_cannot_be_is_refused_before_the_weights_load(tmp_path, model, members, problem):
    import shutil

    import yaml

    folder = tmp_path / "m"
    shutil.copytree(MODEL_CARDS / model, folder)
    card = yaml.safe_load((folder / "card.yaml").read_text())
    card["architecture"]["members"] = members
    (folder / "card.yaml").write_text(yaml.safe_dump(card, sort_keys=False))
    with pytest.raises((InvalidInput, CardError)) as info:
        Model.load(folder)
    line = str(info.value)
    assert line.startswith(str(folder)) and problem in line and len(line.splitlines()) == 1, line


def test_tiled_inference_equals_whole_image():
    """A 5x5 convolution (receptive field 2 < halo) gives the same result tiled or whole, on any size."""
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(2, 3, 5, padding=2, padding_mode="reflect")
    image = np.random.default_rng(0).random((2, 517, 389), dtype=np.float32)
    with torch.no_grad():
        whole = conv(torch.from_numpy(image)[None])[0].numpy()
        tiled = predict_tiled(conv, image, tile=128, halo=16, multiple=32)
    assert tiled.shape == whole.shape
    np.testing.assert_allclose(tiled, whole, atol=1e-5)


def test_train_grid_finetune_and_predict_cli(built, tmp_path, data_dir, cli):
    dsb = built("dsb2018-fluo")
    args = [
        "--task",
        "instance-segmentation",
        "--dataset",
        str(dsb),
        "--name",
        "grid-dw",
        "--backbone",
        "test_resnet",
        "--epochs",
        "1",
        "--steps-per-epoch",
        "1",
        "--batch-size",
        "2",
        "--patch",
        "64",
    ]
    r = cli("models", "train", *args, "--grid", "lr=0.001,0.01", "--out", str(tmp_path / "base"), "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert [t["hyperparameters"] for t in out["trials"]] == [{"lr": 0.001}, {"lr": 0.01}]
    base = Model.load(tmp_path / "base")
    assert len(base.card.training.trials) == 2 and base.card.training.validation_split == "val"

    r = cli(
        "models",
        "finetune",
        str(tmp_path / "base"),
        "--dataset",
        str(dsb),
        "--name",
        "ft-dw",
        "--freeze-encoder",
        "--epochs",
        "1",
        "--steps-per-epoch",
        "1",
        "--batch-size",
        "2",
        "--patch",
        "64",
        "--out",
        str(tmp_path / "ft"),
    )
    assert r.returncode == 0, r.stderr
    ft = Model.load(tmp_path / "ft")
    assert ft.card.training.base_model.startswith("grid-dw@0.1.0") and ft.card.training.frozen_encoder
    for (k, a), b in zip(base.net.encoder.state_dict().items(), ft.net.encoder.state_dict().values()):
        if a.is_floating_point() and "running" not in k:
            assert torch.equal(a, b), k  # the frozen encoder did not move

    # a folder of the original DSB PNG files (RGBA), not the curated copy
    src = sorted((data_dir / "segmentation/dsb2018-fluo/stage1_train").iterdir())[0] / "images"
    r = cli("models", "predict", str(tmp_path / "ft"), str(src), "--out", str(tmp_path / "pred"), "--json")
    assert r.returncode == 0, r.stderr
    (png,) = src.glob("*.png")
    labels = tifffile.imread(tmp_path / "pred" / f"{png.stem}.tif")
    assert labels.dtype == np.uint16 and labels.ndim == 2

    r = cli("models", "predict", str(tmp_path / "ft"), str(src), "--out", str(tmp_path / "pred"))
    assert r.returncode == 1 and "not empty" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_tracking_cli_writes_ctc_results(built, tmp_path, cli):
    path = built("ctc-gowt1")
    model = train(tiny("t-track", "detect-link", path, epochs=1, steps_per_epoch=1), tmp_path / "m")
    # a short CTC-style sequence folder of real frames, at a size not seen in training
    seq = tmp_path / "02"
    seq.mkdir()
    ds = open_dataset(path)
    frames = ds.image(ds.ids("test")[0]).array()
    for t in range(3):
        tifffile.imwrite(seq / f"t{t:03d}.tif", np.asarray(frames[t, :300, :350]))
    r = cli("models", "predict", str(tmp_path / "m"), str(seq), "--out", str(tmp_path / "res"))
    assert r.returncode == 0, r.stderr
    res = tmp_path / "res" / "02_RES"
    masks = [tifffile.imread(res / f"mask{t:03d}.tif") for t in range(3)]
    tracks = read_man_track(res / "res_track.txt")
    assert {int(v) for m in masks for v in np.unique(m) if v} == {t.label for t in tracks}
    assert model.card.outputs.axes == "tyx"


def test_bad_inputs_are_one_line_errors(built, tmp_path, cli):
    dsb = built("dsb2018-fluo")
    model = train(tiny("t-bad", "unet", dsb, epochs=1, steps_per_epoch=1), tmp_path / "m")
    with pytest.raises(InvalidInput, match="expects 1 channel"):
        model.predict(np.zeros((3, 2, 64, 64)))
    r = cli("models", "predict", str(tmp_path / "m"), str(built("isl-condition-b")), "--out", str(tmp_path / "o"))
    assert r.returncode == 1 and "needs channel 'nuclei'" in r.stderr and not (tmp_path / "o").exists()
    r = cli("models", "predict", str(tmp_path / "m"), str(tmp_path / "nowhere"), "--out", str(tmp_path / "o"))
    assert r.returncode == 1 and "input not found" in r.stderr
    r = cli(
        "models", "train", "--task", "instance-segmentation", "--dataset", str(dsb), "--name", "x", "--family", "unet"
    )
    assert r.returncode == 1 and "does semantic-segmentation" in r.stderr
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("name: x\ntask: tracking\ndataset: d\nepochs: -1\n")
    r = cli("models", "train", "--recipe", str(recipe))
    assert r.returncode == 1 and "epochs:" in r.stderr and str(recipe) in r.stderr
    with pytest.raises(CardError):
        Model.load(tmp_path)  # no card.yaml


def test_weights_are_verified_and_never_unpickled(built, tmp_path):
    model = train(tiny("t-safe", "unet", built("dsb2018-fluo"), epochs=1, steps_per_epoch=1), tmp_path / "m")
    weights = tmp_path / "m" / "weights.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="does not match the card"):
        Model.load(tmp_path / "m")
    model.save(tmp_path / "m")
    torch.save(model.net.state_dict(), tmp_path / "m" / "extra.pt")
    with pytest.raises(RegistryError, match="pickle"):
        publish_model(Registry(tmp_path / "reg"), tmp_path / "m")


def test_model_publish_pull_load(built, tmp_path, monkeypatch, cli):
    monkeypatch.setenv("CELLHUB_CACHE", str(tmp_path / "cache"))
    train(
        tiny("t-pub", "deep-watershed", built("dsb2018-fluo"), epochs=1, steps_per_epoch=1, weights_dtype="float16"),
        tmp_path / "m",
    )
    r = cli("models", "publish", str(tmp_path / "m"), "--registry", str(tmp_path / "reg"), "--json")
    assert r.returncode == 0, r.stderr
    r = cli("models", "publish", str(tmp_path / "m"), "--registry", str(tmp_path / "reg"))
    assert r.returncode == 1 and "already published" in r.stderr
    model = load_model("t-pub@0.1.0", registry=str(tmp_path / "reg"))
    assert model.card.weights.dtype == "float16"
    assert (tmp_path / "cache" / "models" / "t-pub" / "0.1.0" / "weights.safetensors").read_bytes() == (
        tmp_path / "m" / "weights.safetensors"
    ).read_bytes()
    r = cli("models", "list", "--registry", str(tmp_path / "reg"), "--json")
    assert [row["name"] for row in json.loads(r.stdout)] == ["t-pub"]
    r = cli("models", "info", "t-pub@0.1.0", "--registry", str(tmp_path / "reg"), "--json", check=True)
    published = json.loads(r.stdout)  # the published version's manifest, read without downloading anything
    assert published["card"]["weights"]["sha256"] == model.card.weights.sha256 and published["manifest_sha256"]
    r = cli("models", "info", "t-pub", "--registry", str(tmp_path / "reg"), check=True)
    assert "t-pub@0.1.0" in r.stdout and "cellhub models pull t-pub@0.1.0" in r.stdout


def test_local_lists_keep_datasets_and_models_apart(built, tmp_path, cli):
    """`datasets list --local` lists the dataset builds, never a model folder under the build root (any depth);
    `models list --local` the model folders; `--root` is the build folder, and implies --local."""
    build = tmp_path / "build"
    (build / "dsb2018-fluo").mkdir(parents=True)
    (build / "dsb2018-fluo" / "1.0.0").symlink_to(built("dsb2018-fluo"))
    train(tiny("t-list", "unet", built("dsb2018-fluo"), epochs=1, steps_per_epoch=1), build / "models" / "t-list")
    env = {"CELLHUB_BUILD": str(build)}
    r = cli("datasets", "list", "--local", "--json", env=env, check=True)
    assert [row["name"] for row in json.loads(r.stdout)["datasets"]] == ["dsb2018-fluo"]
    assert json.loads(cli("datasets", "list", "--root", build, "--json", check=True).stdout) == json.loads(r.stdout)
    r = cli("models", "list", "--local", "--json", env=env, check=True)
    [row] = json.loads(r.stdout)["models"]
    assert (row["name"], row["version"], row["family"], row["path"]) == (
        "t-list",
        "0.1.0",
        "unet",
        str(build / "models" / "t-list"),
    )
    r = cli("models", "list", "--root", build, check=True)
    assert "t-list@0.1.0" in r.stdout and "unet" in r.stdout
    r = cli("models", "list", "--local", "--search", "x")
    assert r.returncode == 1 and r.stderr.startswith("error:") and len(r.stderr.strip().splitlines()) == 1


def test_tune_postprocessing_on_val_writes_the_card_not_the_weights(built, tmp_path, cli):
    import yaml

    from hub.models.tuning import det_score, seg_score, tune

    path = built("dsb2018-fluo")
    train(tiny("t-tune", "deep-watershed", path), tmp_path / "m")
    weights = (tmp_path / "m" / "weights.safetensors").read_bytes()
    r = cli(
        "models",
        "tune",
        str(tmp_path / "m"),
        "--dataset",
        str(path),
        "--grid",
        "seed_threshold=0.3,0.5,0.7",
        "--grid",
        "tta=false,true",
        "--json",
    )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["split"] == "val" and out["planes"] == len(open_dataset(path).ids("val"))
    assert out["grid"]["tta"] == [False, True]
    assert out["score"] >= out["score_before"] and set(out["options"]) <= {"seed_threshold", "tta"}
    card = Model.load(tmp_path / "m").card  # still loads: the weights and their hash are untouched
    assert (tmp_path / "m" / "weights.safetensors").read_bytes() == weights
    assert card.training.postprocess_tuning["options"] == out["options"]
    assert {k: card.architecture.options[k] for k in out["options"]} == out["options"]
    r = cli("models", "tune", str(tmp_path / "m"), "--dataset", str(path), "--split", "test")
    assert r.returncode != 0 and "leak" in r.stderr
    assert (
        yaml.safe_load((tmp_path / "m" / "card.yaml").read_text())["training"]["postprocess_tuning"]
        == card.training.postprocess_tuning
    )

    # tracking detectors are tuned on the CTC DET measure of their detections and, where the movie has gold
    # segmentation masks, on SEG too: (DET + SEG) / 2 (GOWT1 has no val: train)
    gowt1 = built("ctc-gowt1")
    train(tiny("t-tune-track", "detect-link", gowt1, epochs=1, steps_per_epoch=1), tmp_path / "t")
    done = tune(tmp_path / "t", gowt1, grid={"min_seed": [4, 64]}, max_planes=2)
    assert done["split"] == "train" and done["planes"] == 2 and done["seg_planes"] == 2
    assert done["metric"] == "(DET + SEG) / 2"
    movie = open_dataset(gowt1).image("01")
    truth = [np.asarray(movie.label("tracks")[0])]
    assert det_score(truth, truth) == 1.0 and det_score(truth, [np.zeros_like(truth[0])]) == 0.0
    frames = movie.label_attrs("segmentation")["annotated_frames"]
    gold = [np.asarray(movie.label("segmentation")[t]) for t in frames]
    assert seg_score(gold, gold) == 1.0 and seg_score(gold, [np.zeros_like(g) for g in gold]) == 0.0
    markers = [np.asarray(movie.label("tracks")[t]) for t in frames]  # about half of each nucleus
    assert 0.3 < seg_score(gold, markers) < 0.7


def test_tuning_keeps_the_card_on_ties_and_views_must_earn_their_cost():
    from hub.models.tuning import TTA_GAIN, choose

    card = (0.50, {}, False)
    assert choose([card, (0.50, {"seed_threshold": 0.7}, False)]) == (0.50, {})
    assert choose([card, (0.53, {"seed_threshold": 0.8}, False), (0.53 + TTA_GAIN / 2, {"tta": True}, True)]) == (
        0.53,
        {"seed_threshold": 0.8},
    )
    assert choose([card, (0.53, {"seed_threshold": 0.8}, False), (0.54, {"tta": True}, True)]) == (0.54, {"tta": True})
    assert choose([(0.50, {}, True), (0.499, {"tta": False}, False)]) == (0.499, {"tta": False})


def test_sizes_in_pixels_follow_the_inference_scale():
    watershed = create_family("deep-watershed", {"min_size": 20})
    assert watershed.at_scale(1.0) is watershed
    half = watershed.at_scale(0.5)  # objects twice as large in the image as in training: 4x the areas
    assert half.options["min_size"] == 80 and half.options["min_seed"] == 16 and watershed.options == {"min_size": 20}
    tracker = create_family("detect-link", {"max_distance": 30})
    assert tracker.at_scale(0.5).options["max_distance"] == 60
    assert "max_distance" not in create_family("detect-link").at_scale(2.0).options  # automatic stays automatic
    assert create_family("detect-link").at_scale(2.0).options["min_seed"] == 1


def _ideal_spatial_maps(label: np.ndarray, scale: float) -> np.ndarray:
    """Activated spatial-embedding maps that say exactly ``label``: every pixel of a nucleus points at its
    centroid, margins of one pixel, seeds 1 inside."""
    ys, xs = np.indices(label.shape, dtype=np.float64)
    ids = np.arange(label.max() + 1)
    cy = np.asarray(ndi.mean(ys, label, ids))[label]
    cx = np.asarray(ndi.mean(xs, label, ids))[label]
    inside = label > 0
    sigma = np.log(np.log(2) * scale**2) / 10  # score 0.5 at one pixel from the centre
    maps = [inside.astype(float), np.where(inside, (cy - ys) / scale, 0), np.where(inside, (cx - xs) / scale, 0)]
    return np.stack([*maps, np.full(label.shape, sigma)]).astype(np.float32)


def test_spatial_embeddings_decode_and_score_real_nuclei(built):
    ds = open_dataset(built("dsb2018-fluo"))
    label = np.asarray(ds.image(ds.ids("train")[0]).label("instances")).astype(np.int64)
    family = create_family("spatial-embeddings", {"min_size": 0})
    scale = family.opts.offset_scale
    maps = _ideal_spatial_maps(label, scale)
    pred = family.postprocess(maps)
    pairs = {(int(a), int(b)) for a, b in zip(label.ravel(), pred.ravel())}
    assert len(pairs) == len(np.unique(label)) and (0, 0) in pairs  # the same partition, one object each
    assert family.at_scale(0.5).opts.offset_scale == 2 * scale  # a unit is twice as many of the image's pixels

    # two touching nuclei pointing at one centre are one object, and the loss prefers the truth
    grown = ndi.grey_dilation(label, size=3)
    touching = sorted({(int(a), int(b)) for a, b in zip(label.ravel(), grown.ravel()) if a and b and a != b})
    assert touching, "the image has touching nuclei"
    a, b = touching[0]
    merged, in_b = maps.copy(), label == b
    (ya, xa), (ys, xs) = np.argwhere(label == a).mean(0), np.nonzero(in_b)
    merged[1, in_b], merged[2, in_b] = (ya - ys) / scale, (xa - xs) / scale
    assert len(np.unique(family.postprocess(merged))) == len(np.unique(pred)) - 1

    def raw(m):  # the network output whose activation is m
        p = np.clip(m[0], 1e-4, 1 - 1e-4)
        return torch.from_numpy(np.stack([np.log(p / (1 - p)), *np.arctanh(m[1:3]), m[3]]).astype(np.float32))

    target = torch.from_numpy(label)[None]
    truth, wrong = (float(family.loss(raw(m)[None], target)) for m in (maps, merged))
    assert truth < 0.05 < wrong


def test_spatial_embeddings_search_only_where_a_claim_can_reach():
    """The windowed search of cluster_seeds claims what a search of every foreground pixel claims, here on maps
    whose offsets often sit at the +-1 bound (the window's edge)."""
    from skimage.segmentation import relabel_sequential

    from hub.models.families.segmentation import remove_small
    from hub.models.families.spatial import cluster_seeds

    rng = np.random.default_rng(0)
    maps = np.stack(
        [rng.random((96, 80)), *np.clip(rng.normal(0, 0.8, (2, 96, 80)), -1, 1), rng.normal(0.05, 0.1, (96, 80))]
    ).astype(np.float32)
    scale, threshold, seed_threshold, min_size = 4.0, 0.3, 0.8, 2
    seeds = maps[0]
    mask = seeds > threshold
    ys, xs = np.nonzero(mask)
    emb = np.stack([ys / scale + maps[1][mask], xs / scale + maps[2][mask]], 1).astype(np.float32)
    radius2 = np.log(2) / np.exp(10 * maps[3][mask].astype(np.float64))
    free, claimed, k, s = np.ones(len(emb), bool), np.zeros(len(emb), np.int32), 0, seeds[mask]
    for p in np.argsort(-s, kind="stable"):  # every pixel, every time
        if s[p] < seed_threshold:
            break
        if free[p]:
            near = np.flatnonzero(((emb - emb[p]) ** 2).sum(1) < radius2[p])  # p among them
            if len(near) >= min_size and 2 * free[near].sum() > len(near):
                k += 1
                claimed[near[free[near]]] = k
            free[near] = free[p] = False
    brute = np.zeros(seeds.shape, np.int32)
    brute[mask] = claimed
    brute = relabel_sequential(remove_small(brute, min_size))[0]
    assert brute.max() > 20
    assert np.array_equal(cluster_seeds(maps, scale, threshold, seed_threshold, min_size), brute)


def test_watershed_boundary_width_thickens_the_rim(built):
    from scipy import ndimage as ndi

    img = open_dataset(built("dsb2018-fluo"))
    label = np.asarray(img.image(img.ids("train")[0]).label("instances"))
    thin = create_family("deep-watershed", {}).target(label)
    thick = create_family("deep-watershed", {"boundary_width": 3}).target(label)
    assert ((thick > 0) == (label > 0)).all() and ((thin == 2) <= (thick == 2)).all()
    assert (thick == 2).sum() > 1.5 * (thin == 2).sum() and (thick == 1).any()
    # an interior pixel has only its own object within 3 steps (4-connected): touching cells stay apart
    ball = ndi.generate_binary_structure(2, 1)
    ball = ndi.iterate_structure(ball, 3)
    same = (ndi.maximum_filter(label, footprint=ball) == label) & (ndi.minimum_filter(label, footprint=ball) == label)
    assert same[thick == 1].all()


@pytest.mark.parametrize("family", ["classifier", "unet-regression", "spatial-embeddings"])
def test_test_time_views_make_predictions_rotation_and_flip_equivariant(family, built, tmp_path):
    path = built(CASES[family][0])
    options = {**CASES[family][2].get("options", TINY["options"]), "tta": True}  # a classifier has no U-Net depth
    model = train(tiny(f"tta-{family}", family, path, options=options), tmp_path / "m")
    assert model.card.architecture.options["tta"] is True
    ds = open_dataset(path)
    img = ds.image(ds.ids("test")[0])
    index = [ds.card.channel_names.index(c) for c in model.card.channel_names]
    raw = (img.read() if "c" in img.axes else img.read()[None])[index][:, :64, :64]  # square, a stride multiple
    plain = Model(model.card, model.net, create_family(family, {**options, "tta": False}))

    def turned(x, k, flip, vectors=False):  # the same view of an image (C, Y, X) or of its maps
        if x.ndim < 3:  # class scores are unchanged
            return x
        x = np.rot90(x, k, axes=(-2, -1))
        x = np.array(x[..., ::-1] if flip else x)
        if vectors:  # spatial embeddings: channels 1, 2 are offsets (y, x), which turn with the image
            for _ in range(k):  # a counter-clockwise quarter turn: (dy, dx) -> (-dx, dy)
                x[1], x[2] = -x[2].copy(), x[1].copy()
            if flip:
                x[2] = -x[2]
        return x

    maps = model.maps(raw)
    vectors = family == "spatial-embeddings"
    for k, flip in [(1, False), (2, True), (3, False), (0, True)]:
        expected = turned(maps, k, flip, vectors)
        np.testing.assert_allclose(model.maps(turned(raw, k, flip)), expected, rtol=1e-4, atol=1e-5)
    differs = [np.abs(plain.maps(turned(raw, k, False)) - turned(plain.maps(raw), k, False)).max() for k in (1, 2)]
    assert max(differs) > 1e-4  # without the views the network alone is not invariant


# -- family hooks, configuration schemas (no data needed) ------------------------------------------------------
MODEL_CARDS = Path(__file__).resolve().parent.parent / "model_cards"


def test_each_family_owns_its_tuning_grid_and_output_facts():
    from hub.models._family import family_classes

    classes = family_classes()
    watershed = {"threshold": [0.4, 0.5, 0.6], "seed_threshold": [0.5, 0.6, 0.7, 0.8], "min_seed": [4, 16, 64]}
    assert classes["deep-watershed"].tuning_grid == watershed
    # the tracker tunes its per-frame detector, down to low foreground thresholds (whole nuclei for SEG)
    assert classes["detect-link"].tuning_grid == {**watershed, "threshold": [0.02, 0.05, 0.1, 0.2, 0.4, 0.5]}
    assert classes["embeddings"].tuning_grid == {"threshold": [0.5, 0.6, 0.7], "bandwidth": [1.0, 2.0, 3.0, 4.0, 6.0]}
    spatial = {"threshold": [0.3, 0.4, 0.5], "seed_threshold": [0.6, 0.7, 0.8, 0.9]}
    assert classes["spatial-embeddings"].tuning_grid == spatial
    assert {n for n, c in classes.items() if c.tuning_grid} == {
        "deep-watershed",
        "detect-link",
        "embeddings",
        "spatial-embeddings",
    }
    assert classes["detect-link"].tuning_metric.startswith("DET")
    assert {n for n, c in classes.items() if c.probabilities} == {"classifier", "unet", "deep-watershed", "detect-link"}
    assert {n for n, c in classes.items() if c.maps_are_prediction} == {"classifier", "unet-regression"}
    assert {n for n, c in classes.items() if c.normalize == "dataset"} == {"classifier"}
    assert "movie" in classes["detect-link"].usage and "movie" not in classes["deep-watershed"].usage
    for spec in tasks():  # the default family of each task does that task
        assert classes[spec.default_family].task == spec.name


def test_output_names_come_from_the_family():
    card = load_card(ModelCard, MODEL_CARDS / "dsb2018-watershed" / "1.2.0" / "card.yaml")
    assert create_family("deep-watershed").output_names(card, 3) == ["background", "interior", "boundary"]
    assert create_family("detect-link").output_names(card, 3) == ["background", "interior", "boundary"]
    assert create_family("embeddings").output_names(card, 3) == ["foreground", "embedding1", "embedding2"]
    assert create_family("spatial-embeddings").output_names(card, 4) == ["seed", "offset_y", "offset_x", "sigma"]
    assert create_family("deep-watershed").output_names(card, 2) == ["channel0", "channel1"]  # not what it names
    isl = load_card(ModelCard, MODEL_CARDS / "isl-dapi" / "1.1.0" / "card.yaml")
    assert create_family("unet-regression").output_names(isl, 1) == isl.outputs.channels


class _Maps:
    """A stand-in model: fixed maps for any image, and a record of the calls (image, scale)."""

    def __init__(self, maps: np.ndarray, channels: int = 1):
        from types import SimpleNamespace

        self.card = SimpleNamespace(ref="stub@0.1.0", inputs=SimpleNamespace(channels=[None] * channels))
        self.fixed, self.calls = maps, []

    def maps(self, image: np.ndarray, scale: float = 1.0) -> np.ndarray:
        self.calls.append((image.shape, scale))
        return self.fixed


def _blobs() -> np.ndarray:
    """Deep-watershed maps (background, interior, boundary) of two squares, 6x6 and 2x2 pixels."""
    maps = np.zeros((3, 32, 32), np.float32)
    maps[0] = 1
    for y, x, n in ((4, 4, 6), (20, 20, 2)):
        maps[:, y : y + n, x : x + n] = np.array([0, 1, 0], np.float32)[:, None, None]
    return maps


def test_model_predict_delegates_to_its_family():
    from hub.models.model import Model as M

    calls = []

    class Spy:
        def predict(self, model, image, scale):
            calls.append((model, image, scale))
            return "prediction"

    model = object.__new__(M)  # no card or network needed: prediction is the family's
    model.family = Spy()
    image = np.zeros((1, 8, 8))
    assert model.predict(image, 0.5) == "prediction" and calls == [(model, image, 0.5)]
    assert model.predict(image) == "prediction" and calls[-1][2] == 1.0


def test_family_predict_postprocesses_maps_at_the_inference_scale():
    stub = _Maps(_blobs())
    watershed = create_family("deep-watershed", {"min_size": 8, "min_seed": 1})
    labels = watershed.predict(stub, np.zeros((1, 32, 32)))
    assert stub.calls == [((1, 32, 32), 1.0)] and labels.max() == 1  # the 2x2 square is under min_size 8
    assert watershed.predict(stub, np.zeros((1, 32, 32)), scale=2.0).max() == 2  # 8 px at scale 2 -> 2 px


def test_the_tracker_predicts_a_movie_frame_by_frame_then_links():
    stub = _Maps(_blobs())
    tracker = create_family("detect-link", {"min_size": 1, "min_seed": 1})
    masks, tracks = tracker.predict(stub, np.zeros((3, 32, 32)))  # (T, Y, X) of a 1-channel model
    assert masks.shape == (3, 32, 32) and len(stub.calls) == 3 and stub.calls[0] == ((1, 32, 32), 1.0)
    assert {t.label for t in tracks} == {int(v) for v in np.unique(masks) if v} and len(tracks) == 2
    assert all((t.begin, t.end, t.parent) == (0, 2, 0) for t in tracks)
    with pytest.raises(InvalidInput, match="expects a movie"):
        tracker.predict(stub, np.zeros((32, 32)))


def _recipe(tmp_path, text: str) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text("name: x\ntask: instance-segmentation\ndataset: nowhere\n" + text)
    return path


@pytest.mark.parametrize(
    "text, words",
    [
        ("options: {min_sise: 4}\n", ["options.min_sise: ", "'min_sise': unknown option", "min_size"]),
        ("family: embeddings\noptions: {bandwidth: 0}\n", ["options.bandwidth: ", "greater than 0"]),
        ("family: deep-watershd\n", ["family: unknown model family 'deep-watershd'"]),
        ("tune_postprocess: {seed_treshold: [0.5]}\n", ["tune_postprocess.seed_treshold: ", "unknown option"]),
        ("tune_postprocess: {threshold: [0.5, 2]}\n", ["tune_postprocess.threshold: ", "less than or equal to 1"]),
        ("epoch: 3\n", ["epoch: Extra inputs are not permitted"]),
        ("epochs: 0\n", ["epochs: Input should be greater than 0"]),
        ("grid: {lrr: [0.1, 0.01]}\n", ["grid: 'lrr' is not a setting a grid can vary"]),
        ("members: 3\ngrid: {lr: [0.1, 0.01]}\n", ["recipe.yaml: members and grid: an ensemble trains one"]),
        ("normalize: percentile\n", ["normalize: Input should be 'image' or 'dataset'"]),
        ("intensity: {scale: [0, 2]}\n", ["intensity.scale: [low, high] with 0.1 <= low <= high <= 10, got [0, 2]"]),
        ("intensity: {gamma: [1.5, .nan]}\n", ["intensity.gamma: [low, high] with 0.1 <= low", "got [1.5, nan]"]),
        ("intensity: {contrast: [1, 2]}\n", ["intensity.contrast: Extra inputs are not permitted"]),
    ],
)
def test_recipe_errors_name_the_file_and_the_field_path(tmp_path, text, words):
    from hub.models import load_recipe

    path = _recipe(tmp_path, text)
    with pytest.raises((InvalidInput, CardError)) as info:
        load_recipe(path)
    line = str(info.value)
    assert line.startswith(f"{path}: ") and len(line.splitlines()) == 1, line
    for w in words:
        assert w in line, line


def test_fine_tune_options_are_checked_with_the_base_model(tmp_path):
    from hub.models import load_recipe

    # the base model's family is known only once it is loaded: the recipe reads, training refuses the typo
    cfg = load_recipe(_recipe(tmp_path, f"base_model: {MODEL_CARDS / 'dsb2018-watershed' / '1.2.0'}\n"))
    assert cfg.options == {}
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "card.yaml").write_text("")  # refused before the dataset is read
    bad = cfg.model_copy(update={"options": {"min_sise": 3}, "dataset": str(tmp_path / "ds")})
    with pytest.raises(InvalidInput, match=r"options\.min_sise: deep-watershed option 'min_sise': unknown option"):
        train(bad, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_card_option_typos_name_the_field_path_when_the_model_is_read(tmp_path):
    import shutil

    import yaml

    folder = tmp_path / "m"
    shutil.copytree(MODEL_CARDS / "dsb2018-watershed" / "1.2.0", folder)
    card = yaml.safe_load((folder / "card.yaml").read_text())
    card["architecture"]["options"]["min_sise"] = 4
    (folder / "card.yaml").write_text(yaml.safe_dump(card, sort_keys=False))
    with pytest.raises(InvalidInput) as info:
        Model.load(folder)
    line = str(info.value)
    assert line.startswith(f"{folder / 'card.yaml'}: architecture.options.min_sise: deep-watershed option"), line


def test_the_recipes_users_write_have_a_json_schema(cli):
    import yaml

    def schema(kind):
        return json.loads(cli("schema", "show", kind, check=True).stdout)

    assert {"model-recipe", "dataset-recipe"} <= set(json.loads(cli("schema", "list", "--json", check=True).stdout))
    assert "model-recipe\tTrainConfig" in cli("schema", "list", check=True).stdout
    model_recipe, dataset_recipe = schema("model-recipe"), schema("dataset-recipe")
    assert model_recipe["title"] == "TrainConfig" and model_recipe["additionalProperties"] is False
    assert {"name", "task", "dataset"} <= set(model_recipe["required"]) and "tune_postprocess" in model_recipe[
        "properties"
    ]
    assert dataset_recipe["title"] == "Recipe" and dataset_recipe["additionalProperties"] is False
    for path in sorted(MODEL_CARDS.glob("*/recipe.yaml")):  # every bundled recipe is an instance of the schema
        assert set(yaml.safe_load(path.read_text())) <= set(model_recipe["properties"]), path


def test_tuning_returns_a_new_card_and_leaves_the_old_one_alone():
    from hub.models.tuning import tuned_card

    card = load_card(ModelCard, MODEL_CARDS / "dsb2018-watershed" / "1.2.0" / "card.yaml")
    before = card.model_dump()
    tuning = {"split": "val", "planes": 2, "metric": "acc@[.5:.95]", "grid": {}, "options": {"min_seed": 64}}
    tuned = tuned_card(card, {**tuning, "score": 0.5, "score_before": 0.4})
    assert card.model_dump() == before  # unchanged
    assert tuned.architecture.options == {**card.architecture.options, "min_seed": 64}
    assert list(tuned.architecture.options)[: len(card.architecture.options)] == list(card.architecture.options)
    assert tuned.training.postprocess_tuning["score"] == 0.5 and tuned.weights == card.weights
