"""Pull published versions into a verified local cache: parallel, resumable, offline-capable.

Cache layout: ``$CELLHUB_CACHE/KIND/NAME/VERSION/`` holds the version's files, ``.manifest.json`` (the
exact bytes of the registry manifest; a paged manifest's pages in ``.pages/``) and ``.complete`` (the
manifest SHA-256, written once every file is verified). A file is streamed to ``NAME.part`` (never more bytes
than the manifest says), hashed as it arrives, and renamed only when its SHA-256 matches, so an interrupted
pull resumes with the files already finished. The registry is untrusted: see :func:`pull`.

A dataset can be pulled in part (``split=`` or ``samples=``): its tables and the chosen samples' images,
each file verified as usual; ``.partial.json`` then lists the samples there instead of ``.complete``, and a
later full pull fetches only what is missing.

The downloads themselves, capped, hashed and verified, are :func:`hub.registry._fetch.fetch_files`.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hub._progress import progress_bar
from hub._readers import read_json
from hub.cards.dataset import NAME, SEMVER
from hub.config import cache_root
from hub.dataset import open_dataset
from hub.errors import CellHubError, IntegrityError, InvalidInput, NotFound, RegistryError
from hub.registry._fetch import fetch_files, new_file
from hub.registry.manifest import (
    COMPLETE,
    MANIFEST_COPY,
    PAGES,
    PART,
    PARTIAL,
    file_sha256,
    parse_manifest,
    read_pages,
    sha256_bytes,
)
from hub.registry.ref import KINDS, Ref, parse_ref, version_key
from hub.registry.registry import Registry
from hub.safety import MAX_MANIFEST_BYTES, inside, read_capped


@dataclass
class Pulled:
    path: Path
    ref: Ref
    manifest_sha256: str
    downloaded: int = 0  # files fetched from the registry by this pull
    reused: int = 0  # files already verified in the cache
    offline: bool = False
    samples: list[str] | None = None  # a partial pull: the samples in the cache (else all of them)


def version_dir(kind: str, ref: Ref) -> Path:
    return inside(cache_root(), f"{kind}/{ref.name}/{ref.version}", "cache folder")


def _marker(dest: Path) -> str | None:
    """The manifest SHA-256 of a version whose pull completed, else None."""
    try:
        text = read_capped(dest / COMPLETE, 128, "cache marker").decode("ascii", "replace").strip()
    except (OSError, CellHubError):
        return None
    return text if len(text) == 64 else None


def _cached_manifest(dest: Path, sha: str, kind: str, ref: Ref) -> dict[str, Any] | None:
    """The manifest kept beside a cached version, if its bytes still hash to ``sha``."""
    try:
        data = read_capped(dest / MANIFEST_COPY, MAX_MANIFEST_BYTES, "cached manifest")
    except OSError:
        return None
    if sha256_bytes(data) != sha:
        return None
    manifest = parse_manifest(data, str(dest / MANIFEST_COPY), kind, ref.name, ref.version)

    def page(entry: dict[str, Any]) -> bytes:
        path = dest / PAGES / f"{entry['sha256']}.json"
        try:
            return read_capped(path, entry["size"], "cached manifest page")
        except OSError:
            raise IntegrityError("cached manifest page is missing", path) from None

    return read_pages(manifest, str(dest / MANIFEST_COPY), page)[0]


def _keep_manifest(dest: Path, data: bytes, pages: dict[str, bytes]) -> None:
    """Keep a pulled manifest's exact bytes, and its pages', beside the version's files."""
    if pages:
        (dest / PAGES).mkdir(exist_ok=True)
    for sha, page in pages.items():
        _write(dest / PAGES / f"{sha}.json", page)
    _write(dest / MANIFEST_COPY, data)


def _own_files(manifest: dict[str, Any]) -> set[str]:
    """What the cache keeps beside a version's files: the markers, the manifest and its pages."""
    return {COMPLETE, MANIFEST_COPY, PARTIAL} | {f"{PAGES}/{p['sha256']}.json" for p in manifest.get("pages", [])}


