"""A registry on any fsspec URL: publish immutable versions, resolve, list, search, pull into a verified cache.

Layout (the same on every backend)::

    index.json                                   catalog of every published version (for static servers)
    datasets/NAME/VERSION/manifest.json          commit point: every file with size and SHA-256
    datasets/NAME/VERSION/upload-ID/...          the files of the publish attempt the manifest names
    datasets/NAME/VERSION/upload-ID.pages/...    a paged manifest's pages (a version of over 10,000 files)
    models/NAME/VERSION/...                      the same for models

A publish uploads into a fresh ``upload-ID`` folder and then creates ``manifest.json`` exclusively, so
readers never see a version without its manifest, a publish killed half-way leaves nothing visible, and
of two concurrent publishes exactly one wins.
"""

from __future__ import annotations

import builtins  # Registry.list shadows list in the class body
import datetime as dt
import getpass
import json
import logging
import random
import re
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from hub._progress import progress_bar
from hub._readers import parse_json
from hub._versions import cellhub_version
from hub.cards.dataset import NAME, SEMVER
from hub.config import registry_root
from hub.errors import CellHubError, IntegrityError, InvalidInput, NotFound, RegistryError
from hub.executor import ExecutorLike, imap_samples, use_executor
from hub.registry._fetch import fetch_files
from hub.registry._fs import create_exclusive, is_read_only, join, open_root, put_hashed, read_capped, write_atomic
from hub.registry.manifest import (
    MANIFEST,
    manifest_bytes,
    pages_dir,
    paginate,
    parse_manifest,
    publishable,
    read_pages,
    sha256_bytes,
)
from hub.registry.ref import KINDS, Ref, parse_ref, version_key
from hub.safety import MAX_CARD_BYTES, MAX_MANIFEST_BYTES, MAX_RECORD_BYTES, inside, load_yaml_file

INDEX = "index.json"
log = logging.getLogger(__name__)
BENCHMARK = re.compile(r"[a-z0-9][a-z0-9-]*/[a-z][a-z-]*")  # DATASET/TASK: two path components, nothing else
UPLOAD_ROOT = re.compile(r"upload-[0-9a-f]{12}")  # what begin names an upload folder
RESULT_PATH = re.compile(rf"results/{BENCHMARK.pattern}/[0-9a-f]{{64}}\.json")


def _now() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()


def _summary(kind: str, card: dict[str, Any]) -> dict[str, Any]:
    """What the catalog keeps of a card: enough for list and search without opening the version."""
    acq = card.get("acquisition", {})
    return {
        "title": card.get("title", ""),
        "tasks": card.get("tasks", [card.get("task")] if card.get("task") else []),
        "organism": acq.get("organism"),
        "cell_type": acq.get("cell_type"),
        "modalities": sorted({c.get("modality", "") for c in acq.get("channels", [])}),
        "license": card.get("terms", card).get("license"),
        "samples": card.get("counts", {}).get("samples"),
    }


#: What the catalog keeps of a result record: enough to list a leaderboard row (which then reads the record).
RESULT_SUMMARY_KEYS = (
    "benchmark",
    "model",
    "weights_sha256",
    "split",
    "split_sha256",
    "suite_version",
    "source",
    "primary_metric",
    "value",
    "ci95",
    "metrics",
    "inputs",
    "date",
    "predictions_sha256",
)


def _result_summary(record: dict[str, Any], path: str) -> dict[str, Any]:
    return {"path": path, **{k: record.get(k) for k in RESULT_SUMMARY_KEYS}}


def _manifest_entry(kind: str, manifest: dict[str, Any], sha: str) -> dict[str, Any]:
    return {"manifest_sha256": sha, "published": manifest.get("published"), "summary": _summary(kind, manifest["card"])}


def _put(index: dict[str, Any], key: tuple[str, str, str], entry: dict[str, Any]) -> None:
    kind, name, version = key
    index.setdefault(kind, {}).setdefault(name, {})[version] = entry


def _has(index: dict[str, Any], key: tuple[str, str, str]) -> bool:
    kind, name, version = key
    return version in index.get(kind, {}).get(name, {})


class ManifestRead(NamedTuple):
    """A version's manifest as read from a registry."""

    manifest: dict[str, Any]  # checked, with every file listed in ``files`` (a paged one's pages included)
    data: bytes  # manifest.json's exact bytes: their SHA-256 pins the version
    pages: dict[str, bytes]  # a paged manifest's pages, exact bytes by SHA-256 (empty for a flat one)


