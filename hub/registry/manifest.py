"""Version manifests: every file of a published version with its size and SHA-256 (the commit point).

A version of more than :data:`PAGE_FILES` files has a *paged* manifest: ``manifest.json`` lists no files but
its pages, each by size, SHA-256 and entry count, and each page (``{"files": [...]}``, at most ``PAGE_FILES``
entries) lies beside it at ``ROOT.pages/SHA256.json``. The manifest's SHA-256 still pins every file: it pins the
pages, which pin the files. Every page is under the manifest size cap, so a version of any size can be read,
and a reader takes at most :data:`MAX_FILES` entries from a registry.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from hub._readers import parse_json
from hub.cards import format_validation_error
from hub.cards.dataset import NAME, SEMVER
from hub.errors import IntegrityError, InvalidInput
from hub.safety import MAX_MANIFEST_BYTES, relpath_validator

MANIFEST = "manifest.json"
SKIP_NAMES = (".DS_Store",)
MANIFEST_COPY = ".manifest.json"  # kept beside a cached version: the registry manifest's exact bytes
COMPLETE = ".complete"  # beside a cached version: its manifest SHA-256, written once every file is verified
PARTIAL = ".partial.json"  # beside a partly pulled dataset version: its manifest SHA-256 and the samples pulled
PAGES = ".pages"  # beside a cached version: the pages of its paged manifest, as SHA256.json (exact bytes)
PART = ".part"  # suffix of a file being downloaded
#: Names the cache keeps beside a version's files; a manifest may not list them (nor anything under PAGES).
RESERVED = (MANIFEST_COPY, COMPLETE, PARTIAL, PAGES)
#: Entries per manifest page when publishing: about 1.5 MB of JSON, at most 11 MB with 1,024-character paths.
PAGE_FILES = 10_000
#: The most file entries a reader takes from one version's manifest (~1 GB of parsed entries in memory), and
#: the most bytes of pages it reads for them (a real entry is about 150 bytes).
MAX_FILES = 2_000_000
MAX_PAGES_BYTES = 512 * 2**20


class ManifestFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: Annotated[str, relpath_validator("file path")]
    size: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")

    @field_validator("path")
    @classmethod
    def _not_reserved(cls, v: str) -> str:
        if v.split("/")[0] in RESERVED or v.endswith(PART):
            raise ValueError(f"file path {v!r} is reserved for the cache")
        return v


def _duplicate(files: list[dict[str, Any]] | list[ManifestFile]) -> str | None:
    """Why the file paths of a manifest are not a set of files (a path twice, or one under another), else None."""
    keys = sorted(tuple((f.path if isinstance(f, ManifestFile) else f["path"]).split("/")) for f in files)
    for a, b in zip(keys, keys[1:]):  # sorted: a listed prefix comes right before
        if a == b:
            return f"{'/'.join(a)!r} is listed twice"
        if b[: len(a)] == a:
            return f"{'/'.join(b)!r} lies under a path that is listed as a file"
    return None


class ManifestPage(BaseModel):
    """A page of a paged manifest as ``manifest.json`` lists it."""

    model_config = ConfigDict(extra="forbid")

    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=1, le=MAX_MANIFEST_BYTES)
    files: int = Field(ge=1)


class PageBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    files: list[ManifestFile] = Field(min_length=1)


class Manifest(BaseModel):
    """What a registry manifest must be before any of it is used: identity, upload folder, and files with
    safe relative paths, sizes and SHA-256 (extra fields are kept: the card, publish metadata)."""

    model_config = ConfigDict(extra="allow")

    kind: Literal["datasets", "models"]
    name: str = Field(pattern=NAME.pattern)  # lower-case letters, digits and dashes
    version: str = Field(pattern=SEMVER.pattern)  # X.Y.Z[-pre]
    root: str = Field(pattern=r"^upload-[0-9a-z]{1,64}$")
    files: list[ManifestFile]
    pages: list[ManifestPage] = Field(default_factory=list)
    card: dict[str, Any]

    @field_validator("files")
    @classmethod
    def _unique(cls, v: list[ManifestFile]) -> list[ManifestFile]:
        if problem := _duplicate(v):
            raise ValueError(problem)
        return v

    @model_validator(mode="after")
    def _bounded(self) -> Manifest:
        if self.pages and self.files:
            raise ValueError("a paged manifest lists its files in its pages only")
        if len(self.files) + sum(p.files for p in self.pages) > MAX_FILES:
            raise ValueError(f"lists more than the {MAX_FILES:,} files a version may have")
        if sum(p.size for p in self.pages) > MAX_PAGES_BYTES:
            raise ValueError(f"lists pages of more than the {MAX_PAGES_BYTES:,} bytes a reader takes")
        return self


def parse_manifest(data: bytes, source: str, kind: str, name: str, version: str | None = None) -> dict[str, Any]:
    """The manifest in ``data`` as a dict, after checking it is well-formed (:class:`Manifest`) and is the one
    asked for: ``kind``, ``name`` and (unless resolving ``latest``) ``version``. A registry that answers one
    name with another's manifest is refused, so it cannot poison the cache under that name."""
    raw: dict[str, Any] = parse_json(data, source, "manifest")
    try:
        Manifest.model_validate(raw)
    except ValidationError as err:
        raise InvalidInput(f"malformed manifest: {format_validation_error(err)[:300]}", source) from None
    asked = f"{kind}/{name}@{version or raw['version']}"
    got = f"{raw['kind']}/{raw['name']}@{raw['version']}"
    if got != asked:
        raise IntegrityError(f"the registry answered {asked} with the manifest of {got}; refused", source)
    return raw


