"""Exports of a model, one module per target: :mod:`~hub.models.export.hf` (a Hugging Face model card folder)
and :mod:`~hub.models.export.bioimageio` (a bioimage.io model package, ``rdf.yaml``); what they share (the
atomic folder, the model's card and weights, the card in prose) is in :mod:`~hub.models.export._shared`.

``export(model, "hf" | "bioimageio", out)`` writes the new folder ``out`` atomically (complete or not at all)
and returns the names of the files written.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from hub.errors import InvalidInput
from hub.models.export.bioimageio import export_bioimageio
from hub.models.export.hf import export_hf
from hub.models.model import Model

EXPORTERS: dict[str, Callable[[Model, str | Path, np.ndarray | None, str | Path | None], list[str]]] = {
    "hf": lambda model, out, sample, source: export_hf(model, out, source),
    "bioimageio": export_bioimageio,
}
FORMATS = tuple(EXPORTERS)


def export(
    model: Model, fmt: str, out: str | Path, sample: np.ndarray | None = None, source: str | Path | None = None
) -> list[str]:
    """Export ``model`` as ``fmt`` (``hf`` or ``bioimageio``) into the new folder ``out``; returns file names.

    ``sample`` is a raw (C, Y, X) image for the bioimage.io test tensors (default: a synthetic image);
    ``source`` the model's folder, whose weights file is then copied byte for byte.
    """
    if fmt not in EXPORTERS:
        raise InvalidInput(f"unknown export format {fmt!r} (known: {', '.join(FORMATS)})")
    return EXPORTERS[fmt](model, out, sample, source)


def sample_image(model: Model, source: str | Path) -> np.ndarray:
    """The first raw image (a test-split one for a dataset) of an image file, folder or curated dataset."""
    from hub.models.predict import samples

    for split in ("test", None):
        for _, image in samples(model, source, split):
            return image
    raise InvalidInput("no image to use as the test input", source)


__all__ = ["EXPORTERS", "FORMATS", "export", "export_bioimageio", "export_hf", "sample_image"]
