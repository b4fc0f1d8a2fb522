"""A hostile registry (a local folder, and the same folder behind a real HTTP server on loopback): unsafe
paths, forged identities, oversized files and manifests, and a cache altered after a good pull. Nothing may be
written outside the cache, and every refusal is one line."""

from __future__ import annotations

import hashlib
import json
import shutil
import tracemalloc
from pathlib import Path

import pytest
from servers import static_http_server

from hub.curate import publish_dataset
from hub.errors import CellHubError, IntegrityError, InvalidInput
from hub.registry import Registry, pull, verify_cache
from hub.registry.manifest import MAX_FILES, MAX_PAGES_BYTES
from hub.safety import check_relpath, inside

DS = "isl-condition-b"
PAYLOAD = b"owned\n"

#: The 13 unsafe names of huggingface_hub's test for its local_dir path-traversal fix, plus our own.
UNSAFE = [
    "../../../../home/user/.bashrc",
    "../escape.txt",
    "images/../../../../escape.txt",
    "/etc/passwd",
    "/tmp/abs.txt",
    "C:\\Windows\\system.ini",
    "C:escape.txt",
    "\\\\server\\share\\escape.txt",
    "..\\..\\escape.txt",
    "images\\..\\..\\escape.txt",
    "..",
    ".",
    "",
    # ours
    "a//b.txt",
    "./a.txt",
    "images/./a.txt",
    "images/",
    "a\x00b.txt",
    "a\nb.txt",
    "a\x1b[2Jb.txt",
    "x" * 2000,
    ".complete",
    ".manifest.json",
    ".pages/0.json",
    "images/a.zarr.part",
]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def files_outside(root: Path, cache: Path) -> dict[str, bytes]:
    """Every file under ``root`` except the cache and the server logs, with its bytes."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and cache not in p.parents and not p.name.endswith(".log")
    }


@pytest.fixture(scope="module")
def hostile(built, tmp_path_factory):
    """A registry that holds one honest version of a real dataset (its manifest kept), served over HTTP too."""
    root = tmp_path_factory.mktemp("hostile") / "reg"
    reg = Registry(root)
    ref, _ = publish_dataset(reg, built(DS))
    manifest_path = root / "datasets" / DS / "1.0.0" / "manifest.json"
    honest, index = manifest_path.read_bytes(), (root / "index.json").read_bytes()
    with static_http_server(root) as url:
        yield {"root": root, "url": url, "manifest": manifest_path, "honest": honest, "index": index}


@pytest.fixture
def registry(hostile):
    """Each test rewrites the manifest it needs; the honest one (and the catalog) are put back afterwards."""
    yield hostile
    hostile["manifest"].write_bytes(hostile["honest"])
    (hostile["root"] / "index.json").write_bytes(hostile["index"])
    shutil.rmtree(pages_folder(hostile), ignore_errors=True)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A cache four folders deep, so that '../../../..' from a version folder still lands in tmp_path."""
    path = tmp_path / "a" / "b" / "c" / "cache"
    monkeypatch.setenv("CELLHUB_CACHE", str(path))
    (tmp_path / "home" / "user").mkdir(parents=True)
    (tmp_path / "home" / "user" / ".bashrc").write_text("# the user's own\n")
    return path


def forge(reg: dict, **changes) -> dict:
    manifest = json.loads(reg["honest"])
    manifest.update(changes)
    reg["manifest"].write_text(json.dumps(manifest, indent=1, sort_keys=True))
    return manifest


def pages_folder(reg: dict) -> Path:
    return reg["manifest"].parent / f"{json.loads(reg['honest'])['root']}.pages"


def page_bytes(files: list[dict]) -> bytes:
    return json.dumps({"files": files}).encode()


def forge_pages(reg: dict, pages: list[bytes], **changes) -> None:
    """A paged manifest: ``pages`` served beside the upload, the manifest listing each by size and SHA-256."""
    pages_folder(reg).mkdir(exist_ok=True)
    entries = []
    for data in pages:
        (pages_folder(reg) / f"{sha256(data)}.json").write_bytes(data)
        entries.append({"sha256": sha256(data), "size": len(data), "files": data.count(b'"path"')})
    forge(reg, **{"files": [], "pages": entries, **changes})


def backends(reg: dict) -> list[Registry]:
    return [Registry(reg["root"]), Registry(reg["url"])]


