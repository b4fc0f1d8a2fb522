"""Shared fixtures: the real source data (``$CELLHUB_DATA``, default ../shared/data) and datasets built from it
once per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hub.config import data_mirror

os.environ.setdefault("CELLHUB_NO_PROGRESS", "1")


#: ``CELLHUB_REQUIRE_DATA=1`` (set by ``.ci/run``): a test that needs the real data fails when it is missing,
#: instead of skipping (without it a missing data folder would skip nearly every test and the run would pass).
REQUIRE_DATA = os.environ.get("CELLHUB_REQUIRE_DATA", "").strip() not in ("", "0")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    d = data_mirror()
    if not (d / "README.md").is_file():
        problem = f"real source data not found at {d} (set CELLHUB_DATA to the shared data folder)"
        if REQUIRE_DATA:
            pytest.fail(f"{problem}; CELLHUB_REQUIRE_DATA is set, so this fails instead of skipping", pytrace=False)
        pytest.skip(problem)
    return d


@pytest.fixture(scope="session")
def built(tmp_path_factory, data_dir):
    """``built(name)`` -> path of dataset ``name`` built from its recipe, once per test run (shared by the
    pytest-xdist workers through a file lock in the run's base temporary folder)."""
    from filelock import FileLock

    from hub.curate.recipe import build_dataset

    base = tmp_path_factory.getbasetemp()
    root = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "built"
    root.mkdir(exist_ok=True)

    def get(name: str) -> Path:
        out = root / name
        with FileLock(str(root / f"{name}.lock")):
            if not out.exists():
                build_dataset(name, source=data_dir, out=out)
        return out

    return get


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    """Never touch the user's ~/.cellhub: the registry and the build folder live in the test's temporary folder."""
    monkeypatch.setenv("CELLHUB_REGISTRY", str(tmp_path / "registry"))
    monkeypatch.setenv("CELLHUB_BUILD", str(tmp_path / "build"))
