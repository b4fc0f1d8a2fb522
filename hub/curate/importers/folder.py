"""A plain folder of TIFF/PNG images, optionally with a folder of label images of the same stems."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hub.curate._importer import Importer, register_importer
from hub.curate._sample import SampleData
from hub.errors import InvalidInput
from hub.ome.files import image_files, read_image_file, read_picture


@register_importer("folder")
@dataclass
class Folder(Importer):
    masks: str | None = None  # folder of label images (relative to the source or absolute)
    mask_suffix: str = ""  # a mask's stem is the image's stem + this suffix (e.g. '_masks')

    def _mask_dir(self) -> Path | None:
        if not self.masks:
            return None
        d = Path(self.masks)
        return d if d.is_absolute() else self.source / d

    def scan(self) -> list[Path]:
        if not self.source.is_dir():
            raise InvalidInput("not a folder", self.source)
        files = [
            f for f in image_files(self.source) if not (self.mask_suffix and f.stem.endswith(self.mask_suffix))
        ]  # masks kept beside images
        if not files:
            raise InvalidInput("no .tif, .tiff or .png images", self.source)
        seen: dict[str, Path] = {}
        for f in files:
            if f.stem in seen:
                raise InvalidInput(f"two images with the sample id {f.stem!r}: {seen[f.stem].name} and {f.name}", f)
            seen[f.stem] = f
        mask_dir = self._mask_dir()
        if mask_dir is not None and not mask_dir.is_dir():
            raise InvalidInput("mask folder not found", mask_dir)
        return files

    def describe(self, item: Path) -> str:
        return str(item)

    def load(self, path: Path) -> SampleData:
        image, axes, channels = read_picture(path)
        labels = {}
        mask_dir = self._mask_dir()
        if mask_dir is not None:
            cands = [p for p in image_files(mask_dir) if p.stem == path.stem + self.mask_suffix]
            if not cands:
                raise InvalidInput(f"no mask named {path.stem + self.mask_suffix}.* in {mask_dir}", path)
            mask = read_image_file(cands[0])
            geometry = image.shape[-2:]
            if mask.shape != geometry:
                raise InvalidInput(f"mask has shape {mask.shape}, its image {path.name} has {geometry}", cands[0])
            if mask.dtype.kind not in "ui":
                raise InvalidInput(f"mask has {mask.dtype} values; labels must be integers", cands[0])
            labels["masks"] = mask
        return SampleData(id=path.stem, image=image, axes=axes, labels=labels, attrs={"channel_names": channels})

    def card_defaults(self) -> dict:
        return {
            "tasks": ["instance-segmentation", "semantic-segmentation"],
            "channels": [{"name": "grey", "modality": "other"}],
            "labels": {"instance": "0 background; 1..N one object each"} if self.masks else {},
        }
