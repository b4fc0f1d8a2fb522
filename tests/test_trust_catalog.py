"""Trust: leaderboards and the site show only what verified result records say, and a benchmark is scored only
against a copy whose truth is the frozen one. Real results of real predictions on the real dsb2018-fluo build,
in a real registry on disk; the CLI runs in this process."""

from __future__ import annotations

import csv
import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import tifffile
import zarr
from test_bench import truth_labels

BENCH = "dsb2018-fluo/instance"


@pytest.fixture(scope="module")
def published(built, tmp_path_factory) -> dict:
    """A registry holding three real results: two instance results of predictions missing 10% and 30% of the
    nuclei, and one semantic result (another benchmark's record)."""
    from hub.bench import get_benchmark, score_predictions
    from hub.curate import open_dataset
    from hub.registry import Registry

    base = tmp_path_factory.mktemp("trust-registry")
    path = built("dsb2018-fluo")
    ds = open_dataset(path)
    reg = Registry(base / "registry")
    shas = {}
    for name, drop in (("drop-10", 0.1), ("drop-30", 0.3)):
        record = score_predictions(
            get_benchmark(BENCH), path, truth_labels(ds, base / name, drop=drop), model=name
        ).model_dump(mode="json")
        shas[name] = reg.publish_result(record)
    binary = base / "binary"
    binary.mkdir()
    for p in (base / "drop-10").glob("*.tif"):
        tifffile.imwrite(binary / p.name, (tifffile.imread(p) > 0).astype(np.uint8))
    shas["semantic"] = reg.publish_result(
        score_predictions(get_benchmark("dsb2018-fluo/semantic"), path, binary, model="semantic").model_dump(
            mode="json"
        )
    )
    return {"registry": base / "registry", "sha": shas}


@pytest.fixture
def reg(published, tmp_path):
    """A fresh copy of the published registry, to forge."""
    from hub.registry import Registry

    shutil.copytree(published["registry"], tmp_path / "reg")
    return Registry(tmp_path / "reg")


def _edit_index(reg, edit) -> None:
    path = Path(reg.url) / "index.json"
    index = json.loads(path.read_text())
    edit(index["results"])
    path.write_text(json.dumps(index, indent=1))


def _board(reg) -> dict:
    from hub.bench import get_benchmark, leaderboard

    return leaderboard(get_benchmark(BENCH), reg)


