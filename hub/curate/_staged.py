"""Build a dataset straight into a registry: no dataset folder, and no storage shared by the workers but the
registry itself (``s3://``).

Each sample is converted in its worker's scratch folder, checked there (the validator's per-sample checks) and put
into the registry's upload of the version, hashed as it is sent; the worker keeps nothing. This machine then
assigns the splits from the records, and the workers read the train images back for the statistics, each file
verified against the SHA-256 it was put with. This machine writes the tables, runs the validator's checks of the
whole dataset (a near-duplicate pair is read back the same way), puts the tables and commits the version. A
failure before the commit removes the upload: nothing is published and nothing half-written is visible, however
many workers died on the way (Dask runs a dead worker's task again; a sample put twice is the same bytes in the
same place).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any, Protocol, TypeVar

from hub.cards import DatasetCard
from hub.curate._build import (
    _final_card,
    _geometry,
    _refuse_findings,
    _sample,
    _split,
    _unique_ids,
    _write_tables,
)
from hub.curate._convert import convert_sample
from hub.curate._importer import Importer
from hub.curate._sample import SampleRecord
from hub.curate.splits import SplitSpec
from hub.curate.stats import fold_histograms, image_histograms
from hub.curate.validate import Findings, check_sample, check_table, check_whole, sample_job
from hub.dataset import CARD, REPORT, SAMPLES, SPLITS, Dataset
from hub.executor import ExecutorLike, imap_samples, map_samples, use_executor
from hub.ome import OmeImage, open_image
from hub.safety import MAX_CARD_BYTES, load_yaml_file

R = TypeVar("R", covariant=True)
Entries = list[dict[str, Any]]  # manifest entries: path, size, sha256


class Staging(Protocol):
    """An open upload of a registry (:class:`hub.registry.registry.Upload`): picklable, used by the workers."""

    def put(self, folder: str | Path, rels: list[str]) -> Entries: ...

    def get(self, files: Entries, folder: str | Path, workers: int = ...) -> None: ...


class Stager(Protocol[R]):
    """What a build into a registry needs of it (:class:`hub.registry.Registry`)."""

    url: str

    def begin(self, kind: str, card: dict[str, Any], *, accept_terms: bool = ...) -> Any: ...

    def commit(self, upload: Any, files: Entries, card: dict[str, Any]) -> tuple[R, str]: ...

    def abort(self, upload: Any) -> None: ...


def _files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def _convert_and_put(job: tuple) -> tuple[SampleRecord, list[tuple], Entries]:
    """A worker's sample: converted and checked in scratch space, then put into the upload. Returns its record,
    the per-sample findings and the manifest entries of its files."""
    importer, item, card, upload = job
    with TemporaryDirectory(prefix="cellhub-sample-") as scratch:
        record = convert_sample((importer, item, scratch, _geometry(card)))
        findings, _ = check_sample(sample_job(scratch, _sample(record, card.labels.classes), card, record.channels))
        return record, findings, upload.put(scratch, _files(Path(scratch)))


def _read_back_histograms(job: tuple[Staging, Entries, str]) -> tuple[list[str], list]:
    """A worker's train sample read back from the upload (verified) into scratch space: its channel histograms."""
    upload, files, path = job
    with TemporaryDirectory(prefix="cellhub-sample-") as scratch:
        upload.get(files, scratch)
        return image_histograms((scratch, path))


@dataclass
class _Staged(Dataset):
    """The tables written here, the images in the upload: an image is read back (verified) when first opened."""

    upload: Staging | None = None
    files: dict[str, Entries] = field(default_factory=dict)  # by sample path

    def image(self, sample_id: str) -> OmeImage:
        path = self.image_path(sample_id)
        if not path.is_dir() and self.upload is not None:
            self.upload.get(self.files[self.sample(sample_id).path], self.path)
        return open_image(path)


def import_into(
    importer: Importer,
    registry: Stager[R],
    card: DatasetCard,
    split: SplitSpec,
    *,
    accept_terms: bool = False,
    expected_manifest_sha256: str | None = None,
    workers: int | None = None,
    executor: ExecutorLike | None = None,
) -> tuple[DatasetCard, R, str]:
    """Convert, check and publish every sample of ``importer`` as version ``card.version`` of ``registry``
    (see the module's note); returns the final card, the published ref and the manifest SHA-256. The version is
    committed only when the validator found no error and, if ``expected_manifest_sha256`` is given, the split
    reproduces it. ``executor``: where the samples are converted and read back (a Dask cluster's workers must
    reach the sources and the registry); else ``workers`` local processes."""
    items = importer.scan()
    upload = registry.begin("datasets", card.model_dump(mode="json"), accept_terms=accept_terms)
    try:
        with use_executor(executor), TemporaryDirectory(prefix="cellhub-tables-") as tables:
            done = map_samples(
                _convert_and_put,
                [(importer, it, card, upload) for it in items],
                workers=workers,
                description=f"importing {card.name} into {registry.url}",
            )
            records = [r for r, _, _ in done]
            _unique_ids(records, importer.source)
            files = {r.path: entries for r, _, entries in done}
            manifest = _split(records, split, expected_manifest_sha256)
            jobs = [(upload, files[r.path], r.path) for r in records if r.split == "train"]
            train = fold_histograms(
                imap_samples(_read_back_histograms, jobs, workers=workers, description="train statistics")
            )
            card = _final_card(card, importer, split, records, manifest, train)
            _write_tables(Path(tables), card, records, manifest)
            staged = _Staged(Path(tables), upload=upload, files=files)
            findings = Findings()
            check_table(staged, findings)
            for _, found, _ in done:
                findings.extend(found)
            check_whole(staged, findings, train)
            _refuse_findings(findings, f"{registry.url} ({card.name}@{card.version})")
            table_entries = upload.put(tables, [SPLITS, CARD, SAMPLES, REPORT])
            card_data = load_yaml_file(Path(tables) / CARD, MAX_CARD_BYTES, "card")
    except BaseException:
        registry.abort(upload)
        raise
    ref, sha = registry.commit(upload, [*table_entries, *(e for es in files.values() for e in es)], card_data)
    return card, ref, sha