def cached(kind: str, ref: Ref) -> Pulled | None:
    """A complete cached version for an exact ref, or the newest complete one for ``latest``; its kept manifest
    must hash to the completion marker and every file must have the manifest's size (else IntegrityError: the
    cache was altered; ``cellhub cache verify --fix`` repairs it)."""
    base = inside(cache_root(), f"{kind}/{ref.name}", "cache folder")
    versions = (
        [ref.version]
        if ref.version != "latest"
        else sorted((p.name for p in base.glob("*") if SEMVER.fullmatch(p.name) and _marker(p)), key=version_key)[-1:]
    )
    for v in versions:
        d = version_dir(kind, Ref(ref.name, v))
        sha = _marker(d)
        if sha is None:
            continue
        try:
            manifest = _cached_manifest(d, sha, kind, Ref(ref.name, v))
        except CellHubError:
            manifest = None
        if manifest is None or not _sizes_match(d, manifest):
            raise IntegrityError(
                f"the cached {ref.name}@{v} was altered after it was pulled; run `cellhub cache "
                f"verify --fix`, then pull it again",
                d,
            )
        return Pulled(d, Ref(ref.name, v), sha, offline=True)
    return None


def _write(path: Path, data: bytes) -> None:
    """Replace ``path`` (itself, not a link's target) with ``data``."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}{PART}")
    with new_file(tmp) as fh:
        fh.write(data)
    os.replace(tmp, path)


def _prune(dest: Path, manifest: dict[str, Any]) -> None:
    """Remove from a version folder everything its manifest does not list: files left by another publisher's
    version of the same name@version, links, and folders standing where a file belongs."""
    keep = {f["path"] for f in manifest["files"]} | _own_files(manifest)
    folders = {"/".join(p.split("/")[:i]) for p in keep for i in range(1, p.count("/") + 1)}
    for top, dirs, files in os.walk(dest, topdown=False):
        for name in [*files, *dirs]:
            path = Path(top, name)
            rel = path.relative_to(dest).as_posix()
            if path.is_symlink() or (path.is_file() and rel not in keep):
                path.unlink()
            elif path.is_dir() and rel not in folders:
                shutil.rmtree(path)


def _sizes_match(dest: Path, manifest: dict[str, Any]) -> bool:
    """Whether every file of a cached version is there with the manifest's size (a cheap check: ``cellhub
    cache verify`` re-hashes)."""
    for f in manifest["files"]:
        try:
            if (dest / f["path"]).stat().st_size != f["size"]:
                return False
        except OSError:
            return False
    return True


def pull(
    kind: str,
    ref: Ref | str,
    registry: Registry | None = None,
    *,
    pin: str | None = None,
    workers: int = 8,
    split: str | None = None,
    samples: list[str] | None = None,
) -> Pulled:
    """Pull ``ref`` from ``registry`` into the cache and return where it is.

    ``pin``: the manifest SHA-256 a lockfile expects; anything else is refused. When the registry cannot be
    reached, a complete cached copy is used (offline). The registry is untrusted: its manifest must be the one
    asked for and well-formed (safe relative paths only), every file is size-capped and SHA-256-checked, and
    nothing is written outside the version's cache folder. ``split`` / ``samples`` (datasets): pull only the
    dataset's tables and those samples' images (see the module docstring).
    """
    ref = parse_ref(ref) if isinstance(ref, str) else ref
    registry = registry or Registry()
    if (split or samples) and kind != "datasets":
        raise InvalidInput("only a dataset can be pulled in part (split or samples)")
    try:
        manifest, data, pages = registry.manifest_data(kind, ref)
    except (OSError, NotFound) as err:
        local = cached(kind, ref)
        if local is None or (isinstance(err, NotFound) and ref.version != "latest"):
            raise
        if pin and local.manifest_sha256 != pin:
            raise IntegrityError(
                f"cached {local.ref} has manifest {local.manifest_sha256[:16]}..., the lockfile pins {pin[:16]}..."
            ) from None
        return local
    sha = sha256_bytes(data)
    exact = Ref(manifest["name"], manifest["version"])
    if pin and sha != pin:
        raise IntegrityError(
            f"{exact} now has manifest SHA-256 {sha[:16]}..., the lockfile pins {pin[:16]}... (drift: refusing)",
            registry.url,
        )
    dest = version_dir(kind, exact)
    if prepare(dest, manifest, sha):
        return Pulled(dest, exact, sha, reused=len(manifest["files"]))
    files, ids, downloaded, reused = manifest["files"], None, 0, 0
    if split or samples:  # the tables first: samples.csv says which images the samples are
        downloaded, reused = fetch(registry, kind, manifest, dest, tables_of(files), workers, f"{exact}'s tables")
        ids, folders = _chosen(dest, split, samples, _partial_ids(dest, sha))
        files = images_of(files, folders)
    got = fetch(registry, kind, manifest, dest, files, workers, f"pulling {exact}")
    downloaded, reused = downloaded + got[0], reused + got[1]
    _keep_manifest(dest, data, pages)
    if ids is None:
        _write(dest / COMPLETE, f"{sha}\n".encode())
        (dest / PARTIAL).unlink(missing_ok=True)
    else:
        _write(dest / PARTIAL, json.dumps({"manifest_sha256": sha, "samples": ids}).encode())
    return Pulled(dest, exact, sha, downloaded=downloaded, reused=reused, samples=ids)


IMAGES = "images/"  # a dataset's sample images: images/<id>.ome.zarr/...


def prepare(dest: Path, manifest: dict[str, Any], sha: str) -> bool:
    """Whether ``dest`` holds the whole version of manifest ``sha`` already; if not, drop its completion marker
    and whatever the manifest does not list, ready for files to be fetched into it."""
    if _marker(dest) == sha and _sizes_match(dest, manifest):
        return True
    (dest / COMPLETE).unlink(missing_ok=True)
    if dest.is_dir():  # no links are left under dest, and the manifest's paths are safe relative paths
        _prune(dest, manifest)  # (Manifest): so every dest / path lies inside dest
    return False


def fetch(
    registry: Registry,
    kind: str,
    manifest: dict[str, Any],
    dest: Path,
    files: list[dict[str, Any]],
    workers: int = 8,
    label: str | None = None,
) -> tuple[int, int]:
    """Fetch and verify the manifest entries ``files`` that the cache does not hold verified yet (with a progress
    bar named ``label``); returns how many were downloaded and how many reused."""
    todo = [f for f in files if not _verified(dest / f["path"], f)]
    _check_space(dest, sum(f["size"] for f in todo))
    for folder in {(dest / f["path"]).parent for f in todo}:
        folder.mkdir(parents=True, exist_ok=True)
    jobs = [(registry.file_url(kind, manifest, f["path"]), dest / f["path"], f) for f in todo]
    if label is None:
        fetch_files(registry.fs, jobs, workers, lambda f: None)
    else:
        with progress_bar() as bar:
            task = bar.add_task(label, total=sum(f["size"] for f in todo))
            fetch_files(registry.fs, jobs, workers, lambda f: bar.advance(task, f["size"]))
    return len(todo), len(files) - len(todo)


def _verified(local: Path, want: dict[str, Any]) -> bool:
    return local.is_file() and local.stat().st_size == want["size"] and file_sha256(local) == want["sha256"]


def tables_of(files: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A dataset's files that are not sample images: card, samples.csv, splits.json, report."""
    return [f for f in files if not f["path"].startswith(IMAGES)]


