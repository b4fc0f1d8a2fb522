"""Content hashes of a curated dataset: of decoded samples (independent of storage and compression) and of the
frozen split manifest (``splits.json``)."""

from __future__ import annotations

import hashlib
import json

import numpy as np


def array_sha256(*arrays: np.ndarray, extra: bytes = b"") -> str:
    """SHA-256 of decoded arrays (dtype, shape and C-order bytes): independent of file compression."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(memoryview(a).cast("B"))  # type: ignore[arg-type]  # numpy arrays are buffers
    h.update(extra)
    return h.hexdigest()


def sample_sha256(image: np.ndarray, labels: dict[str, np.ndarray], label_attrs: dict[str, dict], targets: dict) -> str:
    """Content hash of a whole sample: image, label images, their attributes (lineage) and targets."""
    names = sorted(labels)
    extra = repr(sorted((k, str(v)) for k, v in targets.items())).encode()
    for name in names:
        extra += repr(sorted(label_attrs.get(name, {}).items())).encode()
    return array_sha256(image, *(labels[n] for n in names), extra=extra)


def canonical_json(obj) -> bytes:
    """The bytes of ``splits.json`` (sorted keys, no spaces): what :func:`manifest_sha256` hashes."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def manifest_sha256(manifest: dict) -> str:
    return hashlib.sha256(canonical_json(manifest)).hexdigest()
