"""Shared fixtures: the real source data (``$CELLHUB_DATA``, default ../shared/data) and datasets built from it
once per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hub.config import data_mirror

os.environ.setdefault("CELLHUB_NO_PROGRESS", "1")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    d = data_mirror()
    if not (d / "README.md").is_file():
        pytest.skip(f"real source data not found at {d} (set CELLHUB_DATA to the shared data folder)")
    return d


@pytest.fixture(scope="session")
def built(tmp_path_factory, data_dir):
    """``built(name)`` -> path of dataset ``name`` built from its recipe (once per session)."""
    from hub.curate.recipe import build_dataset

    root = tmp_path_factory.mktemp("built")
    cache: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in cache:
            _, cache[name] = build_dataset(name, source=data_dir, out=root / name)
        return cache[name]

    return get


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    """Never touch the user's ~/.cellhub: the registry lives in the test's temporary folder."""
    monkeypatch.setenv("CELLHUB_REGISTRY", str(tmp_path / "registry"))
