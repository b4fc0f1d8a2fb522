"""A curated dataset folder: ``card.yaml``, ``samples.csv``, ``splits.json``, ``images/<id>.ome.zarr``."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from hub._readers import read_csv_lines, read_json
from hub.cards import DatasetCard, load_card
from hub.dataset._sample import REQUIRED, Sample
from hub.errors import InvalidInput, NotFound
from hub.ome import OmeImage, open_image
from hub.safety import inside

CARD, SAMPLES, SPLITS, REPORT = "card.yaml", "samples.csv", "splits.json", "import_report.json"
SPLIT_NAMES = ("train", "val", "test")


@dataclass
class Dataset:
    """Read access to a curated dataset folder (lazy: the card, the samples table and images are read on
    first use; the table is parsed into frozen :class:`Sample` rows once)."""

    path: Path

    @cached_property
    def card(self) -> DatasetCard:
        return load_card(DatasetCard, self.path / CARD)

    @cached_property
    def samples(self) -> tuple[Sample, ...]:
        where = self.path / SAMPLES
        try:
            rows = read_csv_lines(where, "samples table")
        except FileNotFoundError:
            raise InvalidInput("samples table not found", where) from None
        missing = [c for c in REQUIRED if rows and c not in rows[0][1]]
        if missing:
            raise InvalidInput(f"samples table has no column {', '.join(missing)}", where)
        return tuple(Sample.from_row(row, line, where) for line, row in rows)

    @cached_property
    def _by_id(self) -> dict[str, Sample]:
        out: dict[str, Sample] = {}
        for s in self.samples:
            out.setdefault(s.id, s)  # a repeated id is the validator's finding; the first row answers
        return out

    @cached_property
    def split_manifest(self) -> dict:
        try:
            return read_json(self.path / SPLITS, "split manifest")
        except FileNotFoundError:
            raise InvalidInput("split manifest not found", self.path / SPLITS) from None

    def ids(self, split: str | None = None) -> list[str]:
        return [s.id for s in self.samples if split is None or s.split == split]

    def sample(self, sample_id: str) -> Sample:
        try:
            return self._by_id[sample_id]
        except KeyError:
            raise InvalidInput(f"no sample {sample_id!r}", self.path / SAMPLES) from None

    def image_path(self, sample_id: str) -> Path:
        """Where sample ``sample_id`` is stored, checked to lie inside the dataset folder."""
        return inside(self.path, self.sample(sample_id).path, "sample path", self.path / SAMPLES)

    def image(self, sample_id: str) -> OmeImage:
        path = self.image_path(sample_id)
        if not path.is_dir():
            raise NotFound(
                f"sample {sample_id!r} is not in this folder (a partial pull? pull it with --samples, or whole)", path
            )
        return open_image(path)


def open_dataset(path: str | Path | Dataset) -> Dataset:
    """The dataset folder at ``path`` (an open :class:`Dataset`, e.g. a streamed one, is returned as it is)."""
    if isinstance(path, Dataset):
        return path
    path = Path(path)
    if not (path / CARD).is_file():
        raise InvalidInput(f"not a CellHub dataset (no {CARD})", path)
    return Dataset(path)
