"""Formats layer: OME-Zarr (NGFF 0.5, Zarr v3) images and label images (``hub.ome``), Cell Tracking Challenge
files and the lineage check (``hub.ome.ctc``), source image files (``hub.ome.files``).

Reading needs zarr only: the writer (ome-zarr, dask) and the validator (ome-zarr-models) are imported on first use.
"""

from typing import TYPE_CHECKING

from hub.ome._read import OmeImage, open_image
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
    from hub.ome._validate import validate_ngff
    from hub.ome._write import pyramid_levels, write_image

_LAZY = {"pyramid_levels": "hub.ome._write", "write_image": "hub.ome._write", "validate_ngff": "hub.ome._validate"}

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
