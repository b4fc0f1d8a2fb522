"""Pull published versions into a verified local cache: parallel, resumable, offline-capable.

Cache layout: ``$CELLHUB_CACHE/KIND/NAME/VERSION/`` holds the version's files, ``.manifest.json`` (the
exact bytes of the registry manifest) and ``.complete`` (the manifest SHA-256, written once every file
is verified). A file is downloaded to ``NAME.part``, hashed, and renamed only when its SHA-256 matches,
so an interrupted pull resumes with the files already finished.

From async filesystems (HTTP, S3) every file is fetched by one event loop (fsspec's), ``workers`` requests in
flight, and hashed from memory as it arrives; other filesystems (local, hf://) use a thread pool.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from fsspec.asyn import sync

from hub.config import cache_root
from hub._progress import progress_bar
from hub.errors import IntegrityError, NotFound
from hub.registry.manifest import file_sha256, manifest_bytes, sha256_bytes
from hub.registry.ref import Ref, parse_ref, version_key
from hub.registry.registry import Registry

@dataclass
class Pulled:
    path: Path
    ref: Ref
    manifest_sha256: str
    downloaded: int = 0  # files fetched from the registry by this pull
    reused: int = 0  # files already verified in the cache
    offline: bool = False


def version_dir(kind: str, ref: Ref) -> Path:
    return cache_root() / kind / ref.name / ref.version


def cached(kind: str, ref: Ref) -> Pulled | None:
    """A complete cached version for an exact ref, or the newest complete one for ``latest``."""
    base = cache_root() / kind / ref.name
    versions = [ref.version] if ref.version != "latest" else \
        sorted((p.name for p in base.glob("*") if (p / ".complete").is_file()), key=version_key)[-1:]
    for v in versions:
        d = base / v
        if (d / ".complete").is_file():
            return Pulled(d, Ref(ref.name, v), (d / ".complete").read_text().strip(), offline=True)
    return None


IN_MEMORY = 64 * 2**20  # files up to this size are fetched into memory and hashed before they are written


def _part(local: Path) -> Path:
    """Where ``local`` is downloaded to before it is verified."""
    return local.with_name(local.name + ".part")


def _keep(local: Path, want: dict, data: bytes | None = None) -> None:
    """Verify a fetched file (``data``, or ``local``.part on disk) against the manifest and move it into place;
    a mismatch leaves nothing behind and raises."""
    part = _part(local)
    got = sha256_bytes(data) if data is not None else file_sha256(part)
    if got != want["sha256"]:
        part.unlink(missing_ok=True)
        raise IntegrityError(f"SHA-256 {got[:16]}... differs from {want['sha256'][:16]}... in the manifest; "
                             f"the file on the registry was altered, nothing kept", local)
    if data is not None:
        part.write_bytes(data)
    part.rename(local)


def _fetch_threads(fs, jobs: list[tuple[str, Path, dict]], workers: int, done: Callable[[dict], None]) -> None:
    def get(job: tuple[str, Path, dict]) -> None:
        url, local, want = job
        fs.get_file(url, str(_part(local)))
        _keep(local, want)
        done(want)

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(get, jobs))


async def _fetch_async(fs, jobs: list[tuple[str, Path, dict]], workers: int, done: Callable[[dict], None]) -> None:
    limit = asyncio.Semaphore(workers)

    async def get(url: str, local: Path, want: dict) -> None:
        async with limit:
            if want["size"] <= IN_MEMORY:
                _keep(local, want, await fs._cat_file(url))
            else:
                await fs._get_file(url, str(_part(local)))
                await asyncio.to_thread(_keep, local, want)
        done(want)

    async with asyncio.TaskGroup() as group:  # the first failure cancels the rest
        for job in jobs:
            group.create_task(get(*job))


def _fetch(fs, jobs: list[tuple[str, Path, dict]], workers: int, done: Callable[[dict], None]) -> None:
    """Download and verify ``(url, local path, manifest entry)`` jobs, ``workers`` at a time."""
    if not getattr(fs, "async_impl", False):
        return _fetch_threads(fs, jobs, workers, done)
    try:
        sync(fs.loop, _fetch_async, fs, jobs, workers, done)
    except ExceptionGroup as group:
        raise group.exceptions[0] from None


def pull(kind: str, ref: Ref | str, registry: Registry | None = None, *, pin: str | None = None,
         workers: int = 8) -> Pulled:
    """Pull ``ref`` from ``registry`` into the cache and return where it is.

    ``pin``: the manifest SHA-256 a lockfile expects; anything else is refused. When the registry cannot be
    reached, a complete cached copy is used (offline).
    """
    ref = parse_ref(ref) if isinstance(ref, str) else ref
    registry = registry or Registry()
    try:
        manifest, sha = registry.manifest(kind, ref)
    except (OSError, NotFound) as err:
        local = cached(kind, ref)
        if local is None or (isinstance(err, NotFound) and ref.version != "latest"):
            raise
        if pin and local.manifest_sha256 != pin:
            raise IntegrityError(f"cached {local.ref} has manifest {local.manifest_sha256[:16]}..., the lockfile pins "
                                 f"{pin[:16]}...")
        return local
    exact = Ref(manifest["name"], manifest["version"])
    if pin and sha != pin:
        raise IntegrityError(f"{exact} now has manifest SHA-256 {sha[:16]}..., the lockfile pins {pin[:16]}... "
                             f"(drift: refusing)", registry.url)
    dest = version_dir(kind, exact)
    if (dest / ".complete").is_file() and (dest / ".complete").read_text().strip() == sha:
        return Pulled(dest, exact, sha, reused=len(manifest["files"]))
    dest.mkdir(parents=True, exist_ok=True)
    todo, reused = [], 0
    for f in manifest["files"]:
        local = dest / f["path"]
        if local.is_file() and local.stat().st_size == f["size"] and file_sha256(local) == f["sha256"]:
            reused += 1
        else:
            todo.append(f)
    for folder in {(dest / f["path"]).parent for f in todo}:
        folder.mkdir(parents=True, exist_ok=True)
    with progress_bar() as bar:
        task = bar.add_task(f"pulling {exact}", total=sum(f["size"] for f in todo))
        jobs = [(registry.file_url(kind, manifest, f["path"]), dest / f["path"], f) for f in todo]
        _fetch(registry.fs, jobs, workers, lambda f: bar.advance(task, f["size"]))
    (dest / ".manifest.json").write_bytes(manifest_bytes(manifest))
    (dest / ".complete").write_text(sha + "\n")
    return Pulled(dest, exact, sha, downloaded=len(todo), reused=reused)


def read_lock(path: str | Path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise NotFound("lockfile not found (write one with cellhub lock)", path) from None


def write_lock(path: str | Path, registry: Registry, entries: list[tuple[str, Ref]]) -> dict:
    """Pin each (kind, ref) to its exact version and manifest SHA-256 now."""
    lock = {"registry": registry.url, "pins": {}}
    for kind, ref in entries:
        exact, sha = registry.resolve(kind, ref)
        lock["pins"].setdefault(kind, {})[exact.name] = {"version": exact.version, "manifest_sha256": sha}
    Path(path).write_text(json.dumps(lock, indent=1, sort_keys=True) + "\n")
    return lock


def pinned(lock: dict, kind: str, name: str) -> tuple[Ref, str]:
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
