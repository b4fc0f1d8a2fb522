"""Version manifests: every file of a published version with its size and SHA-256 (the commit point)."""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

MANIFEST = "manifest.json"
SKIP_NAMES = (".DS_Store",)


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def list_files(folder: Path) -> list[dict]:
    """Every file under ``folder`` (relative POSIX path, size, SHA-256), sorted by path; hashed in threads."""
    paths = sorted(p for p in folder.rglob("*") if p.is_file() and p.name not in SKIP_NAMES)
    with ThreadPoolExecutor(4) as pool:
        digests = list(pool.map(file_sha256, paths))
    return [{"path": p.relative_to(folder).as_posix(), "size": p.stat().st_size, "sha256": d}
            for p, d in zip(paths, digests)]


def manifest_bytes(manifest: dict) -> bytes:
    return json.dumps(manifest, indent=1, sort_keys=True).encode()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