@pytest.mark.parametrize("bad", UNSAFE, ids=[repr(u)[:40] for u in UNSAFE])
def test_unsafe_manifest_paths_are_refused_before_anything_is_written(registry, cache, tmp_path, bad):
    honest = json.loads(registry["honest"])
    upload = registry["root"] / "datasets" / DS / "1.0.0" / honest["root"]
    target = Path(upload, bad) if bad and "\x00" not in bad else None
    try:  # where a naive pull would read it from: inside the registry's own tree, as an attacker would put it
        if target and registry["root"] in target.resolve().parents:
            target.resolve().parent.mkdir(parents=True, exist_ok=True)
            target.resolve().write_bytes(PAYLOAD)
    except OSError:
        pass
    forge(registry, files=[*honest["files"], {"path": bad, "size": len(PAYLOAD), "sha256": sha256(PAYLOAD)}])
    before = files_outside(tmp_path, cache)
    for reg in backends(registry):
        with pytest.raises(InvalidInput, match="unsafe file path|reserved|malformed manifest") as err:
            pull("datasets", f"{DS}@1.0.0", reg)
        assert "\n" not in str(err.value) and len(str(err.value)) < 600
    assert files_outside(tmp_path, cache) == before
    assert not cache.exists() or not any(cache.rglob(".complete"))


@pytest.mark.parametrize("backend", ["local", "http"])
def test_unsafe_path_through_the_cli_is_one_line_and_exit_1(registry, cache, tmp_path, backend, cli):
    honest = json.loads(registry["honest"])
    forge(
        registry,
        files=[
            *honest["files"],
            {"path": "../../../../home/user/.bashrc", "size": len(PAYLOAD), "sha256": sha256(PAYLOAD)},
        ],
    )
    url = registry["root"] if backend == "local" else registry["url"]
    r = cli("datasets", "pull", f"{DS}@1.0.0", "--registry", url)
    assert r.returncode == 1
    assert len(r.stderr.strip().splitlines()) == 1 and "unsafe file path" in r.stderr and "manifest.json" in r.stderr
    assert (tmp_path / "home" / "user" / ".bashrc").read_text() == "# the user's own\n"


@pytest.mark.parametrize(
    "changes, match",
    [
        ({"name": "other"}, "answered datasets/isl-condition-b@1.0.0 with the manifest of datasets/other@1.0.0"),
        ({"version": "9.9.9"}, "with the manifest of datasets/isl-condition-b@9.9.9"),
        ({"kind": "models"}, "with the manifest of models/"),
        ({"name": "../../../../evil"}, "malformed manifest: name"),
        ({"version": "1.0.0/../../x"}, "malformed manifest: version"),
        ({"root": "../../../../tmp"}, "malformed manifest: root"),
        ({"files": [{"path": "a", "size": -1, "sha256": "0" * 64}]}, "malformed manifest: files"),
        ({"files": [{"path": "a", "size": 1, "sha256": "Z" * 64}]}, "malformed manifest: files"),
        ({"files": [{"path": "a", "size": 1, "sha256": "0" * 64}] * 2}, "listed twice"),
        (
            {"files": [{"path": "a", "size": 1, "sha256": "0" * 64}, {"path": "a/b", "size": 1, "sha256": "0" * 64}]},
            "lies under a path that is listed as a file",
        ),
        ({"files": "everything"}, "malformed manifest: files"),
    ],
)
def test_forged_identities_and_malformed_manifests_are_refused(registry, cache, changes, match):
    forge(registry, **changes)
    for reg in backends(registry):
        for ref in (f"{DS}@1.0.0", DS):  # exact, and 'latest' (resolved by listing or by the catalog)
            with pytest.raises(CellHubError, match=match.replace("(", r"\(").replace("[", r"\[")) as err:
                pull("datasets", ref, reg)
            assert "\n" not in str(err.value)
    assert not cache.exists() or not any(cache.rglob("*"))  # nothing cached under any name


def test_an_honest_paged_manifest_pulls_the_same_files(registry, cache):
    """The control for the forgeries below: the honest files in two pages pull whole and verified."""
    files = json.loads(registry["honest"])["files"]
    forge_pages(registry, [page_bytes(files[:3]), page_bytes(files[3:])])
    for reg in backends(registry):
        got = pull("datasets", f"{DS}@1.0.0", reg)
        assert got.downloaded + got.reused == len(files) and (got.path / ".complete").exists()
        assert sorted(p.name for p in (got.path / ".pages").iterdir()) == sorted(
            p.name for p in pages_folder(registry).iterdir()
        )
    assert verify_cache()[0]["problems"] == []


