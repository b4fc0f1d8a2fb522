"""Versions of the packages a record depends on, read in one place."""

from __future__ import annotations

import platform
from importlib.metadata import PackageNotFoundError, version


def package_versions(*names: str) -> dict[str, str]:
    """``{"python": ..., name: version}`` for the installed distributions among ``names``."""
    out = {"python": platform.python_version()}
    for name in names:
        try:
            out[name] = version(name)
        except PackageNotFoundError:  # not installed: not recorded
            pass
    return out


def cellhub_version() -> str:
    """This package's version (``hub.__version__``); ``0.0.0`` when running from a source tree not installed."""
    try:
        return version("cellhub")
    except PackageNotFoundError:
        return "0.0.0"
