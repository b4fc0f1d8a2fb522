"""NGFF validation of written images with ome-zarr-models (and ome-zarr-py's reader as a second opinion)."""

from __future__ import annotations

from pathlib import Path

import zarr
from ome_zarr_models import open_ome_zarr
from ome_zarr_models.v05.image import Image
from ome_zarr_models.v05.image_label import ImageLabel


def validate_ngff(path: str | Path) -> list[str]:
    """Problems found in the OME-Zarr image at ``path`` and its label images; empty when valid."""
    path = Path(path)
    problems: list[str] = []
    try:
        obj = open_ome_zarr(zarr.open_group(str(path), mode="r"), version="0.5")
        if not isinstance(obj, Image):
            problems.append(f"expected an OME-Zarr image, ome-zarr-models found {type(obj).__name__}")
    except Exception as err:  # ome-zarr-models raises a RuntimeError listing every model it tried
        return [f"not a valid NGFF 0.5 image: {_first_line(err)}"]
    root = zarr.open_group(str(path), mode="r")
    if "labels" in root:
        names = root["labels"].attrs.get("ome", {}).get("labels", [])
        if root["labels"].attrs.get("ome", {}).get("version") != "0.5":
            problems.append("labels group lacks ome.version 0.5")
        for name in names:
            try:
                ImageLabel.from_zarr(root[f"labels/{name}"])
            except Exception as err:
                problems.append(f"label image {name!r} is not valid NGFF 0.5: {_first_line(err)}")
    return problems


def _first_line(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return " ".join(t.strip() for t in text[:3])[:300] if text else err.__class__.__name__