PAGE_FORGERIES = {
    "altered": (lambda f: ([page_bytes(f)], {}, lambda d: d.replace(b"images", b"imagez", 1))),
    "missing": (lambda f: ([page_bytes(f)], {}, lambda d: None)),
    "larger than it says": (lambda f: ([page_bytes(f)], {}, lambda d: d + b" " * 1000)),
    "not JSON": (lambda f: ([b"\xff{" + page_bytes(f)], {}, None)),
    "wrong count": (lambda f: ([page_bytes(f)], {"wrong_count": True}, None)),
    "unsafe path": (lambda f: ([page_bytes([*f, {**f[0], "path": "../../../../home/user/.bashrc"}])], {}, None)),
    "twice across pages": (lambda f: ([page_bytes(f), page_bytes(f[:1])], {}, None)),
    "files and pages": (lambda f: ([page_bytes(f[1:])], {"files": f[:1]}, None)),
    "too many files": (lambda f: ([page_bytes(f)], {"too_many": True}, None)),
    "too many page bytes": (lambda f: ([page_bytes(f)], {"too_big": True}, None)),
}
PAGE_MATCH = {
    "altered": "differs from its size and SHA-256",
    "missing": "manifest page .* is missing",
    "larger than it says": "more than the|larger than the",
    "not JSON": r"manifest page 1 \(.*\) is not valid JSON",
    "wrong count": r"manifest page 1 .* lists \d+ files, the manifest says \d+",
    "unsafe path": r"malformed manifest page 1 \(.*\): files.*unsafe file path",
    "twice across pages": "listed twice",
    "files and pages": "lists its files in its pages only",
    "too many files": f"more than the {MAX_FILES:,} files",
    "too many page bytes": f"pages of more than the {MAX_PAGES_BYTES:,} bytes",
}


@pytest.mark.parametrize("case", list(PAGE_FORGERIES))
def test_forged_manifest_pages_are_refused_before_anything_is_written(registry, cache, tmp_path, case):
    files = json.loads(registry["honest"])["files"]
    pages, changes, serve = PAGE_FORGERIES[case](files)
    declared = {  # what the manifest says of its first page, against what it is
        "wrong_count": {"files": len(files) + 1},
        "too_many": {"files": MAX_FILES + 1},
        "too_big": {"size": 16 * 2**20},
    }
    says = [declared[k] for k in list(changes) if k in declared and changes.pop(k)]
    forge_pages(registry, pages, **changes)
    head = json.loads(registry["manifest"].read_bytes())
    for claim in says:
        head["pages"] = [{**head["pages"][0], **claim}] * (40 if "size" in claim else 1)
    registry["manifest"].write_text(json.dumps(head))
    if serve is not None:  # what the server holds under the page's name instead of the page
        path = pages_folder(registry) / f"{head['pages'][0]['sha256']}.json"
        data = serve(path.read_bytes())
        path.unlink() if data is None else path.write_bytes(data)
    before = files_outside(tmp_path, cache)
    for reg in backends(registry):
        with pytest.raises(CellHubError, match=PAGE_MATCH[case]) as err:
            pull("datasets", f"{DS}@1.0.0", reg)
        assert "\n" not in str(err.value) and len(str(err.value)) < 600
    assert files_outside(tmp_path, cache) == before
    assert not cache.exists() or not any(cache.rglob("*"))


def test_manifest_that_is_not_json_is_one_line(registry, cache):
    registry["manifest"].write_bytes(b"\xff\xfe{not json")
    for reg in backends(registry):
        with pytest.raises(InvalidInput, match="manifest is not valid JSON"):
            pull("datasets", f"{DS}@1.0.0", reg)


