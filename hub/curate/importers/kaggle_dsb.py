"""Kaggle Data Science Bowl 2018 layout: ``<id>/images/<id>.png`` + one binary PNG per object in ``<id>/masks/``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hub.curate._importer import Importer, register_importer
from hub.curate._sample import SampleData
from hub.errors import InvalidInput
from hub.ome.files import grey_or_colour, read_image_file


@register_importer("kaggle-dsb")
@dataclass
class KaggleDSB(Importer):
    ids_file: str | None = None  # optional TSV/text file whose first column lists the image ids to take
    grey_channel: str = "grey"  # channel name for grey images

    def scan(self) -> list[Path]:
        if self.ids_file:
            lines = Path(self.ids_file).read_text().splitlines()
            ids = [ln.split("\t")[0].strip() for ln in lines if ln.strip() and not ln.startswith("image_id")]
            dirs = [self.source / i for i in ids]
            missing = [d for d in dirs if not (d / "images").is_dir()]
            if missing:
                raise InvalidInput(
                    f"{len(missing)} listed ids have no images/ folder, e.g. {missing[0].name}", self.ids_file
                )
            return dirs
        dirs = sorted(d for d in self.source.iterdir() if (d / "images").is_dir())
        if not dirs:
            raise InvalidInput("no <id>/images/<id>.png sub-folders: not a Kaggle DSB layout", self.source)
        return dirs

    def describe(self, item: Path) -> str:
        return str(item)

    def load(self, d: Path) -> SampleData:
        image_path = d / "images" / f"{d.name}.png"
        try:
            image, axes = grey_or_colour(read_image_file(image_path))
        except ValueError as err:
            raise InvalidInput(str(err), image_path) from None
        geometry = image.shape[-2:]
        mask_files = sorted((d / "masks").glob("*.png")) if (d / "masks").is_dir() else []
        labels = np.zeros(geometry, np.uint16 if len(mask_files) < 65535 else np.uint32)
        overlap = 0
        for k, mf in enumerate(mask_files, 1):
            m = read_image_file(mf)
            if m.ndim == 3:
                m = m[..., 0]
            if m.shape != geometry:
                raise InvalidInput(f"mask has shape {m.shape}, its image {image_path.name} has {geometry}", mf)
            fg = m > 0
            taken = fg & (labels > 0)
            overlap += int(taken.sum())
            labels[fg & ~taken] = k  # first mask (in file-name order) keeps an overlapping pixel
        present = np.unique(labels)
        channels = [self.grey_channel] if axes == "yx" else ["red", "green", "blue"]
        return SampleData(
            id=d.name,
            image=image,
            axes=axes,
            labels={"instances": labels},
            label_attrs={"instances": {"meaning": "instance", "objects": len(mask_files)}},
            attrs={"channel_names": channels},
            report={
                "mask_files": len(mask_files),
                "overlap_pixels": overlap,
                "objects_lost_to_overlap": len(mask_files) - int(np.count_nonzero(present)),
            },
        )

    def card_defaults(self) -> dict:
        return {
            "tasks": ["instance-segmentation", "semantic-segmentation"],
            "channels": [{"name": self.grey_channel, "modality": "other"}],
            "labels": {
                "instance": "0 background; 1..N one nucleus each (mask files in name order)",
                "semantic": {0: "background", 1: "foreground"},
            },
        }