def pages_dir(root: str) -> str:
    """The registry folder of a paged manifest's pages, beside the upload folder ``root`` it describes."""
    return f"{root}{PAGES}"


def paginate(files: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[tuple[dict[str, Any], bytes]]]:
    """What a publish writes for ``files``: the manifest's own list, and each page's manifest entry and bytes
    (no pages when the version has at most :data:`PAGE_FILES` files: the manifest lists them itself)."""
    if len(files) <= PAGE_FILES:
        return files, []
    pages = []
    for i in range(0, len(files), PAGE_FILES):
        part = files[i : i + PAGE_FILES]
        data = json.dumps({"files": part}, separators=(",", ":"), sort_keys=True).encode()
        pages.append(({"sha256": sha256_bytes(data), "size": len(data), "files": len(part)}, data))
    return [], pages


def read_pages(
    manifest: dict[str, Any], source: str, read: Callable[[dict[str, Any]], bytes]
) -> tuple[dict[str, Any], dict[str, bytes]]:
    """A paged manifest (checked by :func:`parse_manifest`) with its pages' entries as ``files``, and the pages'
    exact bytes by SHA-256; a flat one as it is. ``read(page)`` returns a page's bytes and must refuse more than
    ``page["size"]``; each page must then have that size and SHA-256, be well-formed, hold the count of entries
    the manifest says, and all pages together a set of files (else a one-line error naming ``source``)."""
    if not manifest.get("pages"):
        return manifest, {}
    with ThreadPoolExecutor(8) as pool:
        datas = list(pool.map(read, manifest["pages"]))
    files: list[dict[str, Any]] = []
    for i, (page, data) in enumerate(zip(manifest["pages"], datas)):
        which = f"manifest page {i + 1} ({page['sha256'][:16]}...)"
        if len(data) != page["size"] or sha256_bytes(data) != page["sha256"]:
            raise IntegrityError(f"{which} differs from its size and SHA-256 in the manifest: altered; refused", source)
        raw = parse_json(data, source, which)
        try:
            PageBody.model_validate(raw)
        except ValidationError as err:
            raise InvalidInput(f"malformed {which}: {format_validation_error(err)[:300]}", source) from None
        if len(raw["files"]) != page["files"]:
            raise InvalidInput(f"{which} lists {len(raw['files'])} files, the manifest says {page['files']}", source)
        files += raw["files"]
    if problem := _duplicate(files):
        raise InvalidInput(f"malformed manifest: {problem}", source)
    return {**manifest, "files": files}, {p["sha256"]: d for p, d in zip(manifest["pages"], datas)}


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def publishable(folder: Path) -> list[str]:
    """The files a publish of ``folder`` lists: every file under it (relative POSIX paths, sorted)."""
    files = (p for p in folder.rglob("*") if p.is_file() and p.name not in SKIP_NAMES)
    return sorted(p.relative_to(folder).as_posix() for p in files)


def manifest_bytes(manifest: dict[str, Any]) -> bytes:
    return json.dumps(manifest, indent=1, sort_keys=True).encode()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
