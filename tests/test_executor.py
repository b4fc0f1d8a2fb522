"""Per-sample work on a Dask distributed cluster (``hub.executor``): a real ``LocalCluster`` of worker processes,
and a ``dask scheduler`` with two ``dask worker`` processes on loopback driven by ``cellhub --scheduler``. A
build on the cluster equals the local build file for file, predictions and evaluations equal the local ones; a
worker killed mid-build leaves no partial dataset, and the rerun finishes."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from hub.baselines import get_baseline
from hub.curate.recipe import build_dataset
from hub.curate.validate import validate_dataset
from hub.executor import DaskExecutor, map_samples, use_executor
from hub.models import Model
from hub.models.predict import predict_to

distributed = pytest.importorskip("distributed")

DATASET = "bbbc039"  # 50 real images: enough tasks to kill a worker in the middle of them
BIN = Path(sys.executable).parent


def _files(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _pid(_: object) -> int:
    return os.getpid()


@pytest.fixture(scope="module")
def client():
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


def test_a_build_on_a_local_dask_cluster_equals_the_local_build(client, built, data_dir, tmp_path):
    local = built(DATASET)
    executor = client.get_executor(pure=False)
    workers = set(client.run(os.getpid).values())
    with use_executor(executor):
        assert set(map_samples(_pid, range(40))) <= workers  # the work runs in the workers, not here
    with distributed.get_task_stream(client) as stream:
        build_dataset(DATASET, source=data_dir, out=tmp_path / "ds", executor=client)
    assert len({t["worker"] for t in stream.data}) == 2, "both workers converted samples"
    assert _files(tmp_path / "ds") == _files(local)
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())


def _write_late(job: tuple[int, str]) -> int:
    i, folder = job
    if i == 0:
        raise ValueError("the first sample is broken")
    time.sleep(1.0)
    (Path(folder) / f"{i}.done").touch()
    return i


def test_a_failed_job_returns_only_after_its_running_tasks_ended(client, tmp_path):
    """Dask cannot stop a task that has started: the failure is raised once those have ended, so the caller's
    clean-up is final (no sample written after it)."""
    with pytest.raises(ValueError, match="broken"):
        map_samples(_write_late, [(i, str(tmp_path)) for i in range(20)], executor=DaskExecutor(client))
    written = sorted(p.name for p in tmp_path.iterdir())
    assert len(written) < 19, "the tasks not yet started were cancelled"
    time.sleep(2.5)
    assert sorted(p.name for p in tmp_path.iterdir()) == written


def _table(path: Path) -> dict[str, list[str]]:
    with open(path, newline="") as f:
        return {row[0]: row[1:] for row in list(csv.reader(f))[1:]}


def test_predictions_and_evaluations_on_the_cluster_equal_the_local_ones(client, built, cli, tmp_path):
    """The real Jurkat classifier over the real test split: each worker loads the model from its folder and reads
    its own samples; the table matches the local run's, the scored record the committed one."""
    base = get_baseline("jurkat-phase")
    model = Model.load(base.model_dir)
    data = built("jurkat-cellcycle")
    predict_to(model, data, tmp_path / "local", split="test")
    with distributed.get_task_stream(client) as stream:
        ids = predict_to(model, data, tmp_path / "dask", split="test", executor=client)
    assert len(stream.data) == len(ids) > 100 and len({t["worker"] for t in stream.data}) == 2
    local, remote = _table(tmp_path / "local" / "predictions.csv"), _table(tmp_path / "dask" / "predictions.csv")
    assert list(local) == list(remote)
    for sid, row in local.items():
        assert row[0] == remote[sid][0] and np.allclose(np.float64(row[1:]), np.float64(remote[sid][1:]), atol=1e-4)
    bench = "jurkat-cellcycle/classification"
    args = ["benchmarks", "eval", str(base.model_dir), "--benchmark", bench, "--dataset", str(data), "--json"]
    there = json.loads(cli(*args, "--scheduler", client.scheduler.address, check=True).stdout)
    here = base.record(bench)  # evaluated on one machine
    assert there["value"] == pytest.approx(here["value"], abs=1e-3) and there["split_sha256"] == here["split_sha256"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(args: list[str], log: Path, env: dict) -> subprocess.Popen:
    return subprocess.Popen(args, stdout=open(log, "w"), stderr=subprocess.STDOUT, env=env, start_new_session=True)


def _wait(check, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while not check():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@contextlib.contextmanager
def _dask_cluster(tmp_path: Path):
    """``dask scheduler`` and two ``dask worker`` processes on loopback, started the way a user starts them (with
    this process's environment); the scheduler gives up on a task at the first worker that dies running it
    (``allowed-failures: 0``), so that a killed worker fails the build instead of being retried."""
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "0"}
    procs = [
        _start(
            [str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port), "--dashboard-address", ":0"],
            tmp_path / "scheduler.log",
            env,
        )
    ]
    try:
        for i in range(2):
            procs.append(
                _start(
                    [
                        str(BIN / "dask"),
                        "worker",
                        address,
                        "--nworkers",
                        "1",
                        "--nthreads",
                        "1",
                        "--no-dashboard",
                        "--name",
                        f"w{i}",
                    ],
                    tmp_path / f"worker{i}.log",
                    env,
                )
            )
        with distributed.Client(address, timeout="30s") as client:
            client.wait_for_workers(2, timeout=60)
            pids = client.run(os.getpid)
        yield address, procs, pids
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            p.wait(timeout=30)


