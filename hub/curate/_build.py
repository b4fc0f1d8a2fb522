"""Import a source into a curated dataset folder, atomically: written beside the target, renamed at the end."""

from __future__ import annotations

import csv
import json
import shutil
import uuid
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

from hub.cards import Channel, Counts, DatasetCard, SplitInfo, Statistics, save_card
from hub.curate._convert import PARTIAL, Geometry, convert_sample
from hub.curate._importer import Importer
from hub.curate._sample import SampleRecord
from hub.curate.splits import SplitSpec, assign_splits, split_manifest
from hub.curate.stats import Histograms, sum_histograms
from hub.dataset import (
    CARD,
    COLUMNS,
    REPORT,
    SAMPLES,
    SPLIT_NAMES,
    SPLITS,
    Sample,
    canonical_json,
    manifest_sha256,
)
from hub.errors import BuildError, SplitDrift
from hub.executor import ExecutorLike, map_samples, use_executor

if TYPE_CHECKING:
    from hub.curate.validate import Findings


def _geometry(card: DatasetCard) -> Geometry:
    acq = card.acquisition
    ps = acq.pixel_size
    known = not ps.unknown
    return Geometry(
        channel_names=card.channel_names,
        pixel_size=(ps.y, ps.x) if known else None,  # type: ignore[arg-type]  # known: the card gives both
        pixel_unit=ps.unit if known else None,
        frame_interval=acq.frame_interval.value if acq.frame_interval else None,
        time_unit=acq.frame_interval.unit if acq.frame_interval else None,
    )


def _sample(r: SampleRecord, classes: list[str] | None) -> Sample:
    """The ``samples.csv`` row of a written sample, as the read model holds it (:meth:`Sample.to_row` writes it)."""
    cls = r.targets.get("class")
    return Sample(
        id=r.id,
        path=r.path,
        split=r.split,
        group=r.group,
        source=r.source,
        region=tuple(r.region) if r.region else None,
        shape=tuple(r.shape),
        dtype=r.dtype,
        class_index=None if cls is None else int(cls),
        class_name=classes[cls] if classes and cls is not None else None,
        objects=r.objects,
        tracks=r.tracks,
        divisions=r.divisions,
        frames=r.frames,
        sha256=r.sha256,
        image_sha256=r.image_sha256,
        phash=r.phash,
    )


def _counts(records: list[SampleRecord], card: DatasetCard) -> Counts:
    classes = card.labels.classes
    per_class = None
    if classes:
        c = Counter(int(r.targets["class"]) for r in records if "class" in r.targets)
        c.update(int(b["class"]) for r in records for b in r.targets.get("boxes", ()))  # detection: boxes per class
        per_class = {name: c.get(i, 0) for i, name in enumerate(classes)}
    return Counts(
        samples=len(records),
        objects=sum(r.objects for r in records) or None,
        tracks=sum(r.tracks for r in records) or None,
        divisions=sum(r.divisions for r in records) or None,
        frames=sum(r.frames for r in records) or None,
        per_class=per_class,
    )


def _with_channels(card: DatasetCard, records: list[SampleRecord]) -> DatasetCard:
    """Add channels that samples carry but the card lacks (e.g. colour images among grey ones)."""
    extra: list[str] = []
    for r in records:
        extra += [c for c in r.channels if c not in card.channel_names and c not in extra]
    if not extra:
        return card
    channels = [*card.acquisition.channels, *(Channel(name=c, modality="other") for c in extra)]
    return card.model_copy(update={"acquisition": card.acquisition.model_copy(update={"channels": channels})})


def _swap_into_place(tmp: Path, out: Path) -> None:
    """Replace ``out`` by ``tmp`` so that a reader sees either the old or the new folder, never neither."""
    old = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
    if out.exists():
        out.rename(old)
    tmp.rename(out)
    shutil.rmtree(old, ignore_errors=True)


def _convert_all(
    importer: Importer, items: list, tmp: Path, card: DatasetCard, workers: int | None
) -> list[SampleRecord]:
    """The scanned ``items`` converted into ``tmp/images``, one record each; sample ids must be unique."""
    records = map_samples(
        convert_sample,
        [(importer, it, str(tmp), _geometry(card)) for it in items],
        workers=workers,
        description=f"importing {card.name}",
    )
    for left in (tmp / "images").glob(f"{PARTIAL}*"):  # what the runs of killed workers left behind
        shutil.rmtree(left, ignore_errors=True)
    _unique_ids(records, importer.source)
    return records


def _unique_ids(records: list[SampleRecord], source: str | Path) -> None:
    dupes = [i for i, n in Counter(r.id for r in records).items() if n > 1]
    if dupes:
        raise BuildError(f"sample id {dupes[0]!r} occurs twice", source)


