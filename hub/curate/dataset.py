"""A curated dataset folder: ``card.yaml``, ``samples.csv``, ``splits.json``, ``images/<id>.ome.zarr``."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from hub._readers import read_csv, read_json
from hub.cards import DatasetCard, load_card
from hub.errors import InvalidInput
from hub.ome import OmeImage, open_image
from hub.safety import inside

CARD, SAMPLES, SPLITS, REPORT = "card.yaml", "samples.csv", "splits.json", "import_report.json"
COLUMNS = [
    "id",
    "path",
    "split",
    "group",
    "source",
    "region",
    "shape",
    "dtype",
    "class",
    "class_name",
    "objects",
    "tracks",
    "divisions",
    "frames",
    "sha256",
    "image_sha256",
    "phash",
]


@dataclass
class Dataset:
    """Read access to a curated dataset folder (lazy: images open on demand)."""

    path: Path

    @cached_property
    def card(self) -> DatasetCard:
        return load_card(DatasetCard, self.path / CARD)

    @cached_property
    def samples(self) -> list[dict]:
        try:
            rows = read_csv(self.path / SAMPLES, "samples table")
        except FileNotFoundError:
            raise InvalidInput("samples table not found", self.path / SAMPLES) from None
        missing = [c for c in ("id", "path", "split") if rows and c not in rows[0]]
        if missing:
            raise InvalidInput(f"samples table has no column {', '.join(missing)}", self.path / SAMPLES)
        return rows

    @cached_property
    def split_manifest(self) -> dict:
        try:
            return read_json(self.path / SPLITS, "split manifest")
        except FileNotFoundError:
            raise InvalidInput("split manifest not found", self.path / SPLITS) from None

    def ids(self, split: str | None = None) -> list[str]:
        return [s["id"] for s in self.samples if split is None or s["split"] == split]

    def sample(self, sample_id: str) -> dict:
        for s in self.samples:
            if s["id"] == sample_id:
                return s
        raise InvalidInput(f"no sample {sample_id!r}", self.path / SAMPLES)

    def image(self, sample_id: str) -> OmeImage:
        return open_image(inside(self.path, self.sample(sample_id)["path"], "sample path", self.path / SAMPLES))


def open_dataset(path: str | Path) -> Dataset:
    path = Path(path)
    if not (path / CARD).is_file():
        raise InvalidInput(f"not a CellHub dataset (no {CARD})", path)
    return Dataset(path)
