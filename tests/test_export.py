"""Model exports: a Hugging Face model card that huggingface_hub parses with its model-index results, and a
bioimage.io package that bioimage.io's spec validator accepts offline and whose TorchScript weights reproduce
the test output from the test input. Tiny models trained on the real curated datasets."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
import yaml

from hub.cards.model import ResultSummary
from hub.curate import open_dataset
from hub.errors import BuildError, InvalidInput
from hub.models import Model, TrainConfig, train
from hub.models.export import export

TINY = dict(
    backbone="test_resnet",
    options={"depth": 3, "decoder_channels": 8},
    patch=64,
    batch_size=2,
    steps_per_epoch=1,
    epochs=1,
    val_batches=1,
)
CITE = (
    "Caicedo et al. 2019, Nucleus segmentation across imaging experiments, Nature Methods, "
    "doi:10.1038/s41592-019-0612-7"
)
CASES = {
    "deep-watershed": (
        "dsb2018-fluo",
        "instance-segmentation",
        {},
        ResultSummary(
            benchmark="dsb2018-fluo/instance",
            split="test",
            primary_metric="ap50",
            metrics={"ap50": 0.71, "f1_iou50": 0.8, "sq": None},
            ci95=[0.65, 0.76],
            split_sha256="ab" * 32,
        ),
    ),
    "classifier": (
        "jurkat-cellcycle",
        "classification",
        dict(channels=["bright-field", "dark-field"], options={}),
        ResultSummary(
            benchmark="jurkat-cellcycle/classification",
            split="test",
            primary_metric="balanced_accuracy",
            metrics={"balanced_accuracy": 0.42, "macro_f1": 0.38},
        ),
    ),
}


@pytest.fixture(scope="module")
def tiny_models(built, tmp_path_factory):
    """family -> (model folder, model with a result added to its card, a real raw (C, Y, X) test image)."""
    root = tmp_path_factory.mktemp("export-models")
    out = {}
    for family, (name, task, more, result) in CASES.items():
        path = built(name)
        folder = root / family
        cfg = TrainConfig(
            **{
                **TINY,
                **more,
                "name": f"x-{family}",
                "task": task,
                "family": family,
                "dataset": str(path),
                "citation": [CITE],
                "intended_use": "Tests of the exports.",
                "limitations": "Trained for one step.",
            }
        )
        model = train(cfg, folder)
        model.card.results = [result]
        model.save(folder)  # the card now carries the result
        model = Model.load(folder)
        ds = open_dataset(path)
        img = ds.image(ds.ids("test")[0])
        arr = img.read()
        index = [ds.card.channel_names.index(c) for c in model.card.channel_names]
        raw = (arr if "c" in img.axes else arr[None])[index]
        out[family] = folder, model, raw
    return out


@pytest.mark.parametrize("family", sorted(CASES))
def test_hf_card_parses_with_model_index_results(family, tiny_models, tmp_path):
    from huggingface_hub import ModelCard

    folder, model, _ = tiny_models[family]
    files = export(model, "hf", tmp_path / "hf", source=folder)
    assert files == ["README.md", "card.yaml", "weights.safetensors"]
    card = ModelCard.load(tmp_path / "hf" / "README.md")
    data = card.data
    assert data.license == "mit" and data.library_name == "cellhub" and model.card.task in data.tags
    assert data.datasets == [model.card.training.dataset.split("@")[0]]
    result = model.card.results[0]
    got = {e.metric_type: e.metric_value for e in data.eval_results}
    assert got == {k: v for k, v in result.metrics.items() if v is not None}
    for e in data.eval_results:
        assert e.dataset_name == result.benchmark and e.dataset_split == result.split
        assert e.task_type == {"classification": "image-classification"}.get(model.card.task, "image-segmentation")
    assert card.data.to_dict()["model-index"][0]["name"] == model.card.name
    text = card.text
    for section in ("## Intended use", "## Limitations", "## Inputs", "## Training", "## Evaluation"):
        assert section in text
    assert model.card.training.dataset in text and "Tests of the exports." in text
    # the folder is also a loadable model: the same weights bytes as the card records
    again = Model.load(tmp_path / "hf")
    assert again.card.weights.sha256 == model.card.weights.sha256
    assert (tmp_path / "hf" / "weights.safetensors").read_bytes() == (folder / "weights.safetensors").read_bytes()
    # without the source folder the weights are serialised again: the same tensors, a card that matches them
    export(model, "hf", tmp_path / "hf2")
    for a, b in zip(Model.load(tmp_path / "hf2").net.state_dict().values(), model.net.state_dict().values()):
        assert torch.equal(a, b)


def _preprocess(rdf: dict, x: np.ndarray) -> np.ndarray:
    """The rdf's pre-processing, implemented from the bioimage.io spec (not by the hub), on (B, C, Y, X)."""
    for step in rdf["inputs"][0]["preprocessing"]:
        kw = step["kwargs"]
        if step["id"] == "scale_range":
            assert kw["axes"] == ["y", "x"]
            lo = np.percentile(x, kw["min_percentile"], axis=(2, 3), keepdims=True)
            hi = np.percentile(x, kw["max_percentile"], axis=(2, 3), keepdims=True)
            x = (x - lo) / (hi - lo + kw["eps"])
        elif step["id"] == "scale_linear":
            assert kw["axis"] == "channel"
            x = x * np.asarray(kw["gain"])[None, :, None, None] + np.asarray(kw["offset"])[None, :, None, None]
        else:
            raise AssertionError(step["id"])
    return x.astype(np.float32)