#: A kind's publish rule (:func:`hub.curate.check_dataset`, :func:`hub.models.check_model`): it raises when the
#: version folder must not be published. Storage knows no kind's rules; the kind that owns them passes its rule.
PublishCheck = Callable[[Path], None]
#: Files per task when a cluster publishes (:meth:`Registry.publish` with an executor).
PUT_BATCH = 64


def _put_file(fs: Any, folder: str | Path, dest: str, rel: str) -> dict[str, Any]:
    """Upload ``folder/rel`` to ``dest/rel``, read once and hashed as it is sent; its manifest entry."""
    size, sha = put_hashed(fs, Path(folder, rel), join(dest, rel))
    return {"path": rel, "size": size, "sha256": sha}


def _put_batch(job: tuple[Upload, str, builtins.list[str]]) -> builtins.list[dict[str, Any]]:
    """A cluster worker's share of a publish: the files ``rels`` of ``folder`` put into the upload."""
    upload, folder, rels = job
    return upload.put(folder, rels)


@dataclass(frozen=True)
class Upload:
    """A version being published (:meth:`Registry.begin`): its files go to ``KIND/NAME/VERSION/upload-ID``, where
    no reader looks until :meth:`Registry.commit` names them in the manifest. It holds only names, so it travels
    to a cluster's workers, which put and read back files themselves."""

    url: str  # the registry
    kind: str
    name: str
    version: str
    root: str  # upload-ID
    terms: dict[str, Any] | None = None  # the acceptance of terms that forbid redistribution, for the manifest

    @property
    def dest(self) -> tuple[str, ...]:
        """The upload's folder, as path parts under the registry root."""
        return (self.kind, self.name, self.version, self.root)

    def put(self, folder: str | Path, rels: builtins.list[str]) -> builtins.list[dict[str, Any]]:
        """Upload the files ``rels`` of the local ``folder`` (each read once, hashed as it is sent); their
        manifest entries."""
        registry = Registry(self.url)
        dest = registry._path(*self.dest)
        return [_put_file(registry.fs, folder, dest, r) for r in rels]

    def get(self, files: builtins.list[dict[str, Any]], folder: str | Path, workers: int = 8) -> None:
        """Download the entries ``files`` (as :meth:`put` returned them) into the local ``folder``, each verified
        against its size and SHA-256: what is read back is what was put, whatever else wrote there since."""
        registry = Registry(self.url)
        jobs = []
        for f in files:
            local = inside(Path(folder), f["path"], "upload entry")
            local.parent.mkdir(parents=True, exist_ok=True)
            jobs.append((registry._path(*self.dest, f["path"]), local, f))
        fetch_files(registry.fs, jobs, workers, lambda f: None)


