"""Environment variables and default locations, read in one place."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def data_mirror() -> Path:
    """Local mirror of source data: ``$CELLHUB_DATA``, else ``../shared/data`` beside the repository."""
    return Path(os.environ.get("CELLHUB_DATA") or REPO_ROOT.parent / "shared" / "data")


def registry_root() -> Path:
    """The embedded local registry: ``$CELLHUB_REGISTRY``, else ``~/.cellhub/registry``."""
    return Path(os.environ.get("CELLHUB_REGISTRY") or Path.home() / ".cellhub" / "registry")


def recipes_dir() -> Path:
    """Folder of dataset recipes: ``$CELLHUB_RECIPES``, else the repository's ``datasets/``."""
    return Path(os.environ.get("CELLHUB_RECIPES") or REPO_ROOT / "datasets")


def cache_root() -> Path:
    """Verified local cache of pulled versions: ``$CELLHUB_CACHE``, else ``~/.cellhub/cache``."""
    return Path(os.environ.get("CELLHUB_CACHE") or Path.home() / ".cellhub" / "cache")


def build_root() -> Path:
    """Where ``cellhub datasets build`` writes by default: ``$CELLHUB_BUILD``, else ``~/.cellhub/build``."""
    return Path(os.environ.get("CELLHUB_BUILD") or Path.home() / ".cellhub" / "build")
