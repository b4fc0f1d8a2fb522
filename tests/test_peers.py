"""Peers (``peers/``): specs and pinned environments, committed records checked like the baselines', the hand-off
on real data (the scored split's truth never leaves the hub), and a whole peer run -- the real hand-crafted
features script on the real Jurkat split, run by this interpreter as its environment -- scored, checked, published
and shown on the leaderboard and the comparison."""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile

from hub.bench import benchmarks, compare_benchmark, get_benchmark, leaderboard
from hub.bench.truth import truth
from hub.config import REPO_ROOT
from hub.dataset import open_dataset
from hub.errors import IntegrityError, InvalidInput
from hub.peers import check_record, get_peer, install, peers, run_peer, save_record, write_handoff
from hub.registry import Registry

PIN = re.compile(r"^[A-Za-z0-9_.\-\[\]]+==[0-9][A-Za-z0-9.+\-]*$")


def test_every_peer_spec_loads_names_real_benchmarks_and_pins_its_environment():
    found = peers()
    assert found, "peers/ holds no peer"
    for peer in found:
        assert peer.script.is_file(), f"{peer.folder}: no {peer.spec.script}"
        for run in peer.spec.runs:
            main = get_benchmark(run.benchmark)
            for name in run.also:
                assert get_benchmark(name).dataset == main.dataset, f"{peer.name}: {name} is scored on another dataset"
        lines = [
            line.strip()
            for line in (peer.folder / "requirements.txt").read_text().splitlines()
            if line.strip() and not line.startswith("#")
        ]
        assert lines and all(PIN.match(line) for line in lines), f"{peer.folder}/requirements.txt: pin every package"
        assert any(line.split("==")[0] == peer.spec.package for line in lines), (
            f"{peer.name}: its package is not pinned"
        )
        for used in map(get_peer, peer.spec.uses):  # a pipeline runs the very tools of the peers it uses
            assert _pins(used)[used.spec.package] == _pins(peer)[used.spec.package], f"{peer.name}: {used.name}"


def _pins(peer) -> dict[str, str]:
    text = (peer.folder / "requirements.txt").read_text().splitlines()
    return dict(line.split("==") for line in text if "==" in line and not line.startswith("#"))


def test_committed_peer_records_verify_against_the_benchmarks_and_their_scripts():
    found = 0
    for peer in peers():
        for name in peer.benchmarks():
            record = check_record(peer, name)  # split, suite, script and requirements hashes
            if record is None:
                continue
            found += 1
            assert record.peer.tool_version == _pins(peer)[peer.spec.package]
            assert record.value == record.metrics[record.primary_metric]
            assert record.peer.train_s > 0 and record.peer.predict_s > 0
            assert record.per_sample
            assert "train" in record.peer.trained_on and record.split not in record.peer.trained_on
    assert found, "no committed peer record"


def test_every_benchmark_has_peer_rows_and_instance_and_tracking_two():
    """The boards compare the hub with the field's tools everywhere: a committed peer record for every
    benchmark, from two tools where the field has several (instance segmentation and tracking)."""
    tools: dict[str, set[str]] = {b.name: set() for b in benchmarks()}
    for peer in peers():
        for name in peer.benchmarks():
            if peer.record(name) is not None:
                tools[name].add(peer.name)
    for bench in benchmarks():
        need = 2 if bench.task in ("instance", "tracking") else 1
        assert len(tools[bench.name]) >= need, f"{bench.name}: peer records of {sorted(tools[bench.name])} only"


