"""One line, always: every failure of the real CLI is one line on stderr naming the file (when there is one) and the
problem, with exit status 1; ``--debug`` or ``CELLHUB_DEBUG=1`` shows the full traceback instead."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile
from servers import static_http_server

DSB = "segmentation/dsb2018-fluo/stage1_train"


def cellhub(*args, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "from hub.cli import main; main()", *map(str, args)],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=timeout,
    )


def one_line(r: subprocess.CompletedProcess, *words: str) -> str:
    """Exit 1 and exactly one non-empty line on stderr, holding every word."""
    assert r.returncode == 1, r.stdout + r.stderr
    assert r.stderr.endswith("\n") and r.stderr.count("\n") == 1, r.stderr
    line = r.stderr.rstrip("\n")
    assert line.startswith("error: ") and len(line) > len("error: "), line
    for w in words:
        assert w in line, line
    return line


def traceback_of(r: subprocess.CompletedProcess, exception: str) -> None:
    assert r.returncode == 1, r.stdout + r.stderr
    lines = r.stderr.strip().splitlines()
    assert lines[0] == "Traceback (most recent call last):" and len(lines) > 3, r.stderr
    assert exception in lines[-1], r.stderr


# --- small datasets, imported once per module ------------------------------------------------------------------


@pytest.fixture(scope="module")
def instance_ds(data_dir, tmp_path_factory) -> Path:
    """Three DSB2018 images with instance labels, all on the train split."""
    base = tmp_path_factory.mktemp("instance")
    for i in sorted(p.name for p in (data_dir / DSB).iterdir())[:3]:
        shutil.copytree(data_dir / DSB / i, base / "src" / i)
    out = base / "ds"
    r = cellhub(
        "datasets",
        "import",
        "kaggle-dsb",
        base / "src",
        "--name",
        "dsb-tiny",
        "--out",
        out,
        "--val",
        "0",
        "--test",
        "0",
        env={"CELLHUB_REGISTRY": str(base / "registry")},
    )
    assert r.returncode == 0, r.stderr
    return out


@pytest.fixture(scope="module")
def class_ds(tmp_path_factory) -> Path:
    """Eight random 16 x 16 crops of two classes, all on the train split."""
    base = tmp_path_factory.mktemp("classes")
    rng = np.random.default_rng(0)
    np.savez(
        base / "crops.npz",
        images=rng.integers(0, 255, (8, 1, 16, 16), dtype=np.uint8),
        labels=np.arange(8) % 2,
        class_names=np.array(["a", "b"]),
    )
    out = base / "ds"
    r = cellhub(
        "datasets",
        "import",
        "npz",
        base / "crops.npz",
        "--name",
        "tiny-classes",
        "--out",
        out,
        "--val",
        "0",
        "--test",
        "0",
        env={"CELLHUB_REGISTRY": str(base / "registry")},
    )
    assert r.returncode == 0, r.stderr
    return out


def copy_of(ds: Path, tmp_path: Path) -> Path:
    shutil.copytree(ds, tmp_path / ds.name)
    return tmp_path / ds.name


def eval_classes(ds: Path, predictions: Path, *more) -> subprocess.CompletedProcess:
    return cellhub(
        "benchmarks",
        "eval",
        "--predictions",
        predictions,
        "--truth",
        ds,
        "--task",
        "classification",
        "--split",
        "train",
        *more,
    )


def write_predictions(path: Path, text: bytes) -> Path:
    path.write_bytes(text)
    return path


GOOD_CSV = b"id,predicted\n" + b"".join(b"%d,%s\n" % (i, b"ab"[i % 2 : i % 2 + 1]) for i in range(8))


# --- CSV ----------------------------------------------------------------------------------------------------------


def test_samples_csv_not_utf8_names_file_and_line(instance_ds, tmp_path):
    ds = copy_of(instance_ds, tmp_path)
    lines = (ds / "samples.csv").read_bytes().split(b"\n")
    lines[2] = lines[2].replace(b",train,", b",tr\xe4in,", 1)  # Latin-1, as a spreadsheet might save it
    (ds / "samples.csv").write_bytes(b"\n".join(lines))
    r = cellhub("datasets", "preview", ds, "--out", tmp_path / "sheet.png")
    one_line(r, str(ds / "samples.csv"), "not UTF-8", "line 3", "0xe4")
    traceback_of(cellhub("--debug", "datasets", "preview", ds, "--out", tmp_path / "sheet.png"), "InvalidInput")


def test_samples_csv_with_a_ragged_row(instance_ds, tmp_path):
    ds = copy_of(instance_ds, tmp_path)
    text = (ds / "samples.csv").read_text().splitlines()
    text[2] += ",one too many"
    (ds / "samples.csv").write_text("\n".join(text) + "\n")
    r = cellhub(
        "benchmarks", "eval", "--predictions", tmp_path, "--truth", ds, "--task", "instance", "--split", "train"
    )
    one_line(r, str(ds / "samples.csv"), "line 3", "fields of the header")


def test_prediction_csv_not_utf8(class_ds, tmp_path):
    csv = write_predictions(tmp_path / "pred.csv", GOOD_CSV.replace(b"3,b", b"3,\xff\xfeb"))
    one_line(eval_classes(class_ds, csv), str(csv), "class-prediction CSV is not UTF-8", "line 5", "0xff")
    r = cellhub(
        "benchmarks",
        "eval",
        "--predictions",
        csv,
        "--truth",
        class_ds,
        "--task",
        "classification",
        "--split",
        "train",
        env={"CELLHUB_DEBUG": "1"},
    )
    traceback_of(r, "InvalidInput")


def test_prediction_csv_malformed(class_ds, tmp_path):
    ragged = write_predictions(tmp_path / "ragged.csv", GOOD_CSV.replace(b"4,a\n", b"4,a,b\n"))
    one_line(eval_classes(class_ds, ragged), str(ragged), "line 6", "fields of the header")
    huge = write_predictions(tmp_path / "huge.csv", GOOD_CSV + b'8,"' + b"x" * 200_000 + b'"\n')
    one_line(eval_classes(class_ds, huge), str(huge), "not valid CSV", "field larger than field limit")
    assert eval_classes(class_ds, write_predictions(tmp_path / "good.csv", GOOD_CSV), "--json").returncode == 0


# --- JSON ---------------------------------------------------------------------------------------------------------


def test_malformed_split_manifest(class_ds, tmp_path):
    ds = copy_of(class_ds, tmp_path)
    (ds / "splits.json").write_text((ds / "splits.json").read_text()[:40])
    r = eval_classes(ds, write_predictions(tmp_path / "good.csv", GOOD_CSV))
    one_line(r, str(ds / "splits.json"), "split manifest is not valid JSON", "line 1")


def test_malformed_lockfile(tmp_path):
    lock = tmp_path / "cellhub.lock"
    lock.write_text('{"registry": "x", "pins": {')
    one_line(cellhub("datasets", "pull", "anything", "--locked", "--lockfile", lock), str(lock), "not valid JSON")


# --- labels -------------------------------------------------------------------------------------------------------


def test_uint64_labels_above_int64_are_ids(instance_ds, tmp_path):
    """Label ids of 2**63 and more are still just ids: the prediction equal to the truth scores perfectly."""
    from hub.curate import open_dataset

    ds = open_dataset(instance_ds)
    pred = tmp_path / "pred"
    pred.mkdir()
    for sid in ds.ids("train"):
        lab = np.asarray(ds.image(sid).label("instances")[...]).astype(np.uint64)
        lab[lab > 0] += np.uint64(2**63 + 5)
        assert lab.max() >= 2**63
        tifffile.imwrite(pred / f"{sid}.tif", lab)
    r = cellhub(
        "benchmarks",
        "eval",
        "--predictions",
        pred,
        "--truth",
        instance_ds,
        "--task",
        "instance",
        "--split",
        "train",
        "--json",
    )
    assert r.returncode == 0 and not r.stderr, r.stderr
    import json

    metrics = json.loads(r.stdout)["metrics"]
    assert metrics["f1@0.5"] == 1.0 and metrics["acc@[.5:.95]"] == 1.0


# --- anything else ------------------------------------------------------------------------------------------------


def test_corrupt_image_metadata_names_the_image(instance_ds, tmp_path):
    ds = copy_of(instance_ds, tmp_path)
    image = sorted((ds / "images").iterdir())[0]
    (image / "zarr.json").write_text('{"zarr_format": 3, "node_type": "group", "attributes": {"ome": ')
    r = cellhub("datasets", "preview", ds, "--out", tmp_path / "sheet.png")
    one_line(r, str(image / "zarr.json"), "unreadable Zarr metadata", "JSONDecodeError")


def test_unexpected_internal_exception_is_one_line(instance_ds, tmp_path):
    """A failure nothing anticipated (here: an image array's own zarr.json is garbage) still ends as one line,
    with the exception's name and message; --debug and CELLHUB_DEBUG=1 show where it came from."""
    ds = copy_of(instance_ds, tmp_path)
    image = sorted((ds / "images").iterdir())[0]
    (image / "0" / "zarr.json").write_text("garbage{")
    args = ("datasets", "preview", ds, "--out", tmp_path / "sheet.png")
    line = one_line(cellhub(*args), "JSONDecodeError", "Expecting value", "--debug")
    assert "Traceback" not in line
    traceback_of(cellhub("--debug", *args), "JSONDecodeError")
    traceback_of(cellhub(*args, "--debug"), "JSONDecodeError")  # where one adds it when told to
    traceback_of(cellhub(*args, env={"CELLHUB_DEBUG": "1"}), "JSONDecodeError")
    assert not (tmp_path / "sheet.png").exists()


def test_os_error_names_the_path(class_ds, tmp_path):
    (tmp_path / "file").write_text("not a folder")
    out = tmp_path / "file" / "sub" / "record.json"
    r = eval_classes(class_ds, write_predictions(tmp_path / "good.csv", GOOD_CSV), "--out", out)
    one_line(r, str(tmp_path / "file"))


def test_bad_architecture_option(instance_ds, tmp_path):
    r = cellhub(
        "models",
        "train",
        "--task",
        "semantic-segmentation",
        "--family",
        "unet",
        "--dataset",
        instance_ds,
        "--name",
        "x",
        "--version",
        "1.0.0",
        "--backbone",
        "no-such-backbone",
        "--epochs",
        "1",
        "--out",
        tmp_path / "model",
    )
    one_line(r, "cannot build a unet network", "no-such-backbone")
    assert not (tmp_path / "model").exists()


def test_usage_errors_are_one_line_and_exit_1():
    """Click exits 2 on a usage error, with a box of text; cellhub says what is wrong on one line, exit status 1."""
    line = one_line(cellhub("benchmarks", "eval", "--no-such-option"), "No such option", "--no-such-option")
    assert line.endswith("(see: cellhub benchmarks eval --help)")
    one_line(cellhub("datasets", "pull"), "Missing argument", "cellhub datasets pull --help")


def test_an_old_spelling_still_works_with_one_deprecation_line():
    r = cellhub("schema", "dataset")
    assert r.returncode == 0 and r.stderr == "cellhub schema KIND is deprecated; use cellhub schema show KIND\n"
    assert json.loads(r.stdout)["title"] == "DatasetCard"


# --- stalled servers ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def published(instance_ds, tmp_path_factory) -> Path:
    """A registry folder holding dsb-tiny@0.1.0."""
    reg = tmp_path_factory.mktemp("served") / "registry"
    r = cellhub("datasets", "publish", instance_ds, "--registry", reg, "--accept-terms")
    assert r.returncode == 0, r.stderr
    return reg


@pytest.mark.parametrize(
    "stall_after, args", [(0, ("datasets", "list")), (3, ("datasets", "pull", "dsb-tiny"))], ids=["catalog", "mid-pull"]
)
def test_stalled_http_registry_times_out(published, tmp_path, stall_after, args):
    """The server answers ``stall_after`` requests and then holds every later one; with CELLHUB_TIMEOUT=2 the CLI
    gives up after about 2 s (plus its start-up) and says so. The server is stopped when the test leaves."""
    with static_http_server(published, stall_after=stall_after) as url:
        start = time.monotonic()
        r = cellhub(
            *args,
            "--registry",
            url,
            env={"CELLHUB_TIMEOUT": "2", "CELLHUB_CACHE": str(tmp_path / "cache")},
            timeout=120,
        )
        took = time.monotonic() - start
    one_line(r, url, "no answer from the registry within 2 s (CELLHUB_TIMEOUT)")
    assert took < 45, f"took {took:.0f} s"  # without the timeout: 60 s and more


def test_timeouts_reach_http_and_s3(monkeypatch):
    from hub.errors import InvalidInput
    from hub.registry._fs import open_root

    monkeypatch.setenv("CELLHUB_TIMEOUT", "7.5")
    fs, _ = open_root("http://127.0.0.1:9/registry")
    timeout = fs.client_kwargs["timeout"]
    assert timeout.sock_connect == timeout.sock_read == 7.5 and timeout.total is None
    fs, root = open_root("s3://bucket/prefix")
    assert root == "bucket/prefix" and fs.retries == 1
    assert fs.config_kwargs["connect_timeout"] == fs.config_kwargs["read_timeout"] == 7.5
    monkeypatch.setenv("CELLHUB_TIMEOUT", "soon")
    with pytest.raises(InvalidInput, match="CELLHUB_TIMEOUT"):
        open_root("http://127.0.0.1:9/other")
    open_root(Path("/tmp"))  # a local registry never reads it


# --- the mapping itself -------------------------------------------------------------------------------------------


def _run_main(monkeypatch, capsys, raise_it) -> tuple[int, str]:
    import typer

    from hub.cli import _app

    fake = typer.Typer()

    @fake.command()
    def boom() -> None:
        raise_it()

    monkeypatch.setattr(_app, "app", fake)
    monkeypatch.setattr(sys, "argv", ["cellhub"])
    monkeypatch.delenv("CELLHUB_DEBUG", raising=False)
    with pytest.raises(SystemExit) as done:
        _app.main()
    return done.value.code, capsys.readouterr().err


def test_ctrl_c_is_exit_130_and_a_short_line(monkeypatch, capsys):
    def interrupt():
        raise KeyboardInterrupt

    assert _run_main(monkeypatch, capsys, interrupt) == (130, "interrupted\n")


def test_long_multi_line_message_is_collapsed_and_cut(monkeypatch, capsys):
    def fail():
        raise ValueError("first line\n" + "x " * 1000)

    code, err = _run_main(monkeypatch, capsys, fail)
    assert code == 1 and err.count("\n") == 1 and err.startswith("error: ValueError: first line x x")
    assert len(err) < 600 and "..." in err


def test_a_timeout_without_a_remote_registry_is_not_blamed_on_one(monkeypatch, capsys):
    from hub.registry import _fs

    monkeypatch.setattr(_fs, "opened_remote", [])

    def fail():
        raise TimeoutError("took too long")

    code, err = _run_main(monkeypatch, capsys, fail)
    assert (
        code == 1 and err == "error: TimeoutError: took too long (unexpected; rerun with --debug for the traceback)\n"
    )


def test_an_exception_group_shows_its_first_failure(monkeypatch, capsys):
    from hub.errors import InvalidInput

    def fail():
        raise ExceptionGroup("unhandled errors in a TaskGroup", [InvalidInput("bad bytes", "x/y.tif"), ValueError()])

    assert _run_main(monkeypatch, capsys, fail) == (1, "error: x/y.tif: bad bytes\n")
