"""Memory and decompression bombs, and weights from outside: YAML alias bombs in cards and recipes, family options
that would allocate gigabytes, image files that declare huge images in a few kilobytes, predictions that declare
huge arrays, and weights files that are not safetensors or lie outside the model folder. Each is refused with one
line naming the file, before the memory is spent, and nothing is published or written."""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest
import tifffile
import yaml
import zarr

from hub.baselines import get_baseline
from hub.bench.predictions import read_channels, read_label_image
from hub.cards import ModelCard, load_card
from hub.config import REPO_ROOT
from hub.errors import CardError, InvalidInput
from hub.models import Model, TrainConfig, create_family, family_for_task, load_recipe, publish_model, train
from hub.ome import write_image
from hub.ome.files import image_shape, read_image_file
from hub.safety import load_yaml, load_yaml_file

MODEL = get_baseline("jurkat-dna").model_dir  # a committed label-free U-Net, 1.5 MB
GiB = 2**30


# -- helpers -------------------------------------------------------------------------------------------------


def run_cli(*args) -> tuple[int, str, str, int]:
    """``cellhub ARGS`` in a child process: exit code, stdout, stderr and the child's own peak RSS in bytes
    (``os.wait4`` reports the resources of that one child)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        p = subprocess.Popen(
            [sys.executable, "-c", "from hub.cli import main; main()", *map(str, args)], stdout=out, stderr=err
        )
        _, status, usage = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)  # reaped here; keep Popen from waiting again
        out.seek(0)
        err.seek(0)
        return p.returncode, out.read().decode(), err.read().decode(), usage.ru_maxrss * 1024


def assert_one_line_error(rc: int, err: str, *words: str) -> None:
    assert rc == 1, err
    line = err.strip()
    assert line.startswith("error:") and len(line.splitlines()) == 1, err
    for w in words:
        assert w in line, line


def model_copy(tmp_path: Path, name: str = "m") -> Path:
    folder = tmp_path / name
    shutil.copytree(MODEL, folder)
    return folder


def edit_card(folder: Path, edit) -> None:
    card = yaml.safe_load((folder / "card.yaml").read_text())
    edit(card)
    (folder / "card.yaml").write_text(yaml.safe_dump(card, sort_keys=False))


def nothing_published(registry: Path) -> bool:
    return not registry.exists() or not [p for p in registry.rglob("*") if p.is_file()]


def billion_laughs(indent: str = "") -> str:
    """YAML whose last key expands to 10**9 strings through nested aliases."""
    lines = [f'{indent}l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, 10):
        lines.append(f"{indent}l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]")
    return "\n".join(lines) + "\n"


def deflate_bomb_tiff(path: Path, height: int, width: int, rows_per_strip: int = 100) -> Path:
    """A valid baseline TIFF (8-bit grey, Adobe deflate) of ``height`` x ``width`` zeros whose strips all point to
    one compressed strip of zeros: a few kilobytes on disk, ``height * width`` bytes once decoded."""
    strip = zlib.compress(bytes(rows_per_strip * width), 9)
    n = -(-height // rows_per_strip)
    ifd = [
        (256, 4, 1, width),
        (257, 4, 1, height),
        (258, 3, 1, 8),
        (259, 3, 1, 8),
        (262, 3, 1, 1),
        (273, 4, n, "offsets"),
        (277, 3, 1, 1),
        (278, 4, 1, rows_per_strip),
        (279, 4, n, "counts"),
    ]
    offsets_at = 8 + 2 + 12 * len(ifd) + 4
    counts_at = offsets_at + 4 * n
    data_at = counts_at + 4 * n
    out = bytearray(b"II*\x00" + struct.pack("<IH", 8, len(ifd)))
    for tag, kind, count, value in ifd:
        value = (
            {"offsets": offsets_at, "counts": counts_at}.get(value, value)
            if n > 1
            else {"offsets": data_at, "counts": len(strip)}.get(value, value)
        )
        field = struct.pack("<HH", value, 0) if kind == 3 else struct.pack("<I", value)
        out += struct.pack("<HHI", tag, kind, count) + field
    out += struct.pack("<I", 0)  # no next IFD
    out += struct.pack(f"<{n}I", *[data_at] * n) + struct.pack(f"<{n}I", *[len(strip)] * n) + strip
    path.write_bytes(bytes(out))
    return path


def zarr_prediction(path: Path, shape: tuple[int, ...], chunks: tuple[int, ...]) -> Path:
    """An OME-Zarr label image whose level 0 declares ``shape`` with no chunk written (a few KB on disk)."""
    write_image(path, np.zeros((16, 16), np.int32), "yx")
    zarr.create_array(
        str(path / "0"), shape=shape, chunks=chunks, dtype="int32", fill_value=0, overwrite=True, zarr_format=3
    )
    return path


def peak_bytes(fn, *args) -> tuple[Exception | None, int]:
    """Run ``fn(*args)``; the exception it raised (or None) and the peak of Python/numpy allocations."""
    tracemalloc.start()
    try:
        fn(*args)
        raised = None
    except Exception as err:  # noqa: BLE001 - returned to the test
        raised = err
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return raised, peak


# -- 1. YAML ---------------------------------------------------------------------------------------------------


def test_alias_free_yaml_refuses_a_billion_laughs_and_keeps_plain_yaml():
    assert load_yaml("a: [1, 2]\nb: {c: true}\n") == {"a": [1, 2], "b": {"c": True}}
    with pytest.raises(yaml.YAMLError, match="aliases"):
        load_yaml(billion_laughs())


def test_card_with_an_alias_bomb_in_its_options_is_refused_by_info_and_publish(tmp_path):
    folder = model_copy(tmp_path)
    text = (folder / "card.yaml").read_text()
    bomb = "    bomb:\n" + billion_laughs(indent="      ")
    (folder / "card.yaml").write_text(text.replace("  options:\n", "  options:\n" + bomb, 1))
    card = folder / "card.yaml"
    with pytest.raises(CardError, match="aliases"):
        load_card(ModelCard, card)

    rc, _, err, rss = run_cli("models", "info", folder)
    assert_one_line_error(rc, err, str(card), "aliases")
    assert rss < 3 * GiB  # the child never expanded the bomb (an expanded one needs tens of GiB)
    registry = tmp_path / "registry"
    rc, _, err, rss = run_cli("models", "publish", folder, "--registry", registry)
    assert_one_line_error(rc, err, str(card), "aliases")
    assert rss < 3 * GiB and nothing_published(registry)


def test_recipes_and_oversized_cards_are_refused_with_the_file_named(tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("name: x\ntask: label-free\ndataset: d\n" + "grid:\n" + billion_laughs("  "))
    with pytest.raises(CardError, match="aliases") as info:
        load_recipe(recipe)
    assert str(recipe) in str(info.value)
    big = tmp_path / "card.yaml"
    big.write_text("name: x\ndescription: " + "x" * (4 * 2**20) + "\n")
    with pytest.raises(CardError, match="larger than"):
        load_card(ModelCard, big)
    with pytest.raises(InvalidInput, match="larger than"):
        load_yaml_file(big)


# -- 2. family options -----------------------------------------------------------------------------------------


def test_every_committed_card_and_recipe_validates_with_its_family_options():
    cards = sorted((REPO_ROOT / "model_cards").glob("*/*/card.yaml")) + sorted(
        p for p in (REPO_ROOT / "model_cards").glob("*/*.yaml") if p.name != "recipe.yaml"
    )
    recipes = sorted((REPO_ROOT / "model_cards").glob("*/recipe.yaml"))
    assert len(cards) >= 20 and len(recipes) >= 10
    for path in cards:
        card = load_card(ModelCard, path)
        family = create_family(card.architecture.family, card.architecture.options, path)
        assert family.options == card.architecture.options  # given options kept as given for the card
    for path in recipes:
        cfg = load_recipe(path)
        family = cfg.family or family_for_task(cfg.task)
        create_family(family, cfg.options, path)
        for key, values in (cfg.tune_postprocess if isinstance(cfg.tune_postprocess, dict) else {}).items():
            for v in values:
                create_family(family, {**cfg.options, key: v}, path)
    from hub.curate.recipe import load_recipe as load_dataset_recipe
    from hub.curate.recipe import recipe_names

    assert recipe_names()
    for name in recipe_names():
        load_dataset_recipe(name)


@pytest.mark.parametrize(
    "family, options, words",
    [
        ("deep-watershed", {"decoder_channels": 2000}, ["'decoder_channels'", "less than or equal to 512", "2000"]),
        ("deep-watershed", {"decoder_chanels": 16}, ["'decoder_chanels'", "unknown option", "decoder_channels"]),
        ("embeddings", {"embedding_dim": 100000}, ["'embedding_dim'"]),
        ("spatial-embeddings", {"offset_scale": 0}, ["'offset_scale'", "greater than 0"]),
        ("unet", {"depth": 9}, ["'depth'"]),
        ("unet", {"depth": 4.0}, ["'depth'", "valid integer"]),
        ("unet-regression", {"loss": "huber"}, ["'loss'"]),
        ("classifier", {"output_stride": 12}, ["'output_stride'"]),
        ("classifier", {"depth": 3}, ["'depth'", "unknown option"]),  # a classifier has no U-Net
        ("detect-link", {"max_gap": -1}, ["'max_gap'"]),
        ("detect-link", {"threshold": 1.5}, ["'threshold'"]),
        ("deep-watershed", {"tta": "yes"}, ["'tta'", "valid boolean"]),
        ("deep-watershed", {"min_size": float("inf")}, ["'min_size'"]),
    ],
)
def test_bad_family_options_are_one_line_errors(family, options, words):
    with pytest.raises(InvalidInput) as info:
        create_family(family, options, "x/card.yaml")
    line = str(info.value)
    assert line.startswith(f"x/card.yaml: {family} option ") and len(line.splitlines()) == 1, line
    for w in words:
        assert w in line, line


def test_typed_defaults_live_in_the_family():
    watershed = create_family("deep-watershed", {"min_size": 20})
    assert watershed.options == {"min_size": 20}  # what the card said
    assert (watershed.opts.min_size, watershed.opts.min_seed, watershed.opts.decoder_channels) == (20, 4, 32)
    assert create_family("detect-link").opts.max_distance is None
    assert create_family("classifier", {"output_stride": 8}).opts.output_stride == 8


def test_decoder_channels_2000_is_refused_before_the_network_is_built(tmp_path):
    folder = model_copy(tmp_path)
    edit_card(folder, lambda c: c["architecture"]["options"].update(decoder_channels=2000))
    card = folder / "card.yaml"
    with pytest.raises(InvalidInput, match="decoder_channels"):
        Model.load(folder)
    rc, _, err, rss = run_cli("models", "info", folder)
    assert_one_line_error(rc, err, str(card), "'decoder_channels'", "512")
    assert rss < 3 * GiB  # building it allocates 4.5 GB more than the import of torch
    registry = tmp_path / "registry"
    rc, _, err, _ = run_cli("models", "publish", folder, "--registry", registry)
    assert_one_line_error(rc, err, str(card), "'decoder_channels'")
    assert nothing_published(registry)
    edit_card(folder, lambda c: c["architecture"]["options"].update(decoder_channels=16, skip_connections=False))
    with pytest.raises(InvalidInput, match="'skip_connections': unknown option"):
        Model.load(folder)


def test_training_refuses_bad_options_before_it_reads_anything(tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("name: x\ntask: instance-segmentation\ndataset: nowhere\noptions: {decoder_channels: 2000}\n")
    with pytest.raises(InvalidInput, match="'decoder_channels'") as info:
        load_recipe(recipe)
    assert str(recipe) in str(info.value)
    cfg = TrainConfig(
        name="x",
        task="instance-segmentation",
        dataset=str(tmp_path / "nowhere"),
        grid={"options": [{"depth": 3}, {"depht": 3}]},
    )
    with pytest.raises(InvalidInput, match="'depht': unknown option"):  # the second trial, before the first trains
        train(cfg, tmp_path / "out")
    assert not (tmp_path / "out").exists()


# -- 3. image decoding within a pixel budget -------------------------------------------------------------------


def test_a_few_kilobytes_declaring_1_6_gigapixels_are_refused_before_decoding(tmp_path):
    small = deflate_bomb_tiff(tmp_path / "small.tif", 2000, 3000)
    assert not read_image_file(small).any() and read_image_file(small).shape == (2000, 3000)  # a real image
    bomb = deflate_bomb_tiff(tmp_path / "bomb.tif", 40000, 40000)
    assert bomb.stat().st_size < 16 * 2**10 and image_shape(bomb) == (40000, 40000)
    err, peak = peak_bytes(read_image_file, bomb)
    assert isinstance(err, InvalidInput), err
    assert str(err).startswith(f"{bomb}: ") and "(40000, 40000) uint8" in str(err) and "CELLHUB_MAX_PIXELS" in str(err)
    assert peak < 16 * 2**20  # decoding would have allocated 1.6 GB
    rc, _, out_err, rss = run_cli("models", "predict", model_copy(tmp_path), bomb, "--out", tmp_path / "pred")
    assert_one_line_error(rc, out_err, str(bomb), "(40000, 40000)")
    assert rss < 3 * GiB and not (tmp_path / "pred").exists()


def test_a_lower_pixel_budget_refuses_real_images(data_dir, monkeypatch):
    png = sorted((data_dir / "segmentation/dsb2018-fluo/stage1_train").glob("*/images/*.png"))[0]
    tif = sorted((data_dir / "tracking/Fluo-N2DH-GOWT1/01").glob("*.tif"))[0]
    shapes = {p: read_image_file(p).shape for p in (png, tif)}
    monkeypatch.setenv("CELLHUB_MAX_PIXELS", "1000")
    for path, shape in shapes.items():
        with pytest.raises(InvalidInput) as info:
            read_image_file(path)
        assert str(info.value).startswith(f"{path}: ") and f"{shape}" in str(info.value), str(info.value)
        assert "over the 1,000 allowed (CELLHUB_MAX_PIXELS)" in str(info.value)
    monkeypatch.setenv("CELLHUB_MAX_PIXELS", str(int(np.prod(shapes[tif]))))
    assert read_image_file(tif).shape == shapes[tif]  # exactly at the budget is allowed
    monkeypatch.setenv("CELLHUB_MAX_PIXELS", "lots")
    with pytest.raises(InvalidInput, match="CELLHUB_MAX_PIXELS must be a positive integer"):
        read_image_file(tif)


# -- 4. predictions shape-checked before they are read -----------------------------------------------------------


def test_predictions_declaring_huge_arrays_are_refused_before_reading(tmp_path):
    truth = (256, 320)
    z = zarr_prediction(tmp_path / "a.ome.zarr", (2**20, 2**20), (256, 256))
    assert sum(p.stat().st_size for p in z.rglob("*") if p.is_file()) < 16 * 2**10
    tif = deflate_bomb_tiff(tmp_path / "b.tif", 40000, 40000)
    for path, declared in ((z, (2**20, 2**20)), (tif, (40000, 40000))):
        for read, shape, got in ((read_label_image, truth, declared), (read_channels, (1, *truth), (1, *declared))):
            err, peak = peak_bytes(read, path, shape)
            assert isinstance(err, InvalidInput), err
            assert str(err) in (
                f"{path}: prediction has shape {got}, the truth {shape}",  # TIFF: vs the truth
                f"{path}/0: array declares shape {declared} int32 = {np.prod(declared):,} pixels, "
                f"over the {2**28:,} allowed (CELLHUB_MAX_PIXELS); refused before decoding",
            ), str(err)
            assert peak < 16 * 2**20
    chunky = zarr_prediction(tmp_path / "c.ome.zarr", truth, (2**16, 2**16))  # right shape, one huge chunk
    err, _ = peak_bytes(read_label_image, chunky, truth)
    assert isinstance(err, InvalidInput) and "chunk" in str(err) and "(65536, 65536)" in str(err), err
    fine = tmp_path / "d.ome.zarr"
    write_image(fine, np.arange(np.prod(truth), dtype=np.int32).reshape(truth) % 7, "yx")
    assert read_label_image(fine, truth).shape == truth


def test_eval_refuses_a_zarr_prediction_declaring_a_huge_array(built, tmp_path):
    from hub.curate import open_dataset

    path = built("dsb2018-fluo")
    ds = open_dataset(path)
    folder = tmp_path / "p"
    folder.mkdir()
    ids = ds.ids("test")
    for sid in ids[1:]:
        tifffile.imwrite(folder / f"{sid}.tif", np.asarray(ds.image(sid).label("instances")[...]))
    bomb = zarr_prediction(folder / f"{ids[0]}.ome.zarr", (2**20, 2**20), (512, 512))
    rc, _, err, rss = run_cli(
        "benchmarks",
        "eval",
        "--predictions",
        folder,
        "--benchmark",
        "dsb2018-fluo/instance",
        "--dataset",
        path,
        "--out",
        tmp_path / "r.json",
    )
    assert_one_line_error(rc, err, str(bomb), "declares shape (1048576, 1048576)")
    assert rss < 3 * GiB and not (tmp_path / "r.json").exists()


# -- 5. weights ----------------------------------------------------------------------------------------------


def _point_card_at(folder: Path, rel: str, data: bytes) -> None:
    edit_card(folder, lambda c: c["weights"].update(file=rel, sha256=hashlib.sha256(data).hexdigest(), size=len(data)))


def test_publish_refuses_weights_that_are_not_safetensors(tmp_path):
    folder = model_copy(tmp_path)
    garbage = np.random.default_rng(0).bytes(4096)
    (folder / "weights.safetensors").write_bytes(garbage)
    _point_card_at(folder, "weights.safetensors", garbage)  # the SHA-256 matches: only parsing can tell
    registry = tmp_path / "registry"
    rc, _, err, _ = run_cli("models", "publish", folder, "--registry", registry)
    assert_one_line_error(rc, err, str(folder / "weights.safetensors"), "not a safetensors file")
    assert nothing_published(registry)
    with pytest.raises(InvalidInput, match="not a safetensors file"):
        Model.load(folder)
    truncated = (MODEL / "weights.safetensors").read_bytes()[:-100]
    (folder / "weights.safetensors").write_bytes(truncated)
    _point_card_at(folder, "weights.safetensors", truncated)
    from hub.registry import Registry

    with pytest.raises(InvalidInput, match="not a safetensors file"):
        publish_model(Registry(registry), folder)
    assert nothing_published(registry)


def test_weights_outside_the_model_folder_are_refused(tmp_path):
    folder = model_copy(tmp_path)
    data = (folder / "weights.safetensors").read_bytes()
    (tmp_path / "x.safetensors").write_bytes(data)
    _point_card_at(folder, "../x.safetensors", data)
    card = folder / "card.yaml"
    with pytest.raises(CardError, match=r"weights\.file: unsafe weights file '\.\./x\.safetensors'"):
        load_card(ModelCard, card)
    registry = tmp_path / "registry"
    rc, _, err, _ = run_cli("models", "publish", folder, "--registry", registry)
    assert_one_line_error(rc, err, str(card), "weights.file", "'../x.safetensors'")
    assert nothing_published(registry)
    for rel in ("/etc/passwd", "sub\\w.safetensors", "C:w.safetensors"):
        _point_card_at(folder, rel, data)
        with pytest.raises(CardError, match="weights.file: unsafe"):
            Model.load(folder)
    # a link inside the folder that leads out of it
    (folder / "weights.safetensors").unlink()
    (folder / "weights.safetensors").symlink_to(tmp_path / "x.safetensors")
    _point_card_at(folder, "weights.safetensors", data)
    with pytest.raises(InvalidInput, match="resolves outside"):
        Model.load(folder)
    from hub.registry import Registry

    with pytest.raises(InvalidInput, match="resolves outside"):
        publish_model(Registry(registry), folder)
    assert nothing_published(registry)
    (folder / "weights.safetensors").unlink()
    shutil.copy(MODEL / "weights.safetensors", folder / "weights.safetensors")
    assert Model.load(folder).card.weights.file == "weights.safetensors"  # and the honest copy loads
