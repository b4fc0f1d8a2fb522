"""Shared fixtures: the real source data (``$CELLHUB_DATA``, default ../shared/data), datasets built from it
once per test session, and the ``cellhub`` command line run in this process (``cli``)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
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


@dataclass(frozen=True)
class CliResult:
    """What a run of ``cellhub`` left: the fields of :class:`subprocess.CompletedProcess` that tests read."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str


def run_cellhub(*args, env: Mapping[str, str | None] | None = None, check: bool = False) -> CliResult:
    """``cellhub ARGS`` in this process, through the real entry point (:func:`hub.cli.main`: one-line errors, exit
    status 1, deprecation lines) inside typer's ``CliRunner`` isolation (its own stdin, stdout and stderr; ``env``
    sets or, with ``None``, unsets variables for the run). ``check``: fail the test unless it exits 0."""
    from typer.testing import CliRunner

    from hub.cli import main

    argv = [str(a) for a in args]
    with CliRunner().isolation(env=env) as streams:
        try:
            main(argv)
            code = 0  # main always ends with SystemExit; this is only reached if that ever changes
        except SystemExit as done:
            code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
        finally:
            out, err = streams[0].getvalue(), streams[1].getvalue()
    result = CliResult(argv, code, out.decode(errors="replace"), err.decode(errors="replace"))
    if check and code != 0:
        raise AssertionError(f"cellhub {' '.join(argv)} exited {code}: {result.stderr}")
    return result


@pytest.fixture(scope="session")
def cli():
    """``cli(*args, env=None, check=False)`` runs ``cellhub ARGS`` in this process (see :func:`run_cellhub`) and
    returns its exit status, stdout and stderr. Tests that need the real process (memory use, signals, a
    concurrent second process, the ``cellhub`` script itself) start one with :mod:`subprocess` instead."""
    return run_cellhub