def test_a_file_larger_than_its_manifest_entry_is_cut_off_without_reading_it(registry, cache, tmp_path):
    honest = json.loads(registry["honest"])
    upload = registry["root"] / "datasets" / DS / "1.0.0" / honest["root"]
    with open(upload / "bomb.bin", "wb") as fh:  # 512 MiB on the server (sparse: no disk used)
        fh.truncate(512 * 2**20)
    forge(registry, files=[*honest["files"], {"path": "bomb.bin", "size": 10, "sha256": sha256(b"0" * 10)}])
    try:
        for reg in backends(registry):
            tracemalloc.start()
            with pytest.raises(IntegrityError, match="more than the 10 bytes|larger than the 10 bytes"):
                pull("datasets", f"{DS}@1.0.0", reg)
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            assert peak < 64 * 2**20, f"{peak / 2**20:.0f} MiB held for a 10-byte entry"
            version = cache / "datasets" / DS / "1.0.0"
            assert not (version / "bomb.bin").exists() and not list(version.glob("bomb.bin*.part"))
            assert not (version / ".complete").exists()
    finally:
        (upload / "bomb.bin").unlink()


def test_an_oversized_manifest_is_refused(registry, cache):
    with open(registry["manifest"], "wb") as fh:
        fh.truncate(17 * 2**20)
    for reg in backends(registry):
        with pytest.raises(CellHubError, match="larger than|more than"):
            pull("datasets", f"{DS}@1.0.0", reg)


def test_cache_verify_finds_and_fixes_a_file_altered_after_a_good_pull(registry, cache, monkeypatch, cli):
    reg = Registry(registry["url"])
    got = pull("datasets", f"{DS}@1.0.0", reg)
    assert cli("cache", "verify").returncode == 0
    victim = next(p for p in sorted(got.path.rglob("*")) if p.is_file() and p.name == "zarr.json")
    rel = victim.relative_to(got.path).as_posix()
    victim.write_bytes(victim.read_bytes().replace(b"{", b"{ ", 1))  # same idea, one byte more

    # pull of a complete version checks sizes: the altered file is fetched again
    again = pull("datasets", f"{DS}@1.0.0", reg)
    assert (
        again.downloaded == 1
        and victim.read_bytes()
        == (registry["root"] / "datasets" / DS / "1.0.0" / json.loads(registry["honest"])["root"] / rel).read_bytes()
    )

    # a same-size alteration (and a planted file) only a re-hash finds
    planted = got.path / "images" / "planted.sh"
    planted.write_text("echo hi\n")
    data = bytearray(victim.read_bytes())
    data[-2] = ord(" ") if data[-2] != ord(" ") else ord("\t")
    victim.write_bytes(bytes(data))
    r = cli("cache", "verify", f"{DS}@1.0.0", "--json")
    assert r.returncode == 1
    problems = {p["file"]: p["problem"] for p in json.loads(r.stdout)[0]["problems"]}
    assert problems == {
        rel: "SHA-256 differs from the manifest (altered after the pull)",
        "images/planted.sh": "not in the manifest",
    }
    r = cli("cache", "verify", "--fix")
    assert r.returncode == 0 and "fixed" in r.stdout
    assert not victim.exists() and not planted.exists() and not (got.path / ".complete").exists()
    assert pull("datasets", f"{DS}@1.0.0", reg).downloaded == 1
    assert verify_cache()[0]["problems"] == []


def test_a_forged_completion_marker_is_not_trusted_offline(registry, cache):
    reg = Registry(registry["root"])
    got = pull("datasets", f"{DS}@1.0.0", reg)
    (got.path / ".complete").write_text("f" * 64 + "\n")
    offline = Registry(registry["root"].parent / "gone")
    with pytest.raises(IntegrityError, match="altered after it was pulled.*cache verify --fix"):
        pull("datasets", DS, offline)
    assert verify_cache()[0]["problems"][0]["file"] == ".manifest.json"


def test_safe_paths_are_kept(tmp_path):
    for ok in (
        "card.yaml",
        "images/a.ome.zarr/zarr.json",
        "images/a b.ome.zarr/0/c/0/0",
        "~/x",
        "..a/b..",
        "a.part.json",
    ):
        assert inside(tmp_path, ok) == tmp_path / ok
    (tmp_path / "link").symlink_to(tmp_path.parent)
    with pytest.raises(InvalidInput, match="resolves outside"):
        inside(tmp_path, "link/escape.txt")
    with pytest.raises(InvalidInput, match="not a non-empty string"):
        check_relpath(None)


def test_hostile_registry_cannot_touch_the_users_files_through_load_dataset(registry, cache, tmp_path):
    import hub

    honest = json.loads(registry["honest"])
    forge(
        registry,
        files=[
            *honest["files"],
            {"path": "../../../../home/user/.bashrc", "size": len(PAYLOAD), "sha256": sha256(PAYLOAD)},
        ],
    )
    with pytest.raises(InvalidInput, match="unsafe file path"):
        hub.load_dataset(f"{DS}@1.0.0", registry=registry["url"])
    assert (tmp_path / "home" / "user" / ".bashrc").read_text() == "# the user's own\n"
    shutil.rmtree(cache, ignore_errors=True)