def test_handoff_gives_training_truth_and_keeps_the_scored_truth_home(built, tmp_path):
    bench = get_benchmark("dsb2018-fluo/instance")
    ds = open_dataset(built("dsb2018-fluo"))
    meta = write_handoff(bench, ds, tmp_path / "dsb", limit=2)
    assert meta["channels"] == ["nuclei"] and meta["scored"] == "test" and meta["axes"] == "cyx"
    assert [len(meta["splits"][s]) for s in ("train", "val")] == [2, 2]
    assert meta["splits"]["test"] == ds.ids("test")
    sid = meta["splits"]["train"][0]
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "dsb/train" / f"{sid}.labels.tif"), truth(bench, ds, sid))
    image = tifffile.imread(tmp_path / "dsb/train" / f"{sid}.tif")
    assert image.shape == (1, *truth(bench, ds, sid).shape)
    test_files = sorted(p.name for p in (tmp_path / "dsb/test").iterdir())
    assert test_files == sorted(f"{i}.tif" for i in ds.ids("test"))  # images only

    jurkat = get_benchmark("jurkat-cellcycle/classification")
    jds = open_dataset(built("jurkat-cellcycle"))
    meta = write_handoff(jurkat, jds, tmp_path / "jurkat", limit=5)
    rows = (tmp_path / "jurkat/train/classes.csv").read_text().splitlines()
    assert rows[0] == "id,class" and len(rows) == 6
    first = rows[1].split(",")
    assert first[1] == jds.card.labels.classes[jds.sample(first[0]).class_index]
    assert meta["channels"] == ["bright-field", "dark-field"]  # the benchmark's inputs, never the DNA stain
    assert tifffile.imread(tmp_path / "jurkat/train" / f"{first[0]}.tif").shape[0] == 2
    assert not (tmp_path / "jurkat/test/classes.csv").exists()


def test_handoff_of_a_tracking_benchmark_carries_lineage_and_sparse_segmentation(built, tmp_path):
    bench = get_benchmark("ctc-gowt1/tracking")
    ds = open_dataset(built("ctc-gowt1"))
    meta = write_handoff(bench, ds, tmp_path / "gowt1")
    (sid,) = meta["splits"]["train"]
    labels = tifffile.imread(tmp_path / "gowt1/train" / f"{sid}.labels.tif")
    movie = tifffile.imread(tmp_path / "gowt1/train" / f"{sid}.tif")
    assert meta["axes"] == "tcyx" and movie.shape == (labels.shape[0], 1, *labels.shape[1:])
    rows = [
        list(map(int, line.split()))
        for line in (tmp_path / "gowt1/train" / f"{sid}.tracks.txt").read_text().splitlines()
    ]
    assert {r[0] for r in rows} == set(np.unique(labels[labels > 0]).tolist())
    frames = json.loads((tmp_path / "gowt1/train" / f"{sid}.seg.json").read_text())["frames"]
    assert tifffile.imread(tmp_path / "gowt1/train" / f"{sid}.seg.tif").shape[0] == len(frames) > 0
    (test,) = meta["splits"]["test"]
    assert sorted(p.name for p in (tmp_path / "gowt1/test").iterdir()) == [f"{test}.tif"]


def _local_peer(tmp_path: Path, name: str = "handcrafted") -> Path:
    """A copy of a real peer under ``tmp/peers/``, whose environment is this interpreter (the hand-crafted
    features peer needs only numpy, scipy, scikit-image, scikit-learn and tifffile, which the hub has too)."""
    root = tmp_path / "peers"
    root.mkdir()
    shutil.copy(REPO_ROOT / "peers" / "common.py", root / "common.py")
    shutil.copytree(REPO_ROOT / "peers" / name, root / name, ignore=shutil.ignore_patterns(".venv", "results"))
    python = root / name / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')  # a link would lose this venv's packages
    python.chmod(0o755)
    return root


@pytest.fixture(scope="module")
def jurkat_run(built, tmp_path_factory):
    """The real hand-crafted features script, quick mode, on the real Jurkat split: its result record."""
    jurkat = built("jurkat-cellcycle")
    tmp = tmp_path_factory.mktemp("peer-run")
    root = _local_peer(tmp)
    peer = get_peer("handcrafted", root)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CELLHUB_BUILD", str(tmp / "build"))  # the run's log
        (result,) = run_peer(peer, "jurkat-cellcycle/classification", dataset=jurkat, threads=1, log=lambda m: None)
    return root, jurkat, result


def test_a_peer_run_is_scored_by_the_harness_with_its_provenance(jurkat_run):
    root, jurkat, result = jurkat_run
    peer = get_peer("handcrafted", root)
    bench = get_benchmark("jurkat-cellcycle/classification")
    assert result.source == "reproduced" and result.model == "handcrafted"
    assert result.split_sha256 == bench.split_sha256 and len(result.per_sample) == len(open_dataset(jurkat).ids("test"))
    assert 0 <= result.value <= 1 and result.ci95[0] <= result.value <= result.ci95[1]
    run = result.peer
    assert (run.tool, run.script, run.trained_on) == ("scikit-learn", "peers/handcrafted/run.py", ["train", "val"])
    assert run.script_sha256 == peer.script_sha256() and run.requirements_sha256 == peer.requirements_sha256()
    assert run.shared_sha256 == peer.shared_sha256()
    assert run.notes["features"] > 50 and run.notes["train_images"] == 2442
    assert result.inputs == ["bright-field", "dark-field"] and result.packages["scikit-learn"] == run.tool_version
    save_record(result, peer.record_path(bench.name))
    assert check_record(peer, bench.name).predictions_sha256 == result.predictions_sha256