def images_of(files: list[dict[str, Any]], folders: set[str] | None) -> list[dict[str, Any]]:
    """The files of the sample image folders ``folders`` (names under ``images/``; ``None``: every one)."""
    images = [f for f in files if f["path"].startswith(IMAGES)]
    return images if folders is None else [f for f in images if f["path"].split("/")[1] in folders]


def _partial(dest: Path) -> tuple[str, list[str]] | None:
    """The manifest SHA-256 and the samples of a partial pull's marker, if ``dest`` has a readable one."""
    try:
        mark = json.loads(read_capped(dest / PARTIAL, MAX_MANIFEST_BYTES, "partial-pull marker"))
    except (OSError, CellHubError, ValueError):
        return None
    if not isinstance(mark, dict) or not isinstance(mark.get("samples"), list):
        return None
    return str(mark.get("manifest_sha256")), [i for i in mark["samples"] if isinstance(i, str)]


def _partial_ids(dest: Path, sha: str) -> list[str]:
    """The samples an earlier partial pull of the same manifest left in ``dest``."""
    mark = _partial(dest)
    return mark[1] if mark and mark[0] == sha else []


def _chosen(dest: Path, split: str | None, samples: list[str] | None, before: list[str]) -> tuple[list[str], set[str]]:
    """The samples of the pulled (verified) ``samples.csv`` in ``split`` or named in ``samples``, with those an
    earlier partial pull holds: their ids, and the names of their image folders under ``images/``."""
    rows = open_dataset(dest).samples
    known = {r.id for r in rows}
    missing = [s for s in samples or [] if s not in known]
    if missing:
        raise NotFound(f"the dataset has no sample {missing[0]!r}", dest / "samples.csv")
    if split and not any(r.split == split for r in rows):
        raise NotFound(f"the dataset has no sample in split {split!r}", dest / "samples.csv")
    want = set(before) | set(samples or []) | {r.id for r in rows if split and r.split == split}
    chosen = [r for r in rows if r.id in want]
    return [r.id for r in chosen], {r.path.removeprefix(IMAGES).split("/")[0] for r in chosen}