class Registry:
    """A registry rooted at ``url`` (default: the local registry, ``$CELLHUB_REGISTRY``)."""

    def __init__(self, url: str | Path | None = None):
        self.url = str(url or registry_root())
        self.fs, self.root = open_root(self.url)

    def __repr__(self) -> str:
        return f"Registry({self.url!r})"

    def _path(self, *parts: str) -> str:
        return join(self.root, *parts)

    # --- reading ------------------------------------------------------------------------------------------

    def _read(self, path: str, limit: int) -> bytes:
        return read_capped(self.fs, path, limit)

    def index(self) -> dict[str, Any]:
        """The catalog ``{kind: {name: {version: entry}}}``; empty when the registry has none yet. It is a
        convenience for listing and search, never trusted for what is pulled or ranked."""
        path = self._path(INDEX)
        try:
            index = parse_json(self._read(path, MAX_MANIFEST_BYTES), path, "catalog")
        except FileNotFoundError:
            return {k: {} for k in KINDS}
        if not isinstance(index, dict) or not all(isinstance(v, dict) for v in index.values()):
            raise RegistryError("catalog is not a JSON object of objects", path)
        return index

    def versions(self, kind: str, name: str) -> list[str]:
        """Published versions of ``name``, oldest first (from listing when the backend can list)."""
        read_only = is_read_only(self.fs)
        if read_only:
            found = list(self.index().get(kind, {}).get(name, {}))
        else:
            try:
                found = [p.rstrip("/").rsplit("/", 1)[-1] for p in self.fs.ls(self._path(kind, name), detail=False)]
            except FileNotFoundError:
                found = []
        found = [v for v in found if SEMVER.fullmatch(v)]
        if not read_only:
            found = [v for v in found if self.fs.exists(self._path(kind, name, v, MANIFEST))]
        return sorted(found, key=version_key)

    def manifest_data(self, kind: str, ref: Ref | str) -> ManifestRead:
        """The manifest of an exact or ``latest`` version, checked to be well-formed and to be the version asked
        for (:func:`~hub.registry.manifest.parse_manifest`), with its pages if it has any (each checked by
        :func:`~hub.registry.manifest.read_pages`); every file read with a size cap."""
        ref = parse_ref(ref) if isinstance(ref, str) else ref
        if kind not in KINDS:
            raise InvalidInput(f"kind must be one of {KINDS}")
        version = ref.version
        if version == "latest":
            versions = self.versions(kind, ref.name)
            if not versions:
                raise NotFound(f"no {kind[:-1]} {ref.name!r} in registry {self.url}")
            version = versions[-1]
        path = self._path(kind, ref.name, version, MANIFEST)
        try:
            data = self._read(path, MAX_MANIFEST_BYTES)
        except FileNotFoundError:
            raise NotFound(f"no {kind[:-1]} {ref.name}@{version} in registry {self.url}") from None
        manifest = parse_manifest(data, path, kind, ref.name, version)
        folder = self._path(kind, ref.name, version, pages_dir(manifest["root"]))

        def page(entry: dict[str, Any]) -> bytes:
            try:
                return self._read(join(folder, f"{entry['sha256']}.json"), entry["size"])
            except FileNotFoundError:
                raise IntegrityError(f"manifest page {entry['sha256'][:16]}... is missing", folder) from None

        manifest, pages = read_pages(manifest, path, page)
        return ManifestRead(manifest, data, pages)

    def manifest(self, kind: str, ref: Ref | str) -> tuple[dict[str, Any], str]:
        """``(manifest, its SHA-256)`` of an exact or ``latest`` version (see :meth:`manifest_data`)."""
        read = self.manifest_data(kind, ref)
        return read.manifest, sha256_bytes(read.data)

    def resolve(self, kind: str, ref: Ref | str) -> tuple[Ref, str]:
        """The exact version a reference means now, and its manifest SHA-256."""
        manifest, sha = self.manifest(kind, ref)
        return Ref(manifest["name"], manifest["version"]), sha

    def list(self, kind: str | None = None) -> list[dict[str, Any]]:
        """One row per published version: kind, name, version, manifest SHA-256 and the card summary."""
        rows = []
        index = self.index()
        for k in (kind,) if kind else KINDS:  # what the catalog holds is checked here, as it is untrusted
            for name, versions in sorted(index.get(k, {}).items()):
                if not NAME.fullmatch(name) or not isinstance(versions, dict):
                    continue
                ok = [(v, e) for v, e in versions.items() if SEMVER.fullmatch(v) and isinstance(e, dict)]
                for version, entry in sorted(ok, key=lambda kv: version_key(kv[0])):
                    rows.append({**entry, "kind": k, "name": name, "version": version})
        return rows

    def search(self, text: str, kind: str | None = None) -> builtins.list[dict[str, Any]]:
        """Versions whose name, title, task, organism, cell type or modality contains ``text`` (any case)."""
        needle = text.lower()
        hits = []
        for row in self.list(kind):
            s = row["summary"] if isinstance(row.get("summary"), dict) else {}
            hay = " ".join(
                str(x)
                for x in [
                    row["name"],
                    s.get("title"),
                    s.get("tasks"),
                    s.get("organism"),
                    s.get("cell_type"),
                    s.get("modalities"),
                ]
            ).lower()
            if needle in hay:
                hits.append(row)
        return hits

    # --- publishing ---------------------------------------------------------------------------------------

    def publish(
        self,
        path: str | Path,
        kind: str = "datasets",
        *,
        check: PublishCheck,
        accept_terms: bool = False,
        executor: ExecutorLike | None = None,
    ) -> tuple[Ref, str]:
        """Publish the version folder ``path`` (a curated dataset, or a model folder); returns (ref, manifest
        SHA-256). ``check``, the publish rule of the kind (use :func:`hub.curate.publish_dataset` or
        :func:`hub.models.publish_model`, which pass it), must pass; an existing version is refused; so is a
        dataset whose terms forbid redistribution, unless ``accept_terms`` (the acceptance is recorded in the
        manifest).

        With an ``executor`` (a Dask client or scheduler address; default: the enclosing block's, see
        :func:`hub.executor.use_executor`) the check runs on the cluster and the workers upload the files
        themselves, :data:`PUT_BATCH` at a time, from a folder they all reach to a registry they all reach
        (``s3://``): no byte of the version goes through this machine. Else this process uploads, 8 at a time.
        Either way each file is hashed as it is sent, so the manifest pins what the registry holds."""
        self._writable()
        folder = Path(path)
        if kind not in KINDS:
            raise InvalidInput(f"kind must be one of {KINDS}")
        card_path = folder / "card.yaml"
        if not card_path.is_file():
            raise InvalidInput("no card.yaml: not a dataset or model folder", folder)
        with use_executor(executor) as cluster:
            check(folder)
            card = load_yaml_file(card_path, MAX_CARD_BYTES, "card")
            upload = self.begin(kind, card, accept_terms=accept_terms, source=card_path)
            try:
                files = self._upload(upload, folder, cluster is not None)
            except BaseException:
                self.abort(upload)
                raise
        return self.commit(upload, files, card)

    def _writable(self) -> None:
        if is_read_only(self.fs):
            raise RegistryError(
                "this registry is read-only (a static web server); publish to its source folder or bucket", self.url
            )

    def begin(
        self, kind: str, card: dict[str, Any], *, accept_terms: bool = False, source: str | Path | None = None
    ) -> Upload:
        """Open the upload of version ``card['name']@card['version']`` of ``kind``: refused on a read-only
        registry, for a name or version that is not one, for a dataset whose terms forbid redistribution unless
        ``accept_terms`` (``source``: the card's file, for the message), and for a version already published.
        Files put into it stay invisible until :meth:`commit` (or are removed by :meth:`abort`)."""
        self._writable()
        if kind not in KINDS:
            raise InvalidInput(f"kind must be one of {KINDS}")
        name, version = str(card.get("name", "")), str(card.get("version", ""))
        if not (NAME.fullmatch(name) and SEMVER.fullmatch(version)):
            raise InvalidInput(f"not a name and version to publish: {name[:80]!r}@{version[:40]!r}", source)
        ref = Ref(name, version)
        terms = card.get("terms", {})
        record = None
        if kind == "datasets" and not terms.get("redistribution", False):
            if not accept_terms:
                raise RegistryError(
                    f"the card says redistribution is not allowed ({terms.get('terms', '')}); "
                    f"publish with --accept-terms to confirm you may publish it here",
                    source or f"{ref}",
                )
            record = {"by": getpass.getuser(), "at": _now(), "registry": self.url, "terms": terms.get("terms")}
        done = self._path(kind, ref.name, ref.version, MANIFEST)
        if self.fs.exists(done):
            raise RegistryError(
                f"{ref} is already published; published versions are immutable (bump the version)", done
            )
        url = self.url if "://" in self.url else str(Path(self.url).resolve())  # the same folder for every worker
        return Upload(url, kind, ref.name, ref.version, f"upload-{uuid.uuid4().hex[:12]}", record)

    def commit(self, upload: Upload, files: builtins.list[dict[str, Any]], card: dict[str, Any]) -> tuple[Ref, str]:
        """Commit ``upload`` with the manifest entries ``files`` of what was put into it and the version's
        ``card``: write the pages of a large version, then create the manifest exclusively (of two concurrent
        publishes exactly one wins; the loser's upload is removed) and list the version in the catalog. Returns
        (ref, manifest SHA-256). Once the manifest is written the version is published, whatever happens after."""
        ref = Ref(upload.name, upload.version)
        version_dir = self._path(upload.kind, ref.name, ref.version)
        files = sorted(files, key=lambda f: f["path"])
        manifest = {
            "kind": upload.kind,
            "name": ref.name,
            "version": ref.version,
            "root": upload.root,
            "published": _now(),
            "cellhub_version": cellhub_version(),
            "files": files,
            "card": card,
        }
        if upload.terms:
            manifest["terms_accepted"] = upload.terms
        try:
            parse_manifest(manifest_bytes(manifest), join(version_dir, MANIFEST), upload.kind, ref.name, ref.version)
            own, pages = paginate(files)
            for entry, page in pages:  # beside the upload, as invisible as it until the manifest commits them
                self.fs.makedirs(join(version_dir, pages_dir(upload.root)), exist_ok=True)
                self.fs.pipe_file(join(version_dir, pages_dir(upload.root), f"{entry['sha256']}.json"), page)
        except BaseException:
            self.abort(upload)
            raise
        manifest["files"] = own
        if pages:
            manifest["pages"] = [entry for entry, _ in pages]
        data = manifest_bytes(manifest)
        try:
            create_exclusive(self.fs, join(version_dir, MANIFEST), data)
        except RegistryError:  # another publish of this version won: this upload is never named
            self.abort(upload)
            raise
        sha = sha256_bytes(data)
        self._catalog({(upload.kind, ref.name, ref.version): _manifest_entry(upload.kind, manifest, sha)}, ref)
        return ref, sha

    def abort(self, upload: Upload) -> None:
        """Remove what was put into an upload that will not be committed (best effort: it is invisible anyway);
        never the upload a committed manifest names."""
        named = NAME.fullmatch(upload.name) and SEMVER.fullmatch(upload.version) and upload.kind in KINDS
        if not (named and UPLOAD_ROOT.fullmatch(upload.root)):
            raise InvalidInput(f"not an upload that begin opened: {upload!r}")
        version_dir = self._path(upload.kind, upload.name, upload.version)
        try:
            manifest = json.loads(self._read(join(version_dir, MANIFEST), MAX_MANIFEST_BYTES))
            if isinstance(manifest, dict) and manifest.get("root") == upload.root:
                return  # committed after all (e.g. a reply lost after the write): published, so kept
        except (FileNotFoundError, ValueError, CellHubError):
            pass  # no manifest (or none of this publish's): the upload is nobody's
        for leftover in (upload.root, pages_dir(upload.root)):
            try:
                if self.fs.exists(join(version_dir, leftover)):
                    self.fs.rm(join(version_dir, leftover), recursive=True)
            except OSError as err:
                log.warning("could not remove the abandoned upload %s: %s", join(version_dir, leftover), err)

    def _upload(self, upload: Upload, folder: Path, on_cluster: bool) -> builtins.list[dict[str, Any]]:
        """Put every file of ``folder`` into ``upload`` (on the block's cluster, or in threads); their manifest
        entries."""
        rels = publishable(folder)
        description = f"publishing {upload.name}@{upload.version}"
        if on_cluster:
            jobs = [(upload, str(folder), rels[i : i + PUT_BATCH]) for i in range(0, len(rels), PUT_BATCH)]
            return [e for batch in imap_samples(_put_batch, jobs, description=description) for e in batch]
        dest = self._path(*upload.dest)
        with progress_bar() as bar, ThreadPoolExecutor(8) as pool:
            task = bar.add_task(description, total=sum((folder / r).stat().st_size for r in rels))

            def put(rel: str) -> dict[str, Any]:
                entry = _put_file(self.fs, folder, dest, rel)
                bar.advance(task, entry["size"])
                return entry

            return list(pool.map(put, rels))

    # --- the catalog --------------------------------------------------------------------------------------

    def _committed(self) -> dict[tuple[str, str, str], str]:
        """Every committed version manifest and result record, by catalog key, with its storage path."""
        found = {}
        for kind in KINDS:
            for path in self.fs.glob(self._path(kind, "*", "*", MANIFEST)):
                name, version = path.rstrip("/").split("/")[-3:-1]
                found[(kind, name, version)] = path
        for path in self.fs.glob(self._path("results", "*", "*", "*.json")):
            dataset, task, file = path.rstrip("/").split("/")[-3:]
            found[("results", f"{dataset}/{task}", file.removesuffix(".json"))] = path
        return found

    def _entry(self, key: tuple[str, str, str], path: str) -> dict[str, Any] | None:
        """The catalog entry of a committed file, or None when the file is not what its place says."""
        kind, name, version = key
        try:
            if kind == "results":
                data = self._read(path, MAX_RECORD_BYTES)
                record = parse_json(data, path, "result record")
                ok = sha256_bytes(data) == version and record.get("benchmark") == name
                return _result_summary(record, f"results/{name}/{version}.json") if ok else None
            data = self._read(path, MAX_MANIFEST_BYTES)
            return _manifest_entry(kind, parse_manifest(data, path, kind, name, version), sha256_bytes(data))
        except (CellHubError, TypeError, AttributeError):  # not ours to list; pulls and leaderboards check what
            # they use anyway
            return None

    def _update_index(self, new: dict[tuple[str, str, str], dict[str, Any]], rebuild: bool = False) -> dict[str, Any]:
        """Write ``index.json`` with ``new`` entries and every committed version and result it lacks.

        Publishers do not lock each other out: each writes the catalog, reads it back and, while a committed
        entry is missing from it (a concurrent writer replaced it with an older copy), writes it again. The
        last writer therefore leaves a catalog with every committed entry. Readers never see a torn file.
        """
        bad: set[tuple[str, str, str]] = set()
        for attempt in range(50):
            index = {k: {} for k in KINDS} if rebuild and not attempt else self._index_or_empty()
            for key, entry in new.items():
                _put(index, key, entry)
            for key, path in self._committed().items():
                if key not in bad and not _has(index, key):
                    found = self._entry(key, path)
                    if found is None:
                        bad.add(key)
                    else:
                        _put(index, key, found)
            write_atomic(self.fs, self._path(INDEX), json.dumps(index, indent=1, sort_keys=True).encode())
            after = self._index_or_empty()
            if all(_has(after, key) for key in [*new, *self._committed()] if key not in bad):
                return after
            time.sleep(random.uniform(0, 0.02 * (attempt + 1)))
        raise RegistryError(
            "the catalog kept changing under concurrent publishes; run `cellhub registry reindex`", self._path(INDEX)
        )

    def _index_or_empty(self) -> dict[str, Any]:
        """The catalog, or an empty one to rebuild when it is unreadable (it is derived from committed files)."""
        try:
            return self.index()
        except CellHubError:
            return {k: {} for k in KINDS}

    def _catalog(self, new: dict[tuple[str, str, str], dict[str, Any]], what: object) -> None:
        """List a committed publish in the catalog. The publish stands even if this fails (it is committed and
        pullable; the catalog is derived data): say so in one line instead of reporting a failure."""
        try:
            self._update_index(new)
        except Exception as err:  # noqa: BLE001 - whatever a registry holds, a committed publish stays reported
            log.warning(
                f"published {what}, but the catalog index.json was not updated ({err}); run "
                f"`cellhub registry reindex --registry {self.url}`"
            )

    def reindex(self) -> dict[str, Any]:
        """Rebuild ``index.json`` from every manifest and result record (needs a backend that can list)."""
        return self._update_index({}, rebuild=True)

    # --- results ----------------------------------------------------------------------------------------------

    def publish_result(self, record: dict[str, Any]) -> str:
        """Store an evaluation result record at ``results/<benchmark>/<sha256>.json`` (content-addressed, so
        immutable; publishing the same record twice is a no-op) and list it in the catalog; returns its SHA-256."""
        self._writable()
        bench = record.get("benchmark")
        if not isinstance(bench, str) or not BENCHMARK.fullmatch(bench):
            raise InvalidInput(
                f"result record names no valid benchmark ({str(bench)[:80]!r}; e.g. dsb2018-fluo/instance)"
            )
        data = json.dumps(record, indent=1, sort_keys=True).encode()
        sha = sha256_bytes(data)
        rel = f"results/{bench}/{sha}.json"
        path = self._path(*rel.split("/"))
        if not self.fs.exists(path):
            create_exclusive(self.fs, path, data)  # the same bytes committed concurrently count as done
        self._catalog({("results", bench, sha): _result_summary(record, rel)}, f"result {sha[:16]}...")
        return sha

    def results(self, benchmark: str) -> builtins.list[dict[str, Any]]:
        """The catalog's summaries of every result published for ``benchmark`` (each with its record path)."""
        return [
            {"sha256": sha, **entry}
            for sha, entry in sorted(self.index().get("results", {}).get(benchmark, {}).items())
        ]

    def result_record(self, entry: dict[str, Any]) -> dict[str, Any]:
        """The full record behind a :meth:`results` entry, read only from ``results/<benchmark>/<sha256>.json``
        and verified against that SHA-256."""
        path, sha = entry.get("path"), entry.get("sha256")
        if not (
            isinstance(path, str)
            and isinstance(sha, str)
            and RESULT_PATH.fullmatch(path)
            and path.endswith(f"/{sha}.json")
        ):
            raise IntegrityError(
                f"result record path {str(path)[:200]!r} is not results/<benchmark>/<sha256>.json", self.url
            )
        data = self._read(self._path(*path.split("/")), MAX_RECORD_BYTES)
        if sha256_bytes(data) != sha:
            raise IntegrityError("result record altered (SHA-256 mismatch)", path)
        record: dict[str, Any] = parse_json(data, path, "result record")
        return record

    def file_url(self, kind: str, manifest: dict[str, Any], rel: str) -> str:
        return self._path(kind, manifest["name"], manifest["version"], manifest["root"], rel)
