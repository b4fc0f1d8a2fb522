"""Bundled baselines (``model_cards/``): recipes that load, committed models and records that verify, and
``install`` publishing them (or a quick-mode stand-in) to a registry on the real DSB2018 data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from hub.baselines import baselines, get_baseline, install
from hub.bench import get_benchmark, leaderboard
from hub.bench.evaluate import evaluate_model
from hub.cards import DatasetCard, ModelCard, load_card
from hub.curate import publish_dataset
from hub.errors import IntegrityError
from hub.models import Model, load_recipe, publish_model, train
from hub.registry import Registry

TINY = {
    "name": "tiny-base",
    "task": "instance-segmentation",
    "dataset": "dsb2018-fluo@1.0.1",
    "benchmarks": ["dsb2018-fluo/instance"],
    "backbone": "test_resnet",
    "options": {"depth": 3, "decoder_channels": 8},
    "patch": 64,
    "batch_size": 2,
    "epochs": 1,
    "steps_per_epoch": 1,
    "val_batches": 1,
}


def test_every_bundled_recipe_loads_and_names_real_benchmarks():
    found = baselines()
    assert found, "model_cards/ holds no recipes"
    for base in found:
        assert base.folder.name == base.name, f"{base.folder}: the folder must be named after the model"
        assert base.recipe.benchmarks, f"{base.folder}/recipe.yaml names no benchmark"
        for name in base.recipe.benchmarks:
            get_benchmark(name)


def test_committed_baselines_verify_against_their_cards_and_records():
    total = 0
    for base in baselines():
        if not base.committed:
            continue
        model = Model.load(base.model_dir)  # checks the weights' SHA-256 against the card
        card = model.card
        assert (card.name, card.version) == (base.name, base.recipe.version)
        assert card.weights.size <= 10_000_000, f"{base.model_dir}: weights over 10 MB"
        assert (base.folder / f"{card.version}.yaml").resolve() == (base.model_dir / "card.yaml").resolve()
        total += sum(p.stat().st_size for p in base.folder.rglob("*") if p.is_file() and not p.is_symlink())
        for name in base.recipe.benchmarks:
            record = base.record(name)
            assert record is not None, f"{base.folder}: no result record for {name}"
            assert record["weights_sha256"] == card.weights.sha256 and record["model"] == card.ref
            assert record["split_sha256"] == get_benchmark(name).split_sha256
    assert total <= 128_000_000  # 10 MB at most per model, about 16 baselines


@pytest.fixture
def registry(built, tmp_path) -> Registry:
    reg = Registry(tmp_path / "registry")
    publish_dataset(reg, built("dsb2018-fluo"), accept_terms=True)
    return reg


def _recipe(folder: Path, **changes) -> Path:
    (folder / "tiny-base").mkdir(parents=True)
    path = folder / "tiny-base" / "recipe.yaml"
    path.write_text(yaml.safe_dump({**TINY, **changes}))
    return path


def test_install_trains_a_missing_baseline_in_quick_mode_once(registry, tmp_path):
    _recipe(tmp_path / "cards")
    logs: list[str] = []
    rows = install(registry, folder=tmp_path / "cards", log=logs.append)
    assert [(r["model"], r["benchmark"], r["quick"]) for r in rows] == [
        ("tiny-base-quick@0.1.0", "dsb2018-fluo/instance", True)
    ]
    assert any("quick mode" in m for m in logs)
    assert registry.versions("models", "tiny-base-quick") == ["0.1.0"]
    board = leaderboard(get_benchmark("dsb2018-fluo/instance"), registry)
    assert [r["model"] for r in board["rows"]] == ["tiny-base-quick@0.1.0"]
    assert board["rows"][0]["value"] == rows[0]["value"]

    logs.clear()  # a second run trains, publishes and evaluates nothing
    install(registry, folder=tmp_path / "cards", log=logs.append)
    assert not any("quick mode" in m or "evaluating" in m for m in logs), logs
    assert len(registry.results("dsb2018-fluo/instance")) == 1


def test_install_publishes_committed_weights_and_records_as_they_are(registry, built, tmp_path):
    recipe = _recipe(tmp_path / "cards")
    cfg = load_recipe(recipe, dataset=str(built("dsb2018-fluo")))
    model = train(cfg, recipe.parent / cfg.version)
    (recipe.parent / f"{cfg.version}.yaml").symlink_to(f"{cfg.version}/card.yaml")
    bench = get_benchmark("dsb2018-fluo/instance")
    record = evaluate_model(bench, built("dsb2018-fluo"), model).model_dump(mode="json")
    (recipe.parent / "results").mkdir()
    (recipe.parent / "results" / "dsb2018-fluo.instance.json").write_text(json.dumps(record))

    logs: list[str] = []
    rows = install(registry, folder=tmp_path / "cards", log=logs.append)
    assert not any("evaluating" in m for m in logs), logs
    assert rows[0]["model"] == "tiny-base@0.1.0" and not rows[0]["quick"] and rows[0]["value"] == record["value"]
    (entry,) = registry.results(bench.name)
    assert registry.result_record(entry) == record
    pulled = registry.manifest("models", "tiny-base@0.1.0")[0]
    assert pulled["card"]["weights"]["sha256"] == model.card.weights.sha256

    # a record that does not match the weights is not trusted: the pulled model is evaluated instead
    record["weights_sha256"] = "0" * 64
    (recipe.parent / "results" / "dsb2018-fluo.instance.json").write_text(json.dumps(record))
    other = Registry(tmp_path / "other")
    publish_dataset(other, built("dsb2018-fluo"), accept_terms=True)
    logs.clear()
    install(other, folder=tmp_path / "cards", log=logs.append)
    assert any("does not match" in m for m in logs) and any("evaluating" in m for m in logs)
    (entry,) = other.results(bench.name)
    assert other.result_record(entry)["weights_sha256"] == model.card.weights.sha256


def test_install_refuses_a_registry_holding_other_weights_under_the_same_version(registry, built, tmp_path):
    recipe = _recipe(tmp_path / "cards")
    cfg = load_recipe(recipe, dataset=str(built("dsb2018-fluo")))
    train(cfg, recipe.parent / cfg.version)
    train(cfg.model_copy(update={"seed": 1}), tmp_path / "impostor")
    publish_model(registry, tmp_path / "impostor")
    with pytest.raises(IntegrityError, match="other weights"):
        install(registry, folder=tmp_path / "cards", log=lambda m: None)
    assert (
        load_card(ModelCard, recipe.parent / cfg.version / "card.yaml").weights.sha256
        != load_card(ModelCard, tmp_path / "impostor" / "card.yaml").weights.sha256
    )


def test_the_dsb_nuclei_model_segments_nuclei_from_outside_the_benchmark(data_dir, tmp_path, cli):
    """GOWT1 (confocal, 1024 x 1024, nuclei about twice the DSB2018 size): `models predict --scale 0.5`
    finds the gold-annotated nuclei of frame 1 of sequence 02, which the model never saw."""
    import tifffile

    from hub.metrics.instance import instance_counts

    model = next((b.model_dir for b in baselines() if b.name == "dsb2018-watershed" and b.committed), None)
    assert model is not None, "model_cards/dsb2018-watershed has no committed model"
    gowt1 = data_dir / "tracking" / "Fluo-N2DH-GOWT1"
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "t001.tif").write_bytes((gowt1 / "02" / "t001.tif").read_bytes())
    r = cli("models", "predict", model, tmp_path / "in", "--out", tmp_path / "out", "--scale", "0.5")
    assert r.returncode == 0, r.stderr
    pred = tifffile.imread(tmp_path / "out" / "t001.tif")
    gold = tifffile.imread(gowt1 / "02_GT" / "SEG" / "man_seg001.tif")
    assert pred.shape == gold.shape
    counts = instance_counts(gold, pred, taus=(0.5,))
    assert counts.n_true >= 20 and counts.tp[0] / counts.n_true >= 0.7


def test_a_learning_curve_trains_nested_subsets_from_the_base_model_and_from_scratch(built, tmp_path, cli):
    """``cellhub models learning-curve`` on the BBBC039 few-shot recipe (a short budget): one and all training
    fields, fine-tuned from the DSB2018 model and from scratch, each scored on the test split; the zero-shot point
    is the DSB2018 model on BBBC039, and a seed's smaller sets lie inside its larger ones. Both starts, and the
    zero-shot point, run the same network and post-processing (the base model's options, then ``--option``)."""
    from hub.bench.benchmarks import benchmark_dataset
    from hub.bench.curve import subset
    from hub.dataset import open_dataset
    from hub.models import create_family

    base = get_baseline("bbbc039-few-shot-dsb")
    recipe = yaml.safe_load((base.folder / "recipe.yaml").read_text())
    recipe.update(
        dataset=str(built("bbbc039")),
        base_model=str(get_baseline("dsb2018-watershed").model_dir),
        epochs=1,
        steps_per_epoch=2,
        batch_size=2,
        patch=64,
        tune_postprocess=False,
    )
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    args = ["--out", tmp_path / "curve", "--n", "1", "--n", "all", "--seed", "0", "--option", "tta=false", "--json"]
    r = cli("models", "learning-curve", tmp_path / "recipe.yaml", *args)
    assert r.returncode == 0, r.stderr
    curve = json.loads(r.stdout)
    assert curve == json.loads((tmp_path / "curve" / "curve.json").read_text())
    train_ids = open_dataset(built("bbbc039")).ids("train")
    assert curve["pool"] == len(train_ids) and curve["unit"] == "images"
    assert [(p["init"], p["n"]) for p in curve["points"]] == [
        ("pretrained", 1),
        ("pretrained", None),
        ("scratch", 1),
        ("scratch", None),
    ]
    assert all(0 <= p["value"] <= 1 for p in curve["points"])
    dsb = Model.load(get_baseline("dsb2018-watershed").model_dir)  # zero-shot: the base model, with the curve's options
    no_tta = Model(dsb.card, dsb.net, create_family("deep-watershed", {**dsb.card.architecture.options, "tta": False}))
    bench = get_benchmark("bbbc039/instance")
    assert curve["zero_shot"] == evaluate_model(bench, benchmark_dataset(bench, built("bbbc039")), no_tta).value
    assert curve["zero_shot"] != get_baseline("dsb2018-watershed").record("bbbc039/instance")["value"]  # made with tta
    card = load_card(ModelCard, tmp_path / "curve" / "pretrained" / "n1-seed0" / "card.yaml")
    assert card.training.hyperparameters["samples"] == subset(train_ids, 1, 0)
    scratch = load_card(ModelCard, tmp_path / "curve" / "scratch" / "n1-seed0" / "card.yaml")
    base_options = load_card(ModelCard, get_baseline("dsb2018-watershed").model_dir / "card.yaml").architecture.options
    assert base_options["tta"] is True and base_options["decoder_channels"] != 32  # 32: the family's default
    assert card.architecture.options == scratch.architecture.options == curve["options"]
    assert curve["options"] == {**base_options, "tta": False}
    assert set(subset(train_ids, 2, 7)) < set(subset(train_ids, 5, 7)) and subset(train_ids, 99, 7) is None
    assert set(curve["summary"]) == {"pretrained", "scratch", "gap@5"}


def test_a_curves_zero_shot_tracker_is_the_base_segmenter_with_the_recipes_linking(data_dir):
    """The zero-shot point of the GOWT1 curve: the DSB2018 segmenter, never trained on GOWT1, run as the
    recipe's detect-link tracker. On two real frames its masks are the segmenter's own (same network, same
    options), linked into tracks; a family not built on the base's gets no zero-shot model."""
    import tifffile

    from hub.bench.curve import untrained
    from hub.models import create_family

    cfg = load_recipe(get_baseline("gowt1-few-shot-dsb").folder / "recipe.yaml")
    base = Model.load(get_baseline("dsb2018-watershed").model_dir)
    options = {**base.card.architecture.options, **cfg.options, "tta": False}
    data = load_card(DatasetCard, Path(__file__).parents[1] / "datasets" / "ctc-gowt1" / "card.yaml")
    tracker = untrained(cfg, base, options, data)
    assert tracker is not None and tracker.card.task == "tracking" and tracker.net is base.net
    assert tracker.card.channel_names == ["GFP"] and base.card.channel_names == ["nuclei"]
    gowt1 = data_dir / "tracking" / "Fluo-N2DH-GOWT1" / "01"
    movie = np.stack([tifffile.imread(gowt1 / f"t{t:03d}.tif") for t in (0, 1)])
    masks, tracks = tracker.predict(movie)
    segmenter = create_family("deep-watershed", {k: v for k, v in options.items() if k not in ("max_gap", "divisions")})
    alone = Model(base.card, base.net, segmenter)
    for frame, mask in zip(movie, masks):
        own = alone.predict(frame)
        assert (mask > 0).sum() > 0 and np.array_equal(mask > 0, own > 0)
        assert len(np.unique(mask)) == len(np.unique(own)) >= 10  # GOWT1 frames hold 20-30 nuclei
    assert len(tracks) >= 10
    assert untrained(cfg.model_copy(update={"family": "spatial-embeddings"}), base, {}, data) is None


def test_the_gowt1_tracker_masks_cover_whole_nuclei_not_only_the_markers_it_learnt(data_dir):
    """gowt1-tracker learnt the TRA markers of sequence 01 (about half of each nucleus); its foreground threshold,
    tuned on sequence 01 for (DET + SEG) / 2, grows each detection into the whole nucleus. On the two fully
    annotated gold frames of sequence 02 (50 nuclei), the tuned masks score SEG far above the markers' level."""
    import tifffile

    from hub.models import Model
    from hub.models._family import create_family
    from hub.models.tuning import seg_score

    folder = next((b.model_dir for b in baselines() if b.name == "gowt1-tracker" and b.committed), None)
    assert folder is not None, "model_cards/gowt1-tracker has no committed model"
    model = Model.load(folder)
    tuning = model.card.training.postprocess_tuning
    assert tuning["metric"] == "(DET + SEG) / 2" and tuning["split"] == "train"
    gowt1 = data_dir / "tracking" / "Fluo-N2DH-GOWT1"
    gold = [tifffile.imread(gowt1 / "02_GT" / "SEG" / f"man_seg{t}.tif") for t in ("001", "052")]
    maps = [model.maps(tifffile.imread(gowt1 / "02" / f"t{t}.tif")) for t in ("001", "052")]
    options = model.card.architecture.options
    tuned = seg_score(gold, [model.family.postprocess(m) for m in maps])
    markers = create_family(model.card.architecture.family, {**options, "threshold": 0.5})
    assert tuned > 0.85 and tuned > seg_score(gold, [markers.postprocess(m) for m in maps]) + 0.15
