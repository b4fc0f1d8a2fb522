"""The dataset validator: NGFF validity, label and lineage integrity, card completeness, split integrity,
leakage and statistics. Findings are graded error / warning / info and name the sample and file."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from operator import attrgetter
from pathlib import Path

import numpy as np

from hub.cards import DatasetCard, Statistics
from hub.curate.stats import Histograms, histograms
from hub.dataset import (
    CARD,
    SAMPLES,
    SPLIT_NAMES,
    SPLITS,
    Boxes,
    Dataset,
    Sample,
    array_sha256,
    detects,
    manifest_sha256,
    open_dataset,
    sample_sha256,
)
from hub.errors import CellHubError
from hub.executor import ExecutorLike, imap_samples, use_executor
from hub.ome import open_image, validate_ngff
from hub.ome.ctc import check_lineage, frame_labels, lineage_from_attrs
from hub.tasks import get_task

PLACEHOLDER = "not recorded"
NEAR_DUPLICATE_BITS = 2  # dHash Hamming distance at or below which two images are near-duplicate candidates
NEAR_DUPLICATE_R = 0.98  # ... confirmed when every channel's pixel correlation reaches this
NEAR_DUPLICATE_CHECKS = 200  # at most this many candidate pairs (closest first) are read back and correlated
NEAR_DUPLICATE_PAIRS = 100_000  # the scan stops once it has found this many candidate pairs


@dataclass
class Finding:
    level: str
    check: str
    message: str
    sample: str | None = None
    file: str | None = None

    def line(self) -> str:
        where = self.file or ""
        return f"{where}: {self.message}" if where else self.message


@dataclass
class Findings:
    errors: list[Finding] = field(default_factory=list)
    warnings: list[Finding] = field(default_factory=list)
    info: list[Finding] = field(default_factory=list)

    def add(self, level: str, check: str, message: str, sample: str | None = None, file: str | None = None):
        getattr(self, {"error": "errors", "warning": "warnings", "info": "info"}[level]).append(
            Finding(level, check, message, sample, file)
        )

    def extend(self, found: list[tuple]) -> None:
        """Add findings given as ``(level, check, message, sample, file)`` (what per-sample checks return)."""
        for level, check, message, sample, file in found:
            self.add(level, check, message, sample, file)

    def to_json(self) -> dict:
        return {k: [asdict(f) for f in getattr(self, k)] for k in ("errors", "warnings", "info")}


def check_sample(job: tuple) -> tuple[list[tuple], list]:
    """Per-sample checks (in a worker; the job from :func:`sample_job`): NGFF, labels, lineage, content hash.
    Returns findings as ``(level, check, message, sample, file)`` and, for a train sample, its channel names and
    histograms."""
    root, row = job[:2]
    try:
        return _check_sample_unsafe(job)
    except Exception as err:  # an unreadable store (corrupt chunk, missing array) is a finding, not a crash
        return [
            (
                "error",
                "structure",
                f"cannot read sample ({err.__class__.__name__}: {str(err)[:200]})",
                row.id,
                str(Path(root) / row.path),
            )
        ], []


def _check_sample_unsafe(job: tuple) -> tuple[list[tuple], list]:
    root, row, card_classes, semantic, card_channels, boxed = job
    assert isinstance(row, Sample)
    sid, path = row.id, str(Path(root) / row.path)
    out: list[tuple] = []
    problems = validate_ngff(path)
    for p in problems:
        out.append(("error", "ngff", p, sid, path))
    if problems:
        return out, []
    img = open_image(path)
    image = img.read()
    geometry = tuple(n for a, n in zip(img.axes, image.shape) if a != "c")
    labels, label_attrs = {}, {}
    for name in img.label_names:
        lab = img.label(name)[...]
        labels[name], label_attrs[name] = lab, img.label_attrs(name)
        where = f"{path}/labels/{name}"
        if not np.issubdtype(lab.dtype, np.integer):
            out.append(("error", "labels", f"label image has {lab.dtype} values; must be integer", sid, where))
            continue
        if lab.shape != geometry:
            out.append(("error", "labels", f"label shape {lab.shape} differs from image {geometry}", sid, where))
        n_levels = len(img.group[f"labels/{name}"].attrs["ome"]["multiscales"][0]["datasets"])
        if n_levels != len(img.level_paths):
            out.append(("error", "labels", "label pyramid has another number of levels than its image", sid, where))
        else:
            for level in range(1, n_levels):
                want = tuple(n for a, n in zip(img.axes, img.array(level).shape) if a != "c")
                if img.label(name, level).shape != want:
                    out.append(
                        (
                            "error",
                            "labels",
                            f"label level {level} has shape {img.label(name, level).shape}, image level {want}",
                            sid,
                            where,
                        )
                    )
        if lab.size and lab.min() < 0:
            out.append(("error", "labels", "negative label values", sid, where))
        problem = _image_label_problem(img.group, name)
        if problem:
            out.append(("error", "labels", problem, sid, where))
        if semantic and name == "semantic" and not set(np.unique(lab).tolist()) <= set(semantic):
            out.append(("error", "labels", "values outside the card's semantic schema", sid, where))
        if "lineage" in label_attrs[name]:
            try:
                check_lineage(lineage_from_attrs(label_attrs[name]["lineage"]), frame_labels(lab), where)
            except CellHubError as err:
                out.append(("error", "lineage", err.problem, sid, where))
    targets = img.attrs.get("targets", {})
    if "class" in targets and card_classes is not None and not 0 <= int(targets["class"]) < len(card_classes):
        out.append(("error", "classes", f"class {targets['class']} outside 0..{len(card_classes) - 1}", sid, path))
    if row.class_index is not None and str(targets.get("class")) != str(row.class_index):
        what = f"class {targets.get('class')} in the image, {row.class_index} in {SAMPLES}"
        out.append(("error", "classes", what, sid, path))
    if boxed and "boxes" not in targets:
        out.append(("error", "boxes", "a sample of a detection dataset without its boxes (targets.boxes)", sid, path))
    if "boxes" in targets:
        try:
            boxes = Boxes.from_targets(targets["boxes"], geometry[-2:], len(card_classes or []), path)
            if not labels and len(boxes) != row.objects:  # with masks, objects counts the instances
                out.append(("error", "boxes", f"{len(boxes)} boxes, {row.objects} objects in {SAMPLES}", sid, path))
        except CellHubError as err:
            out.append(("error", "boxes", err.problem, sid, path))
    if sample_sha256(image, labels, label_attrs, targets) != row.sha256:
        out.append(("error", "content", f"content differs from the sha256 in {SAMPLES}", sid, path))
    if array_sha256(image) != row.image_sha256:
        out.append(("error", "content", f"image differs from image_sha256 in {SAMPLES}", sid, path))
    unknown = [c for c in img.channel_names if c not in card_channels]
    if unknown:
        out.append(("error", "channels", f"channels {unknown} are not in the card", sid, path))
    return out, [img.channel_names, histograms(image, img.axes)] if row.split == "train" else []


def _image_label_problem(group, name: str) -> str | None:
    """Why viewers would not open label image ``name`` as labels (NGFF ``image-label`` metadata), or None."""
    listed = group["labels"].attrs.get("ome", {}).get("labels", [])
    if name not in listed:
        return "not listed in the 'labels' group's metadata"
    meta = group[f"labels/{name}"].attrs.get("ome", {}).get("image-label")
    if not isinstance(meta, dict):
        return "no NGFF 'image-label' metadata: viewers open it as an image, not as labels"
    source = meta.get("source")
    if not isinstance(source, dict) or source.get("image") != "../../":
        return "'image-label' does not name its source image ('source': {'image': '../../'})"
    for key in ("colors", "properties"):
        entries = meta.get(key, [])
        if not isinstance(entries, list) or not all(isinstance(e, dict) and "label-value" in e for e in entries):
            return f"'image-label' {key} entries need a 'label-value'"
    return None


def _regions_touch(a: tuple[int, ...], b: tuple[int, ...], guard: int) -> bool:
    """Whether two regions of one source overlap or lie closer than ``guard`` (pixels, or frames)."""
    if len(a) == 2:  # time windows [t0, t1]: at least max(guard, 1) frames strictly between them
        gap = max(guard, 1)
        return not (a[1] + gap < b[0] or b[1] + gap < a[0])
    return not (a[2] + guard <= b[0] or b[2] + guard <= a[0] or a[3] + guard <= b[1] or b[3] + guard <= a[1])


def _check_card(card: DatasetCard, f: Findings, where: str) -> None:
    t = card.terms
    if any(PLACEHOLDER in c for c in t.citations):
        f.add("warning", "card", "terms.citations not recorded", file=where)
    if any(PLACEHOLDER in s for s in t.sources):
        f.add("warning", "card", "terms.sources not recorded", file=where)
    if t.license.lower() == "unknown":
        f.add("info", "card", f"licence unknown; terms: {t.terms}", file=where)
    if card.acquisition.pixel_size.unknown:
        f.add(
            "warning", "card", "acquisition.pixel_size is unknown: physical measurements are not possible", file=where
        )
    if card.acquisition.organism == PLACEHOLDER:
        f.add("warning", "card", "acquisition.organism not recorded", file=where)
    for task in card.tasks:  # the card fields each of its tasks needs
        for path, warning in get_task(task).card_needs:
            if not attrgetter(path)(card):
                f.add("warning", "card", warning, file=where)


def _check_splits(ds: Dataset, rows: tuple[Sample, ...], f: Findings, guard: int) -> None:
    man, where = ds.split_manifest, str(ds.path / SPLITS)
    sets = {s: {e["id"] for e in man.get("splits", {}).get(s, [])} for s in SPLIT_NAMES}
    ids = {r.id for r in rows}
    for i, a in enumerate(SPLIT_NAMES):
        for b in SPLIT_NAMES[i + 1 :]:
            for sid in sorted(sets[a] & sets[b])[:10]:
                f.add("error", "splits", f"sample in both {a} and {b}", sid, where)
    listed = set().union(*sets.values())
    for sid in sorted(ids - listed)[:10]:
        f.add("error", "splits", "sample in no split", sid, where)
    for sid in sorted(listed - ids)[:10]:
        f.add("error", "splits", f"split lists a sample that {SAMPLES} lacks", sid, where)
    for r in rows:
        s = next((s for s in SPLIT_NAMES if r.id in sets[s]), None)
        if s is not None and s != r.split:
            f.add("error", "splits", f"split {s} in {SPLITS} but {r.split} in {SAMPLES}", r.id, where)
    sha = {e["id"]: e["sha256"] for s in SPLIT_NAMES for e in man.get("splits", {}).get(s, [])}
    for r in rows:
        if r.id in sha and sha[r.id] != r.sha256:
            f.add("error", "splits", f"content hash differs between {SPLITS} and {SAMPLES}", r.id, where)
    frozen = ds.card.splits.manifest_sha256 if ds.card.splits else None
    if frozen != manifest_sha256(man):
        f.add(
            "error",
            "splits",
            f"split manifest sha256 {manifest_sha256(man)[:12]} differs from the card's {(frozen or 'none')[:12]}",
            file=where,
        )
    if not sets["train"]:
        f.add("warning", "splits", "train split is empty", file=where)
    if not sets["test"]:
        f.add("warning", "splits", "test split is empty", file=where)
    groups, sources = defaultdict(set), defaultdict(list)
    for r in rows:
        groups[r.group].add(r.split)
        sources[r.source].append(r)
    for g, ss in groups.items():
        if len(ss) > 1:
            f.add("error", "leakage", f"group {g!r} is on several splits {sorted(ss)}", file=where)
    for src, members in sources.items():
        if len({m.split for m in members}) < 2:
            continue
        for i, a in enumerate(members):
            for b in members[i + 1 :]:
                if a.split == b.split:
                    continue
                if a.region is None or b.region is None:
                    f.add(
                        "error",
                        "leakage",
                        f"samples of source {src!r} on {a.split} and {b.split} without regions to keep them apart",
                        a.id,
                        where,
                    )
                    continue
                if _regions_touch(a.region, b.region, guard):
                    f.add(
                        "error",
                        "leakage",
                        f"{a.split} sample {a.id} and {b.split} sample {b.id} "
                        f"of source {src!r} overlap or lie within the guard band",
                        a.id,
                        where,
                    )


def _check_leakage(ds: Dataset, rows: tuple[Sample, ...], f: Findings, where: str) -> None:
    by_hash = defaultdict(list)
    for r in rows:
        by_hash[r.image_sha256].append(r)
    for members in by_hash.values():
        if len({m.split for m in members}) > 1:
            desc = ", ".join(f"{m.id} ({m.split})" for m in members[:4])
            f.add("error", "leakage", f"identical image on several splits: {desc}", members[0].id, where)
    rows = tuple(r for r in rows if r.phash)  # a table without perceptual hashes has no near-duplicate scan
    hashes = np.array([int(r.phash, 16) for r in rows], dtype=np.uint64)
    found = near_duplicate_pairs(hashes, np.array([r.split for r in rows]))
    pairs = [
        (i, j, d)
        for i, j, d in found
        if rows[i].image_sha256 != rows[j].image_sha256  # identical images are an error above
    ]
    checked = sorted(pairs, key=lambda p: p[2])[:NEAR_DUPLICATE_CHECKS]  # closest first (stable: index order)
    confirmed = []
    for i, j, d in checked:
        r = _min_channel_correlation(ds.image(rows[i].id).read(), ds.image(rows[j].id).read())
        if r >= NEAR_DUPLICATE_R:
            confirmed.append((i, j, d, r))
    for i, j, d, r in sorted(confirmed)[:20]:
        a, b = rows[i], rows[j]
        f.add(
            "warning",
            "near-duplicate",
            f"{a.id} ({a.split}) and {b.id} ({b.split}) are near "
            f"duplicates (perceptual hash distance {d}, pixel correlation {r:.3f})",
            a.id,
            where,
        )
    if pairs:
        of = "" if len(checked) == len(pairs) else f" of the {len(checked)} closest checked"
        many = "at least " if len(found) >= NEAR_DUPLICATE_PAIRS else ""
        f.add(
            "info",
            "near-duplicate",
            f"{many}{len(pairs)} pairs across splits with similar perceptual hashes, "
            f"{len(confirmed)}{of} confirmed by pixel correlation >= {NEAR_DUPLICATE_R}",
            file=where,
        )


def near_duplicate_pairs(
    hashes: np.ndarray, groups: np.ndarray, max_bits: int = NEAR_DUPLICATE_BITS, limit: int = NEAR_DUPLICATE_PAIRS
) -> list[tuple[int, int, int]]:
    """``(i, j, distance)`` for every pair ``i < j`` of 64-bit hashes at most ``max_bits`` apart (Hamming) whose
    ``groups`` differ, in index order; once ``limit`` pairs are found, those found so far.

    Multi-index hashing (Norouzi et al. 2012): the 64 bits are cut into ``max_bits + 1`` blocks, and two hashes at
    most ``max_bits`` apart agree exactly on at least one block, so only hashes that share a block's value are
    compared. That is about linear in the number of hashes instead of every pair (quadratic)."""
    hashes, groups = np.asarray(hashes, np.uint64), np.asarray(groups)
    edges = np.linspace(0, 64, max_bits + 2).astype(int)
    found: dict[tuple[int, int], int] = {}
    for lo, hi in zip(edges[:-1], edges[1:]):
        block = (hashes >> np.uint64(lo)) & np.uint64((1 << int(hi - lo)) - 1)
        order = np.argsort(block, kind="stable")
        starts = np.flatnonzero(np.r_[True, block[order][1:] != block[order][:-1]])
        for start, end in zip(starts, np.r_[starts[1:], len(order)]):
            if end - start < 2:
                continue
            members = np.sort(order[start:end])
            if (groups[members] == groups[members[0]]).all():
                continue
            for k, i in enumerate(members[:-1]):
                rest = members[k + 1 :]
                dist = np.bitwise_count(hashes[rest] ^ hashes[i])
                hit = (dist <= max_bits) & (groups[rest] != groups[i])
                found.update(((int(i), int(j)), int(d)) for j, d in zip(rest[hit], dist[hit]))
                if len(found) >= limit:  # e.g. thousands of near-blank images: enough to say so
                    return sorted((i, j, d) for (i, j), d in found.items())
    return sorted((i, j, d) for (i, j), d in found.items())


def _min_channel_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Smallest per-plane Pearson correlation of two images of one shape (-1 when shapes differ)."""
    if a.shape != b.shape:
        return -1.0
    a = a.reshape(-1, *a.shape[-2:]).astype(np.float64)
    b = b.reshape(-1, *b.shape[-2:]).astype(np.float64)
    rs = []
    for x, y in zip(a, b):
        x, y = x.ravel() - x.mean(), y.ravel() - y.mean()
        den = np.sqrt((x * x).sum() * (y * y).sum())
        rs.append(float((x * y).sum() / den) if den else float(np.array_equal(x, y)))
    return min(rs)


