"""The publish rule of a dataset: a curated dataset folder publishes only when it validates.

Storage (:mod:`hub.registry`) knows no kind's rules; it runs the rule the kind passes. Curation does not import
storage either: :func:`publish_dataset` takes the registry it publishes to.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol, TypeVar

from hub.curate.validate import validate_dataset
from hub.errors import RegistryError
from hub.executor import ExecutorLike

R = TypeVar("R", covariant=True)


class Publisher(Protocol[R]):
    """What publishing needs of a registry (:class:`hub.registry.Registry`)."""

    def publish(
        self,
        path: str | Path,
        kind: str = ...,
        *,
        check: Callable[[Path], None],
        accept_terms: bool = ...,
        executor: ExecutorLike | None = ...,
    ) -> tuple[R, str]: ...


def check_dataset(folder: Path) -> None:
    """Refuse a dataset folder that does not validate (:func:`hub.curate.validate_dataset`), naming its first error."""
    findings = validate_dataset(folder)
    if findings.errors:
        first = findings.errors[0]
        raise RegistryError(
            f"does not validate ({len(findings.errors)} error(s)); first: {first.check}: "
            f"{first.message} (run cellhub datasets validate)",
            folder,
        )


def publish_dataset(
    registry: Publisher[R], path: str | Path, *, accept_terms: bool = False, executor: ExecutorLike | None = None
) -> tuple[R, str]:
    """Publish the curated dataset folder ``path`` to ``registry`` once it validates; returns (ref, manifest
    SHA-256). A dataset whose terms forbid redistribution needs ``accept_terms`` (recorded in the manifest).
    ``executor`` (a Dask client or scheduler address): validate and upload on the cluster's workers."""
    return registry.publish(path, "datasets", check=check_dataset, accept_terms=accept_terms, executor=executor)