def _cli_board(cli, reg) -> tuple[dict, list[str]]:
    r = cli("benchmarks", "leaderboard", BENCH, "--registry", reg.url, "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout), r.stderr.strip().splitlines()


def test_an_honest_catalog_lists_every_record(reg, published, cli):
    board = _board(reg)
    assert [r["model"] for r in board["rows"]] == ["drop-10", "drop-30"] and board["rejected"] == []
    for row in board["rows"]:
        record = json.loads((Path(reg.url) / row["path"]).read_text())
        assert row["path"] == f"results/{BENCH}/{row['sha256']}.json"
        for key in (
            "model",
            "value",
            "ci95",
            "metrics",
            "inputs",
            "split",
            "split_sha256",
            "suite_version",
            "source",
            "weights_sha256",
            "date",
            "predictions_sha256",
        ):
            assert row[key] == record[key], key
    assert 0.5 < board["rows"][1]["value"] < board["rows"][0]["value"] < 1.0
    cli_board, warnings = _cli_board(cli, reg)
    assert cli_board == board and warnings == []


def test_a_forged_summary_is_dropped_and_reported(reg, published, cli):
    worse = published["sha"]["drop-30"]

    def forge(results):
        results[BENCH][worse]["value"] = 1.0
        results[BENCH][worse]["ci95"] = [1.0, 1.0]

    _edit_index(reg, forge)
    assert reg.results(BENCH)[[e["sha256"] for e in reg.results(BENCH)].index(worse)]["value"] == 1.0
    for board, warnings in ((_board(reg), None), _cli_board(cli, reg)):
        assert [r["model"] for r in board["rows"]] == ["drop-10"]
        assert all(r["value"] < 1.0 for r in board["rows"])
        (rejected,) = board["rejected"]
        assert rejected["sha256"] == worse and "value 1.0 differs from the record's" in rejected["reason"]
        if warnings is not None:  # the CLI: one warning line per rejected entry, on stderr
            assert len(warnings) == 1 and worse[:16] in warnings[0] and "value" in warnings[0]
    r = cli("benchmarks", "leaderboard", BENCH, "--registry", reg.url)
    assert r.returncode == 0 and "drop-30" not in r.stdout and "1.0000" not in r.stdout
    assert len(r.stderr.strip().splitlines()) == 1


def test_a_forged_model_name_is_dropped(reg, published):
    better = published["sha"]["drop-10"]
    _edit_index(reg, lambda results: results[BENCH][better].update(model="famous-model@1.0.0"))
    board = _board(reg)
    assert [r["model"] for r in board["rows"]] == ["drop-30"]
    assert board["rejected"][0]["sha256"] == better and "model" in board["rejected"][0]["reason"]


def test_an_altered_or_missing_record_is_dropped_and_reported(reg, published, cli):
    worse, better = published["sha"]["drop-30"], published["sha"]["drop-10"]
    path = Path(reg.url) / "results" / BENCH / f"{worse}.json"
    record = json.loads(path.read_text())
    path.write_text(json.dumps({**record, "value": 1.0}, indent=1, sort_keys=True))  # index left as it was
    (Path(reg.url) / "results" / BENCH / f"{better}.json").unlink()
    board = _board(reg)
    assert board["rows"] == []
    reasons = {r["sha256"]: r["reason"] for r in board["rejected"]}
    assert reasons == {worse: "record altered: its bytes do not match its SHA-256", better: "record missing"}
    cli_board, warnings = _cli_board(cli, reg)
    assert cli_board["rows"] == [] and len(warnings) == 2


def test_an_entry_pointing_elsewhere_is_dropped_and_never_followed(reg, published, cli):
    """A path out of the results folder, another benchmark's record (by path, or copied under this benchmark),
    and a key that is no SHA-256: all dropped; a forged record placed where the path points is never read."""
    from hub.registry.manifest import sha256_bytes

    worse, semantic = published["sha"]["drop-30"], published["sha"]["semantic"]
    root = Path(reg.url)
    honest = json.loads((root / "results" / BENCH / f"{worse}.json").read_text())
    forged = json.dumps(
        {**honest, "model": "forged", "value": 1.0, "metrics": {**honest["metrics"], "acc@[.5:.95]": 1.0}},
        indent=1,
        sort_keys=True,
    ).encode()
    (root / "forged.json").write_bytes(forged)  # inside the registry, but not where a record of BENCH lives
    forged_sha = sha256_bytes(forged)
    other = json.loads((root / "results" / "dsb2018-fluo" / "semantic" / f"{semantic}.json").read_text())
    shutil.copy(
        root / "results" / "dsb2018-fluo" / "semantic" / f"{semantic}.json",
        root / "results" / BENCH / f"{semantic}.json",
    )

    def forge(results):
        entries = results[BENCH]
        summary = {k: v for k, v in entries[worse].items() if k != "path"}
        entries[forged_sha] = {
            **summary,
            "model": "forged",
            "value": 1.0,
            "path": f"results/{BENCH}/../../../forged.json",
        }
        entries[worse]["path"] = "../../x.json"
        entries[semantic] = {
            **{k: other[k] for k in summary if k in other},
            "benchmark": BENCH,
            "path": f"results/{BENCH}/{semantic}.json",
        }
        entries["../../forged"] = {**summary, "path": "forged.json"}

    _edit_index(reg, forge)
    board = _board(reg)
    assert [r["model"] for r in board["rows"]] == ["drop-10"]
    reasons = {r["sha256"]: r["reason"] for r in board["rejected"]}
    assert set(reasons) == {forged_sha, worse, semantic, "../../forged"}
    assert "is not results/dsb2018-fluo/instance/" in reasons[forged_sha]
    assert "'../../x.json' is not" in reasons[worse]
    assert "record is a result of 'dsb2018-fluo/semantic'" in reasons[semantic]
    assert "is not a SHA-256" in reasons["../../forged"]
    cli_board, warnings = _cli_board(cli, reg)
    assert cli_board == board and len(warnings) == 4


def test_the_site_of_a_forged_catalog_shows_only_verified_records(reg, published, tmp_path, monkeypatch):
    from hub.site import build_site

    worse, better = published["sha"]["drop-30"], published["sha"]["drop-10"]
    _edit_index(reg, lambda results: results[BENCH][worse].update(value=1.0, ci95=[1.0, 1.0]))
    monkeypatch.setenv("CELLHUB_CACHE", str(tmp_path / "cache"))
    summary = build_site(tmp_path / "site", reg.url)
    assert summary["benchmarks"] == ["dsb2018-fluo/instance", "dsb2018-fluo/semantic"] and summary["results"] == 2
    site = tmp_path / "site"
    assert sorted(p.name for p in (site / "records").iterdir()) == sorted(
        [f"{better}.json", f"{published['sha']['semantic']}.json"]
    )
    page = (site / "benchmarks" / f"{BENCH}.html").read_text()
    assert page.count("<tr>") == 2  # the header and the one verified row
    assert f"records/{better}.json" in page and f"records/{worse}.json" not in page
    assert 'data-value="1.0"' not in page and "drop-30" not in page
    assert "Not listed: 1 catalog entry" in page and worse[:10] in page and "differs from the record" in page
    for html in site.rglob("*.html"):
        assert "drop-30" not in html.read_text(), html


# --- the truth a benchmark is scored against -------------------------------------------------------------------


def _eval(cli, copy: Path, predictions: Path, *more):
    return cli(
        "benchmarks", "eval", "--benchmark", BENCH, "--dataset", copy, "--predictions", predictions, "--json", *more
    )


def test_a_copy_with_edited_truth_is_refused(built, tmp_path, cli):
    """The issue's forgery: a copy whose truth label was edited to agree with the predictions scored 1.000. The
    untouched copy scores the honest value; the edited one is refused with one line naming the sample."""
    from hub.curate import open_dataset

    path = built("dsb2018-fluo")
    copy = tmp_path / "copy"
    shutil.copytree(path, copy)
    ds = open_dataset(copy)
    sid = ds.ids("test")[0]
    predictions = truth_labels(ds, tmp_path / "p")
    label = tifffile.imread(predictions / f"{sid}.tif")
    edited = np.where(label == label.max(), 0, label)  # one nucleus missed by the "method"
    tifffile.imwrite(predictions / f"{sid}.tif", edited)

    honest = _eval(cli, copy, predictions)
    assert honest.returncode == 0, honest.stderr
    assert json.loads(honest.stdout)["value"] < 1.0

    store = copy / ds.sample(sid).path / "labels" / "instances" / "0"
    original = zarr.open_array(str(store), mode="r")[...]
    zarr.open_array(str(store), mode="r+")[...] = edited.astype(original.dtype)  # the truth now agrees
    for r in (
        _eval(cli, copy, predictions),
        cli("benchmarks", "eval", "--predictions", predictions, "--truth", copy, "--task", "instance", "--json"),
    ):
        assert r.returncode == 1 and r.stdout == "", r.stdout[:300]
        (line,) = r.stderr.strip().splitlines()
        assert f"sample '{sid}'" in line and str(copy / ds.sample(sid).path) in line
        assert "differ from the content SHA-256 frozen in the split manifest" in line

    zarr.open_array(str(store), mode="r+")[...] = original  # restored: scores again
    assert _eval(cli, copy, predictions).returncode == 0


def test_a_copy_with_another_split_is_refused(built, tmp_path, cli):
    """samples.csv decides what is scored: a test sample moved out of the split is refused too."""
    from hub.curate import open_dataset

    copy = tmp_path / "copy"
    shutil.copytree(built("dsb2018-fluo"), copy)
    ds = open_dataset(copy)
    predictions = truth_labels(ds, tmp_path / "p")
    sid = ds.ids("test")[0]
    rows = [(dataclasses.replace(r, split="train") if r.id == sid else r).to_row() for r in ds.samples]
    with open(copy / "samples.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    (predictions / f"{sid}.tif").unlink()
    r = _eval(cli, copy, predictions)
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert f"sample '{sid}'" in r.stderr and "disagree on split 'test'" in r.stderr