def _check_space(dest: Path, need: int) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(dest).free
    if need > free:
        raise RegistryError(
            f"the pull needs {need / 2**30:.1f} GiB, the cache's disk has {free / 2**30:.1f} GiB free", dest
        )


def read_lock(path: str | Path) -> dict[str, Any]:
    """A lockfile written by :func:`write_lock`; anything else is a one-line error naming it."""
    try:
        lock = read_json(path, "lockfile")
    except FileNotFoundError:
        raise NotFound("lockfile not found (write one with cellhub registry lock)", path) from None
    if not isinstance(lock, dict) or not isinstance(lock.get("pins"), dict) or "registry" not in lock:
        raise InvalidInput("not a lockfile written by cellhub registry lock (no registry and pins)", path)
    return lock


def write_lock(path: str | Path, registry: Registry, entries: list[tuple[str, Ref]]) -> dict[str, Any]:
    """Pin each (kind, ref) to its exact version and manifest SHA-256 now."""
    pins: dict[str, dict[str, dict[str, str]]] = {}
    lock = {"registry": registry.url, "pins": pins}
    for kind, ref in entries:
        exact, sha = registry.resolve(kind, ref)
        pins.setdefault(kind, {})[exact.name] = {"version": exact.version, "manifest_sha256": sha}
    Path(path).write_text(json.dumps(lock, indent=1, sort_keys=True) + "\n")
    return lock


def pinned(lock: dict[str, Any], kind: str, name: str) -> tuple[Ref, str]:
    try:
        pin = lock["pins"][kind][name]
    except KeyError:
        raise NotFound(f"the lockfile pins no {kind[:-1]} {name!r}") from None
    return Ref(name, pin["version"]), pin["manifest_sha256"]


def local_path(kind: str, ref_or_path: str | Path, registry: str | Registry | None = None) -> Path:
    """A local folder (one with a ``card.yaml``) as it is, else the pulled, verified ``name[@version]``."""
    folder = Path(ref_or_path)
    if (folder / "card.yaml").is_file():
        return folder
    if isinstance(ref_or_path, Path) or any(s in str(ref_or_path) for s in ("/", "\\")):
        raise NotFound(f"no card.yaml: not a {kind[:-1]} folder", folder)
    reg = registry if isinstance(registry, Registry) else Registry(registry)
    return pull(kind, str(ref_or_path), reg).path


