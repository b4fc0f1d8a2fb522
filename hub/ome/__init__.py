"""Formats layer: OME-Zarr (NGFF 0.5, Zarr v3) images and label images (``hub.ome``), Cell Tracking Challenge
files and the lineage check (``hub.ome.ctc``), source image files (``hub.ome.files``).

The lowest of the layers that know a file format: ``hub.metrics`` uses its lineage check. Its modules load on
first use (zarr for reading, ome-zarr and dask for writing, ome-zarr-models for validating), so importing
``hub.ome.ctc`` costs numpy only.
"""

from typing import TYPE_CHECKING

from hub.ome.ctc import (
    Track,
    check_lineage,
    frame_labels,
    lineage_from_attrs,
    lineage_to_attrs,
    read_man_track,
    write_man_track,
)

if TYPE_CHECKING:  # the real signatures for type checkers; at run time these load on first use
    from hub.ome._read import OmeImage, open_image
    from hub.ome._validate import validate_ngff
    from hub.ome._write import pyramid_levels, write_image

_LAZY = {
    "OmeImage": "hub.ome._read",
    "open_image": "hub.ome._read",
    "pyramid_levels": "hub.ome._write",
    "write_image": "hub.ome._write",
    "validate_ngff": "hub.ome._validate",
}

__all__ = [
    "OmeImage",
    "Track",
    "check_lineage",
    "frame_labels",
    "lineage_from_attrs",
    "lineage_to_attrs",
    "open_image",
    "pyramid_levels",
    "read_man_track",
    "validate_ngff",
    "write_image",
    "write_man_track",
]


def __getattr__(name: str):
    if name in _LAZY:
        from importlib import import_module

        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
