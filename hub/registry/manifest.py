"""Version manifests: every file of a published version with its size and SHA-256 (the commit point)."""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from hub._readers import parse_json
from hub.cards import format_validation_error
from hub.cards.dataset import NAME, SEMVER
from hub.errors import IntegrityError, InvalidInput
from hub.safety import relpath_validator

MANIFEST = "manifest.json"
SKIP_NAMES = (".DS_Store",)
MANIFEST_COPY = ".manifest.json"  # kept beside a cached version: the registry manifest's exact bytes
COMPLETE = ".complete"  # beside a cached version: its manifest SHA-256, written once every file is verified
PARTIAL = ".partial.json"  # beside a partly pulled dataset version: its manifest SHA-256 and the samples pulled
PART = ".part"  # suffix of a file being downloaded
#: Names the cache keeps beside a version's files; a manifest may not list them.
RESERVED = (MANIFEST_COPY, COMPLETE, PARTIAL)


class ManifestFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: Annotated[str, relpath_validator("file path")]
    size: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")

    @field_validator("path")
    @classmethod
    def _not_reserved(cls, v: str) -> str:
        if v in RESERVED or v.endswith(PART):
            raise ValueError(f"file path {v!r} is reserved for the cache")
        return v


class Manifest(BaseModel):
    """What a registry manifest must be before any of it is used: identity, upload folder, and files with
    safe relative paths, sizes and SHA-256 (extra fields are kept: the card, publish metadata)."""

    model_config = ConfigDict(extra="allow")

    kind: Literal["datasets", "models"]
    name: str = Field(pattern=NAME.pattern)  # lower-case letters, digits and dashes
    version: str = Field(pattern=SEMVER.pattern)  # X.Y.Z[-pre]
    root: str = Field(pattern=r"^upload-[0-9a-z]{1,64}$")
    files: list[ManifestFile]
    card: dict[str, Any]

    @field_validator("files")
    @classmethod
    def _unique(cls, v: list[ManifestFile]) -> list[ManifestFile]:
        keys = sorted(tuple(f.path.split("/")) for f in v)  # sorted, a listed prefix comes right before
        for a, b in zip(keys, keys[1:]):
            if a == b:
                raise ValueError(f"{'/'.join(a)!r} is listed twice")
            if b[: len(a)] == a:
                raise ValueError(f"{'/'.join(b)!r} lies under a path that is listed as a file")
        return v


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


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def list_files(folder: Path) -> list[dict[str, Any]]:
    """Every file under ``folder`` (relative POSIX path, size, SHA-256), sorted by path; hashed in threads."""
    paths = sorted(p for p in folder.rglob("*") if p.is_file() and p.name not in SKIP_NAMES)
    with ThreadPoolExecutor(4) as pool:
        digests = list(pool.map(file_sha256, paths))
    return [
        {"path": p.relative_to(folder).as_posix(), "size": p.stat().st_size, "sha256": d}
        for p, d in zip(paths, digests)
    ]


def manifest_bytes(manifest: dict[str, Any]) -> bytes:
    return json.dumps(manifest, indent=1, sort_keys=True).encode()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