def verify_cache(kind: str | None = None, ref: Ref | str | None = None, *, fix: bool = False) -> list[dict[str, Any]]:
    """Re-hash cached versions (all, those of ``kind``, or one ``ref``) against the manifests kept beside them,
    as ``hf cache verify`` does: one row per version with its problems (a file missing, of another size or
    SHA-256, not in the manifest, or a manifest that no longer matches the completion marker). ``fix``
    removes what is wrong and the completion marker, so the next pull fetches exactly those files again."""
    ref = parse_ref(ref) if isinstance(ref, str) else ref
    rows = []
    for k in [kind] if kind else list(KINDS):
        root = cache_root() / k
        names = [ref.name] if ref else sorted(p.name for p in root.glob("*") if NAME.fullmatch(p.name))
        for name in names:
            versions = sorted((p.name for p in (root / name).glob("*") if SEMVER.fullmatch(p.name)), key=version_key)
            if ref and ref.version != "latest":
                versions = [v for v in versions if v == ref.version]
            for v in versions:
                dest = version_dir(k, Ref(name, v))
                problems = _problems(dest, k, Ref(name, v))
                if fix and problems:
                    for rel, _ in problems:
                        _remove(dest, rel)
                    (dest / COMPLETE).unlink(missing_ok=True)
                rows.append(
                    {
                        "kind": k,
                        "ref": f"{name}@{v}",
                        "path": str(dest),
                        "problems": [{"file": rel, "problem": p} for rel, p in problems],
                        "fixed": bool(fix and problems),
                    }
                )
    if ref and not rows:
        raise NotFound(f"{ref} is not in the cache", cache_root())
    return rows


def _remove(dest: Path, rel: str) -> None:
    """Remove ``dest / rel``, or the first link on the way to it (never anything a link points to)."""
    path = dest
    for part in rel.split("/"):
        path = path / part
        if path.is_symlink():
            path.unlink()
            return
    if path.is_file():
        path.unlink()


def _problems(dest: Path, kind: str, ref: Ref) -> list[tuple[str, str]]:
    sha, partial = _marker(dest), _partial(dest)
    if sha is None and partial is None:
        return [(COMPLETE, "missing: the pull did not finish (pull again to resume)")]
    marker = COMPLETE if sha else PARTIAL
    try:
        manifest = _cached_manifest(dest, sha or partial[0], kind, ref)  # type: ignore[index]  # one of them is set
    except CellHubError as err:
        return [(MANIFEST_COPY, err.problem)]
    if manifest is None:
        return [(MANIFEST_COPY, f"missing or does not hash to the {marker} marker")]
    expected = manifest["files"]
    if sha is None:  # a partial pull: its tables and the images of the samples it lists
        try:
            _, folders = _chosen(dest, None, partial[1], [])  # type: ignore[index]
        except CellHubError as err:
            return [(PARTIAL, err.problem)]
        expected = tables_of(expected) + images_of(expected, folders)
    files, links = _tree(dest)
    problems, listed = [], _own_files(manifest) | {f["path"] for f in manifest["files"]}
    for f in expected:
        local = dest / f["path"]
        if any(f["path"] == link or f["path"].startswith(link + "/") for link in links):
            continue  # reported as a link below
        if not local.is_file():
            problems.append((f["path"], "missing"))
        elif local.stat().st_size != f["size"]:
            problems.append((f["path"], f"{local.stat().st_size} bytes, the manifest says {f['size']}"))
        elif file_sha256(local) != f["sha256"]:
            problems.append((f["path"], "SHA-256 differs from the manifest (altered after the pull)"))
    problems += [(link, "a link (the cache holds plain files only)") for link in links]
    problems += [(rel, "not in the manifest") for rel in files if rel not in listed]
    return problems


def _tree(dest: Path) -> tuple[list[str], list[str]]:
    """The plain files and the symbolic links under ``dest`` (links are never followed), as relative paths."""
    files, links = [], []
    for top, dirs, names in os.walk(dest):
        for name in [*dirs, *names]:
            path = Path(top, name)
            rel = path.relative_to(dest).as_posix()
            if path.is_symlink():
                links.append(rel)
            elif name in names:
                files.append(rel)
    return sorted(files), sorted(links)