def sample_job(root: str | Path, row: Sample, card: DatasetCard, channels: list[str] | None = None) -> tuple:
    """The job of :func:`check_sample` for the sample ``row`` stored under ``root`` (``channels``: the channel
    names the card allows; default: the card's)."""
    labels = card.labels
    return (str(root), row, labels.classes, labels.semantic, channels or card.channel_names, detects(card))


def validate_dataset(path: str | Path, *, workers: int | None = None, executor: ExecutorLike | None = None) -> Findings:
    """Run every check on the dataset folder at ``path``; the per-sample checks on ``executor``
    (:func:`hub.executor.use_executor`; default: the enclosing block's, else local processes)."""
    f = Findings()
    try:
        ds = open_dataset(path)
        card = ds.card
        rows = ds.samples
    except CellHubError as err:
        f.add("error", "structure", err.problem, file=err.path)
        return f
    check_table(ds, f)
    with use_executor(executor):
        jobs = [sample_job(ds.path, r, card) for r in rows]
        train = Histograms()
        for found, hists in imap_samples(check_sample, jobs, workers=workers, description=f"validating {card.name}"):
            f.extend(found)
            if hists:
                train.add(*hists)
    check_whole(ds, f, train)
    return f


def check_table(ds: Dataset, f: Findings) -> None:
    """The checks of the card and the samples table that come before the per-sample ones."""
    _check_card(ds.card, f, str(ds.path / CARD))
    for sid in sorted(i for i, n in Counter(r.id for r in ds.samples).items() if n > 1):
        f.add("error", "structure", "sample id listed twice", sid, str(ds.path / SAMPLES))


def check_whole(ds: Dataset, f: Findings, train: Histograms) -> None:
    """The checks of the dataset as a whole, after the per-sample ones: splits, leakage (near-duplicates read
    back through ``ds.image``) and the card's statistics against the ``train`` samples' histograms."""
    card, rows = ds.card, ds.samples
    guard = card.splits.guard.size if card.splits and card.splits.guard else 0
    try:
        _check_splits(ds, rows, f, guard)
    except CellHubError as err:
        f.add("error", "splits", err.problem, file=err.path)
    _check_leakage(ds, rows, f, str(ds.path / SAMPLES))
    if card.statistics is None:
        f.add(
            "error" if train else "warning",
            "statistics",
            "card has no normalisation statistics",
            file=str(ds.path / CARD),
        )
    elif train:
        expected = Statistics(channels=train.statistics(card.channel_names))
        if expected.model_dump() != card.statistics.model_dump():
            f.add(
                "error", "statistics", "card statistics differ from those of the train split", file=str(ds.path / CARD)
            )
