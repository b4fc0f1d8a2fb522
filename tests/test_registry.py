"""The registry on real backends: a local folder, a static web server and an S3-compatible server on loopback."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import s3fs
import torch
from servers import s3_server, static_http_server

from hub.curate import publish_dataset
from hub.errors import IntegrityError, NotFound, RegistryError
from hub.registry import Registry, pull, write_lock
from hub.registry.manifest import file_sha256, publishable

DS = "isl-condition-b"


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CELLHUB_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    with s3_server(tmp_path_factory.mktemp("moto")) as endpoint:
        s3fs.S3FileSystem(client_kwargs={"endpoint_url": endpoint}).mkdir("hub-test")
        yield endpoint


def list_files(folder: Path) -> list[dict]:
    """Every file a publish of ``folder`` lists, with its size and SHA-256."""
    return [
        {"path": r, "size": (folder / r).stat().st_size, "sha256": file_sha256(folder / r)} for r in publishable(folder)
    ]


def same_bytes(a: Path, b: Path) -> None:
    assert list_files(a) == [f for f in list_files(b) if not f["path"].startswith(".")]


@pytest.fixture(scope="module")
def model(built, tmp_path_factory) -> Path:
    """A small label-free model trained for two steps on the same dataset (card + safetensors weights)."""
    from hub.models import TrainConfig, train

    out = tmp_path_factory.mktemp("model") / "isl-tiny"
    train(
        TrainConfig(
            name="isl-tiny",
            task="label-free",
            dataset=str(built(DS)),
            backbone="test_resnet",
            options={"depth": 3, "decoder_channels": 8},
            patch=64,
            batch_size=2,
            steps_per_epoch=1,
            epochs=1,
            val_batches=1,
            targets=["DAPI"],
        ),
        out,
    )
    return out


def publish_and_pull_model(model: Path, publish_to: Registry, pull_from: Registry) -> None:
    from hub.models import publish_model

    ref, sha = publish_model(publish_to, model)
    got = pull("models", str(ref), pull_from)
    same_bytes(model, got.path)
    assert got.manifest_sha256 == sha


def test_local_publish_pull_is_byte_identical(built, model, tmp_path, cache):
    reg = Registry(tmp_path / "reg")
    publish_and_pull_model(model, reg, reg)
    ref, sha = publish_dataset(reg, built(DS), accept_terms=False)
    assert str(ref) == f"{DS}@1.0.0"
    got = pull("datasets", DS, reg)
    same_bytes(built(DS), got.path)
    assert got.manifest_sha256 == sha and got.downloaded == len(list_files(built(DS)))
    again = pull("datasets", f"{DS}@1.0.0", reg)
    assert again.downloaded == 0 and again.path == got.path


def test_http_registry_pull_and_tamper_detection(built, model, tmp_path, cache):
    root = tmp_path / "reg"
    publish_dataset(Registry(root), built(DS))
    with static_http_server(root) as url:
        reg = Registry(url)
        publish_and_pull_model(model, Registry(root), reg)
        assert [r["name"] for r in reg.list("datasets")] == [DS]
        with pytest.raises(RegistryError, match="read-only"):
            publish_dataset(reg, built(DS))
        got = pull("datasets", DS, reg)
        same_bytes(built(DS), got.path)
        shutil.rmtree(cache)
        manifest = json.loads(next(root.rglob("manifest.json")).read_text())
        victim = next(f for f in manifest["files"] if f["path"].endswith("zarr.json"))
        served = root / "datasets" / DS / "1.0.0" / manifest["root"] / victim["path"]
        served.write_bytes(served.read_bytes() + b" ")  # one byte more on the server
        with pytest.raises(IntegrityError, match="altered") as err:
            pull("datasets", DS, reg)
        assert victim["path"] in str(err.value)
        local = cache / "datasets" / DS / "1.0.0" / victim["path"]
        assert not local.exists() and not list(local.parent.glob(f"{local.name}*.part"))
        assert not (cache / "datasets" / DS / "1.0.0" / ".complete").exists()


def test_s3_registry_publish_pull_and_immutability(built, model, cache, s3):
    reg = Registry("s3://hub-test/registry")
    publish_and_pull_model(model, reg, Registry("s3://hub-test/registry"))
    ref, sha = publish_dataset(reg, built(DS))
    got = pull("datasets", str(ref), Registry("s3://hub-test/registry"))
    same_bytes(built(DS), got.path)
    with pytest.raises(RegistryError, match="immutable"):
        publish_dataset(reg, built(DS))
    assert reg.resolve("datasets", DS) == (ref, sha)


def test_concurrent_publishes_exactly_one_wins(built, tmp_path, s3):
    for url in (tmp_path / "reg", "s3://hub-test/race"):
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    "from hub.cli import main; main()",
                    "datasets",
                    "publish",
                    str(built(DS)),
                    "--registry",
                    str(url),
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        results = [(p.wait(120), p.stderr.read()) for p in procs]
        assert sorted(rc for rc, _ in results) == [0, 1], results
        loser = next(err for rc, err in results if rc == 1).strip().splitlines()[-1]
        assert loser.startswith("error:") and ("already published" in loser or "immutable" in loser)
        reg = Registry(url)
        assert reg.versions("datasets", DS) == ["1.0.0"]
        uploads = reg.fs.ls(reg._path("datasets", DS, "1.0.0"), detail=False)
        assert len([u for u in uploads if "upload-" in u]) == 1  # the loser cleaned up its upload


def test_publish_killed_mid_upload_leaves_nothing_visible(built, tmp_path, cache, cli):
    """dsb2018-fluo: hundreds of files, so the kill lands while they are still being copied."""
    root = tmp_path / "reg"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from hub.cli import main; main()",
            "datasets",
            "publish",
            str(built("dsb2018-fluo")),
            "--registry",
            str(root),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    version = root / "datasets" / "dsb2018-fluo" / "1.0.1"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not any(version.glob("upload-*/images/*/*")):
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (version / "manifest.json").exists()
    reg = Registry(root)
    assert reg.versions("datasets", "dsb2018-fluo") == [] and reg.list() == []
    with pytest.raises(NotFound):
        pull("datasets", "dsb2018-fluo@1.0.1", reg)
    r = cli("datasets", "publish", built("dsb2018-fluo"), "--registry", root, "--json", check=True)
    assert json.loads(r.stdout)["ref"] == "dsb2018-fluo@1.0.1"
    same_bytes(built("dsb2018-fluo"), pull("datasets", "dsb2018-fluo", reg).path)


def test_interrupted_pull_resumes_without_refetching(built, tmp_path, cache):
    root = tmp_path / "reg"
    publish_dataset(Registry(root), built("dsb2018-fluo"))
    dest = cache / "datasets" / "dsb2018-fluo" / "1.0.1"
    with static_http_server(root, stall_after=300) as url:  # the pull stops at a known point, then is killed
        env = {**os.environ, "CELLHUB_CACHE": str(cache)}
        proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from hub.cli import main; main()",
                "datasets",
                "pull",
                "dsb2018-fluo",
                "--registry",
                url,
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and len([p for p in dest.rglob("*") if p.is_file()]) < 250:
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert not (dest / ".complete").exists()
    with static_http_server(root, keep_alive=True) as url:
        got = pull("datasets", "dsb2018-fluo", Registry(url))
    total = len(list_files(built("dsb2018-fluo")))
    assert got.reused >= 200 and got.downloaded + got.reused == total
    same_bytes(built("dsb2018-fluo"), got.path)


def test_keep_alive_server_answers_many_requests_on_one_connection(built, tmp_path):
    root = tmp_path / "reg"
    publish_dataset(Registry(root), built(DS))
    with static_http_server(root, keep_alive=True) as url:
        conn = http.client.HTTPConnection(url.removeprefix("http://"), timeout=10)
        conn.request("GET", "/index.json")
        first = conn.getresponse()
        assert first.status == 200 and json.loads(first.read())
        sock = conn.sock
        conn.request("GET", "/index.json")
        again = conn.getresponse()
        assert again.status == 200 and again.version == 11 and again.read() == (root / "index.json").read_bytes()
        assert conn.sock is sock is not None  # the same TCP connection served both
        conn.request("GET", "/no-such-file")
        missing = conn.getresponse()
        assert missing.status == 404 and missing.read()
        conn.close()


def test_lockfile_refuses_drift_and_offline_pull_uses_cache(built, tmp_path, cache, cli):
    root = tmp_path / "reg"
    reg = Registry(root)
    publish_dataset(reg, built(DS))
    lock = tmp_path / "cellhub.lock"
    write_lock(lock, reg, [("datasets", DS)])
    r = cli(
        "datasets",
        "pull",
        DS,
        "--locked",
        "--lockfile",
        lock,
        "--json",
        env={**os.environ, "CELLHUB_CACHE": str(cache)},
        check=True,
    )
    assert json.loads(r.stdout)["ref"] == f"{DS}@1.0.0"
    manifest = root / "datasets" / DS / "1.0.0" / "manifest.json"
    m = json.loads(manifest.read_text())
    m["published"] = "2000-01-01T00:00:00+00:00"  # the registry's manifest changed under the pin
    manifest.write_text(json.dumps(m))
    shutil.rmtree(cache)
    r = cli(
        "datasets",
        "pull",
        DS,
        "--locked",
        "--lockfile",
        lock,
        env={**os.environ, "CELLHUB_CACHE": str(cache)},
        check=False,
    )
    assert r.returncode == 1 and "drift" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    pulled = pull("datasets", DS, Registry(root))  # an unlocked pull takes the changed manifest
    offline = pull("datasets", DS, Registry("http://127.0.0.1:9"))  # nothing listens on port 9
    assert offline.offline and offline.path == pulled.path


def test_search_list_info_cli(built, tmp_path, cache, cli):
    root = tmp_path / "reg"
    cli("datasets", "publish", built(DS), "--registry", root, check=True)
    rows = json.loads(cli("registry", "list", "--search", "neurons", "--registry", root, "--json", check=True).stdout)
    assert [r["name"] for r in rows] == [DS]
    assert (
        json.loads(
            cli("registry", "list", "--search", "phase-contrast", "--registry", root, "--json", check=True).stdout
        )[0]["name"]
        == DS
    )
    assert (
        json.loads(cli("registry", "list", "--search", "zebrafish", "--registry", root, "--json", check=True).stdout)
        == []
    )
    assert len(json.loads(cli("datasets", "list", "--registry", root, "--json", check=True).stdout)) == 1
    info = json.loads(cli("datasets", "info", DS, "--registry", root, "--json", check=True).stdout)
    assert info["version"] == "1.0.0" and info["files"]
    r = cli("datasets", "publish", built("ctc-gowt1"), "--registry", root, check=False)
    assert r.returncode == 1 and "--accept-terms" in r.stderr


def test_load_dataset_goes_through_the_registry(built, tmp_path, cache, monkeypatch):
    import hub

    monkeypatch.setenv("CELLHUB_REGISTRY", str(tmp_path / "reg"))
    publish_dataset(hub.Registry(), built(DS))
    ds = hub.load_dataset(f"{DS}@1.0.0")
    assert ds.card.name == DS and str(ds.path).startswith(str(cache))


def test_a_partial_pull_fetches_one_split_verified_and_the_full_pull_only_the_rest(built, tmp_path, cache, cli):
    """``cellhub datasets pull REF --split test`` from a real web server on loopback: the tables and the test
    samples' images, each verified; a train sample says it was not pulled; ``--samples`` adds one; the full pull
    then downloads only what is missing, and the cache verifies at every step."""
    from hub.bench import get_benchmark
    from hub.bench.truth import verify_truth
    from hub.dataset import open_dataset

    name, src = "bbbc039", built("bbbc039")
    ds = open_dataset(src)
    test, train = ds.ids("test"), ds.ids("train")
    root = tmp_path / "reg"
    _, sha = publish_dataset(Registry(root), src)
    total = len(list_files(src))
    per_sample = {sid: len(list_files(src / "images" / f"{sid}.ome.zarr")) for sid in ds.ids()}
    tables = total - sum(per_sample.values())
    with static_http_server(root) as url:
        got = json.loads(cli("datasets", "pull", name, "--registry", url, "--split", "test", "--json").stdout)
        part = Path(got["path"])
        assert sorted(got["samples"]) == sorted(test) and got["manifest_sha256"] == sha
        assert got["downloaded"] == tables + sum(per_sample[s] for s in test)
        assert sorted(p.name for p in (part / "images").iterdir()) == sorted(f"{s}.ome.zarr" for s in test)
        pulled = open_dataset(part)
        assert verify_truth(get_benchmark("bbbc039/instance"), pulled) == test  # the benchmark's split is whole
        assert pulled.image(test[0]).read().shape == ds.image(test[0]).read().shape
        with pytest.raises(NotFound, match="partial pull"):
            pulled.image(train[0])
        assert not (part / ".complete").exists() and cli("cache", "verify", "--json").returncode == 0
        more = pull("datasets", name, Registry(url), samples=[train[0]])
        assert more.downloaded == per_sample[train[0]] and sorted(more.samples) == sorted([*test, train[0]])
        with pytest.raises(NotFound, match="no sample 'nope'"):
            pull("datasets", name, Registry(url), samples=["nope"])
        victim = next((part / "images" / f"{test[1]}.ome.zarr").rglob("zarr.json"))
        victim.write_bytes(victim.read_bytes() + b" ")
        bad = json.loads(cli("cache", "verify", "--json").stdout)
        assert [p["file"] for row in bad for p in row["problems"]] == [victim.relative_to(part).as_posix()]
        full = pull("datasets", name, Registry(url))
        assert (
            full.samples is None
            and full.downloaded == total - tables - sum(per_sample[s] for s in [*test, train[0]]) + 1
        )
        assert (part / ".complete").exists() and not (part / ".partial.json").exists()
    same_bytes(src, full.path)


def test_a_streamed_dataset_trains_from_the_web_server_sample_by_sample_verified(built, tmp_path, cache):
    """``hub.load_dataset(ref, streaming=True)`` from a real web server on loopback: only the tables are pulled
    up front; a torch DataLoader with worker processes fetches each sample it reads, verified, into the cache,
    and gives the very patches of the local dataset; a sample altered on the server is refused when read."""
    from torch.utils.data import DataLoader

    import hub
    from hub.data import SegmentationDataset
    from hub.dataset import open_dataset

    name, src = "bbbc039", built("bbbc039")
    root = tmp_path / "reg"
    publish_dataset(Registry(root), src)
    with static_http_server(root) as url:
        ds = hub.load_dataset(name, registry=url, streaming=True)
        assert not (ds.path / "images").exists() and ds.ids() == open_dataset(src).ids()
        streamed = SegmentationDataset(ds, "train", patch=128, samples_per_epoch=16, seed=3)
        local = SegmentationDataset(src, "train", patch=128, samples_per_epoch=16, seed=3)
        for (xs, ys), (xl, yl) in zip(
            DataLoader(streamed, batch_size=4, num_workers=2), DataLoader(local, batch_size=4)
        ):
            assert torch.equal(xs, xl) and torch.equal(ys, yl)
        there = {p.name.removesuffix(".ome.zarr") for p in (ds.path / "images").iterdir()}
        assert there and there <= set(ds.ids("train"))  # what was read, nothing else
        manifest = json.loads(next(root.rglob("manifest.json")).read_text())
        sid = ds.ids("test")[0]
        victim = next(
            f for f in manifest["files"] if f["path"].startswith(f"images/{sid}.ome.zarr/") and "/c/" in f["path"]
        )
        served = root / "datasets" / name / "1.0.0" / manifest["root"] / victim["path"]
        served.write_bytes(b"\0" + served.read_bytes()[1:])
        with pytest.raises(IntegrityError, match="altered"):
            hub.load_dataset(name, registry=url, streaming=True).image(sid)
        assert not (ds.path / victim["path"]).exists()


def test_a_version_of_many_files_has_a_paged_manifest_that_pulls_streams_and_verifies(
    built, tmp_path, cache, monkeypatch
):
    """Past ``PAGE_FILES`` files (here 64, so that bbbc039 has six pages) the manifest lists pages, each pinned
    by SHA-256: from a real web server a full pull is byte-identical, a partial pull and a stream read only the
    pages and files they need, the cache keeps the pages and an altered one is found."""
    import hub
    from hub.dataset import open_dataset
    from hub.registry import cached, verify_cache
    from hub.registry import manifest as manifest_module
    from hub.registry.ref import Ref

    monkeypatch.setattr(manifest_module, "PAGE_FILES", 64)
    name, src = "bbbc039", built("bbbc039")
    root = tmp_path / "reg"
    _, sha = publish_dataset(Registry(root), src)
    head = json.loads(next(root.rglob("manifest.json")).read_bytes())
    total = len(list_files(src))
    assert head["files"] == [] and [p["files"] for p in head["pages"]] == [64] * (total // 64) + [total % 64]
    pages = root / "datasets" / name / "1.0.0" / f"{head['root']}.pages"
    assert sorted(p.name for p in pages.iterdir()) == sorted(f"{p['sha256']}.json" for p in head["pages"])
    with static_http_server(root) as url:
        assert Registry(url).manifest("datasets", name) == Registry(root).manifest("datasets", name)
        ds = hub.load_dataset(name, registry=url, streaming=True)
        sid = ds.ids("test")[0]
        assert ds.image(sid).read().shape == open_dataset(src).image(sid).read().shape
        part = pull("datasets", name, Registry(url), split="test")
        assert sorted(part.samples) == sorted(ds.ids("test")) and verify_cache()[0]["problems"] == []
        full = pull("datasets", name, Registry(url))  # fetches only what the partial pull did not
        assert full.manifest_sha256 == sha and full.reused == part.downloaded + part.reused
    same_bytes(src, full.path)
    assert cached("datasets", Ref(name, "1.0.0")).path == full.path  # offline: the pages are in the cache
    assert sorted(p.name for p in (full.path / ".pages").iterdir()) == sorted(p.name for p in pages.iterdir())
    page = next((full.path / ".pages").iterdir())
    page.write_bytes(page.read_bytes().replace(b"images", b"imagez", 1))
    [problem] = verify_cache()[0]["problems"]
    assert problem["file"] == ".manifest.json" and "manifest page" in problem["problem"]
    with pytest.raises(IntegrityError, match="altered after it was pulled"):
        cached("datasets", Ref(name, "1.0.0"))


def test_an_upload_is_invisible_until_committed_and_abort_never_removes_a_committed_one(tmp_path):
    """``begin`` / ``put`` / ``commit`` / ``abort``, the steps of every publish (and of a build into a registry):
    what is put stays unlisted until the manifest names it; an abandoned upload is removed, a committed one
    never; a bad name, a published version and entries a reader would refuse are refused before anything is
    committed."""
    from hub.errors import InvalidInput

    reg = Registry(tmp_path / "reg")
    folder = tmp_path / "files"
    (folder / "weights").mkdir(parents=True)
    (folder / "weights" / "a.bin").write_bytes(b"weights")
    card = {"name": "tiny", "version": "1.0.0", "title": "tiny"}
    abandoned = reg.begin("models", card)
    abandoned.put(folder, ["weights/a.bin"])
    assert reg.versions("models", "tiny") == []
    reg.abort(abandoned)
    assert not (tmp_path / "reg" / "models" / "tiny" / "1.0.0" / abandoned.root).exists()
    upload = reg.begin("models", card)
    files = upload.put(folder, ["weights/a.bin"])
    assert files == [{"path": "weights/a.bin", "size": 7, "sha256": hashlib.sha256(b"weights").hexdigest()}]
    ref, sha = reg.commit(upload, files, card)
    reg.abort(upload)  # e.g. a caller that saw an error after the commit: the version stays whole
    assert reg.manifest("models", ref)[1] == sha and reg.versions("models", "tiny") == ["1.0.0"]
    upload.get(files, tmp_path / "back")
    assert (tmp_path / "back" / "weights" / "a.bin").read_bytes() == b"weights"
    with pytest.raises(RegistryError, match="already published"):
        reg.begin("models", card)
    with pytest.raises(InvalidInput, match="not a name and version"):
        reg.begin("models", {"name": "../elsewhere", "version": "1.0.0"})
    bad = reg.begin("models", {**card, "version": "1.0.1"})
    with pytest.raises(InvalidInput, match="reserved"):
        reg.commit(bad, [{"path": ".complete", "size": 1, "sha256": "0" * 64}], {**card, "version": "1.0.1"})
    assert reg.versions("models", "tiny") == ["1.0.0"]
    assert not (tmp_path / "reg" / "models" / "tiny" / "1.0.1" / bad.root).exists()