def test_published_peer_records_are_peer_rows_on_the_board_and_in_the_comparison(jurkat_run, tmp_path):
    root, _, result = jurkat_run
    peer = get_peer("handcrafted", root)
    save_record(result, peer.record_path(result.benchmark))
    registry = Registry(tmp_path / "registry")
    (summary,) = install(registry, folder=root, log=lambda m: None)
    assert summary["value"] == result.value
    bench = get_benchmark(result.benchmark)
    (row,) = leaderboard(bench, registry)["rows"]
    assert row["source"] == "reproduced" and row["peer"]["title"] == peer.spec.title and row["rank"] == 1
    compared = compare_benchmark(bench, registry)
    assert compared["hub"] is None and compared["peer"]["value"] == result.value
    assert compared["peer"]["train_s"] == result.peer.train_s and compared["verdict"] == "no hub model"
    install(registry, folder=root, log=lambda m: None)  # content-addressed: publishing again changes nothing
    assert len(registry.results(bench.name)) == 1


def test_a_stale_or_foreign_committed_record_is_refused(jurkat_run):
    root, _, result = jurkat_run
    peer = get_peer("handcrafted", root)
    path = peer.record_path(result.benchmark)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = result.model_dump(mode="json")
    for change, why in (
        ({"peer": {**record["peer"], "script_sha256": "0" * 64}}, "another peers/handcrafted/run.py"),
        ({"peer": {**record["peer"], "shared_sha256": "2" * 64}}, "other shared modules"),
        ({"peer": {**record["peer"], "uses": {"peers/laptrack/run.py": "3" * 64}}}, "other scripts of the peers"),
        ({"split_sha256": "1" * 64}, "another split"),
        ({"model": "stardist"}, "not a record of peer handcrafted"),
        ({"source": "hub"}, "not a reproduced"),
    ):
        path.write_text(json.dumps({**record, **change}))
        with pytest.raises(IntegrityError, match=why) as err:
            check_record(peer, result.benchmark)
        assert str(path) in str(err.value)


def test_a_peer_row_with_a_hostile_link_is_left_off_the_board(jurkat_run, tmp_path):
    _, _, result = jurkat_run
    registry = Registry(tmp_path / "registry")
    record = result.model_dump(mode="json")
    record["peer"]["url"] = "javascript:alert(1)"
    registry.publish_result(record)
    board = leaderboard(get_benchmark(result.benchmark), registry)
    assert board["rows"] == [] and "peer.url" in board["rejected"][0]["reason"]


def test_a_failing_tool_or_a_bad_report_is_one_line_naming_the_file(jurkat_run, tmp_path):
    root, jurkat, _ = jurkat_run
    peer = get_peer("handcrafted", root)
    original = peer.script.read_text()
    try:
        peer.script.write_text("import sys\nprint('tool crashed: out of memory')\nsys.exit(3)\n")
        with pytest.raises(InvalidInput, match=r"failed \(exit 3\): tool crashed: out of memory") as err:
            run_peer(peer, "jurkat-cellcycle/classification", dataset=jurkat, log=lambda m: None)
        assert str(err.value).split(":")[0].endswith("jurkat-cellcycle.classification.log")
        peer.script.write_text(
            "import json, sys\nargs = sys.argv\nout = args[args.index('--report') + 1]\n"
            "json.dump({'tool': 'cellpose', 'tool_version': '1', 'train_s': 1, 'predict_s': 1, 'predicted': 0,"
            " 'device': 'cpu', 'options': {}, 'notes': {}}, open(out, 'w'))\n"
        )
        with pytest.raises(InvalidInput, match="run report names tool 'cellpose'"):
            run_peer(peer, "jurkat-cellcycle/classification", dataset=jurkat, log=lambda m: None)
    finally:
        peer.script.write_text(original)