def test_links_planted_in_the_cache_are_never_followed(registry, cache, tmp_path):
    """Links in a version folder (made by anyone with write access to the cache) are neither written through by
    a pull nor followed by `cache verify --fix`."""
    reg = Registry(registry["root"])
    version = cache / "datasets" / DS / "1.0.0"
    version.mkdir(parents=True)
    victim = tmp_path / "victim.txt"
    victim.write_text("mine\n")
    (version / "card.yaml.part").symlink_to(victim)
    (version / ".manifest.json").symlink_to(victim)
    got = pull("datasets", f"{DS}@1.0.0", reg)
    assert victim.read_text() == "mine\n"
    assert not any(p.is_symlink() for p in got.path.rglob("*"))

    outside = tmp_path / "outside"
    shutil.copytree(got.path / "images", outside)
    shutil.rmtree(got.path / "images")
    (got.path / "images").symlink_to(outside)
    for p in outside.rglob("zarr.json"):
        p.write_text("{}")  # what a naive --fix would delete, through the link
    before = files_outside(tmp_path, cache)
    rows = verify_cache(fix=True)
    assert {"file": "images", "problem": "a link (the cache holds plain files only)"} in rows[0]["problems"]
    assert files_outside(tmp_path, cache) == before and not (got.path / "images").exists()
    assert pull("datasets", f"{DS}@1.0.0", reg).downloaded > 0 and verify_cache()[0]["problems"] == []


def test_an_honest_pull_clears_what_a_hostile_mirror_left(registry, cache, tmp_path):
    """A hostile mirror's version of the same name@version (an extra file, a folder where the honest version
    has a file) is replaced whole by the next pull from the honest registry."""
    honest = json.loads(registry["honest"])
    version = cache / "datasets" / DS / "1.0.0"
    (version / "samples.csv").mkdir(parents=True)  # would block the honest samples.csv
    (version / "samples.csv" / "x").write_bytes(PAYLOAD)
    (version / "images" / "planted.ome.zarr").mkdir(parents=True)
    (version / "images" / "planted.ome.zarr" / "zarr.json").write_text("{}")
    got = pull("datasets", f"{DS}@1.0.0", Registry(registry["root"]))
    assert sorted(p.relative_to(got.path).as_posix() for p in got.path.rglob("*") if p.is_file()) == sorted(
        [f["path"] for f in honest["files"]] + [".complete", ".manifest.json"]
    )


def test_deeply_nested_json_is_one_line(registry, cache, tmp_path, cli):
    registry["manifest"].write_text("[" * 100_000)
    (registry["root"] / "index.json").write_text("{" * 100_000)
    with pytest.raises(InvalidInput, match="manifest is not valid JSON"):
        pull("datasets", f"{DS}@1.0.0", Registry(registry["root"]))
    r = cli("registry", "list", "--registry", registry["root"])
    assert r.returncode == 1 and "catalog is not valid JSON" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_catalog_text_reaches_the_terminal_inert(registry, tmp_path, cli):
    index = json.loads(registry["index"])
    entry = index["datasets"][DS]["1.0.0"]
    entry["summary"]["title"] = "\x1b]0;owned\x07[bold]fake[/bold]\u202e"
    index["datasets"]["[red]x"] = {"1.0.0": entry}  # not a name: left out
    index["datasets"][DS]["9.9.9\n"] = entry  # not a version: left out
    (registry["root"] / "index.json").write_text(json.dumps(index))
    r = cli("registry", "list", "--registry", registry["root"])
    assert r.returncode == 0 and "\x1b" not in r.stdout and "\u202e" not in r.stdout
    assert "[bold]fake[/bold]" in r.stdout and "[red]x" not in r.stdout and "9.9.9" not in r.stdout


def test_result_records_are_read_only_from_their_own_place(registry):
    reg = Registry(registry["root"])
    for path in ("../../../etc/passwd", "results/a/b/../../../x.json", f"results/x/instance/{'0' * 64}.json"):
        with pytest.raises(IntegrityError, match="is not results/<benchmark>/<sha256>.json|altered"):
            reg.result_record({"path": path, "sha256": "1" * 64})
