"""Importer base class and the registry of importers by source-layout name (``@register_importer``)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, ClassVar

from hub.curate._sample import SampleData
from hub.errors import InvalidInput, NotFound

IMPORTERS: dict[str, type[Importer]] = {}


def register_importer(name: str):
    def deco(cls):
        cls.format = name
        IMPORTERS[name] = cls
        return cls

    return deco


@dataclass
class Importer:
    """A source layout. ``scan`` lists picklable work items; ``load`` decodes one (in a worker)."""

    format: ClassVar[str] = ""
    source: Path

    def scan(self) -> list[Any]:
        raise NotImplementedError

    def load(self, item: Any) -> SampleData:
        raise NotImplementedError

    def describe(self, item: Any) -> str:
        """The file or folder an item comes from, for error messages."""
        return str(item)

    def card_defaults(self) -> dict:
        """Tasks, channels and label schema of a dataset in this layout, for cards made at import time."""
        return {}


def create_importer(name: str, source: str | Path, **options) -> Importer:
    """Instantiate the importer registered as ``name`` for ``source``; unknown options are an error."""
    try:
        cls = IMPORTERS[name]
    except KeyError:
        raise NotFound(f"no importer {name!r}; known: {', '.join(sorted(IMPORTERS))}") from None
    known = {f.name for f in fields(cls)} - {"source"}
    unknown = set(options) - known
    if unknown:
        raise InvalidInput(f"importer {name!r} has no option(s) {sorted(unknown)}; it takes {sorted(known)}")
    source = Path(source)
    if not source.exists():
        raise InvalidInput("source not found", source)
    return cls(source=source, **options)
