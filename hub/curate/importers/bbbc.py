"""Broad Bioimage Benchmark Collection layout: ``images/<field>.tif`` + ``masks/<field>.png`` colour-coded masks.

A mask is a map colouring, not instance ids: its label map (the red channel of an RGB(A) PNG, or a 2-D integer
image) holds a few values chosen so that touching nuclei differ, and one nucleus is one connected component of
one value. Components are taken with 4-connectivity (pixels sharing an edge): two nuclei of the same colour that
meet only at a corner stay two objects, as the colouring intends (8-connectivity would merge them). Instances are
numbered 1..N in raster order of their first pixel, so the numbering depends on the mask alone.

Images and masks pair by their file-name key: the stem without the channel suffix that the microscope appends to
image names (``_w1<GUID>`` on the ImageXpress); masks may carry it or not. The split group (the plate well) comes
from the key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hub.curate._importer import Importer, register_importer
from hub.curate._sample import SampleData
from hub.curate.importers._names import group_of
from hub.errors import InvalidInput
from hub.ome.files import grey_or_colour, image_files, read_image_file

#: ImageXpress channel suffix of a file name: ``_w<wavelength><GUID>``.
IXM_CHANNEL = r"_w\d[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$"


def colour_map(mask: np.ndarray, path: Path) -> np.ndarray:
    """The label map of a colour-coded mask: a 2-D integer image, or the red channel of an RGB(A) image whose
    green and blue are zero (or equal to red, a grey PNG)."""
    if mask.ndim == 3 and mask.shape[-1] in (3, 4):
        red = mask[..., 0]
        for c, name in ((1, "green"), (2, "blue")):
            if mask[..., c].any() and not np.array_equal(mask[..., c], red):
                raise InvalidInput(f"mask has values in its {name} channel: expected the label map in red alone", path)
        mask = red
    if mask.ndim != 2:
        raise InvalidInput(f"mask has shape {mask.shape}: expected a 2-D label map or an RGB(A) image", path)
    if mask.dtype.kind not in "ui":
        raise InvalidInput(f"mask has {mask.dtype} values; a colour-coded mask holds integers", path)
    if mask.size and mask.min() < 0:
        raise InvalidInput("mask has negative values", path)
    return mask


def colour_instances(colours: np.ndarray, min_size: int = 0) -> tuple[np.ndarray, dict[str, int]]:
    """Instance labels 1..N (raster order of the first pixel) from a map colouring: one 4-connected component of
    one non-zero value per object; components under ``min_size`` pixels are dropped. Returns the labels and the
    findings (components found, small ones dropped and their pixels)."""
    from skimage.measure import label

    comp, n = label(colours, background=0, connectivity=1, return_num=True)  # equal values, 4-connected: one pass
    sizes = np.bincount(comp.ravel(), minlength=n + 1)
    small = sizes < min_size
    small[0] = False
    comp[small[comp]] = 0
    ids, first = np.unique(comp, return_index=True)
    order = ids[ids > 0][np.argsort(first[ids > 0], kind="stable")]
    lut = np.zeros(n + 1, np.uint16 if len(order) < 65535 else np.uint32)
    lut[order] = np.arange(1, len(order) + 1)
    dropped = {"small_components_dropped": int(small.sum()), "small_pixels_dropped": int(sizes[small].sum())}
    return lut[comp], {"components": n, **dropped}


@register_importer("bbbc")
@dataclass
class BBBC(Importer):
    images: str = "images"  # folder of images, relative to the source
    masks: str = "masks"  # folder of colour-coded masks, relative to the source
    strip: str = IXM_CHANNEL  # regex removed from file stems to get the key that pairs an image with its mask
    group: str | None = r"_(?P<group>[A-Z]{1,2}\d{2})_s\d+"  # regex whose group 'group' is the split unit (a well)
    min_size: int = 0  # components smaller than this (pixels) are annotation noise and dropped

    def _keyed(self, folder: Path, what: str) -> dict[str, Path]:
        if not folder.is_dir():
            raise InvalidInput(f"{what} folder not found", folder)
        out: dict[str, Path] = {}
        for f in image_files(folder):
            key = re.sub(self.strip, "", f.stem)
            if key in out:
                raise InvalidInput(f"ambiguous: {out[key].name} and {f.name} are both {what} of key {key!r}", f)
            out[key] = f
        if not out:
            raise InvalidInput(f"no .tif, .tiff or .png {what}", folder)
        return out

    def scan(self) -> list[tuple[str, Path, Path]]:
        images = self._keyed(self.source / self.images, "images")
        masks = self._keyed(self.source / self.masks, "masks")
        for key, image in images.items():
            if key not in masks:
                raise InvalidInput(f"no mask for this image (key {key!r}) in {self.source / self.masks}", image)
        for key, mask in masks.items():
            if key not in images:
                raise InvalidInput(f"mask has no image (key {key!r}) in {self.source / self.images}", mask)
        return [(key, images[key], masks[key]) for key in sorted(images)]

    def describe(self, item: tuple[str, Path, Path]) -> str:
        return str(item[1])

    def load(self, item: tuple[str, Path, Path]) -> SampleData:
        key, image_path, mask_path = item
        try:
            image, axes = grey_or_colour(read_image_file(image_path))
        except ValueError as err:
            raise InvalidInput(str(err), image_path) from None
        colours = colour_map(read_image_file(mask_path), mask_path)
        geometry = image.shape[-2:]
        if colours.shape != geometry:
            raise InvalidInput(f"mask has shape {colours.shape}, its image {image_path.name} has {geometry}", mask_path)
        labels, report = colour_instances(colours, self.min_size)
        objects = int(labels.max())
        return SampleData(
            id=key,
            image=image,
            axes=axes,
            labels={"instances": labels},
            label_attrs={"instances": {"meaning": "instance", "objects": objects}},
            group=group_of(self.group, key, image_path),
            attrs={"files": [image_path.name, mask_path.name]},
            report=report,
        )

    def card_defaults(self) -> dict:
        return {
            "tasks": ["instance-segmentation", "semantic-segmentation"],
            "channels": [{"name": "grey", "modality": "other"}],
            "labels": {
                "instance": "0 background; 1..N one nucleus each (4-connected component of one mask colour), "
                "numbered in raster order",
                "semantic": {0: "background", 1: "foreground"},
            },
        }
