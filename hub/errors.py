"""Typed exceptions of CellHub. The CLI turns each into one line and a non-zero exit."""

from __future__ import annotations

from pathlib import Path


class CellHubError(Exception):
    """Base class: ``str(err)`` is the one line a user sees."""

    def __init__(self, problem: str, path: str | Path | None = None):
        self.problem = problem
        self.path = str(path) if path is not None else None
        super().__init__(f"{self.path}: {problem}" if self.path else problem)


class InvalidInput(CellHubError):
    """A source file or folder is unreadable or inconsistent."""


class CardError(CellHubError):
    """A card does not validate; the message names the field path."""


class SourceMissing(CellHubError):
    """Source data for a recipe is not where it was looked for."""


class BuildError(CellHubError):
    """A dataset build could not complete (hash drift, refused overwrite, ...)."""


class SplitDrift(BuildError):
    """A rebuild's split manifest differs from the hash frozen in its recipe."""


class ValidationFailed(CellHubError):
    """A dataset has validator findings graded 'error'."""


class NotFound(CellHubError):
    """A named thing (dataset, importer, task) does not exist."""


class RegistryError(CellHubError):
    """A registry refused an operation (version exists, read-only backend, lost a concurrent publish, ...)."""


class IntegrityError(CellHubError):
    """Bytes differ from the SHA-256 that a manifest or lockfile pins."""