@pytest.fixture
def dask_cluster(tmp_path):
    with _dask_cluster(tmp_path) as cluster:
        yield cluster


def _kill_one_worker_once(build: subprocess.Popen, pids: dict, progress, what: str) -> str:
    """Kill one of the cluster's workers once ``progress()`` holds, while ``build`` runs; the one-line error the
    build then fails with."""
    _wait(lambda: progress() or build.poll() is not None, 300, what)
    assert build.poll() is None, build.communicate()
    os.kill(next(iter(pids.values())), signal.SIGKILL)
    _, err = build.communicate(timeout=300)
    assert build.returncode == 1 and len(err.strip().splitlines()) == 1, err
    assert "killed" in err.lower() or "worker" in err.lower(), err
    return err


def test_a_worker_killed_mid_build_leaves_no_partial_dataset_and_the_rerun_finishes(
    dask_cluster, built, data_dir, tmp_path
):
    address, procs, pids = dask_cluster
    out = tmp_path / "out" / DATASET
    cmd = [str(BIN / "cellhub"), "datasets", "build", DATASET, "--source", str(data_dir), "--out", str(out)]
    env = {**os.environ, "CELLHUB_SCHEDULER": address}
    build = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    written = lambda: sum(1 for _ in (tmp_path / "out").glob(f".{DATASET}.partial-*/images/*.ome.zarr")) >= 5  # noqa: E731
    _kill_one_worker_once(build, pids, written, "the first samples")
    assert not out.exists() and list((tmp_path / "out").iterdir()) == []  # nothing half-written is left
    rerun = subprocess.run([*cmd, "--json"], capture_output=True, text=True, env=env, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    assert _files(out) == _files(built(DATASET))
    assert not validate_dataset(out, workers=1).errors


@pytest.mark.parametrize(
    ("baseline", "benchmark"),
    [("bbbc039-watershed", "bbbc039/instance"), ("isl-dapi", "isl-condition-b/label-free")],
)
def test_scoring_on_the_cluster_equals_the_committed_record(client, built, baseline, benchmark):
    """Each test sample's truth and prediction are read and reduced to its share of the score on a worker (its
    matching counts or image scores); the record equals the one evaluated on one machine."""
    from hub.bench import evaluate_model, get_benchmark

    base = get_baseline(baseline)
    bench = get_benchmark(benchmark)
    with distributed.get_task_stream(client) as stream:
        result = evaluate_model(
            bench, built(bench.dataset.partition("@")[0]), Model.load(base.model_dir), executor=client
        )
    scored = [t for t in stream.data if t["key"].startswith("_part-")]
    assert len(scored) == len(result.per_sample)
    if baseline == "bbbc039-watershed":  # 10 test fields: both workers score some (ISL's 4 tiles may go to one)
        assert len({t["worker"] for t in scored}) == 2
    here = base.record(benchmark)
    assert result.split_sha256 == here["split_sha256"]
    assert result.metrics == pytest.approx(here["metrics"], abs=1e-3)
    assert result.ci95 == pytest.approx(here["ci95"], abs=1e-3)


def _refuse(*args: object) -> None:
    raise AssertionError("the client uploaded a file itself")


def test_a_publish_on_the_cluster_uploads_from_the_workers_straight_to_s3(built, tmp_path, monkeypatch):
    """``publish_dataset(..., executor=client)`` to an S3-compatible server on loopback: the workers validate and
    upload (this process may not upload a single file), and the version equals a local publish's, file for file,
    and pulls back byte-identical."""
    import s3fs
    from servers import s3_server

    import hub.registry.registry as storage
    from hub.curate import publish_dataset
    from hub.registry import Registry, pull

    src = built(DATASET)
    local, _ = publish_dataset(Registry(tmp_path / "reg"), src)
    with s3_server(tmp_path) as endpoint:
        s3fs.S3FileSystem(client_kwargs={"endpoint_url": endpoint}).mkdir("hub-cluster")
        with (  # started here, so that its workers have the S3 server's settings in their environment
            distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as c,
            distributed.Client(c) as client,
        ):
            monkeypatch.setattr(storage, "put_hashed", _refuse)
            ref, sha = publish_dataset(Registry("s3://hub-cluster/reg"), src, executor=client)
            monkeypatch.undo()
        theirs = Registry("s3://hub-cluster/reg").manifest("datasets", ref)[0]
        assert theirs["files"] == Registry(tmp_path / "reg").manifest("datasets", local)[0]["files"]
        monkeypatch.setenv("CELLHUB_CACHE", str(tmp_path / "cache"))
        pulled = pull("datasets", str(ref), Registry("s3://hub-cluster/reg"))
    assert pulled.manifest_sha256 == sha and pulled.downloaded == len(theirs["files"])
    assert {k: v for k, v in _files(pulled.path).items() if not k.startswith(".")} == _files(src)


def _published_files(registry_url: str | Path, ref: object) -> list[dict]:
    from hub.registry import Registry

    return Registry(registry_url).manifest("datasets", ref)[0]["files"]


def test_a_build_on_the_cluster_goes_straight_into_s3(built, data_dir, tmp_path, monkeypatch):
    """``build_into(..., executor=client)`` with an S3-compatible server on loopback as the only storage the
    workers share: they convert, check and upload every sample (this process puts only the four tables), and the
    version equals a local build published as a folder, file for file."""
    import s3fs
    from servers import s3_server

    import hub.registry.registry as storage
    from hub.curate import publish_dataset
    from hub.curate.recipe import build_into
    from hub.registry import Registry

    local, _ = publish_dataset(Registry(tmp_path / "reg"), built(DATASET))
    with s3_server(tmp_path) as endpoint:
        s3fs.S3FileSystem(client_kwargs={"endpoint_url": endpoint}).mkdir("hub-build")
        with (
            distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as c,
            distributed.Client(c) as client,
            distributed.get_task_stream(client) as stream,
        ):
            real = storage.put_hashed

            def tables_only(fs: object, local: Path, target: str) -> tuple[int, str]:
                assert "/images/" not in target, f"the client uploaded an image file itself: {target}"
                return real(fs, local, target)

            monkeypatch.setattr(storage, "put_hashed", tables_only)
            card, ref, sha = build_into(DATASET, Registry("s3://hub-build/reg"), source=data_dir, executor=client)
            monkeypatch.undo()
        assert len({t["worker"] for t in stream.data if t["key"].startswith("_convert_and_put")}) == 2
        assert ref == local and card.counts.samples == 50
        assert _published_files("s3://hub-build/reg", ref) == _published_files(tmp_path / "reg", local)
        assert Registry("s3://hub-build/reg").resolve("datasets", "bbbc039")[1] == sha


def test_a_worker_killed_mid_build_into_s3_publishes_nothing_and_the_rerun_publishes(built, data_dir, tmp_path):
    """``cellhub datasets build --publish --registry s3://...`` on a ``dask scheduler`` with two workers: a worker
    killed mid-build fails it in one line and leaves nothing in the bucket (the upload is removed, no manifest was
    written); the rerun publishes the version a local build publishes."""
    import s3fs
    from servers import s3_server

    from hub.curate import publish_dataset
    from hub.registry import Registry

    local, _ = publish_dataset(Registry(tmp_path / "reg"), built(DATASET))
    with s3_server(tmp_path) as endpoint:
        fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": endpoint})
        fs.mkdir("hub-build")
        with _dask_cluster(tmp_path) as (address, _, pids):  # started here: the workers see the S3 settings
            cmd = [str(BIN / "cellhub"), "datasets", "build", DATASET, "--source", str(data_dir), "--publish"]
            cmd += ["--registry", "s3://hub-build/reg"]
            env = {**os.environ, "CELLHUB_SCHEDULER": address}
            build = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)

            def uploaded() -> bool:
                fs.invalidate_cache()
                return len(fs.glob(f"hub-build/reg/datasets/{DATASET}/*/upload-*/images/*/zarr.json")) >= 5

            _kill_one_worker_once(build, pids, uploaded, "the first uploads")
            fs.invalidate_cache()
            assert fs.find("hub-build") == []  # no manifest, and the abandoned upload is gone
            rerun = subprocess.run([*cmd, "--json"], capture_output=True, text=True, env=env, timeout=600)
        assert rerun.returncode == 0, rerun.stderr
        assert json.loads(rerun.stdout)["ref"] == str(local)
        assert _published_files("s3://hub-build/reg", local) == _published_files(tmp_path / "reg", local)