@pytest.mark.parametrize("family", sorted(CASES))
def test_bioimageio_package_validates_and_reproduces(family, tiny_models, tmp_path):
    from bioimageio.spec import ValidationContext, load_description, validate_format

    _, model, raw = tiny_models[family]
    out = tmp_path / "bio"
    files = export(model, "bioimageio", out, sample=raw)
    assert {
        "rdf.yaml",
        "README.md",
        "weights.torchscript.pt",
        "test_input.npy",
        "test_output.npy",
        "card.yaml",
        "weights.safetensors",
    } <= set(files)
    assert not any(f.endswith((".pth", ".pkl", ".ckpt")) for f in files)

    descr = load_description(out / "rdf.yaml", perform_io_checks=True)  # local files: sha256 checked, offline
    summary = descr.validation_summary
    assert summary.status in ("valid-format", "passed"), summary.format()
    rdf = yaml.safe_load((out / "rdf.yaml").read_text())
    offline = ValidationContext(root=out, perform_io_checks=False)
    assert validate_format(rdf, context=offline).status in ("valid-format", "passed")

    card, inp, outp = model.card, rdf["inputs"][0], rdf["outputs"][0]
    assert [a["type"] for a in inp["axes"]] == ["batch", "channel", "space", "space"]
    assert inp["axes"][1]["channel_names"] == card.channel_names
    assert rdf["license"] == card.license and rdf["cite"][0]["doi"] == "10.1038/s41592-019-0612-7"
    x = np.load(out / "test_input.npy")
    y = np.load(out / "test_output.npy")
    if family == "classifier":
        assert inp["preprocessing"][0]["id"] == "scale_linear"
        assert [a["type"] for a in outp["axes"]] == ["batch", "channel"]
        assert outp["axes"][1]["channel_names"] == card.outputs.classes and y.shape == (1, len(card.outputs.classes))
        np.testing.assert_array_equal(x[0], raw.astype(np.float32))  # the whole real crop
    else:
        assert inp["preprocessing"][0]["id"] == "scale_range"
        size, halo = inp["axes"][2]["size"], card.inputs.halo
        assert size["step"] == card.inputs.size_multiple and size["min"] % size["step"] == 0
        assert size["min"] - size["step"] <= 2 * halo < size["min"]  # the smallest input the halo leaves a core in
        assert outp["axes"][2]["size"] == {"tensor_id": "input", "axis_id": "y"}
        assert outp["axes"][2]["halo"] == card.inputs.halo
        assert y.shape == (1, 3, *x.shape[2:]) and x.shape[2] % card.inputs.size_multiple == 0

    # the TorchScript weights reproduce the test output from the test input, and so does the hub model
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit's deprecation notice
        net = torch.jit.load(str(out / "weights.torchscript.pt"))
    with torch.no_grad():
        got = net(torch.from_numpy(_preprocess(rdf, x))).numpy()
    np.testing.assert_allclose(got, y, atol=1e-4)
    np.testing.assert_allclose(model.maps(x[0]), y[0], atol=1e-4)

    # a tampered test tensor no longer matches its recorded sha256
    np.save(out / "test_output.npy", y + 1)
    assert load_description(out / "rdf.yaml", perform_io_checks=True).validation_summary.status == "failed"


def test_export_refuses_bad_format_and_non_empty_folder(tiny_models, tmp_path):
    _, model, _ = tiny_models["classifier"]
    with pytest.raises(InvalidInput, match="unknown export format"):
        export(model, "onnx", tmp_path / "x")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    with pytest.raises(BuildError, match="not empty"):
        export(model, "hf", tmp_path / "full")
    assert [p.name for p in (tmp_path / "full").iterdir()] == ["keep.txt"]
    assert not list(tmp_path.glob(".*partial*"))


def test_export_cli(tiny_models, built, tmp_path, cli):
    folder, model, _ = tiny_models["classifier"]
    r = cli(
        "models",
        "export",
        str(folder),
        "--format",
        "bioimageio",
        "--out",
        str(tmp_path / "bio"),
        "--sample",
        str(built("jurkat-cellcycle")),
        "--json",
    )
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    assert got["format"] == "bioimageio" and got["out"] == str(tmp_path / "bio") and "rdf.yaml" in got["files"]
    assert yaml.safe_load((tmp_path / "bio" / "rdf.yaml").read_text())["config"]["cellhub"]["ref"] == model.card.ref

    r = cli("models", "export", str(folder), "--format", "hf", "--out", str(tmp_path / "bio"))
    assert r.returncode == 1 and "not empty" in r.stderr and len(r.stderr.strip().splitlines()) == 1

    r = cli("models", "export", str(folder), "--format", "tflite", "--out", str(tmp_path / "other"))
    assert r.returncode == 1 and "unknown export format 'tflite'" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not (tmp_path / "other").exists()
