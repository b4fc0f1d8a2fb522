"""Formats layer: OME-Zarr (NGFF 0.5, Zarr v3) images, label images and lineage tables."""

from hub.ome._lineage import (
    Track,
    check_parents,
    lineage_from_attrs,
    lineage_to_attrs,
    read_man_track,
    write_man_track,
)
from hub.ome._read import OmeImage, open_image
from hub.ome._validate import validate_ngff
from hub.ome._write import pyramid_levels, write_image

__all__ = [
    "OmeImage",
    "Track",
    "check_parents",
    "lineage_from_attrs",
    "lineage_to_attrs",
    "open_image",
    "pyramid_levels",
    "read_man_track",
    "validate_ngff",
    "write_image",
    "write_man_track",
]