def _split(records: list[SampleRecord], split: SplitSpec, expected_sha256: str | None) -> dict:
    """Assign each record its split; the split manifest, which must reproduce ``expected_sha256`` if given."""
    splits = assign_splits(records, split)
    for r in records:
        r.split = splits[r.id]
    manifest = split_manifest(records, split)
    if expected_sha256 and manifest_sha256(manifest) != expected_sha256:
        raise SplitDrift(
            f"split manifest sha256 {manifest_sha256(manifest)} differs from "
            f"{expected_sha256} frozen in the recipe: the rebuild does not reproduce the "
            f"frozen split"
        )
    return manifest


def _final_card(
    card: DatasetCard,
    importer: Importer,
    split: SplitSpec,
    records: list[SampleRecord],
    manifest: dict,
    train: Histograms,
) -> DatasetCard:
    """The recipe's card completed with what the import found: channels, split, train statistics (from the train
    samples' summed histograms), counts."""
    card = _with_channels(card, records)
    return card.model_copy(
        update={
            "importer": importer.format,
            "splits": SplitInfo(
                method=split.method,
                seed=split.seed,
                stratify=split.stratify,
                fractions=split.fractions if split.method == "stratified-group" else None,
                guard=split.guard,
                counts={s: sum(r.split == s for r in records) for s in SPLIT_NAMES},
                manifest_sha256=manifest_sha256(manifest),
            ),
            "statistics": Statistics(channels=train.statistics(card.channel_names)) if train else None,
            "counts": _counts(records, card),
        }
    )


def _write_tables(tmp: Path, card: DatasetCard, records: list[SampleRecord], manifest: dict) -> None:
    """``splits.json``, ``card.yaml``, ``samples.csv`` and the import report beside the images."""
    (tmp / SPLITS).write_bytes(canonical_json(manifest))
    save_card(card, tmp / CARD)
    with open(tmp / SAMPLES, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(_sample(r, card.labels.classes).to_row() for r in records)
    totals: Counter[str] = Counter()
    for r in records:
        totals.update(r.report)
    report: dict = dict(totals)
    report["samples_with_findings"] = {
        r.id: r.report
        for r in records
        if any(v for k, v in r.report.items() if k in ("overlap_pixels", "objects_lost_to_overlap"))
    }
    (tmp / REPORT).write_text(json.dumps(report, indent=2))


def _check_built(tmp: Path, out: Path) -> None:
    """The validator's verdict on the finished folder: its first error, if any, fails the build."""
    from hub.curate.validate import validate_dataset  # validate reads what this module writes

    _refuse_findings(validate_dataset(tmp), out)


def _refuse_findings(findings: Findings, where: str | Path) -> None:
    """Fail the build of ``where`` on the validator's first error, if any."""
    if findings.errors:
        first = findings.errors[0]
        at = f" [{first.sample}]" if first.sample else ""
        raise BuildError(
            f"the imported dataset does not validate ({len(findings.errors)} error(s)); first: "
            f"{first.check}{at}: {first.message}",
            where,
        )


def import_dataset(
    importer: Importer,
    out: str | Path,
    card: DatasetCard,
    split: SplitSpec,
    *,
    workers: int | None = None,
    overwrite: bool = False,
    expected_manifest_sha256: str | None = None,
    executor: ExecutorLike | None = None,
) -> DatasetCard:
    """Convert every sample, split, compute train statistics and write the dataset folder ``out``.

    Nothing appears at ``out`` unless everything succeeded, the validator found no error and, when
    ``expected_manifest_sha256`` is given, the split reproduces it; an existing ``out`` is kept until then.
    ``executor``: where the samples are converted and validated (:func:`hub.executor.use_executor`; on a Dask
    cluster, ``out`` must be on storage every worker reaches).
    """
    out = Path(out)
    if out.exists() and not overwrite:
        raise BuildError("output already exists; choose another path or remove it", out)
    items = importer.scan()  # a source that cannot be read leaves nothing behind, not even a parent folder
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.partial-{uuid.uuid4().hex[:8]}"
    (tmp / "images").mkdir(parents=True)
    try:
        with use_executor(executor):
            records = _convert_all(importer, items, tmp, card, workers)
            manifest = _split(records, split, expected_manifest_sha256)
            train = sum_histograms(tmp, [r.path for r in records if r.split == "train"], workers)
            card = _final_card(card, importer, split, records, manifest, train)
            _write_tables(tmp, card, records, manifest)
            _check_built(tmp, out)
        _swap_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return card
