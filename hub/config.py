"""Environment variables and default locations, read in one place."""

from __future__ import annotations

import os
from pathlib import Path

from hub.errors import InvalidInput

REPO_ROOT = Path(__file__).resolve().parents[1]


def data_mirror() -> Path:
    """Local mirror of source data: ``$CELLHUB_DATA``, else ``../shared/data`` beside the repository."""
    return Path(os.environ.get("CELLHUB_DATA") or REPO_ROOT.parent / "shared" / "data")


def registry_root() -> str | Path:
    """The default registry: ``$CELLHUB_REGISTRY`` (a folder or a URL such as ``s3://...`` or ``https://...``),
    else the local folder ``~/.cellhub/registry``."""
    url = os.environ.get("CELLHUB_REGISTRY")
    if url and "://" in url:
        return url
    return Path(url or Path.home() / ".cellhub" / "registry")


def recipes_dir() -> Path:
    """Folder of dataset recipes: ``$CELLHUB_RECIPES``, else the repository's ``datasets/``."""
    return Path(os.environ.get("CELLHUB_RECIPES") or REPO_ROOT / "datasets")


def cache_root() -> Path:
    """Verified local cache of pulled versions: ``$CELLHUB_CACHE``, else ``~/.cellhub/cache``."""
    return Path(os.environ.get("CELLHUB_CACHE") or Path.home() / ".cellhub" / "cache")


def build_root() -> Path:
    """Where ``cellhub datasets build`` writes by default: ``$CELLHUB_BUILD``, else ``~/.cellhub/build``."""
    return Path(os.environ.get("CELLHUB_BUILD") or Path.home() / ".cellhub" / "build")


DEFAULT_TIMEOUT = 60.0


def request_timeout() -> float:
    """Seconds a registry request waits for an answer (to connect, then for each next piece of data) before it
    fails: ``$CELLHUB_TIMEOUT``, else 60."""
    raw = os.environ.get("CELLHUB_TIMEOUT", "").strip()
    if not raw:
        return DEFAULT_TIMEOUT
    try:
        seconds = float(raw)
    except ValueError:
        seconds = float("nan")
    if not 0 < seconds < float("inf"):
        raise InvalidInput(f"CELLHUB_TIMEOUT={raw!r}: expected a positive number of seconds")
    return seconds


DEFAULT_MAX_PIXELS = 2**28


def max_pixels() -> int:
    """Largest image decoded from outside, in pixels (array elements: every channel and plane counts):
    ``$CELLHUB_MAX_PIXELS``, else 2**28 (268 M; 256 MiB as uint8). A file declaring more is refused before
    it is decoded."""
    raw = os.environ.get("CELLHUB_MAX_PIXELS")
    if not raw:
        return DEFAULT_MAX_PIXELS
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value <= 0:
        raise InvalidInput(f"CELLHUB_MAX_PIXELS must be a positive integer, got {raw!r}")
    return value
